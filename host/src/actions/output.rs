//! Outputs: every stored alarm also sent to a SIEM — as RFC 5424 syslog over TCP, or as an
//! OpenTelemetry log record over OTLP/HTTP — so Splunk, Elastic or Loki users plug vigilo in
//! without a receiver of their own. The same code on an agent (its live alarms) and on a hub
//! (every agent's, as they arrive).
//!
//! An output is a lane of the outbox (`output:<name>`): each alarm gets a row in the same
//! transaction that stores it, and the worker sends it until the receiver takes it (at least
//! once; never given up while it may succeed, the wait capped as the fleet's forwarding is).
//! Its settings sit beside it here, read from `[[output]]` in agent.toml:
//!
//! ```toml
//! [[output]]
//! name = "siem"
//! syslog = "tcp://siem.example.com:601"     # RFC 5424, octet-counted (RFC 6587)
//! # syslog = "tls://siem.example.com:6514"  # the same over TLS (RFC 5425)
//! # ca = "/etc/vigilo/siem-ca.pem"           # whom to trust for it (default: the system's)
//!
//! [[output]]
//! name = "collector"
//! otlp = "http://127.0.0.1:4318"             # OTLP/HTTP protobuf, to /v1/logs
//! ```

use serde::Deserialize;

use super::failure::Failure;
use crate::model::alarm::StoredAlarm;

/// One `[[output]]` of agent.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// Its name (letters, digits, `-`, `_`): its lane, and what logs and the console call it.
    pub name: String,
    /// A syslog receiver: `tcp://HOST:PORT`, or `tls://HOST:PORT` (RFC 5425).
    #[serde(default)]
    pub syslog: Option<String>,
    /// For `tls://`: a PEM file of the certificate authorities to trust (default: the system's).
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// An OpenTelemetry collector's OTLP/HTTP endpoint (`http(s)://HOST:4318`).
    #[serde(default)]
    pub otlp: Option<String>,
}

/// A checked output.
#[derive(Debug, Clone)]
pub enum Output {
    /// RFC 5424 over TCP to this address (`HOST:PORT`), in TLS if set.
    Syslog(String, Option<super::syslog::Tls>),
    /// OTLP/HTTP protobuf to this URL (`…/v1/logs`).
    Otlp(url::Url),
}

impl OutputSettings {
    /// Checks it; says what is wrong.
    pub fn check(&self) -> Result<Output, String> {
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!(
                "name {:?}: use 1 to 64 letters, digits, `-` or `_`",
                self.name
            ));
        }
        match (&self.syslog, &self.otlp) {
            (Some(address), None) => {
                let parsed = url::Url::parse(address)
                    .map_err(|e| format!("syslog {address:?}: {e} (expected tcp://HOST:PORT)"))?;
                let tls = match parsed.scheme() {
                    "tcp" => false,
                    "tls" => true,
                    _ => {
                        return Err(format!(
                            "syslog {address:?}: expected tcp:// or tls://HOST:PORT"
                        ));
                    }
                };
                let (Some(host), Some(port)) = (parsed.host_str(), parsed.port()) else {
                    return Err(format!(
                        "syslog {address:?}: expected tcp:// or tls://HOST:PORT"
                    ));
                };
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let tls = if tls {
                    Some(super::syslog::Tls::new(host, self.ca.as_deref())?)
                } else if self.ca.is_some() {
                    return Err(format!("syslog {address:?}: a ca is for tls:// only"));
                } else {
                    None
                };
                Ok(Output::Syslog(format!("{host}:{port}"), tls))
            }
            (None, Some(endpoint)) => {
                let mut url = url::Url::parse(endpoint).map_err(|e| {
                    format!("otlp {endpoint:?}: {e} (expected http(s)://HOST:4318)")
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("otlp {endpoint:?}: expected http(s)://HOST:PORT"));
                }
                if !url.path().ends_with("/v1/logs") {
                    let path = format!("{}/v1/logs", url.path().trim_end_matches('/'));
                    url.set_path(&path);
                }
                Ok(Output::Otlp(url))
            }
            _ => Err(format!(
                "output {:?}: give one of syslog = \"tcp://…\" or otlp = \"http://…\"",
                self.name
            )),
        }
    }
}

impl Output {
    /// Sends `alarm` (row `id` of `agent`'s store; `agent` is `None` on a standalone agent).
    pub fn send(
        &self,
        http: &reqwest::blocking::Client,
        alarm: &StoredAlarm,
        agent: Option<&str>,
    ) -> Result<String, Failure> {
        match self {
            Output::Syslog(address, tls) => {
                super::syslog::send(address, tls.as_ref(), alarm, agent)
            }
            Output::Otlp(url) => super::otlp::send(http, url, alarm, agent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(name: &str, syslog: Option<&str>, otlp: Option<&str>) -> OutputSettings {
        OutputSettings {
            name: name.into(),
            syslog: syslog.map(str::to_string),
            ca: None,
            otlp: otlp.map(str::to_string),
        }
    }

    #[test]
    fn an_output_is_one_receiver_named_by_a_token() {
        assert!(matches!(
            settings("siem", Some("tcp://10.0.0.5:601"), None).check(),
            Ok(Output::Syslog(a, None)) if a == "10.0.0.5:601"
        ));
        crate::use_ring_for_tls();
        assert!(matches!(
            settings("siem", Some("tls://siem.example.com:6514"), None).check(),
            Ok(Output::Syslog(a, Some(_))) if a == "siem.example.com:6514"
        ));
        let missing_ca = OutputSettings {
            ca: Some("/nonexistent/ca.pem".into()),
            ..settings("siem", Some("tls://h:6514"), None)
        };
        assert!(
            missing_ca
                .check()
                .is_err_and(|e| e.contains("/nonexistent/ca.pem"))
        );
        match settings("otel", None, Some("http://127.0.0.1:4318")).check() {
            Ok(Output::Otlp(u)) => assert_eq!(u.as_str(), "http://127.0.0.1:4318/v1/logs"),
            other => panic!("{other:?}"),
        }
        for bad in [
            settings("a b", Some("tcp://h:1"), None),
            settings("x", None, None),
            settings("x", Some("tcp://h:1"), Some("http://h:1")),
            settings("x", Some("udp://h:514"), None),
            settings("x", Some("tcp://h"), None),
            settings("x", None, Some("ftp://h")),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert_eq!(crate::store::output_lane("siem"), "output:siem");
    }
}
