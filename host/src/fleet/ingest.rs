//! The hub's side of the fleet: takes forwarded alarms from the durable consumer and stores
//! each once, acknowledging a message only after its alarm is committed. A hub killed between
//! the two gets the message again (after the consumer's ack wait) and stores nothing twice.
//!
//! Captures come through the same consumer as a message each, after their file is in the
//! object store: the hub fetches the file (bounded by the size the message gave, and by
//! [`super::MAX_CAPTURE_BYTES`]), keeps it only if its SHA-256 is the one the agent sent under
//! its own subject, records it beside the agent's alarm, acknowledges, and deletes the object.
//! A capture that arrives before its alarm (another lane's retry) is asked for again a little
//! later.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, object_store, stream};
use futures_util::StreamExt;

use super::wire::{ForwardedAlarm, ForwardedCapture};
use crate::store::{Retention, Store};

/// At most this many messages are stored in one transaction.
const BATCH: usize = 512;

/// At most this many bytes of messages are held at once (the server caps one message at its
/// `max_payload`, 1 MiB by default: 512 of those would be half a gigabyte).
const BATCH_BYTES: usize = 16 << 20;

/// How long an unacknowledged message waits before it is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// How long to wait before trying again when the bus or the store fails.
const PAUSE: Duration = Duration::from_secs(1);

/// How long a capture whose alarm has not arrived waits before it is delivered again.
const ALARM_NOT_YET: Duration = Duration::from_secs(2);

/// After this many deliveries, a capture whose alarm never came is given up (about ten minutes).
const CAPTURE_DELIVERIES: i64 = 300;

/// How long fetching one capture from the object store may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the hub keeps what arrives.
pub struct Ingest {
    /// The hub's store.
    pub store: Store,
    /// Wakes the hub's action worker after alarms are stored (their outputs are due).
    pub wake: Option<std::sync::mpsc::SyncSender<()>>,
    /// The hub's data folder: captures go in `captures/` there.
    pub data_dir: PathBuf,
    /// How long captures are kept.
    pub retention: Retention,
    /// What it did, for the hub's status.
    pub stats: Arc<IngestStats>,
}

/// What the hub's ingest has done, for its status.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Alarms stored.
    pub stored: std::sync::atomic::AtomicU64,
    /// Messages that arrived again and changed nothing.
    pub repeats: std::sync::atomic::AtomicU64,
    /// Messages refused (not a forwarded alarm, another form, an impostor).
    pub refused: std::sync::atomic::AtomicU64,
    /// Captures fetched and kept.
    pub captures: std::sync::atomic::AtomicU64,
    /// From an agent's commit to the hub's, for each alarm stored.
    pub lag: crate::latency::Recorder,
}

impl IngestStats {
    /// The figures for the hub's status.
    pub fn figures(&self) -> crate::model::report::FleetIngest {
        use std::sync::atomic::Ordering::Relaxed;
        crate::model::report::FleetIngest {
            stored: self.stored.load(Relaxed),
            repeats: self.repeats.load(Relaxed),
            refused: self.refused.load(Relaxed),
            captures: self.captures.load(Relaxed),
            lag: self.lag.summary(),
        }
    }
}

