//! Forwarding an alarm to the fleet's hub, the agent's side of [`crate::fleet`]: publishes one
//! stored alarm and waits for JetStream's acknowledgement, or puts one capture of it in the
//! object store and then says so. Performed by the outbox's `forward` lane, a plain thread, so
//! it blocks on the agent's tokio runtime; the lane retries what fails, with the same message id
//! every time.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, object_store::ObjectStore};
use base64::Engine as _;
use sha2::Digest as _;

use super::failure::Failure;
use crate::fleet::wire::{ForwardedAlarm, ForwardedCapture};
use crate::model::alarm::StoredAlarm;
use crate::store::Capture;

/// How long a publish waits for the server's acknowledgement before it counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long putting one capture in the object store may take (a few MiB at most, in chunks
/// each acknowledged): past it the attempt fails and is made again, whole.
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Publishes this agent's alarms to the fleet's stream.
pub struct Forwarder {
    agent: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    runtime: tokio::runtime::Handle,
    /// The captures' bucket, once found (the hub makes it).
    bucket: Mutex<Option<ObjectStore>>,
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
            bucket: Mutex::new(None),
        }
    }

    /// Whether the bus is there: while it is not, the lane waits instead of failing each alarm.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes a stored alarm (under its row's id in this agent's store) and waits for the acknowledgement;
    /// returns what to record. Repeats are harmless: JetStream and the hub drop them.
    pub fn publish(&self, alarm: &StoredAlarm) -> Result<String, Failure> {
        let id = alarm.id;
        let message = ForwardedAlarm {
            form: crate::model::FORM_VERSION,
            agent: self.agent.clone(),
            id,
            alarm: alarm.record.clone(),
            recorded_at: Some(alarm.recorded_at.clone()),
        };
        let payload = serde_json::to_vec(&message)
            .map_err(|e| Failure::Permanent(format!("cannot write the alarm: {e}")))?;
        let subject = crate::fleet::alarms_subject(&self.agent);
        let message_id = ForwardedAlarm::message_id(&self.agent, id);
        self.send(subject, message_id, payload)
    }

    /// Puts capture `capture` of alarm `alarm` in the captures' bucket, then publishes what
    /// it is (its SHA-256 with it) and waits for the acknowledgement. An object already there
    /// with the same bytes (an attempt that failed after the put) is not put again.
    pub fn publish_capture(&self, alarm: i64, capture: &Capture) -> Result<String, Failure> {
        let bytes = std::fs::read(&capture.path).map_err(|e| {
            Failure::Permanent(format!("cannot read {}: {e}", capture.path.display()))
        })?;
        if bytes.len() as u64 > crate::fleet::MAX_CAPTURE_BYTES {
            return Err(Failure::Permanent(format!(
                "{} is {} bytes, over the {} a capture may travel with",
                capture.path.display(),
                bytes.len(),
                crate::fleet::MAX_CAPTURE_BYTES
            )));
        }
        let file = capture
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digest = sha2::Sha256::digest(&bytes);
        let sha256 = crate::hex::encode(&digest);
        let object = ForwardedCapture::object_name(&self.agent, capture.id, &sha256);
        let message = ForwardedCapture {
            form: crate::model::FORM_VERSION,
            agent: self.agent.clone(),
            alarm,
            capture: capture.id,
            kind: capture.kind.clone(),
            file,
            object: object.clone(),
            bytes: bytes.len() as u64,
            sha256,
            taken_at: capture.taken_at.clone(),
        };
        if !self.connected() {
            return Err(Failure::Transient("the bus is away".into()));
        }
        let bucket = self.bucket()?;
        let theirs = format!(
            "SHA-256={}",
            base64::engine::general_purpose::URL_SAFE.encode(digest)
        );
        let put = self.runtime.block_on(async {
            let there = bucket.info(&object).await.ok();
            if there.is_some_and(|i| !i.deleted && i.digest.as_deref() == Some(theirs.as_str())) {
                return Ok(false);
            }
            let mut reader: &[u8] = &bytes;
            tokio::time::timeout(PUT_TIMEOUT, bucket.put(object.as_str(), &mut reader))
                .await
                .map_err(|_| Failure::Transient("the capture's upload took too long".into()))?
                .map_err(|e| Failure::Transient(format!("cannot upload the capture: {e}")))?;
            Ok(true)
        })?;
        let payload = serde_json::to_vec(&message)
            .map_err(|e| Failure::Permanent(format!("cannot write the capture's message: {e}")))?;
        let subject = crate::fleet::captures_subject(&self.agent);
        let message_id = ForwardedCapture::message_id(&self.agent, capture.id);
        let sent = self.send(subject, message_id, payload)?;
        Ok(format!(
            "{} {} ({} bytes{}); {sent}",
            capture.kind,
            object,
            message.bytes,
            if put { "" } else { ", there already" }
        ))
    }

    /// The captures' bucket, looked up once it exists.
    fn bucket(&self) -> Result<ObjectStore, Failure> {
        let mut found = self
            .bucket
            .lock()
            .map_err(|_| Failure::Permanent("the bucket's lock is poisoned".into()))?;
        if let Some(b) = found.as_ref() {
            return Ok(b.clone());
        }
        let bucket = self.runtime.block_on(async {
            tokio::time::timeout(
                ACK_TIMEOUT,
                self.jetstream
                    .get_object_store(crate::fleet::CAPTURES_BUCKET),
            )
            .await
            .map_err(|_| Failure::Transient("no answer about the captures' bucket".into()))?
            .map_err(|e| {
                Failure::Transient(format!(
                    "no bucket {} yet (is the hub running?): {e}",
                    crate::fleet::CAPTURES_BUCKET
                ))
            })
        })?;
        Ok(found.insert(bucket).clone())
    }

    /// Publishes `payload` under `subject` with `message_id`, and waits for the acknowledgement.
    fn send(
        &self,
        subject: String,
        message_id: String,
        payload: Vec<u8>,
    ) -> Result<String, Failure> {
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
