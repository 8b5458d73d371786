//! A real Rust plugin, written with `vigilo-sdk` and built from source by `vigilo plugin build`:
//! examples/plugins/usb-exfil over the example day.

use crate::{root, stderr, stdout, vigilo, workday};

#[test]
fn the_usb_exfiltration_example_builds_and_catches_big_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = root().join("examples/plugins/usb-exfil");
    let wasm = dir.path().join("usb-exfil.wasm");
    let built = vigilo(
        dir.path(),
        &[
            "plugin",
            "build",
            example.to_str().expect("p"),
            "-o",
            wasm.to_str().expect("p"),
        ],
    );
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));

    let day = workday();
    let config = dir.path().join("usb.toml");
    std::fs::write(&config, "limit_mb = 100\nwindow_minutes = 10\n").expect("write");
    let run = |config: &std::path::Path| {
        vigilo(
            dir.path(),
            &[
                "plugin",
                "test",
                "--config",
                config.to_str().expect("p"),
                wasm.to_str().expect("p"),
                day.to_str().expect("p"),
            ],
        )
    };
    let out = run(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("plugin usb-exfil 1.0.0 — subscribes to usb"),
        "{text}"
    );
    let alarms: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("USB exfiltration (risk 8)"))
        .collect();
    assert_eq!(alarms.len(), 2, "one per burst, for dave and judy:\n{text}");
    assert!(
        alarms[0].contains("— dave wrote") && alarms[1].contains("— judy wrote"),
        "{text}"
    );

    // Allow-listing dave's device leaves judy's copy.
    let day_text = std::fs::read_to_string(&day).expect("read");
    let dave_serial = day_text
        .lines()
        .filter(|l| l.contains("\"username\":\"dave\"") && l.contains("file_written"))
        .find_map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).ok()?;
            e["serial"].as_str().map(str::to_string)
        })
        .expect("dave's device serial");
    std::fs::write(
        &config,
        format!("limit_mb = 100\nallowed_serials = [\"{dave_serial}\"]\n"),
    )
    .expect("write");
    let text = stdout(&run(&config));
    let alarms: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("USB exfiltration"))
        .collect();
    assert_eq!(alarms.len(), 1, "{text}");
    assert!(alarms[0].contains("judy"), "{text}");

    // A bad configuration is refused with the plugin's own words.
    std::fs::write(&config, "limit_mb = lots\n").expect("write");
    let out = run(&config);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1: `limit_mb` must be a number, found lots"),
        "{}",
        stderr(&out)
    );
}