/// Creates the fleet's stream, the captures' bucket and the hub's durable consumer if they are
/// not there yet, and brings a stream an older hub made up to date (idempotent: every hub
/// start, and every hub of a shared store, may call it).
pub async fn prepare(
    js: &jetstream::Context,
) -> anyhow::Result<(consumer::PullConsumer, object_store::ObjectStore)> {
    let config = stream::Config {
        name: super::ALARMS_STREAM.into(),
        subjects: vec![super::alarms_subject("*"), super::captures_subject("*")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: super::KEEP_FOR,
        duplicate_window: super::DUPLICATE_WINDOW,
        ..Default::default()
    };
    let mut stream = js
        .get_or_create_stream(config.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the stream {}: {e}", super::ALARMS_STREAM))?;
    if stream.cached_info().config.subjects != config.subjects {
        js.update_stream(&config).await.map_err(|e| {
            anyhow::anyhow!("cannot update the stream {}: {e}", super::ALARMS_STREAM)
        })?;
        stream = js.get_stream(super::ALARMS_STREAM).await?;
    }
    let bucket = match js.get_object_store(super::CAPTURES_BUCKET).await {
        Ok(b) => b,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: super::CAPTURES_BUCKET.into(),
                description: Some("vigilo captures on their way to the hub".into()),
                max_age: super::KEEP_FOR,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot create the bucket {}: {e}", super::CAPTURES_BUCKET)
            })?,
    };
    let consumer = stream
        .get_or_create_consumer(
            super::HUB_CONSUMER,
            consumer::pull::Config {
                durable_name: Some(super::HUB_CONSUMER.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the consumer {}: {e}", super::HUB_CONSUMER))?;
    Ok((consumer, bucket))
}

/// Runs the hub's ingest until the process ends: the bus away or the store failing pauses it,
/// never ends it.
pub async fn run(client: async_nats::Client, ingest: Ingest) {
    let js = jetstream::new(client);
    let hub = Hub {
        js: js.clone(),
        wake: ingest.wake,
        store: Arc::new(Mutex::new(ingest.store)),
        captures: ingest.data_dir.join(crate::data_dir::CAPTURES),
        retention: ingest.retention,
        stats: ingest.stats,
    };
    let (consumer, bucket) = loop {
        match prepare(&js).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!("fleet: {e:#}; trying again");
                tokio::time::sleep(PAUSE).await;
            }
        }
    };
    tracing::info!("fleet: taking alarms from {}", super::ALARMS_STREAM);
    loop {
        if let Err(e) = hub.take_batch(&consumer, &bucket).await {
            tracing::warn!("fleet: {e:#}");
            tokio::time::sleep(PAUSE).await;
        }
    }
}

/// The ingest's state between batches.
struct Hub {
    js: jetstream::Context,
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    store: Arc<Mutex<Store>>,
    captures: PathBuf,
    retention: Retention,
    stats: Arc<IngestStats>,
}

/// How a capture's message was taken.
enum Taken {
    /// Kept (or kept already): acknowledged, and its object deleted.
    Kept,
    /// Its alarm has not arrived: delivered again a little later.
    NotYet,
    /// The bus or the store failed: delivered again.
    Again(String),
    /// Never good: not delivered again.
    Refused(String),
}

impl Hub {
    /// Takes what is waiting (up to [`BATCH`] messages, at most a second's wait), stores its alarms
    /// in one transaction, acknowledges them, then takes its captures one by one.
    async fn take_batch(
        &self,
        consumer: &consumer::PullConsumer,
        bucket: &object_store::ObjectStore,
    ) -> anyhow::Result<()> {
        let (store, stats) = (&self.store, &*self.stats);
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .max_bytes(BATCH_BYTES)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("cannot fetch: {e}"))?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            match message {
                Ok(m) => messages.push(m),
                Err(e) => {
                    // What came before the error is stored and acknowledged; the rest comes again.
                    tracing::debug!("fleet: fetch ended: {e}");
                    break;
                }
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        let mut good = Vec::with_capacity(messages.len());
        let mut bad = Vec::new();
        let mut captures = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.subject.starts_with(&super::captures_subject("")) {
                captures.push(i);
                continue;
            }
            match ForwardedAlarm::read(m.subject.as_str(), &m.payload) {
                Ok(f) => good.push((i, f)),
                Err(why) => {
                    tracing::warn!(subject = %m.subject, "fleet: message refused: {why}");
                    bad.push(i);
                }
            }
        }
        let store = store.clone();
        let forwarded: Vec<ForwardedAlarm> = good.iter().map(|(_, f)| f.clone()).collect();
        let (forwarded, fresh) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut store = store
                .lock()
                .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
            let fresh = store
                .record_forwarded(forwarded.iter().map(|f| (f.agent.as_str(), f.id, &f.alarm)))?;
            Ok((forwarded, fresh))
        })
        .await??;
        // The lag of each new alarm: from its agent's commit to this one.
        let committed = chrono::Utc::now();
        let mut stored = 0;
        for (f, _) in forwarded.iter().zip(&fresh).filter(|(_, new)| **new) {
            stored += 1;
            if let Some(Ok(at)) = f
                .recorded_at
                .as_deref()
                .map(chrono::DateTime::parse_from_rfc3339)
            {
                let lag = committed - at.with_timezone(&chrono::Utc);
                stats.lag.record(lag.to_std().unwrap_or_default());
            }
        }
        if stored > 0
            && let Some(wake) = &self.wake
        {
            let _ = wake.try_send(());
        }
        use std::sync::atomic::Ordering::Relaxed;
        stats.stored.fetch_add(stored as u64, Relaxed);
        stats
            .repeats
            .fetch_add((good.len() - stored) as u64, Relaxed);
        stats.refused.fetch_add(bad.len() as u64, Relaxed);
        for (i, _) in &good {
            messages[*i]
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("cannot acknowledge: {e}"))?;
        }
        for i in bad {
            // Never good: not delivered again.
            let _ = messages[i].ack_with(AckKind::Term).await;
        }
        for i in captures {
            let m = &messages[i];
            let ack = match self.take_capture(bucket, m).await {
                Taken::Kept => AckKind::Ack,
                Taken::NotYet => {
                    let delivered = m.info().map(|i| i.delivered).unwrap_or(0);
                    if delivered < CAPTURE_DELIVERIES {
                        AckKind::Nak(Some(ALARM_NOT_YET))
                    } else {
                        tracing::warn!(subject = %m.subject, "fleet: a capture's alarm never came");
                        stats.refused.fetch_add(1, Relaxed);
                        AckKind::Term
                    }
                }
                Taken::Again(why) => {
                    tracing::warn!(subject = %m.subject, "fleet: capture not taken yet: {why}");
                    AckKind::Nak(Some(PAUSE))
                }
                Taken::Refused(why) => {
                    tracing::warn!(subject = %m.subject, "fleet: capture refused: {why}");
                    stats.refused.fetch_add(1, Relaxed);
                    AckKind::Term
                }
            };
            m.ack_with(ack)
                .await
                .map_err(|e| anyhow::anyhow!("cannot acknowledge: {e}"))?;
        }
        Ok(())
    }

    /// Takes one capture's message: fetches its file, checks it, keeps it beside its alarm.
    async fn take_capture(
        &self,
        bucket: &object_store::ObjectStore,
        message: &jetstream::Message,
    ) -> Taken {
        let c = match ForwardedCapture::read(message.subject.as_str(), &message.payload) {
            Ok(c) => c,
            Err(why) => return Taken::Refused(why.to_string()),
        };
        let name = format!("{}-{}", c.agent, c.file);
        let path = self.captures.join(&name);
        let store = self.store.clone();
        let (agent, id, file, named) = (c.agent.clone(), c.alarm, path.clone(), name.clone());
        let found = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<_>> {
            let store = store
                .lock()
                .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
            let Some(alarm) = store.alarm_from_agent(&agent, id)? else {
                return Ok(None);
            };
            // In the store (PostgreSQL, shared by hubs) under its name; else a file here.
            let in_store = store.keeps_capture_bytes();
            let file = if in_store { named.into() } else { file };
            let kept = store.captures_of(alarm)?.iter().any(|k| k.path == file);
            Ok(Some((alarm, kept, in_store)))
        })
        .await;
        let (alarm, kept, in_store) = match found {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => return Taken::NotYet,
            Ok(Err(e)) => return Taken::Again(format!("{e:#}")),
            Err(e) => return Taken::Again(e.to_string()),
        };
        if !kept {
            let bytes = match fetch(&self.js, &c).await {
                Ok(b) => b,
                Err(taken) => return taken,
            };
            let store = self.store.clone();
            let (dir, retention) = (self.captures.clone(), self.retention);
            let saved = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                if in_store {
                    let mut store = store
                        .lock()
                        .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
                    store.add_fetched_capture_bytes(alarm, &c.kind, &name, &bytes, &c.taken_at)?;
                    store.expire_capture_files(&retention);
                    return Ok(());
                }
                // A file without its row is what a hub killed between the two left: written again.
                let _ = std::fs::remove_file(dir.join(&name));
                let path =
                    crate::owner_only::save_in(&dir, &name, &bytes).map_err(anyhow::Error::msg)?;
                let mut store = store
                    .lock()
                    .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
                store.add_fetched_capture(
                    alarm,
                    &c.kind,
                    &path,
                    bytes.len() as u64,
                    &c.taken_at,
                )?;
                store.expire_capture_files(&retention);
                Ok(())
            })
            .await;
            match saved {
                Ok(Ok(())) => {
                    self.stats
                        .captures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Err(e)) => return Taken::Again(format!("{e:#}")),
                Err(e) => return Taken::Again(e.to_string()),
            }
        }
        // Taken: the bus need not keep it (and its max age deletes it if this fails).
        if let Err(e) = bucket.delete(&c.object).await {
            tracing::debug!("fleet: cannot delete {} from the bucket: {e}", c.object);
        }
        Taken::Kept
    }
}

/// Fetches a capture's bytes, no more than its message said, and checks they are the ones the
/// agent sent.
async fn fetch(js: &jetstream::Context, c: &ForwardedCapture) -> Result<Vec<u8>, Taken> {
    if c.bytes > super::MAX_CAPTURE_BYTES {
        return Err(Taken::Refused(format!(
            "{} bytes, over the {} a capture may have",
            c.bytes,
            super::MAX_CAPTURE_BYTES
        )));
    }
    super::fetch_object(
        js,
        super::CAPTURES_BUCKET,
        &c.object,
        c.bytes,
        &c.sha256,
        FETCH_TIMEOUT,
    )
    .await
    .map_err(|e| match e {
        super::FetchError::Again(why) => Taken::Again(why),
        super::FetchError::Wrong(why) => {
            Taken::Refused(format!("{why}: not the file agent {} sent", c.agent))
        }
    })
}
