//! The hub's side of the fleet: takes forwarded alarms from the durable consumer and stores
//! each once, acknowledging a message only after its alarm is committed. A hub killed between
//! the two gets the message again (after the consumer's ack wait) and stores nothing twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;

use super::wire::ForwardedAlarm;
use crate::store::Store;

/// At most this many messages are stored in one transaction.
const BATCH: usize = 512;

/// At most this many bytes of messages are held at once (the server caps one message at its
/// `max_payload`, 1 MiB by default: 512 of those would be half a gigabyte).
const BATCH_BYTES: usize = 16 << 20;

/// How long an unacknowledged message waits before it is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// How long to wait before trying again when the bus or the store fails.
const PAUSE: Duration = Duration::from_secs(1);

/// What the hub's ingest has done, for its status.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Alarms stored.
    pub stored: std::sync::atomic::AtomicU64,
    /// Messages that arrived again and changed nothing.
    pub repeats: std::sync::atomic::AtomicU64,
    /// Messages refused (not a forwarded alarm, another form, an impostor).
    pub refused: std::sync::atomic::AtomicU64,
}

/// Creates the fleet's stream and the hub's durable consumer if they are not there yet
/// (idempotent: every hub start, and every hub of a shared store, may call it).
pub async fn prepare(js: &jetstream::Context) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: super::ALARMS_STREAM.into(),
            subjects: vec![super::alarms_subject("*")],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: super::KEEP_FOR,
            duplicate_window: super::DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the stream {}: {e}", super::ALARMS_STREAM))?;
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
    Ok(consumer)
}

/// Runs the hub's ingest until the process ends: the bus away or the store failing pauses it,
/// never ends it.
pub async fn run(client: async_nats::Client, store: Store, stats: Arc<IngestStats>) {
    let js = jetstream::new(client);
    let store = Arc::new(Mutex::new(store));
    let consumer = loop {
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
        if let Err(e) = take_batch(&consumer, &store, &stats).await {
            tracing::warn!("fleet: {e:#}");
            tokio::time::sleep(PAUSE).await;
        }
    }
}

/// Takes what is waiting (up to [`BATCH`] messages, at most a second's wait), stores it in one
/// transaction, then acknowledges every message.
async fn take_batch(
    consumer: &consumer::PullConsumer,
    store: &Arc<Mutex<Store>>,
    stats: &IngestStats,
) -> anyhow::Result<()> {
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
    for (i, m) in messages.iter().enumerate() {
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
    let stored = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut store = store
            .lock()
            .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
        store.record_forwarded(forwarded.iter().map(|f| (f.agent.as_str(), f.id, &f.alarm)))
    })
    .await??;
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
    Ok(())
}
