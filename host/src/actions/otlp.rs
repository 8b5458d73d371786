//! An alarm as an OpenTelemetry log record, exported over OTLP/HTTP in protobuf (the
//! `http/protobuf` protocol every collector's `otlphttp` receiver takes): one
//! `ExportLogsServiceRequest` per alarm, POSTed to `…/v1/logs`; a 2xx is taken, a 4xx other
//! than 408/429 is given up at once (the collector will not take it later either).
//!
//! The record's time is when the alarm fired, its body the alarm's summary, its severity
//! follows the risk (8–10 ERROR, 4–7 WARN, 1–3 INFO); its attributes carry the alarm's fields
//! under `vigilo.*`, the event's under `vigilo.event.*`; the resource says `service.name`
//! vigilo and the computer as `host.name`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::failure::Failure;
use crate::event::FieldValue;
use crate::model::alarm::StoredAlarm;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn number(key: &str, value: f64) -> KeyValue {
    let value = if value.fract() == 0.0 && value.abs() < 9.0e15 {
        any_value::Value::IntValue(value as i64)
    } else {
        any_value::Value::DoubleValue(value)
    };
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn nanos(t: chrono::DateTime<chrono::FixedOffset>) -> u64 {
    t.timestamp_nanos_opt().unwrap_or_default().max(0) as u64
}

/// The export request for `alarm` (its id at `agent`, or at this agent).
pub fn request(alarm: &StoredAlarm, agent: Option<&str>) -> ExportLogsServiceRequest {
    let r = &alarm.record;
    let (severity, severity_text) = match r.risk {
        8.. => (SeverityNumber::Error, "ERROR"),
        4..=7 => (SeverityNumber::Warn, "WARN"),
        _ => (SeverityNumber::Info, "INFO"),
    };
    let mut attributes = vec![
        number("vigilo.alarm.id", alarm.id as f64),
        text("vigilo.alarm", &r.alarm),
        text("vigilo.pack", &r.pack),
        text("vigilo.pack_version", &r.pack_version),
        number("vigilo.risk", f64::from(r.risk)),
        text("vigilo.origin", &alarm.origin),
    ];
    for (key, value) in [
        ("vigilo.user", r.user.as_deref()),
        ("vigilo.computer", r.computer.as_deref()),
        ("vigilo.agent", agent),
    ] {
        if let Some(v) = value {
            attributes.push(text(key, v));
        }
    }
    for (field, value) in r.event.fields() {
        let key = format!("vigilo.event.{}", field.name());
        attributes.push(match value {
            FieldValue::Text(t) => text(&key, t),
            FieldValue::Number(n) => number(&key, n),
        });
    }
    let mut resource = vec![text("service.name", "vigilo")];
    if let Some(host) = r.computer.as_deref() {
        resource.push(text("host.name", host));
    }
    let record = LogRecord {
        time_unix_nano: nanos(r.fired_at),
        observed_time_unix_nano: nanos(chrono::Utc::now().fixed_offset()),
        severity_number: severity as i32,
        severity_text: severity_text.into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!(
                "{}: {}",
                r.alarm, r.summary
            ))),
        }),
        attributes,
        event_name: "vigilo.alarm".into(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "vigilo".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// POSTs `alarm` to `url`.
pub fn send(
    http: &reqwest::blocking::Client,
    url: &url::Url,
    alarm: &StoredAlarm,
    agent: Option<&str>,
) -> Result<String, Failure> {
    let body = request(alarm, agent).encode_to_vec();
    let answer = http
        .post(url.clone())
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .map_err(|e| Failure::Transient(format!("otlp {url}: {e}")))?;
    let status = answer.status();
    if status.is_success() {
        Ok(format!("exported to {url} ({status})"))
    } else {
        let detail = answer.text().unwrap_or_default();
        Err(super::failure::of_http_status(
            status.as_u16(),
            format!(
                "otlp {url}: {status} {}",
                detail.chars().take(200).collect::<String>()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_is_one_log_record_with_its_fields_as_attributes() {
        let pack = crate::packs::Pack::standard().expect("standard");
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z").expect("ts");
        let event = crate::event::Event::new(crate::event::EventKind::Usb, ts)
            .with_text(crate::event::Field::Username, "dave")
            .with_number(crate::event::Field::Bytes, 5.0);
        let record =
            crate::alarms::FiredAlarm::new(0, &pack, &pack.alarms[0], &event, ts, None).record;
        let alarm = StoredAlarm {
            id: 7,
            record,
            origin: "live".into(),
            recorded_at: "2026-11-02T10:00:00.100Z".into(),
            outcomes: Vec::new(),
            folded: None,
        };
        let wire = request(&alarm, None).encode_to_vec();
        let back = ExportLogsServiceRequest::decode(wire.as_slice()).expect("decodes");
        let log = &back.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(log.time_unix_nano, 1_793_613_600_000_000_000);
        let attr = |k: &str| {
            log.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(attr("vigilo.alarm.id"), Some(any_value::Value::IntValue(7)));
        assert_eq!(
            attr("vigilo.event.username"),
            Some(any_value::Value::StringValue("dave".into()))
        );
        assert_eq!(
            attr("vigilo.event.bytes"),
            Some(any_value::Value::IntValue(5))
        );
        assert_eq!(attr("vigilo.agent"), None);
    }
}
