//! The example plugins in examples/plugins — Rust ones written with `vigilo-sdk`, a C one written
//! against `wit-bindgen c` — built from source by `vigilo plugin build` and run over the example
//! day.

use crate::{root, stderr, stdout, vigilo, workday, workday_events};

/// Builds `examples/plugins/NAME` with `vigilo plugin build` into `dir`.
fn build_example(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let example = root().join("examples/plugins").join(name);
    let wasm = dir.join(format!("{name}.wasm"));
    let built = vigilo(
        dir,
        &[
            "plugin",
            "build",
            example.to_str().expect("p"),
            "-o",
            wasm.to_str().expect("p"),
        ],
    );
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    wasm
}

/// `vigilo plugin test WASM DAY --config FILE`, with `config` written to that file.
fn run_plugin(dir: &std::path::Path, wasm: &std::path::Path, config: &str) -> std::process::Output {
    run_plugin_over(dir, wasm, config, &workday())
}

/// `vigilo plugin test WASM EVENTS --config FILE`, with `config` written to that file.
fn run_plugin_over(
    dir: &std::path::Path,
    wasm: &std::path::Path,
    config: &str,
    day: &std::path::Path,
) -> std::process::Output {
    let path = dir.join("plugin.toml");
    std::fs::write(&path, config).expect("write config");
    vigilo(
        dir,
        &[
            "plugin",
            "test",
            "--config",
            path.to_str().expect("p"),
            wasm.to_str().expect("p"),
            day.to_str().expect("p"),
        ],
    )
}

/// usb-exfil's answer over the example day with a 100 MB / 10 min limit: one alarm per burst,
/// for dave and judy.
fn catches_dave_and_judy(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    let text = stdout(out);
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
}

#[test]
fn a_plugin_built_for_contract_0_1_0_still_loads_and_catches_the_same_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = root().join("tests/fixtures/wit-0.1.0/usb-exfil.wasm");
    let out = run_plugin(dir.path(), &wasm, "limit_mb = 100\nwindow_minutes = 10\n");
    catches_dave_and_judy(&out);
}

#[test]
fn the_usb_exfiltration_example_builds_and_catches_big_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = build_example(dir.path(), "usb-exfil");
    let run = |config: &str| run_plugin(dir.path(), &wasm, config);

    let out = run("limit_mb = 100\nwindow_minutes = 10\n");
    catches_dave_and_judy(&out);

    // Allow-listing dave's device leaves judy's copy.
    let dave_serial = workday_events()
        .iter()
        .filter(|e| e["username"] == "dave" && e["action"] == "file_written")
        .find_map(|e| e["serial"].as_str().map(str::to_string))
        .expect("dave's device serial");
    let text = stdout(&run(&format!(
        "limit_mb = 100\nallowed_serials = [\"{dave_serial}\"]\n"
    )));
    let alarms: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("USB exfiltration"))
        .collect();
    assert_eq!(alarms.len(), 1, "{text}");
    assert!(alarms[0].contains("judy"), "{text}");

    // A bad configuration is refused with the plugin's own words.
    let out = run("limit_mb = lots\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1: `limit_mb` must be a number, found lots"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_off_hours_example_flags_sensitive_apps_outside_the_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = build_example(dir.path(), "off-hours");
    let day = workday_events();
    // The independent count: listed apps whose local time falls outside 09:00–17:00 (a Monday).
    let expected = |offset_min: i64| -> usize {
        day.iter()
            .filter(|e| e["kind"] == "activity")
            .filter(|e| {
                let exe = e["executable"].as_str().unwrap_or("");
                let app = e["description"].as_str().unwrap_or("");
                let name = format!("{exe} {app}").to_lowercase();
                name.contains("keepassxc") || name.contains("soffice")
            })
            .filter(|e| {
                let ts = chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().expect("ts"))
                    .expect("ts");
                let minute = (ts.timestamp().div_euclid(60) + offset_min).rem_euclid(24 * 60);
                !(9 * 60..17 * 60).contains(&minute)
            })
            .count()
    };
    for offset in [0, 120] {
        let config = format!(
            "hours = [\"09:00\", \"17:00\"]\nutc_offset_minutes = {offset}\napps = [\"keepassxc\", \"soffice\"]\n"
        );
        let out = run_plugin(dir.path(), &wasm, &config);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let fired = stdout(&out)
            .lines()
            .filter(|l| l.contains("Sensitive app outside working hours"))
            .count();
        assert_eq!(fired, expected(offset), "offset {offset}");
        assert!(fired > 10, "the example day has early and late office work");
    }
    let out = run_plugin(dir.path(), &wasm, "hours = [\"18:00\", \"09:00\"]\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`hours` must start before it ends"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_c_example_remembers_devices_and_flags_only_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = build_example(dir.path(), "usb-first-seen");
    remembers_devices_and_flags_only_new_ones(dir.path(), &wasm);
}

