//! `vigilo replay`: the example day through the standard pack, back-testing, bad input.

use std::collections::BTreeMap;

use crate::{STANDARD_ALARMS, json_lines, stderr, stdout, vigilo, workday};

#[test]
fn the_example_day_fires_every_standard_alarm_and_shows_a_table() {
    let data = tempfile::tempdir().expect("tempdir");
    let day = workday();
    let out = vigilo(data.path(), &["replay", day.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("TIME (UTC)"), "{table}");
    for alarm in STANDARD_ALARMS {
        assert!(table.contains(alarm), "{alarm} did not fire:\n{table}");
    }
    assert!(
        stderr(&out).contains("0 malformed lines skipped"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn duration_alarms_fire_once_when_the_span_crosses_the_threshold() {
    let data = tempfile::tempdir().expect("tempdir");
    let day = workday();
    let out = vigilo(
        data.path(),
        &["replay", "--json", day.to_str().expect("path")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fired = json_lines(&out);
    let youtube: Vec<_> = fired
        .iter()
        .filter(|a| a["alarm"] == "YouTube over 20 minutes")
        .collect();
    assert_eq!(youtube.len(), 1, "once per span: {youtube:#?}");
    let y = youtube[0];
    assert_eq!(y["user"], "alice");
    assert_eq!(
        y["event"]["duration"], 1201,
        "fires as the span crosses 20 minutes"
    );
    // The span started at the event's ts; the alarm fires 1201 s later.
    let start =
        chrono::DateTime::parse_from_rfc3339(y["event"]["ts"].as_str().expect("ts")).expect("ts");
    let fired_at = chrono::DateTime::parse_from_rfc3339(y["fired_at"].as_str().expect("fired_at"))
        .expect("fired_at");
    assert_eq!((fired_at - start).num_seconds(), 1201);
    let popup = y["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find_map(|a| a.get("popup"))
        .expect("a popup is planned");
    assert_eq!(popup["message"], "20 minutes on youtube.com: is this work?");
    // The training video is an exception, the 19-minute video is under the threshold.
    assert!(
        fired
            .iter()
            .all(|a| a["user"] != "grace" && a["user"] != "ivan"),
        "{fired:#?}"
    );
    let social: Vec<_> = fired
        .iter()
        .filter(|a| a["alarm"] == "Social media over 60 minutes")
        .collect();
    assert_eq!(social.len(), 1);
    assert_eq!(social[0]["event"]["duration"], 3601);
}

#[test]
fn a_burst_of_usb_writes_is_rate_limited_by_the_cooldown_but_every_match_counts_them_all() {
    let data = tempfile::tempdir().expect("tempdir");
    let day = workday();
    let text = std::fs::read_to_string(&day).expect("read");
    let writes = text
        .lines()
        .filter(|l| l.contains("\"action\":\"file_written\""))
        .count();
    assert!(writes > 10, "the example day has a burst of USB writes");

    let spans = vigilo(
        data.path(),
        &["replay", "--counts", "-", day.to_str().expect("path")],
    );
    let raw = vigilo(
        data.path(),
        &[
            "replay",
            "--every-match",
            "--counts",
            "-",
            day.to_str().expect("path"),
        ],
    );
    let count = |o: &std::process::Output, name: &str| -> u64 {
        stdout(o)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count for {name} in\n{}", stdout(o)))
    };
    assert_eq!(count(&raw, "File written to USB storage"), writes as u64);
    let limited = count(&spans, "File written to USB storage");
    assert!(
        limited >= 2 && limited < writes as u64 / 2,
        "cooldown 1m: {limited} of {writes}"
    );
}

/// Back-testing a pack: counts must equal an independent count over the same file.
#[test]
fn back_testing_a_pack_counts_every_raw_match_including_zeros() {
    let data = tempfile::tempdir().expect("tempdir");
    let pack = tempfile::tempdir().expect("pack dir");
    std::fs::write(
        pack.path().join("pack.toml"),
        r#"
[pack]
name = "backtest"
version = "0.1.0"

[[alarm]]
name = "chromium in focus"
conditions = [ { field = "executable", op = "contains", value = "CHROMIUM" } ]

[[alarm]]
name = "big usb write"
kind = "usb"
conditions = [ { field = "action", op = "eq", value = "file_written" }, { field = "bytes", op = "gt", value = 50000000 } ]

[[alarm]]
name = "alice or bob on google, not mail"
match = "all"
conditions = [
  { field = "primary_domain", op = "eq", value = "google.com" },
  { match = "any", conditions = [ { field = "username", op = "eq", value = "alice" }, { field = "username", op = "eq", value = "bob" } ] },
]
unless = [ { field = "title", op = "contains", value = "gmail" } ]

[[alarm]]
name = "never"
conditions = [ { field = "url", op = "starts_with", value = "gopher://" } ]
"#,
    )
    .expect("write pack");
    let day = workday();
    let counts_file = data.path().join("counts.tsv");
    let out = vigilo(
        data.path(),
        &[
            "replay",
            "--pack",
            pack.path().to_str().expect("path"),
            "--no-default-pack",
            "--every-match",
            "--counts",
            counts_file.to_str().expect("path"),
            day.to_str().expect("path"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).is_empty(),
        "with --counts FILE nothing is listed"
    );

    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for line in std::fs::read_to_string(&day).expect("read").lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("json");
        let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let mut hit = |name, yes: bool| *expected.entry(name).or_default() += u64::from(yes);
        hit(
            "chromium in focus",
            s("executable").to_lowercase().contains("chromium"),
        );
        hit(
            "big usb write",
            s("action") == "file_written" && e["bytes"].as_f64().unwrap_or(0.0) > 5e7,
        );
        hit(
            "alice or bob on google, not mail",
            s("primary_domain") == "google.com"
                && (s("username") == "alice" || s("username") == "bob")
                && !s("title").to_lowercase().contains("gmail"),
        );
        hit("never", false);
    }
    let text = std::fs::read_to_string(&counts_file).expect("counts written");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    for (name, count) in &expected {
        assert_eq!(
            lines.next(),
            Some(format!("{name}\t{count}").as_str()),
            "{text}"
        );
    }
    assert!(
        expected["chromium in focus"] > 100 && expected["big usb write"] > 0,
        "{expected:?}"
    );
    assert!(text.contains("# malformed\t0"), "{text}");
}

#[test]
fn malformed_lines_are_reported_counted_and_skipped_unless_strict() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = data.path().join("day.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","username":"dave","action":"inserted","device_class":"mass_storage"}"#, "\n",
            r#"{"ts":"2026-11-02T09:00:01Z","kind":"usb","username":"dave","action":"file_written","bytes":"lots"}"#, "\n",
            r#"{"ts":"nine o'clock","kind":"usb"}"#, "\n",
            "not json at all\n",
            r#"{"ts":"2026-11-02T09:00:03Z","kind":"usb","username":"dave","action":"file_written","bytes":10}"#, "\n",
        ),
    )
    .expect("write");
    let path = file.to_str().expect("path");
    let out = vigilo(data.path(), &["replay", "--json", path]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "skipped lines exit 3: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:2: column")) && err.contains("field `bytes`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:3: "))
            && err.contains("field `ts`")
            && err.contains("RFC 3339"),
        "{err}"
    );
    assert!(err.contains(&format!("{path}:4: ")), "{err}");
    assert!(err.contains("2 events, 3 malformed lines skipped"), "{err}");
    let fired = json_lines(&out);
    assert_eq!(fired.len(), 2, "the good lines still fire: {fired:#?}");

    let strict = vigilo(data.path(), &["replay", "--json", "--strict", path]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(
        stderr(&strict).contains(&format!("{path}:2:")),
        "{}",
        stderr(&strict)
    );
    assert_eq!(
        json_lines(&strict).len(),
        1,
        "only what came before the bad line"
    );
}

#[test]
fn a_rejected_pack_stops_the_replay_before_anything_is_stored() {
    let data = tempfile::tempdir().expect("tempdir");
    let pack = tempfile::tempdir().expect("pack");
    std::fs::write(
        pack.path().join("pack.toml"),
        "[pack]\nname = \"bad\"\nversion = \"1.0.0\"\n[[alarm]]\nname = \"x\"\nconditions = [{ field = \"title\", op = \"gt\", value = 1 }]\n",
    )
    .expect("write");
    let day = workday();
    let out = vigilo(
        data.path(),
        &[
            "replay",
            "--pack",
            pack.path().to_str().expect("p"),
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pack.toml:6:39: operator `gt` does not apply to `title`"),
        "{}",
        stderr(&out)
    );
    assert!(
        !data.path().join("vigilo.db").exists(),
        "nothing was written"
    );
}

#[test]
fn reads_standard_input() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(["replay", "--json", "-"])
        .env("VIGILO_DATA_DIR", data.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, r#"{{"ts":"2026-11-02T09:00:00Z","kind":"account","actor":"root","event_name":"pack_removed","action_object":"standard"}}"#).expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let fired = json_lines(&out);
    assert_eq!(fired.len(), 1, "{}", stderr(&out));
    assert_eq!(fired[0]["alarm"], "Monitoring setup changed");
    assert_eq!(fired[0]["user"], "root");
}

#[test]
fn an_off_hours_alarm_fires_outside_office_hours_in_its_zone_across_a_dst_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = dir.path().join("off-hours");
    std::fs::create_dir_all(&pack).expect("mkdir");
    // The off-hours example plugin's rule, as one built-in alarm.
    std::fs::write(
        pack.join("pack.toml"),
        r#"[pack]
name = "off-hours"
version = "1.0.0"

[[alarm]]
name = "USB copy off hours"
kind = "usb"
repeat = "every_match"
conditions = [ { field = "action", op = "eq", value = "file_written" } ]
outside = { days = ["mon", "tue", "wed", "thu", "fri"], hours = "08:00-18:00", tz = "Europe/Paris" }
risk = 5
"#,
    )
    .expect("write pack");
    // Paris went from UTC+1 to UTC+2 on Sunday 2026-03-29: 06:30 UTC is 07:30 in Paris on the
    // Monday before (off hours) and 08:30 on the Monday after (office hours).
    let copies = [
        ("2026-03-23T06:30:00Z", true),
        ("2026-03-23T07:30:00Z", false),
        ("2026-03-28T12:00:00Z", true),
        ("2026-03-30T06:30:00Z", false),
        ("2026-03-30T05:30:00Z", true),
        ("2026-03-30T16:00:00Z", true),
    ];
    let day: Vec<String> = copies
        .iter()
        .enumerate()
        .map(|(n, (ts, _))| {
            format!(
                r#"{{"ts":"{ts}","kind":"usb","username":"dave","computer":"ws-1","action":"file_written","path":"/media/dave/USB/{n}.bin","bytes":1}}"#
            )
        })
        .collect();
    let events = dir.path().join("days.jsonl");
    std::fs::write(&events, day.join("\n") + "\n").expect("write events");
    let out = vigilo(
        dir.path(),
        &[
            "replay",
            "--json",
            "--no-default-pack",
            "--pack",
            pack.to_str().expect("p"),
            events.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fired: Vec<String> = json_lines(&out)
        .iter()
        .map(|a| a["event"]["ts"].as_str().unwrap_or("?").to_string())
        .collect();
    let expected: Vec<String> = copies
        .iter()
        .filter(|(_, off)| *off)
        .map(|(ts, _)| ts.to_string())
        .collect();
    assert_eq!(fired, expected);

    // A schedule that is not one is refused at its line and column, with what was expected.
    std::fs::write(
        pack.join("pack.toml"),
        "[pack]\nname = \"off-hours\"\nversion = \"1.0.0\"\n\n[[alarm]]\nname = \"x\"\n\
         conditions = [ { field = \"action\", op = \"eq\", value = \"file_written\" } ]\n\
         active = { days = [\"monday\"], hours = \"8-18\", tz = \"Europe/Paris\" }\n",
    )
    .expect("write pack");
    let out = vigilo(dir.path(), &["check", pack.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let said = stderr(&out);
    assert!(
        said.contains("pack.toml:8:19: days: unknown day \"monday\"; expected mon, tue"),
        "{said}"
    );
}

#[test]
fn the_readme_s_targets_example_replays_as_each_agent_would_run_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let root = crate::root();
    let path = |p: &str| root.join(p).to_str().expect("p").to_string();
    let as_agent = |agent: &str| {
        vigilo(
            data.path(),
            &[
                "replay",
                &path("examples/events/finance-day.jsonl"),
                "--no-default-pack",
                "--pack",
                &path("examples/packs/finance-dlp"),
                "--as-agent",
                agent,
                "--groups",
                &path("examples/fleet/groups.json"),
            ],
        )
    };
    let bob = as_agent("ws-bob");
    assert_eq!(bob.status.code(), Some(0), "{}", stderr(&bob));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    for line in stderr(&bob).lines().chain(stdout(&bob).lines()) {
        assert!(readme.contains(line), "the README shows {line:?}");
    }
    assert!(
        stderr(&bob).contains("applies to some users on agent ws-bob")
            && stdout(&bob).lines().count() == 3,
        "{}",
        stdout(&bob)
    );
    // On ann's computer, a member of the group, all seven fire; dave's five escalate.
    let ann = as_agent("ws-ann");
    let listed = stdout(&ann);
    let risks: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter(|l| l.contains("dave"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(risks, ["3", "3", "6", "6", "9"], "{listed}");
    assert!(stderr(&ann).contains("7 alarms fired"), "{}", stderr(&ann));
}
