//! Webhooks from the running agent to a real HTTP receiver on loopback: signed the Standard
//! Webhooks way (checked here with an independent HMAC), delivered after the receiver was down,
//! delivered after the agent was killed (`kill -9`) and started again — each alarm once, under
//! one id — and given up (dead) after the allowed attempts, which `vigilo alarms` shows.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::agent::{Agent, build};
use crate::receiver::{Delivery, Receiver};
use crate::{settled_outcome, stderr, stdout, vigilo};

/// A loopback port held for this test but not listening yet: the receiver is "down" (a
/// connection is refused) and no other test's listener can take the port meanwhile, as one
/// could between freeing a port and binding it again — then the alarms went to that listener.
struct DownPort(socket2::Socket);

impl DownPort {
    fn hold() -> DownPort {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any.into()).expect("bind");
        DownPort(socket)
    }

    fn port(&self) -> u16 {
        self.0
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("an IP address")
            .port()
    }

    /// The receiver comes up on the held port.
    fn listen(self) -> TcpListener {
        self.0.listen(128).expect("listen");
        self.0.into()
    }
}

/// Uploads a pack whose alarm posts every file written to USB to the receiver at `port`.
fn hook_pack(agent: &Agent, data: &Path, port: u16) {
    let dir = data.parent().expect("parent").join("hooks");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("pack.toml"),
        format!(
            r#"[pack]
name = "hooks"
version = "1.0.0"

[grants]
actions = ["webhook"]
webhooks = ["http://127.0.0.1:{port}/"]

[[alarm]]
name = "Copy posted"
kind = "usb"
repeat = "every_match"
conditions = [ {{ field = "action", op = "eq", value = "file_written" }} ]
risk = 5
actions = [ {{ webhook = {{ url = "http://127.0.0.1:{port}/siem/vigilo" }} }} ]
"#
        ),
    )
    .expect("write pack");
    let out = agent.cli(&["pack", "upload", build(data, &dir).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn copy(n: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-03T10:00:{n:02}Z","kind":"usb","username":"erin","computer":"ws-erin","action":"file_written","path":"/media/erin/USB/{n}.xlsx","bytes":{n}}}"#
    )
}

/// Checks a delivery's signature as the Standard Webhooks spec says, with the agent's secret.
fn verify(data: &Path, d: &Delivery) {
    let secret = std::fs::read_to_string(data.join("webhook-secret")).expect("secret");
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim().trim_start_matches("whsec_"))
        .expect("base64 secret");
    let id = &d.headers["webhook-id"];
    let ts = &d.headers["webhook-timestamp"];
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&d.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        d.headers["webhook-signature"], expected,
        "signature of {id}"
    );
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("timestamp");
    assert!((0..120).contains(&age), "a fresh timestamp: {ts}");
}

fn path_of(d: &Delivery) -> String {
    let body: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON body");
    assert_eq!(body["type"], "alarm.fired");
    assert_eq!(body["data"]["alarm"], "Copy posted");
    body["data"]["event"]["path"]
        .as_str()
        .expect("path")
        .to_string()
}

