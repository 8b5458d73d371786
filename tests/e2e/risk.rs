//! Risk scores from the running agent: its alarms' levels and the activity records it counted
//! become `vigilo risk`, users ranked by points per 100 activity records, with the trend from
//! the window before. The expected numbers are worked out here from what was sent.

use crate::agent::Agent;
use crate::{json_lines, stdout, vigilo};

fn activity(user: &str, ts: &str, n: usize) -> String {
    format!(
        r#"{{"ts":"{ts}","kind":"activity","username":"{user}","computer":"ws-{user}","executable":"/usr/bin/xterm","description":"XTerm","title":"work {n}","pid":100}}"#
    )
}

/// A USB stick plugged in: the standard pack's "USB storage device inserted", risk 4.
fn usb_stick(user: &str, ts: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","kind":"usb","username":"{user}","computer":"ws-{user}","action":"inserted","vendor_id":"0781","product_id":"5581","vendor":"SanDisk","product":"Ultra","serial":"4C53{user}","device_class":"mass_storage"}}"#
    )
}

#[test]
fn the_running_agent_ranks_users_by_risk_per_activity_with_a_trend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start(&data);
    let mut lines = Vec::new();
    // The week before (26 Oct – 2 Nov): dave plugs in one stick over 100 records.
    for i in 0..100 {
        lines.push(activity("dave", "2026-10-28T09:00:00Z", i));
    }
    lines.push(usb_stick("dave", "2026-10-28T09:30:00Z"));
    // This week: dave plugs in three sticks over 150 records; erin one over 400; frank works
    // 120 records and plugs in nothing.
    for i in 0..150 {
        lines.push(activity("dave", "2026-11-04T09:00:00Z", i));
    }
    for i in 0..400 {
        lines.push(activity("erin", "2026-11-04T10:00:00Z", i));
    }
    for i in 0..120 {
        lines.push(activity("frank", "2026-11-05T11:00:00Z", i));
    }
    for ts in [
        "2026-11-04T09:10:00Z",
        "2026-11-04T09:20:00Z",
        "2026-11-04T09:40:00Z",
    ] {
        lines.push(usb_stick("dave", ts));
    }
    lines.push(usb_stick("erin", "2026-11-04T10:30:00Z"));
    let before = agent.status()["events"].as_u64().expect("events");
    agent.send(&lines);
    agent.wait_for_events(before + lines.len() as u64);
    // Stopping writes the last activity records.
    agent.stop();

    let out = vigilo(&data, &["risk", "--until", "2026-11-09", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::stderr(&out));
    let ranked = json_lines(&out);
    let row = |user: &str| {
        ranked
            .iter()
            .find(|r| r["user"] == user)
            .unwrap_or_else(|| panic!("{user} ranked: {ranked:?}"))
    };
    let order: Vec<&str> = ranked.iter().filter_map(|r| r["user"].as_str()).collect();
    assert_eq!(order, ["dave", "erin", "frank"]);
    // dave: 3 × risk 4 = 12 points / 150 records → 8.0; the week before 4 / 100 → 4.0.
    let dave = row("dave");
    assert_eq!(
        (&dave["points"], &dave["records"], &dave["score"]),
        (&12.into(), &150.into(), &8.0.into())
    );
    assert_eq!(
        (&dave["previous"], &dave["trend"]),
        (&4.0.into(), &4.0.into())
    );
    assert_eq!(dave["by_alarm"][0]["alarm"], "USB storage device inserted");
    assert_eq!(dave["by_alarm"][0]["fired"], 3);
    // erin: 4 points over 400 records → 1.0; frank: nothing fired → 0.
    assert_eq!(row("erin")["score"], 1.0);
    assert_eq!(row("frank")["score"], 0.0);
    assert_eq!(row("frank")["records"], 120);

    // The table says the same, with the formula and the trend.
    let table = stdout(&vigilo(&data, &["risk", "--until", "2026-11-09"]));
    assert!(
        table.contains("100 × points / max(activity records, 100)"),
        "{table}"
    );
    let dave_line = table.lines().find(|l| l.contains("dave")).expect("dave");
    assert!(
        dave_line.contains("8.0") && dave_line.contains("▲ +4.0"),
        "{dave_line}"
    );
    // The week before, dave alone, and rising from nothing.
    let week_before = json_lines(&vigilo(&data, &["risk", "--until", "2026-11-02", "--json"]));
    assert_eq!(week_before.len(), 1, "{week_before:?}");
    assert_eq!(week_before[0]["score"], 4.0);
}
