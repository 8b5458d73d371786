//! What an agent publishes: for each alarm, the alarm record (the model's stable form) with who
//! sent it and its id at that agent; for each capture of one, where its file waits in the
//! object store and its SHA-256. Versioned with [`crate::model::FORM_VERSION`]: a hub reads
//! what agents of the same form version send, and new fields come with defaults.

use serde::{Deserialize, Serialize};

use crate::model::alarm::AlarmRecord;

/// One forwarded alarm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardedAlarm {
    /// The form version ([`crate::model::FORM_VERSION`]) the sender wrote.
    pub form: u32,
    /// The agent that fired it (also the subject's last token; the hub checks they agree).
    pub agent: String,
    /// Its id in that agent's store: with `agent`, what makes it one alarm.
    pub id: i64,
    /// The alarm.
    pub alarm: AlarmRecord,
    /// When the agent committed it (UTC, RFC 3339): the hub measures its lag from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
}

/// Why a message from the bus was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BadMessage {
    /// Not the JSON of a forwarded alarm.
    #[error("not a forwarded alarm: {0}")]
    Json(#[from] serde_json::Error),
    /// Written in a form this hub does not know.
    #[error("form {0}, this hub reads form {1}: upgrade the hub")]
    Form(u32, u32),
    /// The payload names another agent than the subject it came under.
    #[error("sent under {subject:?} but says it is from agent {claimed:?}")]
    Impostor {
        /// The subject it came under.
        subject: String,
        /// The agent its payload names.
        claimed: String,
    },
    /// A capture's message that does not describe one of its agent's captures.
    #[error("not a capture of its agent: {0}")]
    Capture(String),
}

impl ForwardedAlarm {
    /// The message id JetStream de-duplicates publishes by.
    pub fn message_id(agent: &str, id: i64) -> String {
        format!("{agent}:{id}")
    }

    /// Reads a message that came under `subject`, believing the subject about the sender.
    pub fn read(subject: &str, payload: &[u8]) -> Result<ForwardedAlarm, BadMessage> {
        check_form(payload)?;
        let forwarded: ForwardedAlarm = serde_json::from_slice(payload)?;
        check(
            forwarded.form,
            &forwarded.agent,
            super::alarms_subject,
            subject,
        )?;
        Ok(forwarded)
    }
}

/// One capture of a forwarded alarm: its file is in the object store bucket
/// [`super::CAPTURES_BUCKET`] under `object`; the hub fetches it, checks it is the file this
/// message describes, and keeps it beside the alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardedCapture {
    /// The form version ([`crate::model::FORM_VERSION`]) the sender wrote.
    pub form: u32,
    /// The agent that took it (the subject's last token too).
    pub agent: String,
    /// The alarm it belongs to: its id at that agent (as [`ForwardedAlarm::id`]).
    pub alarm: i64,
    /// Its id at that agent: with `agent`, what makes it one capture.
    pub capture: i64,
    /// `screenshot` or `video`.
    pub kind: String,
    /// The file's name at the agent, which the hub keeps (`17-0-1.png`).
    pub file: String,
    /// The object's name in the bucket ([`ForwardedCapture::object_name`]).
    pub object: String,
    /// Its size.
    pub bytes: u64,
    /// The SHA-256 of its bytes, in hex. The bucket's own digest is written by whoever put the
    /// object; this one came under the agent's own subject, so it is the one the hub checks.
    pub sha256: String,
    /// When it was taken (UTC, RFC 3339).
    pub taken_at: String,
}

impl ForwardedCapture {
    /// The name of capture `capture` of `agent`, of SHA-256 `sha256` (hex), in the bucket:
    /// under the agent's name, so a listing reads by computer, and with the start of its
    /// digest, so an agent that started over (its ids counting again) never puts over an
    /// object of its own (which would need the right to purge the bucket).
    pub fn object_name(agent: &str, capture: i64, sha256: &str) -> String {
        format!("{agent}/{capture}-{}", sha256.get(..16).unwrap_or(sha256))
    }

    /// The message id JetStream de-duplicates publishes by (apart from alarms' ids).
    pub fn message_id(agent: &str, capture: i64) -> String {
        format!("{agent}:capture:{capture}")
    }

    /// Reads a message that came under `subject`, believing the subject about the sender; the
    /// object must be one of that agent's, the file a plain name.
    pub fn read(subject: &str, payload: &[u8]) -> Result<ForwardedCapture, BadMessage> {
        check_form(payload)?;
        let forwarded: ForwardedCapture = serde_json::from_slice(payload)?;
        check(
            forwarded.form,
            &forwarded.agent,
            super::captures_subject,
            subject,
        )?;
        let plain = |name: &str| {
            !name.is_empty()
                && name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !name.starts_with('.')
        };
        let object = Self::object_name(&forwarded.agent, forwarded.capture, &forwarded.sha256);
        if forwarded.object != object
            || !plain(&forwarded.file)
            || !matches!(forwarded.kind.as_str(), "screenshot" | "video")
            || forwarded.sha256.len() != 64
            || !forwarded.sha256.chars().all(|c| c.is_ascii_hexdigit())
            // The hub's retention compares it with its own times.
            || chrono::DateTime::parse_from_rfc3339(&forwarded.taken_at).is_err()
        {
            return Err(BadMessage::Capture(format!(
                "object {:?}, file {:?}, kind {:?}: expected object \"{}\", a plain file name, \
                 screenshot or video, a SHA-256 in hex and an RFC 3339 time",
                forwarded.object, forwarded.file, forwarded.kind, object
            )));
        }
        Ok(forwarded)
    }
}

