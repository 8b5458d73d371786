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
