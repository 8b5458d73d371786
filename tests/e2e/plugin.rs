//! `vigilo plugin test`: a plugin over recorded events, as its author runs it.

use crate::support::{component, hello_body, plugin_wat};
use crate::{stderr, stdout, vigilo, workday};

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
        text.starts_with("plugin hello 1.0.0 — subscribes to activity"),
        "{text}"
    );
    let activity = std::fs::read_to_string(&day)
        .expect("read")
        .lines()
        .filter(|l| l.contains("\"kind\":\"activity\""))
        .count();
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
