//! `vigilo plugin test`: a plugin over recorded events, as its author runs it.

use crate::support::{component, hello_body, plugin_wat, plugin_wat_0_1, plugin_wat_reading};
use crate::{alarms_on, stderr, stdout, vigilo, workday, workday_count};

fn write_plugin(dir: &std::path::Path, name: &str, wat: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, component(wat)).expect("write plugin");
    path.to_str().expect("path").to_string()
}

#[test]
fn a_plugin_runs_over_a_recorded_day_with_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = write_plugin(
        dir.path(),
        "hello.wasm",
        &plugin_wat("\\00", hello_body(), ""),
    );
    let day = workday();
    let out = vigilo(
        dir.path(),
        &["plugin", "test", &plugin, day.to_str().expect("p")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("plugin hello 1.0.0 — subscribes to activity; reads every field\n"),
        "{text}"
    );
    // The same plugin built for contract 0.1.0 runs the same (it is handed every field), and
    // one that reads two fields says so.
    let old = write_plugin(
        dir.path(),
        "old.wasm",
        &plugin_wat_0_1("\\00", hello_body(), ""),
    );
    let out_old = vigilo(
        dir.path(),
        &["plugin", "test", &old, day.to_str().expect("p")],
    );
    assert_eq!(stdout(&out_old), text);
    let narrow = write_plugin(
        dir.path(),
        "narrow.wasm",
        &plugin_wat_reading("\\00", "\\13\\00", hello_body(), ""),
    );
    let out_narrow = vigilo(
        dir.path(),
        &["plugin", "test", &narrow, day.to_str().expect("p")],
    );
    assert!(
        stdout(&out_narrow)
            .starts_with("plugin hello 1.0.0 — subscribes to activity; reads username, path\n"),
        "{}",
        stdout(&out_narrow)
    );
    let activity = workday_count("activity");
    assert_eq!(
        text.lines()
            .filter(|l| l.ends_with(": hello (risk 3) -"))
            .count(),
        activity
    );
    assert!(text.contains(": log info: hello"), "{text}");
    assert!(
        stderr(&out).contains(&format!("events, {activity} alarms, 0 faults")),
        "{}",
        stderr(&out)
    );

    let json = vigilo(
        dir.path(),
        &[
            "plugin",
            "test",
            "--json",
            &plugin,
            day.to_str().expect("p"),
        ],
    );
    let first: serde_json::Value =
        serde_json::from_str(stdout(&json).lines().nth(1).expect("an alarm line")).expect("json");
    assert_eq!(first["alarm"], "hello");
    assert_eq!(first["event"]["kind"], "activity");
}

