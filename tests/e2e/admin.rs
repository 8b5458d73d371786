//! The running agent (`vigilo run`) over its real admin API: uploads, refusals, rollback,
//! enable/disable, the audit trail, and a hot reload under a stream of events.

use std::path::{Path, PathBuf};

use crate::agent::{Agent, build, copy_event, counter_pack, http};
use crate::{minisign, stderr, stdout, tar, vigilo};

fn list(agent: &Agent) -> serde_json::Value {
    let out = agent.cli(&["pack", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).expect("json")
}

#[test]
fn packs_are_uploaded_rolled_back_switched_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start(&data);
    let packs = list(&agent);
    assert_eq!(packs.as_array().map(Vec::len), Some(1));
    assert_eq!(packs[0]["name"], "standard");
    assert_eq!(packs[0]["signature"], "built in");

    let v1 = build(&data, &counter_pack(dir.path(), "1.0.0", 3, ""));
    let v2 = build(&data, &counter_pack(dir.path(), "2.0.0", 4, ""));
    for archive in [&v1, &v2] {
        let out = agent.cli(&["pack", "upload", archive.to_str().expect("p")]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let table = stdout(&agent.cli(&["pack", "list"]));
    assert!(
        table.contains(
            "counter              2.0.0      enabled  1       0        0        unsigned"
        ),
        "{table}"
    );
    let counter = |packs: &serde_json::Value| -> serde_json::Value {
        packs
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == "counter").cloned())
            .expect("counter listed")
    };
    assert_eq!(
        counter(&list(&agent))["versions"].as_array().map(Vec::len),
        Some(2)
    );

    let out = agent.cli(&["pack", "rollback", "counter"]);
    assert_eq!(
        stdout(&out),
        "counter 1.0.0 — enabled\n",
        "{}",
        stderr(&out)
    );
    let out = agent.cli(&["pack", "rollback", "counter"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no version older than the running one"));
    let out = agent.cli(&["pack", "disable", "counter"]);
    assert_eq!(stdout(&out), "counter 1.0.0 — disabled\n");
    let out = agent.cli(&["pack", "enable", "counter"]);
    assert_eq!(stdout(&out), "counter 1.0.0 — enabled\n");
    let out = agent.cli(&["pack", "disable", "standard"]);
    assert_eq!(
        stdout(&out),
        "standard 1.0.0 — disabled\n",
        "{}",
        stderr(&out)
    );
    let out = agent.cli(&["pack", "enable", "standard"]);
    assert_eq!(out.status.code(), Some(0));
    let out = agent.cli(&["pack", "enable", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no pack named \"nope\""));

    let out = agent.cli(&["pack", "audit", "--json"]);
    let trail: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let actions: Vec<(&str, &str)> = trail
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["object"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("pack_enabled", "standard 1.0.0"),
            ("pack_disabled", "standard 1.0.0"),
            ("pack_enabled", "counter 1.0.0"),
            ("pack_disabled", "counter 1.0.0"),
            ("pack_rolled_back", "counter 1.0.0"),
            ("pack_uploaded", "counter 2.0.0"),
            ("pack_uploaded", "counter 1.0.0"),
        ]
    );
    assert_eq!(trail[4]["detail"], "from counter 2.0.0 to 1.0.0");
    assert!(
        trail[0]["actor"]
            .as_str()
            .unwrap_or_default()
            .starts_with("admin")
    );

    // Each change went through the rules as an account event: "Monitoring setup changed".
    let alarms = agent.stop();
    let changes: Vec<&str> = alarms
        .iter()
        .filter(|a| a["alarm"] == "Monitoring setup changed")
        .filter_map(|a| a["event"]["event_name"].as_str())
        .collect();
    assert_eq!(
        changes,
        [
            "pack_uploaded",
            "pack_uploaded",
            "pack_rolled_back",
            "pack_disabled",
            "pack_enabled",
            // the standard pack was off when its own disabling was evaluated
            "pack_enabled",
        ]
    );
}

#[test]
fn without_the_token_nothing_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start(&data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin-token"))
            .expect("token")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let archive = build(&data, &counter_pack(dir.path(), "1.0.0", 3, ""));
    let http = http();
    let form = || {
        reqwest::blocking::multipart::Form::new().part(
            "archive",
            reqwest::blocking::multipart::Part::bytes(std::fs::read(&archive).expect("read")),
        )
    };
    for token in [None, Some("wrong"), Some(&agent.token[..63])] {
        let mut upload = http
            .post(format!("{}/api/v1/packs", agent.url))
            .multipart(form());
        let mut disable = http.post(format!("{}/api/v1/packs/standard/disable", agent.url));
        if let Some(t) = token {
            upload = upload.bearer_auth(t);
            disable = disable.bearer_auth(t);
        }
        for request in [upload, disable] {
            let response = request.send().expect("answer");
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
        }
    }
    let listed = http
        .get(format!("{}/api/v1/packs", agent.url))
        .send()
        .expect("answer");
    assert_eq!(listed.status().as_u16(), 401, "reading needs the token too");

    let packs = list(&agent);
    assert_eq!(packs.as_array().map(Vec::len), Some(1), "{packs}");
    assert_eq!(packs[0]["enabled"], true);
    let trail = agent.cli(&["pack", "audit"]);
    assert_eq!(stdout(&trail), "", "nothing to audit");
    agent.stop();
}

#[test]
fn bad_packs_are_refused_with_every_reason_and_the_running_set_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let keygen = vigilo(
        &keys,
        &[
            "pack",
            "keygen",
            "-o",
            keys.join("admin").to_str().expect("p"),
        ],
    );
    assert_eq!(keygen.status.code(), Some(0), "{}", stderr(&keygen));
    std::fs::create_dir_all(data.join("trusted-keys")).expect("mkdir");
    std::fs::copy(keys.join("admin.pub"), data.join("trusted-keys/admin.pub")).expect("trust");
    // A second trusted key, made by the minisign tool: it signs what `vigilo pack sign` would
    // refuse to (a hostile archive), as an attacker holding a key could.
    let (m_pub, m_key) = (keys.join("m.pub"), keys.join("m.key"));
    minisign(
        &[
            "-G",
            "-p",
            m_pub.to_str().expect("p"),
            "-s",
            m_key.to_str().expect("p"),
        ],
        "pw\npw\n",
    );
    std::fs::copy(&m_pub, data.join("trusted-keys/m.pub")).expect("trust");
    let sign = |archive: &Path| {
        let out = vigilo(
            &keys,
            &[
                "pack",
                "sign",
                archive.to_str().expect("p"),
                "--key",
                keys.join("admin.key").to_str().expect("p"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    let mut agent = Agent::start(&data);
    let good = build(&data, &counter_pack(dir.path(), "1.0.0", 3, ""));
    sign(&good);
    let out = agent.cli(&["pack", "upload", good.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("signed by trusted key"),
        "{}",
        stdout(&out)
    );

    let upload = |archive: &Path| agent.cli(&["pack", "upload", archive.to_str().expect("p")]);
    let refused = |archive: &Path, says: &str| {
        let out = upload(archive);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            archive.display(),
            stdout(&out)
        );
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
    };

    // Unsigned, and signed but changed afterwards.
    refused(
        &build(&data, &counter_pack(dir.path(), "1.1.0", 3, "")),
        "the pack is not signed",
    );
    let tampered = build(&data, &counter_pack(dir.path(), "1.2.0", 3, ""));
    sign(&tampered);
    let mut bytes = std::fs::read(&tampered).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tampered, bytes).expect("write");
    refused(&tampered, "does not verify");

    // The rest are signed: what is inside must hold too.
    let signed = |pack: PathBuf| {
        let archive = build_unchecked(&pack);
        sign(&archive);
        archive
    };
    let greedy = counter_pack(
        dir.path(),
        "1.3.0",
        3,
        "actions = [ { webhook = { url = \"https://exfil.example/x\" } } ]\n",
    );
    refused(&signed(greedy), "`webhook` is not granted to this pack");

    let traversal = dir.path().join("traversal.tar.gz");
    let work = dir.path().join("t");
    std::fs::create_dir_all(work.join("pack")).expect("mkdir");
    std::fs::copy(
        counter_pack(dir.path(), "1.4.0", 3, "").join("pack.toml"),
        work.join("pack/pack.toml"),
    )
    .expect("copy");
    std::fs::write(dir.path().join("evil"), "x").expect("write");
    tar(&[
        "-czPf",
        traversal.to_str().expect("p"),
        "-C",
        work.to_str().expect("p"),
        "pack/pack.toml",
        "../evil",
    ]);
    minisign(
        &[
            "-Sm",
            traversal.to_str().expect("p"),
            "-s",
            m_key.to_str().expect("p"),
        ],
        "pw\n",
    );
    refused(&traversal, "'..' is refused");

    let plugin = counter_pack(dir.path(), "1.5.0", 3, "[[plugin]]\nfile = \"p.wasm\"\n");
    std::fs::write(plugin.join("p.wasm"), b"\0asm junk").expect("write");
    refused(&signed(plugin), "not a valid WebAssembly component");

    let script = counter_pack(dir.path(), "1.6.0", 3, "[[script]]\nfile = \"s.rhai\"\n");
    std::fs::write(script.join("s.rhai"), "fn describe() {\n  let = 1;\n}\n").expect("write");
    refused(&signed(script), "s.rhai:2:");

    let reused = counter_pack(&dir.path().join("other"), "1.0.0", 9, "");
    refused(
        &signed(reused),
        "was uploaded before with different content",
    );

    // Nothing changed: the same pack and version run, and still fire.
    let packs = list(&agent);
    let counter = packs
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "counter").cloned())
        .expect("counter");
    assert_eq!(counter["version"], "1.0.0");
    assert_eq!(counter["versions"].as_array().map(Vec::len), Some(1));
    let trail = agent.cli(&["pack", "audit"]);
    assert_eq!(
        stdout(&trail).matches("pack_rejected").count(),
        7,
        "{}",
        stdout(&trail)
    );
    let trail = agent.cli(&["pack", "audit"]);
    assert_eq!(
        stdout(&trail).matches("pack_rejected").count(),
        7,
        "{}",
        stdout(&trail)
    );
    agent.send(&[copy_event(1)]);
    let alarms = agent.stop();
    let copies: Vec<_> = alarms
        .iter()
        .filter(|a| a["alarm"] == "Copy seen")
        .collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["pack_version"], "1.0.0");
    assert_eq!(copies[0]["risk"], 3);
    let rejected = alarms
        .iter()
        .filter(|a| a["event"]["event_name"] == "pack_rejected")
        .count();
    assert_eq!(
        rejected, 0,
        "pack_rejected is audited, not one of the standard pack's alarms"
    );
}