#[test]
fn webhooks_are_signed_and_arrive_once_each_through_downtime_and_a_killed_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let down = DownPort::hold();
    let port = down.port();
    let retry = ["--retry-after", "1"];
    let mut agent = Agent::start_with(&data, None, &retry);
    hook_pack(&agent, &data, port);

    // The receiver is down: the first two alarms wait in the outbox. (Both stored first: the
    // outbox's count alone also counts the standard pack's screenshots, and a loaded machine
    // showed 2 pending before the second copy's alarm was stored.)
    agent.send(&[copy(1), copy(2)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = vigilo(&data, &["alarms", "--json", "--alarm", "Copy posted"]);
        let posted = crate::json_lines(&out);
        let waiting = posted
            .iter()
            .filter(|a| a["outcomes"][0]["state"] == "pending")
            .count();
        if waiting == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{posted:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed, not stopped: nothing gets a chance to be saved on the way out.
    agent.kill();

    let receiver = Receiver::start(down.listen());
    let mut agent = Agent::start_with(&data, None, &retry);
    receiver.wait_for(2, &agent);
    agent.send(&[copy(3)]);
    let got = receiver.wait_for(3, &agent);
    // Nothing more comes: each alarm once.
    std::thread::sleep(Duration::from_millis(1500));
    let got_all = receiver.deliveries();
    assert_eq!(got_all.len(), 3, "{got_all:?}");
    let mut paths: Vec<String> = got.iter().map(path_of).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/media/erin/USB/1.xlsx",
            "/media/erin/USB/2.xlsx",
            "/media/erin/USB/3.xlsx"
        ]
    );
    let mut ids: Vec<&String> = got.iter().map(|d| &d.headers["webhook-id"]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per alarm");
    for d in &got {
        verify(&data, d);
        assert!(d.headers["webhook-id"].starts_with("msg_"));
    }
    let status = agent.status();
    assert_eq!(status["outbox"]["pending"], 0, "{status}");
    agent.stop();
    let out = vigilo(&data, &["alarms", "--alarm", "Copy posted"]);
    assert_eq!(
        stdout(&out).matches("webhook✓").count(),
        3,
        "{}",
        stdout(&out)
    );
}

/// An agent whose webhook receiver answers every delivery with `status`, retrying a second
/// after a failure, up to `attempts` times; one alarm's delivery is under way.
fn failing_receiver(status: u16, attempts: &str) -> (tempfile::TempDir, Receiver, Agent) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let receiver = Receiver::start(listener);
    receiver.status.store(status, Ordering::SeqCst);
    let mut agent = Agent::start_with(
        &data,
        None,
        &["--retry-after", "1", "--action-attempts", attempts],
    );
    hook_pack(&agent, &data, port);
    agent.send(&[copy(7)]);
    (dir, receiver, agent)
}

#[test]
fn a_receiver_that_keeps_failing_gets_the_alarm_given_up_and_shown_dead() {
    let (dir, receiver, agent) = failing_receiver(503, "2");
    let data = dir.path().join("data");
    let got = receiver.wait_for(2, &agent);
    // The same message both times.
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    assert_eq!(got[0].body, got[1].body);
    let outcome = &settled_outcome(&data, "Copy posted");
    assert!(agent.status()["outbox"]["dead"].as_u64() >= Some(1));
    agent.stop();
    assert_eq!(receiver.deliveries().len(), 2, "no third attempt");
    assert_eq!(outcome["kind"], "webhook");
    assert_eq!(outcome["state"], "dead");
    assert_eq!(outcome["attempts"], 2);
    assert!(
        outcome["detail"]
            .as_str()
            .is_some_and(|d| d.contains("503") && d.contains("after 2 attempts")),
        "{outcome}"
    );
    let table = vigilo(&data, &["alarms", "--alarm", "Copy posted"]);
    assert!(stdout(&table).contains("webhook✗"), "{}", stdout(&table));
}

#[test]
fn a_receiver_that_refuses_the_request_is_not_asked_again() {
    // 400: the receiver will not take this request however often it is sent.
    let (dir, receiver, agent) = failing_receiver(400, "8");
    let data = dir.path().join("data");
    receiver.wait_for(1, &agent);
    let outcome = &settled_outcome(&data, "Copy posted");
    // Given a chance to make a second attempt (the first retry would be 1 s later).
    std::thread::sleep(std::time::Duration::from_secs(3));
    agent.stop();
    assert_eq!(receiver.deliveries().len(), 1, "a 400 is not retried");
    assert_eq!(outcome["state"], "dead");
    assert_eq!(outcome["attempts"], 1);
    assert!(
        outcome["detail"]
            .as_str()
            .is_some_and(|d| d.contains("400") && d.contains("not retried")),
        "{outcome}"
    );
}