#[test]
fn a_c_plugin_built_for_contract_0_1_0_still_keeps_its_state_and_flags_new_devices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = root().join("tests/fixtures/wit-0.1.0/usb-first-seen.wasm");
    remembers_devices_and_flags_only_new_ones(dir.path(), &wasm);
}

/// usb-first-seen's behaviour over the example day, checked against an independent count: each
/// new device once, remembered in the host-kept state, configurable, bad configurations refused.
fn remembers_devices_and_flags_only_new_ones(dir: &std::path::Path, wasm: &std::path::Path) {
    let alarms = |out: &std::process::Output| -> Vec<String> {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        stdout(out)
            .lines()
            .filter(|l| l.contains(": New USB device"))
            .map(str::to_string)
            .collect()
    };
    // The independent answer: each device of a watched class, first time per computer.
    let inserted = |class: &str| -> Vec<String> {
        let mut seen = Vec::new();
        for e in workday_events() {
            if e["action"] == "inserted" && e["device_class"] == class {
                let serial = e["serial"].as_str().expect("serial").to_string();
                if !seen.contains(&serial) {
                    seen.push(serial);
                }
            }
        }
        seen
    };
    let storage = inserted("mass_storage");
    assert_eq!(storage.len(), 2, "the example day has two USB drives");

    let out = run_plugin(dir, wasm, "");
    let fired = alarms(&out);
    assert_eq!(fired.len(), storage.len(), "{}", stdout(&out));
    for (line, serial) in fired.iter().zip(&storage) {
        assert!(line.contains("(risk 6) popup"), "{line}");
        assert!(line.contains(&format!("(serial {serial})")), "{line}");
    }
    assert!(fired[0].contains("first time on ws-dave-04: Samsung Portable SSD T7"));
    assert!(stdout(&out).contains("log info: new device remembered"));

    // The same day twice: the devices are remembered, nothing fires again.
    let text = std::fs::read_to_string(workday()).expect("day");
    let twice = dir.join("twice.jsonl");
    std::fs::write(&twice, format!("{text}{text}")).expect("write");
    assert_eq!(alarms(&run_plugin_over(dir, wasm, "", &twice)).len(), 2);

    // Configured: more classes, another risk.
    let out = run_plugin(
        dir,
        wasm,
        "classes = [\"mass_storage\", \"hid\"]\nrisk = 9\n",
    );
    let fired = alarms(&out);
    assert_eq!(fired.len(), storage.len() + inserted("hid").len());
    assert!(fired.iter().all(|l| l.contains("(risk 9)")), "{fired:?}");

    // Bad configurations are refused in the plugin's words, naming what it found.
    for (config, says) in [
        ("risk = 11\n", "`risk` must be a whole number from 1 to 10"),
        (
            "colour = 1\n",
            "unknown key: expected `risk` or `classes` (found `colour`)",
        ),
        (
            "classes = [\"hid\" \"x\"]\n",
            "`classes` must be a list of device classes",
        ),
    ] {
        let out = run_plugin(dir, wasm, config);
        assert_eq!(out.status.code(), Some(2), "{config}");
        assert!(stderr(&out).contains(says), "{config}: {}", stderr(&out));
    }
}

#[test]
fn the_javascript_example_flags_a_job_search_once_a_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    // npm ci (from the registry) and componentize-js: the engine and the script in one component.
    let wasm = build_example(dir.path(), "flight-risk");
    let job_sites = ["linkedin.com", "indeed.com", "glassdoor.com"];
    // The independent answer: carol's n-th different job site that day.
    let nth_site = |n: usize| -> String {
        let mut seen: Vec<&str> = Vec::new();
        let day = workday_events();
        for e in &day {
            let domain = e["primary_domain"].as_str().unwrap_or("");
            if job_sites.contains(&domain) && !seen.contains(&domain) {
                seen.push(domain);
                if seen.len() == n {
                    return e["ts"].as_str().expect("ts").to_string();
                }
            }
        }
        panic!("fewer than {n} job sites");
    };
    let fired = |out: &std::process::Output| -> Vec<String> {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        stdout(out)
            .lines()
            .filter(|l| l.contains(": Job search (risk 4) screenshot"))
            .map(str::to_string)
            .collect()
    };
    let line_of = |ts: &str| -> usize {
        let text = std::fs::read_to_string(workday()).expect("day");
        1 + text
            .lines()
            .position(|l| l.contains(ts) && l.contains("carol"))
            .expect("line")
    };

    let out = run_plugin(dir.path(), &wasm, "");
    let alarms = fired(&out);
    assert_eq!(
        alarms.len(),
        1,
        "once, though carol comes back later:\n{}",
        stdout(&out)
    );
    assert!(
        alarms[0].contains(&format!("workday.jsonl:{}:", line_of(&nth_site(3))))
            && alarms[0]
                .ends_with("carol visited linkedin.com, indeed.com, glassdoor.com on 2026-11-02"),
        "{alarms:?}"
    );
    assert!(stdout(&out).contains("log info: carol: 3 job sites on 2026-11-02"));

    let alarms = fired(&run_plugin(dir.path(), &wasm, "threshold = 2\n"));
    assert_eq!(alarms.len(), 1);
    assert!(
        alarms[0].contains(&format!("workday.jsonl:{}:", line_of(&nth_site(2)))),
        "{alarms:?}"
    );
    let only_linkedin = "threshold = 2\nsites = [\"linkedin.com\"]\n";
    assert!(fired(&run_plugin(dir.path(), &wasm, only_linkedin)).is_empty());

    for (config, says) in [
        (
            "threshold = 0\n",
            "line 1: `threshold` must be a whole number from 1 to 100",
        ),
        (
            "sites = linkedin\n",
            "line 1: expected `key = value`, found `sites = linkedin`",
        ),
        (
            "\nlimit = 3\n",
            "line 2: unknown key `limit`: expected `threshold` or `sites`",
        ),
    ] {
        let out = run_plugin(dir.path(), &wasm, config);
        assert_eq!(out.status.code(), Some(2), "{config}");
        assert!(stderr(&out).contains(says), "{config}: {}", stderr(&out));
    }
}

