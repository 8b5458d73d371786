//! What an agent publishes for each alarm: the alarm record (the model's stable form), with who
//! sent it and its id at that agent. Versioned with [`crate::model::FORM_VERSION`]: a hub reads
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
}

impl ForwardedAlarm {
    /// The message id JetStream de-duplicates publishes by.
    pub fn message_id(agent: &str, id: i64) -> String {
        format!("{agent}:{id}")
    }

    /// Reads a message that came under `subject`, believing the subject about the sender.
    pub fn read(subject: &str, payload: &[u8]) -> Result<ForwardedAlarm, BadMessage> {
        let forwarded: ForwardedAlarm = serde_json::from_slice(payload)?;
        if forwarded.form != crate::model::FORM_VERSION {
            return Err(BadMessage::Form(forwarded.form, crate::model::FORM_VERSION));
        }
        if super::alarms_subject(&forwarded.agent) != subject {
            return Err(BadMessage::Impostor {
                subject: subject.to_string(),
                claimed: forwarded.agent,
            });
        }
        Ok(forwarded)
    }
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
            alarm: crate::alarms::FiredAlarm::new(0, &pack, &pack.alarms[0], &event, ts).record,
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
    }
}