/// `tar czf` of a pack folder, bypassing `vigilo pack build`'s checks (so broken packs can be
/// made).
fn build_unchecked(pack: &Path) -> PathBuf {
    let out = pack.with_extension("tar.gz");
    tar(&[
        "-czf",
        out.to_str().expect("p"),
        "-C",
        pack.to_str().expect("p"),
        ".",
    ]);
    out
}

#[test]
fn a_hot_reload_under_a_stream_of_events_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start(&data);
    let v1 = build(&data, &counter_pack(dir.path(), "1.0.0", 3, ""));
    let v2 = build(&data, &counter_pack(dir.path(), "2.0.0", 4, ""));
    let out = agent.cli(&["pack", "upload", v1.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = agent.status()["events"].as_u64().expect("events");

    const HALF: usize = 2000;
    let events: Vec<String> = (0..2 * HALF).map(copy_event).collect();
    agent.send(&events[..HALF]);
    // The upload is made while the first half is being evaluated (a quarter of it at least is
    // done); whatever the timing, each event is evaluated once, by v1 or by v2.
    agent.wait_for_events(before + (HALF / 4) as u64);
    let out = agent.cli(&["pack", "upload", v2.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent.send(&events[HALF..]);
    agent.wait_for_events(before + 2 * HALF as u64 + 1);
    let alarms = agent.stop();

    let copies: Vec<&serde_json::Value> = alarms
        .iter()
        .filter(|a| a["alarm"] == "Copy seen")
        .collect();
    assert_eq!(copies.len(), 2 * HALF, "every event fired once");
    let mut paths: Vec<&str> = copies
        .iter()
        .filter_map(|a| a["event"]["path"].as_str())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), 2 * HALF, "no event twice");
    // Versions in arrival order: v1 up to the swap, v2 after it, never back.
    let versions: Vec<&str> = copies
        .iter()
        .filter_map(|a| a["pack_version"].as_str())
        .collect();
    let switch = versions.iter().position(|v| *v == "2.0.0").expect("v2 ran");
    assert!(
        (HALF / 4..=HALF).contains(&switch),
        "swapped mid-stream, at {switch}"
    );
    assert!(versions[switch..].iter().all(|v| *v == "2.0.0"));
    assert!(versions[..switch].iter().all(|v| *v == "1.0.0"));
    assert!(
        copies
            .iter()
            .all(|a| a["risk"] == if a["pack_version"] == "1.0.0" { 3 } else { 4 })
    );

    // The store holds the same alarms.
    let stored = vigilo(
        &data,
        &["alarms", "--all", "--json", "--alarm", "Copy seen"],
    );
    assert_eq!(stdout(&stored).lines().count(), 2 * HALF);
}

#[test]
fn a_script_switched_off_in_the_running_agent_is_audited_and_raises_an_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start(&data);
    let pack = counter_pack(
        dir.path(),
        "1.0.0",
        3,
        "[[script]]\nfile = \"spin.rhai\"\ndeadline_ms = 1000\n",
    );
    std::fs::write(
        pack.join("spin.rhai"),
        "fn describe() { #{ name: \"spin\", version: \"1.0.0\", subscribes: [\"usb\"] } }\n\
         fn on_event(event, settings) { loop { } }\n",
    )
    .expect("write");
    let out = agent.cli(&["pack", "upload", build(&data, &pack).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent.send(&(0..5).map(copy_event).collect::<Vec<_>>());
    agent.wait_for_events(1 + 5); // the upload's account event, then the copies
    let trail = stdout(&agent.cli(&["pack", "audit"]));
    assert!(
        trail.contains("script_quarantined counter/spin")
            && trail.contains("went over its budget: more than 200000 operations"),
        "{trail}"
    );
    let alarms = agent.stop();
    let copies = alarms.iter().filter(|a| a["alarm"] == "Copy seen").count();
    assert_eq!(copies, 5, "the pack's other alarms carry on");
    assert!(
        alarms
            .iter()
            .any(|a| a["alarm"] == "Monitoring setup changed"
                && a["event"]["event_name"] == "script_quarantined")
    );
}

#[test]
fn a_stored_pack_that_no_longer_loads_is_listed_with_the_reason_and_the_agent_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start(&data);
    let v1 = build(&data, &counter_pack(dir.path(), "1.0.0", 3, ""));
    let out = agent.cli(&["pack", "upload", v1.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent.stop();

    // The admin now requires signatures: the unsigned pack stays stored but does not run.
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let out = vigilo(
        &keys,
        &["pack", "keygen", "-o", keys.join("k").to_str().expect("p")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::create_dir_all(data.join("trusted-keys")).expect("mkdir");
    std::fs::copy(keys.join("k.pub"), data.join("trusted-keys/k.pub")).expect("trust");
    let mut agent = Agent::start(&data);
    let packs = list(&agent);
    let counter = packs
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "counter").cloned())
        .expect("counter listed");
    assert_eq!(counter["version"], "1.0.0");
    let state = counter["signature"].as_str().unwrap_or_default();
    assert!(
        state.starts_with("not loadable: ") && state.contains("the pack is not signed"),
        "{state}"
    );
    agent.send(&[copy_event(1)]);
    agent.wait_for_events(1);
    let alarms = agent.stop();
    assert!(
        alarms.iter().all(|a| a["alarm"] != "Copy seen"),
        "it does not run"
    );
}
