//! Outputs to SIEMs: every stored alarm also reaches a real rsyslog over TCP (RFC 5424,
//! octet-counted) and a real HTTP receiver speaking OTLP/HTTP (the protobuf decoded here with
//! the OpenTelemetry types) — from a standalone agent, and from a hub for its agents' alarms.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

use crate::agent::{Agent, build, copy_event, counter_pack};
use crate::certs::certificates;
use crate::nats::Nats;
use crate::receiver::Receiver;
use crate::stderr;

/// A real rsyslogd on a loopback TCP port it picks itself, writing each message as received.
struct Rsyslog {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Rsyslog {
    /// One taking plain TCP, or TLS with the certificates [`certificates`] made in `dir`.
    fn start(dir: &Path, tls: bool) -> Rsyslog {
        std::fs::create_dir_all(dir).expect("mkdir");
        let d = dir.display();
        let (global, module) = if tls {
            certificates(dir);
            (
                format!(
                    r#" DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="{d}/ca.pem" DefaultNetstreamDriverCertFile="{d}/cert.pem" DefaultNetstreamDriverKeyFile="{d}/key.pem""#
                ),
                r#" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon""#,
            )
        } else {
            (String::new(), "")
        };
        std::fs::write(
            dir.join("rsyslog.conf"),
            format!(
                r#"global(workDirectory="{d}"{global})
module(load="imtcp"{module})
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{d}/port")
template(name="raw" type="string" string="%rawmsg%\n")
action(type="omfile" file="{d}/messages" template="raw")
"#
            ),
        )
        .expect("write rsyslog.conf");
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd runs (Debian: rsyslog; scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let port = std::fs::read_to_string(dir.join("port"))
                .ok()
                .and_then(|p| p.trim().parse().ok());
            if let Some(p) = port {
                break p;
            }
            assert!(Instant::now() < deadline, "rsyslogd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        };
        Rsyslog {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// The messages it wrote so far.
    fn messages(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("messages"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits for a message containing `needle`; says what came when none does.
    fn wait_for(&self, needle: &str, log: impl Fn() -> String) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no syslog message with {needle:?}: {:?}\n{}",
                self.messages(),
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings naming a syslog output on `port`, and an OTLP one on `otlp` if given.
fn outputs_config(dir: &Path, port: u16, otlp: Option<u16>) -> PathBuf {
    let mut text = format!("[[output]]\nname = \"siem\"\nsyslog = \"tcp://127.0.0.1:{port}\"\n");
    if let Some(o) = otlp {
        text.push_str(&format!(
            "\n[[output]]\nname = \"collector\"\notlp = \"http://127.0.0.1:{o}\"\n"
        ));
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("outputs.toml");
    write_settings(&path, &text);
    path
}

/// Writes a settings file owner-only (settings may hold passwords: the agent warns otherwise).
fn write_settings(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write settings");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
}

/// An agent in `dir/agent` with the settings file `config`, running the counter pack at `risk`.
fn agent_with(dir: &Path, config: &Path, risk: u8) -> (Agent, PathBuf) {
    let data = dir.join("agent");
    let agent = Agent::start_in(
        &data,
        None,
        &[
            "--retry-after",
            "1",
            "--config",
            config.to_str().expect("p"),
        ],
        &[("RUST_LOG", "vigilo=info")],
    );
    let pack = counter_pack(&dir.join("pack"), "1.0.0", risk, "");
    let out = agent.cli(&["pack", "upload", build(&data, &pack).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (agent, data)
}

/// A log record's attributes: (key, value).
type Attributes = Vec<(String, Option<Value>)>;

/// The alarm names in what the OTLP receiver got, each with its attributes.
fn exported(receiver: &Receiver) -> Vec<(String, Attributes)> {
    let mut out = Vec::new();
    for d in receiver.deliveries() {
        assert_eq!(d.headers["content-type"], "application/x-protobuf");
        let request = ExportLogsServiceRequest::decode(d.body.as_slice()).expect("OTLP protobuf");
        for logs in request.resource_logs {
            for scope in logs.scope_logs {
                for record in scope.log_records {
                    let attributes: Attributes = record
                        .attributes
                        .into_iter()
                        .map(|a| (a.key, a.value.and_then(|v| v.value)))
                        .collect();
                    let name = attributes
                        .iter()
                        .find(|(k, _)| k == "vigilo.alarm")
                        .and_then(|(_, v)| match v {
                            Some(Value::StringValue(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    out.push((name, attributes));
                }
            }
        }
    }
    out
}

#[test]
fn alarms_reach_rsyslog_and_an_otlp_receiver_from_an_agent_and_from_a_hub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let syslog = Rsyslog::start(&dir.path().join("rsyslog"), false);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let otlp_port = listener.local_addr().expect("addr").port();
    let collector = Receiver::start(listener);

    // A standalone agent with both outputs.
    let config = outputs_config(
        &dir.path().join("agent-settings"),
        syslog.port,
        Some(otlp_port),
    );
    let (mut agent, _) = agent_with(dir.path(), &config, 8);
    agent.send(&[copy_event(1)]);
    let line = syslog.wait_for("alarm=\"Copy seen\"", || agent.stderr());
    // <local0.crit>1 TIME HOST vigilo - alarm [vigilo@32473 …] NAME: SUMMARY
    assert!(
        line.starts_with(
            "<130>1 2026-11-03T09:00:01.000Z ws-dave vigilo - alarm [vigilo@32473 id=\""
        ),
        "{line}"
    );
    assert!(
        line.contains(
            " risk=\"8\" user=\"dave\" computer=\"ws-dave\" origin=\"live\"] Copy seen: "
        ),
        "{line}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let copy = loop {
        if let Some(found) = exported(&collector)
            .into_iter()
            .find(|(n, _)| n == "Copy seen")
        {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no OTLP record: {:?}\n{}",
            exported(&collector),
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let attr = |k: &str| {
        copy.1
            .iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.clone())
    };
    assert_eq!(attr("vigilo.risk"), Some(Value::IntValue(8)));
    assert_eq!(
        attr("vigilo.event.path"),
        Some(Value::StringValue("/media/dave/USB/file-1.bin".into()))
    );
    let status = agent.status();
    assert_eq!(
        status["outbox"]["pending"], 0,
        "every output took its alarms: {status}"
    );
    agent.stop();

    // A hub with a syslog output: an agent's forwarded alarm goes out from the hub, saying
    // which agent it came from.
    let nats = Nats::start(&dir.path().join("nats"));
    let hub_config = outputs_config(&dir.path().join("hub-settings"), syslog.port, None);
    let hub = Agent::start_hub_with(
        &dir.path().join("hub"),
        &nats.url(),
        &["--config", hub_config.to_str().expect("p")],
    );
    let ann_data = dir.path().join("ws-ann");
    let pack = counter_pack(&dir.path().join("ann-pack"), "1.0.0", 8, "");
    let mut ann = Agent::start_with(
        &ann_data,
        None,
        &[
            "--fleet",
            &nats.url(),
            "--agent-id",
            "ws-ann",
            "--retry-after",
            "1",
        ],
    );
    let out = ann.cli(&[
        "pack",
        "upload",
        build(&ann_data, &pack).to_str().expect("p"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    ann.send(&[copy_event(2)]);
    let line = syslog.wait_for("agent=\"ws-ann\"", || hub.stderr());
    assert!(
        line.contains("alarm=\"Copy seen\"") || line.contains("origin=\"fleet:ws-ann\""),
        "{line}"
    );
    let copied = syslog.wait_for("file-2.bin", || hub.stderr());
    assert!(copied.contains(" origin=\"fleet:ws-ann\"]"), "{copied}");
    ann.stop();
    hub.stop();
}

#[test]
fn syslog_over_tls_reaches_a_receiver_whose_certificate_the_given_ca_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = Rsyslog::start(&dir.path().join("rsyslog-tls"), true);
    let ca = dir.path().join("rsyslog-tls/ca.pem");
    let settings = |name: &str, ca: &Path| {
        format!(
            "[[output]]\nname = \"{name}\"\nsyslog = \"tls://127.0.0.1:{}\"\nca = \"{}\"\n",
            tls.port,
            ca.display()
        )
    };
    // Another authority's CA: the receiver is not believed, the alarm waits.
    let stranger = dir.path().join("stranger");
    certificates(&stranger);
    let config = dir.path().join("settings.toml");
    write_settings(
        &config,
        &format!(
            "{}\n{}",
            settings("siem", &ca),
            settings("impostor-ca", &stranger.join("ca.pem"))
        ),
    );
    let (mut agent, _) = agent_with(dir.path(), &config, 5);
    agent.send(&[copy_event(3)]);
    let line = tls.wait_for("alarm=\"Copy seen\"", || agent.stderr());
    assert!(line.contains("file-3.bin"), "{line}");
    assert!(
        line.starts_with("<132>1 2026-11-03T09:00:03.000Z ws-dave vigilo - alarm ["),
        "{line}"
    );
    // The same alarm through the output that trusts another CA: refused, said why, kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent.stderr().contains("invalid peer certificate") {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        tls.messages()
            .iter()
            .filter(|m| m.contains("alarm=\"Copy seen\""))
            .count(),
        1,
        "once, through the output that trusts the receiver's CA"
    );
    assert!(agent.status()["outbox"]["pending"].as_u64() >= Some(1));
    agent.stop();
}