#[test]
fn a_hostile_plugin_is_reported_and_switched_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = write_plugin(
        dir.path(),
        "loop.wasm",
        &plugin_wat("\\00", "(loop $l (br $l)) (unreachable)", ""),
    );
    let day = workday();
    let out = vigilo(
        dir.path(),
        &[
            "plugin",
            "test",
            "--deadline-ms",
            "5",
            &plugin,
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        stdout(&out)
            .matches("FAULT: the plugin ran past its deadline of 5 ms")
            .count(),
        3
    );
    assert!(
        stderr(&out).contains("3 faults; the plugin was switched off"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("junk.wasm"), b"\0asm junk").expect("write");
    let junk = dir.path().join("junk.wasm");
    let out = vigilo(
        dir.path(),
        &[
            "plugin",
            "test",
            junk.to_str().expect("p"),
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a valid WebAssembly component"),
        "{}",
        stderr(&out)
    );
}

/// A pack folder holding `pack.toml` and one plugin built from `wat`.
fn pack_with_plugin(dir: &std::path::Path, name: &str, wat: &str, plugin_toml: &str) -> String {
    let pack = dir.join(name);
    std::fs::create_dir_all(pack.join("plugins")).expect("mkdir");
    std::fs::write(pack.join("plugins/p.wasm"), component(wat)).expect("write plugin");
    std::fs::write(
        pack.join("pack.toml"),
        format!(
            "[pack]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n[[plugin]]\nfile = \"plugins/p.wasm\"\n{plugin_toml}\n"
        ),
    )
    .expect("write pack");
    pack.to_str().expect("path").to_string()
}

#[test]
fn plugin_alarms_go_to_the_same_output_and_store_as_built_in_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = pack_with_plugin(
        dir.path(),
        "hellos",
        &plugin_wat("\\00", hello_body(), ""),
        "config = \"x = 1\"",
    );
    let day = workday();
    let check = vigilo(dir.path(), &["check", &pack]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("pack hellos 1.0.0 — 0 alarms, 1 plugin, ok"),
        "{}",
        stdout(&check)
    );
    assert!(
        stdout(&check).contains(
            "plugin hello 1.0.0 (plugins/p.wasm)  [subscribes to activity; deadline 50 ms"
        )
    );

    let out = vigilo(
        dir.path(),
        &[
            "replay",
            "--counts",
            "-",
            "--pack",
            &pack,
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let activity = workday_count("activity");
    assert!(
        stdout(&out).contains(&format!("hellos:hello\t{activity}\n")),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("YouTube over 20 minutes\t1\n"),
        "built-in alarms still run"
    );

    let stored = vigilo(
        dir.path(),
        &[
            "replay",
            "--store",
            "--json",
            "--pack",
            &pack,
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(stored.status.code(), Some(0));
    let listed = vigilo(
        dir.path(),
        &["alarms", "--all", "--json", "--alarm", "hello"],
    );
    assert_eq!(
        stdout(&listed).lines().count(),
        activity,
        "every plugin alarm is stored"
    );
}

#[test]
fn a_plugin_switched_off_raises_monitoring_setup_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = pack_with_plugin(
        dir.path(),
        "loopy",
        &plugin_wat("\\00", "(loop $l (br $l)) (unreachable)", ""),
        "deadline_ms = 5",
    );
    let day = workday();
    let out = vigilo(
        dir.path(),
        &[
            "replay",
            "--json",
            "--pack",
            &pack,
            day.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fired = alarms_on(&out, "plugin_quarantined");
    assert_eq!(fired.len(), 1, "{}", stdout(&out));
    assert_eq!(fired[0]["alarm"], "Monitoring setup changed");
    assert_eq!(fired[0]["event"]["action_object"], "loopy/hello");
    assert_eq!(
        fired[0]["event"]["detail"],
        "the plugin was switched off: 3 faults in a row, the last: ran past its deadline of 5 ms"
    );
}

#[test]
fn a_pack_with_a_broken_or_misconfigured_plugin_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = pack_with_plugin(
        dir.path(),
        "bad",
        &plugin_wat("\\00", hello_body(), ""),
        "deadline_ms = 0\nmemory_mib = 4096",
    );
    let out = vigilo(dir.path(), &["check", &pack]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pack.toml:7:15: deadline_ms must be 1 to 1000, found 0"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("pack.toml:8:14: memory_mib must be 1 to 1024, found 4096"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("bad/plugins/p.wasm"), b"junk").expect("write");
    std::fs::write(
        dir.path().join("bad/pack.toml"),
        "[pack]\nname = \"bad\"\nversion = \"1.0.0\"\n[[plugin]]\nfile = \"plugins/p.wasm\"\n",
    )
    .expect("write");
    let out = vigilo(dir.path(), &["check", &pack]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pack bad: plugin plugins/p.wasm: not a valid WebAssembly component"),
        "{}",
        stderr(&out)
    );
    let day = workday();
    let out = vigilo(
        dir.path(),
        &["replay", "--pack", &pack, day.to_str().expect("p")],
    );
    assert_eq!(out.status.code(), Some(2), "replay refuses it too");
}
