//! Defects found by trying vigilo as a new user, an attacker and a plugin author would (the
//! hardening issue), each held by a test against the real binary.

use std::process::Command;

use crate::agent::{Agent, http};
use crate::{stderr, stdout, vigilo};

/// A data folder holding the example day, replayed with `--store`.
fn stored_workday(data: &std::path::Path) {
    let day = crate::workday();
    let out = vigilo(data, &["replay", "--store", day.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `vigilo run` on `data` with `extra` arguments, expected to stop at once (it is not killed).
fn refused_run(data: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(["run", "--listen", "127.0.0.1:0", "--no-x11", "--no-usb"])
        .args(extra)
        .env("VIGILO_DATA_DIR", data)
        .env_remove("RUST_LOG")
        .output()
        .expect("runs")
}

#[test]
fn a_second_agent_on_one_data_folder_refuses_and_touches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let first = Agent::start(&data);
    let address = std::fs::read_to_string(data.join("admin-address")).expect("address");
    let second = refused_run(&data, &[]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let said = stderr(&second);
    assert!(
        said.contains(&format!("another vigilo agent (PID {})", first.pid())),
        "{said}"
    );
    // The first agent's address is still there and it still answers.
    assert_eq!(
        std::fs::read_to_string(data.join("admin-address")).expect("address kept"),
        address
    );
    let status = http()
        .get(format!("{}/api/v1/status", first.url))
        .bearer_auth(&first.token)
        .send()
        .expect("status");
    assert!(status.status().is_success());
    let out = first.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    first.stop();
    // Once it has stopped, the folder is free again.
    let again = Agent::start(&data);
    again.stop();
}

#[test]
fn the_admin_address_is_owner_only_and_a_writable_one_is_not_believed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let agent = Agent::start(&data);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder is tightened");
    assert!(
        agent.stderr().contains("made it owner-only"),
        "{}",
        agent.stderr()
    );
    let address = data.join("admin-address");
    assert_eq!(mode(&address), 0o600);
    // Someone made it world-writable: the CLI no longer sends the token where it points.
    std::fs::set_permissions(&address, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = vigilo(&data, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not sending the admin token"),
        "{}",
        stderr(&out)
    );
    agent.stop();
}

#[test]
fn a_back_test_never_changes_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let day = crate::workday();
    let day = day.to_str().expect("path");
    // The back-test the README documents: raw matches counted, nothing written anywhere.
    let counted = vigilo(&data, &["replay", "--every-match", "--counts", "-", day]);
    assert_eq!(counted.status.code(), Some(0), "{}", stderr(&counted));
    assert!(
        stdout(&counted).contains("# fired\t"),
        "{}",
        stdout(&counted)
    );
    let listed = vigilo(&data, &["replay", "--json", day]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(stderr(&listed).contains("; not stored (--store keeps them)"));
    assert!(
        !data.join("vigilo.db").exists(),
        "no database was even created"
    );
    // An existing store keeps exactly what it had.
    let kept = vigilo(&data, &["replay", "--store", "--json", day]);
    assert_eq!(kept.status.code(), Some(0), "{}", stderr(&kept));
    let before = stdout(&vigilo(&data, &["alarms", "--all", "--json"]));
    let risk_before = stdout(&vigilo(&data, &["risk", "--until", "2026-11-03", "--json"]));
    let counted = vigilo(&data, &["replay", "--every-match", "--counts", "-", day]);
    assert_eq!(counted.status.code(), Some(0), "{}", stderr(&counted));
    assert_eq!(
        stdout(&vigilo(&data, &["alarms", "--all", "--json"])),
        before
    );
    assert_eq!(
        stdout(&vigilo(&data, &["risk", "--until", "2026-11-03", "--json"])),
        risk_before
    );
    // Storing raw matches is refused: they are not alarms.
    let refused = vigilo(&data, &["replay", "--store", "--every-match", day]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

#[test]
fn a_trusted_keys_folder_holding_anything_but_public_keys_stops_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let keygen = vigilo(
        &keys,
        &["pack", "keygen", "-o", keys.join("k").to_str().expect("p")],
    );
    assert_eq!(keygen.status.code(), Some(0), "{}", stderr(&keygen));
    let pack = crate::agent::counter_pack(dir.path(), "1.0.0", 3, "");
    let pack = pack.to_str().expect("p");
    // A careless admin's three mistakes: the secret key, `.pub.txt`, `.PUB`.
    for (file, from, says) in [
        ("trusted.key", "k.key", "a secret key"),
        ("trusted.pub.txt", "k.pub", "not a `.pub` file"),
        ("trusted.PUB", "k.pub", "not a `.pub` file"),
    ] {
        let data = dir.path().join(format!("data-{file}"));
        std::fs::create_dir_all(data.join("trusted-keys")).expect("mkdir");
        std::fs::copy(keys.join(from), data.join("trusted-keys").join(file)).expect("copy");
        let run = refused_run(&data, &[]);
        assert_eq!(run.status.code(), Some(1), "{file}: {}", stderr(&run));
        assert!(
            stderr(&run).contains(file) && stderr(&run).contains(says),
            "{}",
            stderr(&run)
        );
        // The CLI's pack loading follows the same policy: no unsigned pack gets through.
        let check = vigilo(
            &data,
            &[
                "replay",
                "--pack",
                pack,
                &crate::workday().to_string_lossy(),
            ],
        );
        assert_eq!(check.status.code(), Some(2), "{file}: {}", stderr(&check));
    }
    // A misspelled folder beside it is said.
    let data = dir.path().join("data-typo");
    std::fs::create_dir_all(data.join("trusted_keys")).expect("mkdir");
    std::fs::copy(keys.join("k.pub"), data.join("trusted_keys/k.pub")).expect("copy");
    let check = vigilo(&data, &["check", pack]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("trusted_keys is not read: trusted keys go in"),
        "{}",
        stderr(&check)
    );
}

#[test]
fn many_costly_regexes_are_refused_as_a_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = dir.path().join("regexes");
    std::fs::create_dir_all(&pack).expect("mkdir");
    let mut text = String::from("[pack]\nname = \"regexes\"\nversion = \"1.0.0\"\n");
    for n in 0..300 {
        text.push_str(&format!(
            "[[alarm]]\nname = \"a{n}\"\nconditions = [ {{ field = \"title\", op = \"matches\", value = 'q{n}\\w{{20}}' }} ]\n"
        ));
    }
    std::fs::write(pack.join("pack.toml"), &text).expect("write");
    assert!(text.len() < 40_000);
    let out = vigilo(dir.path(), &["check", pack.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("alarm \"a14\": with it this pack's regular expressions would hold")
            && said.contains("at most 32 MiB are allowed per pack"),
        "{said}"
    );
    // Ten of them are fine.
    let few: String = text
        .split("[[alarm]]")
        .take(11)
        .collect::<Vec<_>>()
        .join("[[alarm]]");
    std::fs::write(pack.join("pack.toml"), few).expect("write");
    let out = vigilo(dir.path(), &["check", pack.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn half_open_connections_are_timed_out_and_capped() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start(&data);
    let address = agent.url.trim_start_matches("http://").to_string();
    // More connections than the cap, each half a request header, then silence.
    let mut held = Vec::new();
    for _ in 0..400 {
        let mut c = std::net::TcpStream::connect(&address).expect("connect");
        let _ = c.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n");
        c.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .expect("timeout");
        held.push(c);
    }
    // The server closes every one of them within its header timeout: none is held for ever.
    let started = std::time::Instant::now();
    for c in &mut held {
        let mut answer = Vec::new();
        match c.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "a half-open connection was still held after {:?}",
                    started.elapsed()
                );
            }
        }
    }
    // The agent is still there and answers.
    let out = agent.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status = agent.status();
    assert!(
        status["shed"]["admin API connections over the cap"].as_u64() > Some(0),
        "the connections over the cap were refused and counted: {status}"
    );
    agent.stop();
}

#[test]
fn a_headless_agent_writes_activity_records_without_being_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start_with(&data, None, &["--no-x11"]);
    let lines: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-11-04T09:00:{:02}Z","kind":"activity","username":"gina","computer":"ws-gina","executable":"/usr/bin/xterm","title":"work {i}"}}"#,
                i % 60
            )
        })
        .collect();
    agent.send(&lines);
    agent.wait_for_events(50);
    // No desktop means no clock ticks: the records still reach the store within a minute or so.
    let records = || -> u64 {
        let out = vigilo(&data, &["risk", "--until", "2026-11-05", "--json"]);
        crate::json_lines(&out)
            .iter()
            .find(|r| r["user"] == "gina")
            .and_then(|r| r["records"].as_u64())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    while records() < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "activity records never written while running: {}",
            records()
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    // And they survive a kill -9.
    agent.kill();
    assert_eq!(records(), 50);
}

