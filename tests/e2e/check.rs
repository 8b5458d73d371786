//! `vigilo check`: what a pack holds, or every error in it.

use crate::{STANDARD_ALARMS, root, stderr, stdout, vigilo};

#[test]
fn the_standard_pack_checks_clean_from_its_folder_and_embedded() {
    let data = tempfile::tempdir().expect("tempdir");
    let folder = root().join("packs/standard");
    for args in [vec!["check"], vec!["check", folder.to_str().expect("path")]] {
        let out = vigilo(data.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.starts_with("pack standard 1.0.0 by vigilo — 9 alarms, ok"),
            "{text}"
        );
        for alarm in STANDARD_ALARMS.iter().chain(&["Computer not reporting"]) {
            assert!(text.contains(alarm), "{alarm} missing");
        }
        assert!(
            text.contains(r#"when    (primary_domain in ["youtube.com""#),
            "{text}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&vigilo(data.path(), &["check", "--json"]).stdout).expect("json");
    assert_eq!(json["ok"], true);
    assert_eq!(json["alarms"].as_array().map(Vec::len), Some(9));
}

#[test]
fn every_error_of_a_broken_pack_is_listed_with_its_place() {
    let data = tempfile::tempdir().expect("tempdir");
    let pack = data.path().join("broken");
    std::fs::create_dir(&pack).expect("mkdir");
    std::fs::write(
        pack.join("pack.toml"),
        r#"[pack]
name = "broken"
version = "1.0"

[[alarm]]
name = "typos"
risk = 0
conditions = [
  { field = "titel", op = "contains", value = "x" },
  { field = "duration", op = "gt", value = "20m" },
]
actions = [ { screenshot = { count = 3, interval = "2s" } } ]
"#,
    )
    .expect("write");
    let out = vigilo(data.path(), &["check", pack.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let file = pack.join("pack.toml").display().to_string();
    for expected in [
        format!("{file}:3:11: version must be semantic"),
        format!("{file}:7:8: risk must be 1 to 10, found 0"),
        format!("{file}:9:13: unknown field \"titel\""),
        format!("{file}:10:44: `duration` is a number"),
        format!("{file}:12:13: screenshot: interval must be at least 10s"),
        "5 problems found; the pack was not loaded".to_string(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in\n{err}");
    }
    let json: serde_json::Value = serde_json::from_slice(
        &vigilo(data.path(), &["check", "--json", pack.to_str().expect("p")]).stdout,
    )
    .expect("json");
    assert_eq!(json["ok"], false);
    assert_eq!(json["errors"][2]["line"], 9);
    assert_eq!(json["errors"][2]["column"], 13);
}

#[test]
fn the_example_pack_checks_clean_and_runs_beside_the_standard_pack() {
    let data = tempfile::tempdir().expect("tempdir");
    let pack = root().join("examples/packs/acme-dlp");
    let pack = pack.to_str().expect("path");
    let out = vigilo(data.path(), &["check", pack]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("Large file written to USB storage  [usb; risk 7; every match, cooldown 5m]")
    );
    let day = crate::workday();
    let out = vigilo(
        data.path(),
        &[
            "replay",
            "--counts",
            "-",
            "--pack",
            pack,
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let counts = stdout(&out);
    assert_eq!(
        counts.lines().filter(|l| !l.starts_with('#')).count(),
        13,
        "9 standard + 4 example alarms:\n{counts}"
    );
    assert!(
        counts.contains("Customer or payroll data written to USB storage\t"),
        "{counts}"
    );
}

#[test]
fn check_says_whom_a_pack_and_its_alarms_are_for_and_how_they_escalate() {
    let data = tempfile::tempdir().expect("tempdir");
    let pack = data.path().join("dlp");
    std::fs::create_dir(&pack).expect("mkdir");
    std::fs::write(
        pack.join("pack.toml"),
        r#"[pack]
name = "dlp"
version = "1.0.0"

[grants]
actions = ["popup", "terminate"]

[targets]
groups = ["finance"]
exclude = { computers = ["ws-kiosk"] }

[[alarm]]
name = "Copy to USB"
kind = "usb"
conditions = [ { field = "action", op = "eq", value = "file_written" } ]
applies_to = { users = ["erin"] }
escalate = [
  { after = 3, within = "1h", risk = 6, actions = [ { popup = { message = "third" } } ] },
  { after = 5, within = "2h", actions = [ { terminate = {} } ] },
]
"#,
    )
    .expect("write");
    let out = vigilo(data.path(), &["check", pack.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "  for groups finance, except computers ws-kiosk\n",
        "    for     users erin\n",
        "    escalate from the 3rd within 1h: risk 6, popup\n",
        "    escalate from the 5th within 2h: terminate\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    let json: serde_json::Value = serde_json::from_slice(
        &vigilo(data.path(), &["check", "--json", pack.to_str().expect("p")]).stdout,
    )
    .expect("json");
    assert_eq!(json["alarms"][0]["applies_to"], "users erin");
    assert_eq!(
        json["alarms"][0]["escalate"][1],
        "from the 5th within 2h: terminate"
    );
}