/// Checks the form a message says it is written in before reading the rest: a newer agent's
/// message is "upgrade the hub", not a field the hub does not know.
pub fn check_form(payload: &[u8]) -> Result<(), BadMessage> {
    #[derive(Deserialize)]
    struct Form {
        form: u32,
    }
    let Form { form } = serde_json::from_slice(payload)?;
    if form != crate::model::FORM_VERSION {
        return Err(BadMessage::Form(form, crate::model::FORM_VERSION));
    }
    Ok(())
}

/// Reads an entry of a key-value bucket the hub writes and agents read (a publication, a
/// group): at most `max` bytes, in this release's form, as `T`; `what` names it in errors.
pub fn read_entry<T: serde::de::DeserializeOwned>(
    value: &[u8],
    max: usize,
    what: &str,
) -> Result<T, String> {
    if value.len() > max {
        return Err(format!("{} bytes, a {what} has at most {max}", value.len()));
    }
    match check_form(value) {
        Ok(()) => {}
        Err(BadMessage::Form(form, ours)) => {
            return Err(format!(
                "form {form}, this release reads form {ours}: upgrade it to read this {what}"
            ));
        }
        Err(BadMessage::Json(e)) => return Err(format!("not a {what}: {e}")),
        Err(e) => return Err(e.to_string()),
    }
    serde_json::from_slice(value).map_err(|e| format!("not a {what}: {e}"))
}

/// Checks a message's form, and that it came under the subject of the agent it names.
fn check(
    form: u32,
    agent: &str,
    subject_of: fn(&str) -> String,
    subject: &str,
) -> Result<(), BadMessage> {
    if form != crate::model::FORM_VERSION {
        return Err(BadMessage::Form(form, crate::model::FORM_VERSION));
    }
    if subject_of(agent) != subject {
        return Err(BadMessage::Impostor {
            subject: subject.to_string(),
            claimed: agent.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(agent: &str) -> ForwardedAlarm {
        let pack = crate::packs::Pack::standard().expect("standard");
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z").expect("ts");
        let event = crate::event::Event::new(crate::event::EventKind::Usb, ts)
            .with_text(crate::event::Field::Action, "inserted");
        ForwardedAlarm {
            form: crate::model::FORM_VERSION,
            agent: agent.into(),
            id: 7,
            alarm: crate::alarms::FiredAlarm::new(0, &pack, &pack.alarms[0], &event, ts, None)
                .record,
            recorded_at: None,
        }
    }

    #[test]
    fn the_hub_believes_the_subject_and_reads_only_its_form() {
        let good = serde_json::to_vec(&forwarded("ws-1")).expect("json");
        let read = ForwardedAlarm::read("vigilo.alarms.ws-1", &good).expect("read");
        assert_eq!((read.agent.as_str(), read.id), ("ws-1", 7));
        assert_eq!(ForwardedAlarm::message_id("ws-1", 7), "ws-1:7");

        let err = ForwardedAlarm::read("vigilo.alarms.ws-2", &good).expect_err("impostor");
        assert!(matches!(err, BadMessage::Impostor { .. }), "{err}");
        assert!(err.to_string().contains("\"ws-1\""), "{err}");

        let mut future = forwarded("ws-1");
        future.form = crate::model::FORM_VERSION + 1;
        let future = serde_json::to_vec(&future).expect("json");
        let err = ForwardedAlarm::read("vigilo.alarms.ws-1", &future).expect_err("form");
        assert!(err.to_string().contains("upgrade the hub"), "{err}");

        let err = ForwardedAlarm::read("vigilo.alarms.ws-1", b"{\"form\":1}").expect_err("json");
        assert!(matches!(err, BadMessage::Json(_)), "{err}");
        // A newer form with other fields: said as such, not as a missing field.
        let err = ForwardedAlarm::read("vigilo.alarms.ws-1", b"{\"form\":99,\"x\":1}")
            .expect_err("newer");
        assert!(err.to_string().contains("upgrade the hub"), "{err}");
    }

    #[test]
    fn a_capture_names_an_object_of_its_own_agent_and_a_plain_file() {
        let capture = ForwardedCapture {
            form: crate::model::FORM_VERSION,
            agent: "ws-1".into(),
            alarm: 7,
            capture: 3,
            kind: "screenshot".into(),
            file: "7-0-1.png".into(),
            object: ForwardedCapture::object_name("ws-1", 3, &"ab".repeat(32)),
            bytes: 10,
            sha256: "ab".repeat(32),
            taken_at: "2026-11-02T10:00:00.000Z".into(),
        };
        let read = |c: &ForwardedCapture, subject: &str| {
            ForwardedCapture::read(subject, &serde_json::to_vec(c).expect("json"))
        };
        assert_eq!(
            read(&capture, "vigilo.captures.ws-1").expect("good"),
            capture
        );
        assert!(matches!(
            read(&capture, "vigilo.captures.ws-2"),
            Err(BadMessage::Impostor { .. })
        ));
        let bad = [
            ForwardedCapture {
                object: format!("ws-2/3-{}", "ab".repeat(8)),
                ..capture.clone()
            },
            ForwardedCapture {
                file: "../../token".into(),
                ..capture.clone()
            },
            ForwardedCapture {
                kind: "keylog".into(),
                ..capture.clone()
            },
            ForwardedCapture {
                sha256: "xyz".into(),
                ..capture.clone()
            },
            ForwardedCapture {
                taken_at: "0000".into(),
                ..capture.clone()
            },
        ];
        for c in bad {
            let err = read(&c, "vigilo.captures.ws-1").expect_err("refused");
            assert!(matches!(err, BadMessage::Capture(_)), "{err}");
        }
    }
}
