//! An alarm as an RFC 5424 syslog message over TCP, octet-counted (RFC 6587 §3.4.1), in TLS
//! when asked (RFC 5425, the same framing): what rsyslog, syslog-ng, Splunk's and Elastic's
//! syslog inputs read.
//!
//! `<PRI>1 TIMESTAMP HOST vigilo - alarm [vigilo@32473 …] SUMMARY`: the facility is local0, the
//! severity follows the alarm's risk (8–10 critical, 6–7 error, 4–5 warning, 1–3 notice), the
//! time is when the alarm fired, the host the computer it fired on; the structured data carries
//! the alarm's fields (32473 is the enterprise number RFC 5612 sets aside for examples: vigilo
//! has none of its own). TCP says a message was written, not read: delivery is as good as the
//! receiver's queue.

use std::io::Write;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use super::failure::Failure;
use crate::model::alarm::StoredAlarm;

/// How long connecting and writing may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// local0.
const FACILITY: u8 = 16;

/// TLS to a syslog receiver: whom to trust and the name its certificate must have.
#[derive(Debug, Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
}

impl Tls {
    /// TLS to `host`, trusting the certificate authorities in PEM file `ca` (or the system's).
    pub fn new(host: &str, ca: Option<&std::path::Path>) -> Result<Tls, String> {
        let config = crate::tls::client_config(ca)?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is no name a certificate can have: {e}"))?;
        Ok(Tls {
            config: Arc::new(config),
            name,
        })
    }
}

/// The syslog severity for a risk level.
fn severity(risk: u8) -> u8 {
    match risk {
        8.. => 2,
        6..=7 => 3,
        4..=5 => 4,
        _ => 5,
    }
}

/// A structured-data parameter value, escaped (RFC 5424 §6.3.3: `"`, `\` and `]`).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII without spaces, at most `max` long, `-` when empty.
fn header(value: Option<&str>, max: usize) -> String {
    let kept: String = value
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if kept.is_empty() { "-".into() } else { kept }
}

/// The message for `alarm` (its id at `agent`, or at this agent).
pub fn format(alarm: &StoredAlarm, agent: Option<&str>) -> String {
    let r = &alarm.record;
    let pri = FACILITY * 8 + severity(r.risk);
    let ts = crate::event::Event::utc_string(r.fired_at);
    let mut sd = format!(
        "[vigilo@32473 id=\"{}\" alarm=\"{}\" pack=\"{}\" version=\"{}\" risk=\"{}\"",
        alarm.id,
        escape(&r.alarm),
        escape(&r.pack),
        escape(&r.pack_version),
        r.risk
    );
    for (key, value) in [
        ("user", r.user.as_deref()),
        ("computer", r.computer.as_deref()),
        ("agent", agent),
        ("origin", Some(alarm.origin.as_str())),
    ] {
        if let Some(v) = value {
            sd.push_str(&format!(" {key}=\"{}\"", escape(v)));
        }
    }
    sd.push(']');
    format!(
        "<{pri}>1 {ts} {} vigilo - alarm {sd} {}: {}",
        header(r.computer.as_deref(), 255),
        r.alarm,
        r.summary
    )
}

/// Sends `alarm` to `address` (`HOST:PORT`), octet-counted, in `tls` if given.
pub fn send(
    address: &str,
    tls: Option<&Tls>,
    alarm: &StoredAlarm,
    agent: Option<&str>,
) -> Result<String, Failure> {
    let message = format(alarm, agent);
    let failed = |e: &dyn std::fmt::Display| Failure::Transient(format!("syslog {address}: {e}"));
    let target = address
        .to_socket_addrs()
        .map_err(|e| failed(&e))?
        .next()
        .ok_or_else(|| failed(&"no address"))?;
    let stream = std::net::TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| failed(&e))?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_read_timeout(Some(TIMEOUT)))
        .map_err(|e| failed(&e))?;
    let framed = format!("{} {message}", message.len());
    match tls {
        None => {
            let mut stream = stream;
            stream
                .write_all(framed.as_bytes())
                .and_then(|()| stream.flush())
                .map_err(|e| failed(&e))?;
            // A clean close, so the receiver sees the whole frame before the connection ends.
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        Some(tls) => {
            let connection = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
                .map_err(|e| failed(&e))?;
            let mut stream = rustls::StreamOwned::new(connection, stream);
            stream
                .write_all(framed.as_bytes())
                .and_then(|()| stream.flush())
                .map_err(|e| failed(&e))?;
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    }
    Ok(format!(
        "sent to syslog {address}{} ({} bytes)",
        if tls.is_some() { " over TLS" } else { "" },
        framed.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_is_one_rfc_5424_line_with_its_fields_escaped() {
        let pack = crate::packs::Pack::standard().expect("standard");
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z").expect("ts");
        let event = crate::event::Event::new(crate::event::EventKind::Usb, ts)
            .with_text(crate::event::Field::Username, "dave")
            .with_text(crate::event::Field::Computer, "ws dave 04")
            .with_text(crate::event::Field::Action, "file_written")
            .with_text(crate::event::Field::Path, "/media/dave/USB/a\"b].pdf");
        let mut record =
            crate::alarms::FiredAlarm::new(0, &pack, &pack.alarms[0], &event, ts, None).record;
        record.risk = 8;
        record.alarm = "Copy \"seen\"".into();
        let alarm = StoredAlarm {
            id: 41,
            record,
            origin: "fleet:ws-1".into(),
            recorded_at: "2026-11-02T10:00:00.100Z".into(),
            outcomes: Vec::new(),
            folded: None,
        };
        let line = format(&alarm, Some("ws-1"));
        assert!(
            line.starts_with("<130>1 2026-11-02T10:00:00.000Z wsdave04 vigilo - alarm [vigilo@32473 id=\"41\" alarm=\"Copy \\\"seen\\\"\""),
            "{line}"
        );
        assert!(
            line.contains(
                " user=\"dave\" computer=\"ws dave 04\" agent=\"ws-1\" origin=\"fleet:ws-1\"]"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert_eq!(
            (severity(2), severity(5), severity(7), severity(10)),
            (5, 4, 3, 2)
        );
    }
}
