//! `vigilo alarms`: what replay stored, read back from SQLite.

use crate::{STANDARD_ALARMS, json_lines, stderr, stdout, vigilo, workday};

#[test]
fn stored_alarms_are_listed_filtered_and_never_duplicated() {
    let data = tempfile::tempdir().expect("tempdir");
    let day = workday();
    let day = day.to_str().expect("path");
    let fired = json_lines(&vigilo(data.path(), &["replay", "--store", "--json", day]));
    assert!(!fired.is_empty());

    let stored = json_lines(&vigilo(data.path(), &["alarms", "--all", "--json"]));
    assert_eq!(stored.len(), fired.len(), "every fired alarm is stored");
    let names: std::collections::BTreeSet<&str> =
        stored.iter().filter_map(|a| a["alarm"].as_str()).collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), STANDARD_ALARMS);
    assert!(
        stored
            .windows(2)
            .all(|w| w[0]["fired_at"].as_str() >= w[1]["fired_at"].as_str()),
        "newest first"
    );
    assert!(
        stored
            .iter()
            .all(|a| a["origin"] == format!("replay:{day}"))
    );

    // Replaying the same day again stores nothing new.
    let again = vigilo(data.path(), &["replay", "--store", "--json", day]);
    assert!(stderr(&again).contains(", 0 new in"), "{}", stderr(&again));
    assert_eq!(
        json_lines(&vigilo(data.path(), &["alarms", "--all", "--json"])).len(),
        stored.len()
    );

    let dave = json_lines(&vigilo(
        data.path(),
        &["alarms", "--json", "--user", "dave"],
    ));
    assert!(!dave.is_empty() && dave.iter().all(|a| a["user"] == "dave"));
    let usb = json_lines(&vigilo(
        data.path(),
        &["alarms", "--json", "--alarm", "usb"],
    ));
    assert!(
        !usb.is_empty()
            && usb
                .iter()
                .all(|a| a["alarm"].as_str().is_some_and(|n| n.contains("USB")))
    );
    let morning = json_lines(&vigilo(
        data.path(),
        &[
            "alarms",
            "--json",
            "--since",
            "2026-11-02T00:00:00Z",
            "--until",
            "2026-11-02T12:00:00Z",
        ],
    ));
    assert!(!morning.is_empty());
    assert!(
        morning
            .iter()
            .all(|a| a["fired_at"].as_str().is_some_and(|t| t < "2026-11-02T12"))
    );
    let next_day = json_lines(&vigilo(
        data.path(),
        &["alarms", "--json", "--since", "2026-11-03"],
    ));
    assert!(next_day.is_empty());
    // One rule for dates everywhere: a day is included whole, so --since D --until D is day D.
    let the_day = json_lines(&vigilo(
        data.path(),
        &[
            "alarms",
            "--all",
            "--json",
            "--since",
            "2026-11-02",
            "--until",
            "2026-11-02",
        ],
    ));
    assert_eq!(the_day.len(), stored.len());
    // Spans back from now: the example day is long past.
    let recent = json_lines(&vigilo(data.path(), &["alarms", "--json", "--since", "7d"]));
    assert!(recent.is_empty());
    let yesterday = vigilo(data.path(), &["alarms", "--json", "--since", "yesterday"]);
    assert_eq!(yesterday.status.code(), Some(0), "{}", stderr(&yesterday));
    let two = json_lines(&vigilo(data.path(), &["alarms", "--json", "--limit", "2"]));
    assert_eq!(two.len(), 2);

    let table = stdout(&vigilo(data.path(), &["alarms"]));
    assert!(
        table.starts_with("TIME (UTC)") && table.contains("YouTube over 20 minutes"),
        "{table}"
    );
}

#[test]
fn bad_filters_and_a_missing_database_are_clear_errors() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = vigilo(data.path(), &["alarms"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no database"), "{}", stderr(&out));
    let out = vigilo(data.path(), &["alarms", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a time"), "{}", stderr(&out));
}
