//! Forwarding an alarm to the fleet's hub, the agent's side of [`crate::fleet`]: publishes one
//! stored alarm and waits for JetStream's acknowledgement. Performed by the outbox's `forward`
//! lane, a plain thread, so it blocks on the agent's tokio runtime; the lane retries what fails,
//! with the same message id every time.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};

use super::failure::Failure;
use crate::fleet::wire::ForwardedAlarm;
use crate::model::alarm::AlarmRecord;

/// How long a publish waits for the server's acknowledgement before it counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes this agent's alarms to the fleet's stream.
pub struct Forwarder {
    agent: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    runtime: tokio::runtime::Handle,
}

impl Forwarder {
    /// A forwarder for agent `agent` over `client`, blocking on `runtime`.
    pub fn new(agent: &str, client: async_nats::Client, runtime: tokio::runtime::Handle) -> Self {
        // The JetStream context starts a task of its own: inside the runtime.
        let _inside = runtime.enter();
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(ACK_TIMEOUT);
        Forwarder {
            agent: agent.to_string(),
            client,
            jetstream,
            runtime,
        }
    }

    /// Whether the bus is there: while it is not, the lane waits instead of failing each alarm.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes alarm `id` (its row in this agent's store) and waits for the acknowledgement;
    /// returns what to record. Repeats are harmless: JetStream and the hub drop them.
    pub fn publish(&self, id: i64, alarm: &AlarmRecord) -> Result<String, Failure> {
        let message = ForwardedAlarm {
            form: crate::model::FORM_VERSION,
            agent: self.agent.clone(),
            id,
            alarm: alarm.clone(),
        };
        let payload = serde_json::to_vec(&message)
            .map_err(|e| Failure::Permanent(format!("cannot write the alarm: {e}")))?;
        let subject = crate::fleet::alarms_subject(&self.agent);
        let message_id = ForwardedAlarm::message_id(&self.agent, id);
        if !self.connected() {
            return Err(Failure::Transient("the bus is away".into()));
        }
        self.runtime.block_on(async {
            let publish = PublishMessage::build()
                .payload(payload.into())
                .message_id(message_id);
            // Bounded as a whole: a connection lost mid-publish must not hold the lane.
            let published = async {
                self.jetstream
                    .send_publish(subject, publish)
                    .await
                    .map_err(|e| Failure::Transient(format!("publish: {e}")))?
                    .await
                    .map_err(|e| Failure::Transient(format!("no acknowledgement: {e}")))
            };
            let ack = tokio::time::timeout(ACK_TIMEOUT, published)
                .await
                .map_err(|_| Failure::Transient("no acknowledgement in time".into()))??;
            Ok(format!(
                "forwarded to the fleet (stream {} seq {}{})",
                ack.stream,
                ack.sequence,
                if ack.duplicate { ", a repeat" } else { "" }
            ))
        })
    }
}
