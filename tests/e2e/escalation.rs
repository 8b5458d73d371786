//! An alarm that keeps firing for one person escalates: a higher risk, other actions, and the
//! alarm says so — and the count survives the agent's restart, since it is kept in the store.

use crate::agent::{Agent, build, counter_pack};

/// A file written to USB by dave now, the `n`th.
fn copy_now(n: usize) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        r#"{{"ts":"{now}","kind":"usb","username":"dave","computer":"ws-dave","action":"file_written","path":"/media/dave/USB/{n}.bin","bytes":10}}"#
    )
}

#[test]
fn the_third_copy_within_an_hour_escalates_though_the_agent_restarted_between() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let pack = counter_pack(
        dir.path(),
        "1.0.0",
        2,
        r#"escalate = [
  { after = 3, within = "1h", risk = 8, actions = [ { popup = { message = "third copy within the hour" } } ] },
]
"#,
    );
    // The step's popup needs its grant, as the alarm's own actions do.
    let manifest = std::fs::read_to_string(pack.join("pack.toml")).expect("read");
    std::fs::write(
        pack.join("pack.toml"),
        manifest.replace(
            "version = \"1.0.0\"\n",
            "version = \"1.0.0\"\n\n[grants]\nactions = [\"popup\"]\n",
        ),
    )
    .expect("write");
    let archive = build(dir.path(), &pack);
    let mut agent = Agent::start(&data);
    let out = agent.cli(&["pack", "upload", archive.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::stderr(&out));
    agent.send(&[copy_now(1), copy_now(2)]);
    agent.wait_for_events(2);
    agent.stop();

    let mut agent = Agent::start(&data);
    agent.send(&[copy_now(3)]);
    agent.wait_for_events(1);
    let page = agent.get("/api/v1/alarms?alarm=Copy%20seen&limit=10");
    let alarms: Vec<&serde_json::Value> = page["alarms"].as_array().into_iter().flatten().collect();
    assert_eq!(alarms.len(), 3, "{page}");
    // Newest first: the third escalated, the first two as written.
    let third = alarms[0];
    assert_eq!(third["event"]["path"], "/media/dave/USB/3.bin", "{page}");
    assert_eq!(third["risk"], 8, "{third}");
    assert_eq!(third["note"], "3rd time in 1h: escalated", "{third}");
    assert_eq!(
        third["actions"][0]["popup"]["message"], "third copy within the hour",
        "{third}"
    );
    for earlier in &alarms[1..] {
        assert_eq!(earlier["risk"], 2, "{earlier}");
        assert!(earlier["note"].is_null(), "{earlier}");
        assert_eq!(earlier["actions"], serde_json::json!([]), "{earlier}");
    }
    // The console's alarm page says why.
    let (client, cookie) = agent.console_session();
    let id = third["id"].as_i64().expect("id");
    let shown = client
        .get(format!("{}/console/alarms/{id}", agent.url))
        .header("cookie", &cookie)
        .send()
        .expect("page")
        .text()
        .expect("body");
    assert!(shown.contains("3rd time in 1h: escalated"), "{shown}");
    agent.stop();
}