#[test]
fn a_new_plugin_builds_as_is_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = std::process::Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(["plugin", "new", "long-focus"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(new.status.code(), Some(0), "{}", stderr(&new));
    let crate_dir = dir.path().join("long-focus");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "vigilo-sdk/src/lib.rs",
        "wit/vigilo-alarms.wit",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} missing");
    }
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(["plugin", "new", "long-focus"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(2), "never overwrites");

    let wasm = dir.path().join("long-focus.wasm");
    let build = || {
        let built = vigilo(
            dir.path(),
            &[
                "plugin",
                "build",
                crate_dir.to_str().expect("p"),
                "-o",
                wasm.to_str().expect("p"),
            ],
        );
        assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    };
    build();
    let out = run_plugin(dir.path(), &wasm, "limit_secs = 1200\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let long = workday_events()
        .iter()
        .filter(|e| e["kind"] == "activity" && e["duration"].as_f64().is_some_and(|d| d > 1200.0))
        .count();
    let fired = stdout(&out)
        .lines()
        .filter(|l| l.contains("Long focus (risk 2)"))
        .count();
    assert_eq!(fired, long);

    // The author breaks it: a panic and a runaway recursion read as what they are, with the
    // place and a short demangled trace, not as `unreachable` and mangled frames.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("read");
    let broken = source.replace(
        "fn on_event(&mut self, event: &Event) -> Vec<Triggered> {",
        "fn on_event(&mut self, event: &Event) -> Vec<Triggered> {\n        \
         if event.title.as_deref() == Some(\"panic\") { panic!(\"boom on purpose\"); }\n        \
         if event.title.as_deref() == Some(\"deep\") { return vec![vigilo_sdk::alarm(&deep(0).to_string(), 1)]; }",
    ) + "\nfn deep(n: u64) -> u64 {\n    let local = std::hint::black_box([n; 512]);\n    \
         deep(n + 1) + local[(n % 512) as usize]\n}\n";
    std::fs::write(&lib, broken).expect("write");
    build();
    let day = dir.path().join("broken.jsonl");
    std::fs::write(
        &day,
        "{\"ts\":\"2026-11-02T09:00:00Z\",\"kind\":\"activity\",\"title\":\"panic\"}\n\
         {\"ts\":\"2026-11-02T09:00:01Z\",\"kind\":\"activity\",\"title\":\"deep\"}\n",
    )
    .expect("write");
    let out = run_plugin_over(dir.path(), &wasm, "limit_secs = 1200\n", &day);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("panicked at src/lib.rs:") && text.contains(": boom on purpose"),
        "{text}"
    );
    assert!(text.contains("stack"), "{text}");
    assert!(
        text.contains("long_focus::deep"),
        "a demangled frame: {text}"
    );
}

#[test]
fn the_systemd_unit_is_valid_for_systemd() {
    // The example as a user would install it, with ExecStart pointing at this build.
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/systemd/vigilo.service"),
    )
    .expect("the example unit");
    assert!(unit.contains("ExecStart=%h/.cargo/bin/vigilo run"));
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("vigilo.service");
    let here = env!("CARGO_BIN_EXE_vigilo");
    std::fs::write(
        &path,
        unit.replace("%h/.cargo/bin/vigilo", here)
            .replace("PartOf=graphical-session.target\n", ""),
    )
    .expect("write");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
