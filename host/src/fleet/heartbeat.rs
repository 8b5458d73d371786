//! Heartbeats: each agent keeps one entry in a JetStream key-value bucket, its key the agent's
//! id, rewritten every little while; the hub watches the bucket into its store and counts an
//! agent silent for too long as not reporting (ActivTrak's "computers not reporting").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

use crate::model::report::Heartbeat;
use crate::store::Store;

/// The key-value bucket of heartbeats.
pub const AGENTS_BUCKET: &str = "vigilo_agents";

/// How often an agent says it is there, unless told otherwise.
pub const EVERY: Duration = Duration::from_secs(30);

/// How long the hub waits after an agent's last heartbeat before it counts it as not
/// reporting, unless told otherwise.
pub const QUIET_AFTER: Duration = Duration::from_secs(5 * 60);

/// Creates the bucket if it is not there (the hub, at every start).
///
/// A bucket is a stream `KV_<bucket>` on subjects `$KV.<bucket>.>`, one message kept per
/// subject. It is created as that stream: the client's own `create_key_value` first asks for
/// the account's limits in a form newer servers answer and Debian's nats-server 2.9 does not.
pub async fn prepare(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    if let Ok(bucket) = js.get_key_value(AGENTS_BUCKET).await {
        return Ok(bucket);
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{AGENTS_BUCKET}"),
        description: Some("vigilo agents' heartbeats, one entry per agent".into()),
        subjects: vec![format!("$KV.{AGENTS_BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the bucket {AGENTS_BUCKET}: {e}"))?;
    js.get_key_value(AGENTS_BUCKET)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the bucket {AGENTS_BUCKET}: {e}"))
}

/// An agent's side: puts its heartbeats, finding the bucket once the hub has made it.
pub struct Sender {
    js: jetstream::Context,
    bucket: Option<kv::Store>,
}

impl Sender {
    /// A sender over `client`.
    pub fn new(client: async_nats::Client) -> Sender {
        Sender {
            js: jetstream::new(client),
            bucket: None,
        }
    }

    /// Puts `beat` under its agent's key.
    pub async fn send(&mut self, beat: &Heartbeat) -> anyhow::Result<()> {
        let bucket = match &self.bucket {
            Some(b) => b,
            None => {
                let found = self.js.get_key_value(AGENTS_BUCKET).await.map_err(|e| {
                    anyhow::anyhow!("no heartbeat bucket yet (is the hub running?): {e}")
                })?;
                self.bucket.insert(found)
            }
        };
        let value = serde_json::to_vec(beat)?;
        bucket
            .put(&beat.agent, value.into())
            .await
            .map_err(|e| anyhow::anyhow!("heartbeat not sent: {e}"))?;
        Ok(())
    }
}

/// The hub's side: keeps every heartbeat in the store as it comes, until the process ends.
pub async fn watch(client: async_nats::Client, store: Arc<Mutex<Store>>) {
    let js = jetstream::new(client);
    loop {
        if let Err(e) = watch_once(&js, &store).await {
            tracing::warn!("fleet: heartbeats: {e:#}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn watch_once(js: &jetstream::Context, store: &Arc<Mutex<Store>>) -> anyhow::Result<()> {
    let bucket = prepare(js).await?;
    let mut entries = bucket
        .watch_all()
        .await
        .map_err(|e| anyhow::anyhow!("cannot watch {AGENTS_BUCKET}: {e}"))?;
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| anyhow::anyhow!("watch ended: {e}"))?;
        if entry.operation != kv::Operation::Put {
            continue;
        }
        let beat: Heartbeat = match serde_json::from_slice(&entry.value) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(key = %entry.key, "fleet: not a heartbeat: {e}");
                continue;
            }
        };
        // The key is what the bus lets an agent write; the payload is only what it says.
        if beat.agent != entry.key {
            tracing::warn!(key = %entry.key, claimed = %beat.agent, "fleet: heartbeat refused");
            continue;
        }
        let store = store.clone();
        let now = crate::event::Event::utc_string(chrono::Utc::now().fixed_offset());
        let back = tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
            store.agent_seen(&beat, &now)
        })
        .await??;
        if back {
            tracing::info!(agent = %entry.key, "fleet: reporting again");
        }
    }
    Ok(())
}
