//! The JSON API behind the console, as scripts and SIEMs use it: alarms a page at a time,
//! one alarm, risk, `/metrics`, and the OpenAPI document describing it all.

use crate::agent::{Agent, build, copy_event, counter_pack};
use crate::stderr;

#[test]
fn alarms_page_by_page_risk_and_metrics_through_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start(&data);
    let pack = build(&data, &counter_pack(dir.path(), "1.0.0", 3, ""));
    let out = agent.cli(&["pack", "upload", pack.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = agent.status()["events"].as_u64().expect("events");
    const N: usize = 120;
    agent.send(&(0..N).map(copy_event).collect::<Vec<_>>());
    agent.wait_for_events(before + N as u64);
    let http = crate::agent::http();
    let get = |path: &str| {
        let r = http
            .get(format!("{}{path}", agent.url))
            .bearer_auth(&agent.token)
            .send()
            .expect("request");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r
    };

    // Three pages of 50, 50 and 20, newest first, each alarm once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/v1/alarms?alarm=Copy%20seen&limit=50".to_string();
        if let Some(a) = &after {
            path.push_str("&after=");
            path.push_str(&url::form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>());
        }
        let page: serde_json::Value = get(&path).json().expect("json");
        pages += 1;
        for a in page["alarms"].as_array().expect("alarms") {
            seen.push(a["event"]["path"].as_str().expect("path").to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..N)
        .rev()
        .map(|n| format!("/media/dave/USB/file-{n}.bin"))
        .collect();
    assert_eq!(seen, expected, "newest first, each once");

    // One alarm; a bad filter is a 400 that says why.
    let first: serde_json::Value = get("/api/v1/alarms?limit=1").json().expect("json");
    let id = first["alarms"][0]["id"].as_i64().expect("id");
    let one: serde_json::Value = get(&format!("/api/v1/alarms/{id}")).json().expect("json");
    assert_eq!(one["id"], id);
    assert!(one["captures"].is_array());
    let bad = http
        .get(format!("{}/api/v1/alarms?risk=11", agent.url))
        .bearer_auth(&agent.token)
        .send()
        .expect("request");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().expect("body").contains("risk"));

    // Risk: dave's 120 copies at risk 3 are 360 points (besides the standard pack's own USB
    // alarm, risk 6, once a minute).
    let risk: serde_json::Value = get("/api/v1/risk?until=2026-11-03&days=7")
        .json()
        .expect("json");
    let dave = risk["users"]
        .as_array()
        .and_then(|u| u.iter().find(|r| r["user"] == "dave"))
        .expect("dave ranked");
    let copies = dave["by_alarm"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alarm"] == "Copy seen"))
        .expect("Copy seen");
    assert_eq!(
        (&copies["fired"], &copies["points"]),
        (&120.into(), &360.into())
    );

    // Metrics in the exposition format.
    let metrics = get("/metrics").text().expect("text");
    let alarms: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigilo_alarms_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("vigilo_alarms_total");
    assert!(alarms >= N as u64, "{metrics}");
    assert!(
        metrics.contains("vigilo_source_up{source=\"events\"} 1"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"));

    // Without the token: refused, except the API's own description.
    let refused = http
        .get(format!("{}/api/v1/alarms", agent.url))
        .send()
        .expect("request");
    assert_eq!(refused.status(), 401);
    let doc: serde_json::Value = http
        .get(format!("{}/api/v1/openapi.json", agent.url))
        .send()
        .expect("request")
        .json()
        .expect("json");
    assert!(doc["paths"]["/api/v1/alarms"]["get"].is_object());
    agent.stop();
}