#[test]
fn a_slow_webhook_endpoint_holds_back_no_other_action() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The slow endpoint takes every request and never answers; it notes when the agent gives up
    // on one (closes it: its client timeout).
    let slow = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let slow_port = slow.local_addr().expect("addr").port();
    let given_up = Arc::new(AtomicUsize::new(0));
    let g = given_up.clone();
    std::thread::spawn(move || {
        for stream in slow.incoming().map_while(Result::ok) {
            let g = g.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink);
                g.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    // The fast one answers at once and notes, for each delivery, how many slow ones had been
    // given up by then.
    let fast = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let fast_port = fast.local_addr().expect("addr").port();
    let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (s, g) = (seen.clone(), given_up.clone());
    std::thread::spawn(move || {
        for stream in fast.incoming().map_while(Result::ok) {
            let mut stream = stream;
            let mut buf = vec![0u8; 1 << 16];
            let mut got = Vec::new();
            // Headers and a small JSON body; read until the body's closing brace.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(b"}") {
                    break;
                }
            }
            s.lock().expect("lock").push(g.load(Ordering::SeqCst));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let mut agent = Agent::start(&data);
    let extra = format!(
        "actions = [ {{ webhook = {{ url = \"http://127.0.0.1:{slow_port}/slow\" }} }}, {{ webhook = {{ url = \"http://127.0.0.1:{fast_port}/fast\" }} }} ]\n\n[grants]\nactions = [\"webhook\"]\nwebhooks = [\"http://127.0.0.1:{slow_port}/\", \"http://127.0.0.1:{fast_port}/\"]\n"
    );
    let pack = crate::agent::counter_pack(dir.path(), "1.0.0", 3, &extra);
    let archive = crate::agent::build(&data, &pack);
    let up = agent.cli(&["pack", "upload", archive.to_str().expect("p")]);
    assert_eq!(up.status.code(), Some(0), "{}", stderr(&up));
    agent.send(&(0..3).map(crate::agent::copy_event).collect::<Vec<_>>());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while seen.lock().expect("lock").len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "fast deliveries: {:?}",
            seen.lock()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // All three reached the fast endpoint while the first slow request was still waiting.
    assert_eq!(*seen.lock().expect("lock"), [0, 0, 0]);
    agent.stop();
}

#[test]
fn the_console_address_of_the_readme_answers_and_pages_refuse_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&dir.path().join("data"));
    let page = http()
        .get(format!("{}/console/", agent.url))
        .send()
        .expect("console");
    assert_eq!(page.status().as_u16(), 200, "{:?}", page.url());
    assert!(
        page.url().path().starts_with("/console/login"),
        "{}",
        page.url()
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(
        page.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    // On start it said what it watches, where the console is and where the token is.
    let said = agent.stderr();
    assert!(
        said.contains(&format!("vigilo: console {}/console/", agent.url)),
        "{said}"
    );
    assert!(said.contains("admin-token"), "{said}");
    assert!(
        said.lines().any(|l| l.starts_with("  events   up")),
        "{said}"
    );
    agent.stop();
}

#[test]
fn plugin_test_takes_the_limits_a_pack_may_set_and_no_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = crate::workday();
    let day = day.to_str().expect("p");
    for (flag, value) in [
        ("--memory-mib", "4096"),
        ("--deadline-ms", "60000"),
        ("--memory-mib", "0"),
    ] {
        let out = vigilo(dir.path(), &["plugin", "test", "p.wasm", day, flag, value]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("not in 1.."), "{}", stderr(&out));
    }
}

#[test]
fn a_program_switched_off_stays_off_across_restarts_until_an_admin_turns_it_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start(&data);
    let pack =
        crate::agent::counter_pack(dir.path(), "1.0.0", 3, "[[script]]\nfile = \"boom.rhai\"\n");
    std::fs::write(
        pack.join("boom.rhai"),
        "fn describe() { #{ name: \"boom\", version: \"1.0.0\", subscribes: [\"usb\"] } }\n\
         fn on_event(event, settings) { throw \"boom\"; }\n",
    )
    .expect("write");
    let archive = crate::agent::build(&data, &pack);
    let out = agent.cli(&["pack", "upload", archive.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent.send(&(0..5).map(crate::agent::copy_event).collect::<Vec<_>>());
    agent.wait_for_events(1 + 5);
    let boom = |agent: &Agent| -> serde_json::Value {
        let programs = agent.status()["programs"].clone();
        programs
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "boom").cloned())
            .unwrap_or_else(|| panic!("boom in {programs}"))
    };
    assert_eq!(boom(&agent)["quarantined"], true);
    assert_eq!(boom(&agent)["faults"], 3);
    let first = agent.stop();
    let quarantine_alarms = |alarms: &[serde_json::Value]| {
        alarms
            .iter()
            .filter(|a| a["event"]["event_name"] == "script_quarantined")
            .count()
    };
    assert_eq!(quarantine_alarms(&first), 1);

    // Restarted: still off, without three more faults and without the alarm again.
    let mut agent = Agent::start(&data);
    assert_eq!(boom(&agent)["quarantined"], true, "off from the start");
    let before = agent.status()["events"].as_u64().expect("events");
    agent.send(&(5..10).map(crate::agent::copy_event).collect::<Vec<_>>());
    agent.wait_for_events(before + 5);
    assert_eq!(boom(&agent)["calls"], 0, "never called again");
    // The admin turns the pack back on: an audited change, and the script runs again.
    let out = agent.cli(&["pack", "enable", "counter"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let trail = stdout(&agent.cli(&["pack", "audit"]));
    assert!(
        trail.contains("programs_released") && trail.contains("admin — boom"),
        "{trail}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while boom(&agent)["quarantined"] != false {
        assert!(
            std::time::Instant::now() < deadline,
            "still off: {}",
            boom(&agent)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = agent.stop();
    assert_eq!(quarantine_alarms(&second), 0);
}

#[test]
fn a_script_that_multiplies_a_string_cannot_abort_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("bomb.rhai");
    std::fs::write(
        &script,
        "fn describe() { #{ name: \"bomb\", version: \"1.0.0\", subscribes: [\"usb\"] } }\n\
         fn on_event(event, settings) {\n\
           let s = \"x\"; while s.len() < 32768 { s += s; }\n\
           s.replace(\"x\", s);\n\
           []\n\
         }\n",
    )
    .expect("write");
    let events = dir.path().join("day.jsonl");
    std::fs::write(
        &events,
        (0..3)
            .map(crate::agent::copy_event)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .expect("write");
    // Under an address-space limit a 1 GiB string inside the host is an abort; refused before
    // it is built, it is a fault like any other.
    let out = Command::new("prlimit")
        .arg("--as=1500000000")
        .arg(env!("CARGO_BIN_EXE_vigilo"))
        .args(["plugin", "test", "--json"])
        .arg(&script)
        .arg(&events)
        .env("VIGILO_DATA_DIR", dir.path().join("data"))
        .output()
        .expect("prlimit runs");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("after replace"), "{}", stdout(&out));
}

#[test]
fn matches_a_cooldown_kept_from_firing_are_counted_on_the_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    stored_workday(&data);
    // The oracle: dave's files written to USB in the example day, read independently.
    let copies: Vec<serde_json::Value> = crate::workday_events()
        .into_iter()
        .filter(|e| e["username"] == "dave" && e["action"] == "file_written")
        .collect();
    assert_eq!(copies.len(), 16);
    let listed = vigilo(
        &data,
        &[
            "alarms",
            "--json",
            "--user",
            "dave",
            "--alarm",
            "File written to USB",
        ],
    );
    let alarms = crate::json_lines(&listed);
    assert_eq!(alarms.len(), 2, "the standard pack's one-minute cooldown");
    let folded: u64 = alarms
        .iter()
        .map(|a| a["folded"]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        folded, 14,
        "every copy is accounted for: 2 alarms + 14 folded"
    );
    let fired_bytes: u64 = alarms
        .iter()
        .map(|a| a["event"]["bytes"].as_u64().unwrap_or(0))
        .sum();
    let folded_bytes: u64 = alarms
        .iter()
        .map(|a| a["folded"]["bytes"].as_u64().unwrap_or(0))
        .sum();
    let all_bytes: u64 = copies
        .iter()
        .map(|e| e["bytes"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(fired_bytes + folded_bytes, all_bytes);
    let paths: Vec<String> = alarms
        .iter()
        .flat_map(|a| a["folded"]["paths"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    assert!(paths.iter().any(|p| p.contains("payroll")), "{paths:?}");
    // The table says it first, in people's units.
    let table = stdout(&vigilo(
        &data,
        &["alarms", "--user", "dave", "--alarm", "File written"],
    ));
    assert!(table.contains(" more files, "), "{table}");
    assert!(table.contains(" MB · file_written"), "{table}");
    // And the API returns it with the alarm.
    let agent = Agent::start(&data);
    let page: serde_json::Value = http()
        .get(format!(
            "{}/api/v1/alarms?user=dave&alarm=File%20written",
            agent.url
        ))
        .bearer_auth(&agent.token)
        .send()
        .expect("alarms")
        .json()
        .expect("json");
    let api_folded: u64 = page["alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .map(|a| a["folded"]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(api_folded, 14);
    agent.stop();
}

#[test]
fn a_setup_change_neither_screenshots_this_desktop_nor_scores_the_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start(&data);
    // A pack that asks for a screenshot on its own upload.
    let extra = "\n[[alarm]]\nname = \"Setup watched\"\nkind = \"account\"\nrepeat = \"every_match\"\n\
                 conditions = [ { field = \"event_name\", op = \"eq\", value = \"pack_uploaded\" } ]\n\
                 risk = 9\nactions = [ { screenshot = { count = 1 } } ]\n\n[grants]\nactions = [\"screenshot\"]\n";
    let pack = crate::agent::counter_pack(dir.path(), "1.0.0", 3, extra);
    let archive = crate::agent::build(&data, &pack);
    let out = agent.cli(&["pack", "upload", archive.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let outcome = crate::settled_outcome(&data, "Setup watched");
    assert_eq!(outcome["kind"], "screenshot");
    assert_eq!(outcome["state"], "skipped", "{outcome}");
    let risk = vigilo(&data, &["risk", "--json"]);
    assert_eq!(risk.status.code(), Some(0), "{}", stderr(&risk));
    assert!(
        !stdout(&risk).contains("\"admin"),
        "the admin's own change is not a risk of theirs: {}",
        stdout(&risk)
    );
    agent.stop();
}

#[test]
fn a_user_shown_alone_keeps_their_rank_and_an_empty_window_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    stored_workday(&data);
    let all = crate::json_lines(&vigilo(&data, &["risk", "--until", "2026-11-03", "--json"]));
    let second = all[1]["user"].as_str().expect("a second user");
    let alone = crate::json_lines(&vigilo(
        &data,
        &["risk", "--until", "2026-11-03", "--json", "--user", second],
    ));
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0]["rank"], 2, "{second} is second of all users");
    let table = stdout(&vigilo(
        &data,
        &["risk", "--until", "2026-11-03", "--user", second],
    ));
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("2  ") && l.contains(second)),
        "{table}"
    );
    let empty = vigilo(&data, &["risk", "--until", "2020-01-01"]);
    assert_eq!(empty.status.code(), Some(0));
    assert!(
        stderr(&empty).contains("no alarms or activity records between"),
        "{}",
        stderr(&empty)
    );
}

#[test]
fn a_pack_folder_uploads_as_it_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start(&data);
    let pack = crate::agent::counter_pack(dir.path(), "1.0.0", 3, "");
    let out = agent.cli(&["pack", "upload", pack.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("uploaded counter 1.0.0"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("built counter-1.0.0.tar.gz from"),
        "{}",
        stderr(&out)
    );
    agent.stop();
}

#[test]
fn an_agent_starts_with_the_packs_it_is_given_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let pack = crate::agent::counter_pack(dir.path(), "1.0.0", 3, "");
    let agent = Agent::start_with(&data, None, &["--pack", pack.to_str().expect("p")]);
    let listed = stdout(&agent.cli(&["pack", "list"]));
    assert!(
        listed.contains("counter") && listed.contains("1.0.0"),
        "{listed}"
    );
    agent.stop();
    // A pack that does not load: the agent does not start, and says why.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(
        bad.join("pack.toml"),
        "[pack]\nname = \"bad\"\nversion = \"one\"\n",
    )
    .expect("write");
    let out = refused_run(
        &dir.path().join("other"),
        &["--pack", bad.to_str().expect("p")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pack.toml:3:11"), "{}", stderr(&out));
}

#[test]
fn the_console_says_in_words_what_was_wrong_with_a_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&dir.path().join("data"));
    let (client, cookie) = agent.console_session();
    let page = client
        .get(format!("{}/console/alarms/abc", agent.url))
        .header("cookie", &cookie)
        .send()
        .expect("page");
    assert_eq!(page.status().as_u16(), 400);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html"),
        "a page, not the framework's text"
    );
    let text = page.text().expect("body");
    assert!(text.contains("“abc” is not a number here"), "{text}");
    assert!(!text.contains("Cannot parse"), "{text}");
    let form = client
        .post(format!("{}/console/packs/standard/disable", agent.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("nothing=1")
        .send()
        .expect("change");
    let text = form.text().expect("body");
    assert!(text.contains("without its security token"), "{text}");
    agent.stop();
}

#[test]
fn plugin_test_runs_a_program_with_its_packs_configuration_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = crate::root();
    let day = crate::workday();
    let day = day.to_str().expect("p");
    let pack = root.join("examples/rhai");
    let with_pack = vigilo(
        dir.path(),
        &[
            "plugin",
            "test",
            "--json",
            "--pack",
            pack.to_str().expect("p"),
            "after-hours.rhai",
            day,
        ],
    );
    assert_eq!(with_pack.status.code(), Some(0), "{}", stderr(&with_pack));
    // The same as giving the pack's configuration by hand.
    let config = dir.path().join("after-hours.toml");
    std::fs::write(
        &config,
        "hours = [\"09:00\", \"17:00\"]\napps = [\"keepassxc\", \"soffice\"]\n",
    )
    .expect("write");
    let script = pack.join("after-hours.rhai");
    let by_hand = vigilo(
        dir.path(),
        &[
            "plugin",
            "test",
            "--json",
            "--config",
            config.to_str().expect("p"),
            script.to_str().expect("p"),
            day,
        ],
    );
    assert_eq!(by_hand.status.code(), Some(0), "{}", stderr(&by_hand));
    assert!(!stdout(&with_pack).is_empty());
    assert_eq!(stdout(&with_pack), stdout(&by_hand));
    let missing = vigilo(
        dir.path(),
        &[
            "plugin",
            "test",
            "--pack",
            pack.to_str().expect("p"),
            "nope.rhai",
            day,
        ],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("it has: after-hours.rhai, usb-devices.rhai"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn alarms_can_be_shown_in_local_time_with_the_offset_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    stored_workday(&data);
    let local = Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(["alarms", "--local", "--alarm", "Monitoring setup changed"])
        .env("VIGILO_DATA_DIR", &data)
        .env("TZ", "UTC-1")
        .output()
        .expect("runs");
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    let table = stdout(&local);
    assert!(table.starts_with("TIME (local)"), "{table}");
    // 09:05 UTC is 10:05 an hour east.
    assert!(table.contains("2026-11-02 10:05:00+01:00"), "{table}");
}
