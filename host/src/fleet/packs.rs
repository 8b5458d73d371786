//! Packs published to the fleet: an admin publishes a signed archive once, through the hub;
//! every agent hears of it, fetches it and decides for itself whether to run it.
//!
//! Two JetStream buckets carry it. The archives are objects in [`PACKS_BUCKET`]; what is
//! published now is one entry per pack in the key-value bucket [`PUBLISHED_BUCKET`] — a
//! [`Publication`]: the version, the archive's object, size and SHA-256, its signature and its
//! targets. The bucket keeps [`HISTORY`] entries per pack, so the hub can show what came before.
//!
//! Nothing here is trusted by an agent: the hub and the bus are a delivery path. An agent
//! checks the archive is the one the entry describes (size, SHA-256), then verifies its
//! signature against its *own* trusted keys, then reads the pack's own (signed) `[targets]`.
//! The entry's copy of the targets is for the hub's pages.

use async_nats::jetstream::{self, kv, object_store};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::model::report::{AgentSeen, FleetPack, RefusedBy, RolloutState};
use crate::model::targets::Targets;

use super::FetchError;

/// The object store bucket of published archives.
pub const PACKS_BUCKET: &str = "vigilo_packs";

/// The key-value bucket of what is published: one entry per pack, its key the pack's name.
pub const PUBLISHED_BUCKET: &str = "vigilo_pack_targets";

/// Entries kept per pack in [`PUBLISHED_BUCKET`] (the current one and those before it).
pub const HISTORY: i64 = 10;

/// The largest archive that travels (a pack's archive holds at most 64 MiB of files).
pub const MAX_PACK_BYTES: u64 = crate::packs::archive::MAX_TOTAL_BYTES;

/// The largest entry read from [`PUBLISHED_BUCKET`].
const MAX_ENTRY_BYTES: usize = 64 << 10;

/// How long fetching one archive may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// One pack as published: what agents fetch and check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The form version ([`crate::model::FORM_VERSION`]) the hub wrote.
    pub form: u32,
    /// The pack's name (also the entry's key).
    pub name: String,
    /// The version published.
    pub version: String,
    /// The archive's object in [`PACKS_BUCKET`].
    pub object: String,
    /// The archive's size.
    pub bytes: u64,
    /// The archive's SHA-256, in hex.
    pub sha256: String,
    /// The archive's minisign signature (`ARCHIVE.minisig`'s text).
    pub signature: String,
    /// The pack's own `[targets]`, copied for the hub's pages (agents read the archive's).
    #[serde(default)]
    pub targets: Targets,
    /// Who published it.
    pub published_by: String,
    /// When (UTC, RFC 3339).
    pub published_at: String,
}

impl Publication {
    /// The object an archive of `name` `version` is kept under.
    pub fn object_name(name: &str, version: &str) -> String {
        format!("{name}@{version}")
    }

    /// Reads the entry stored under `key`, believing the key about which pack it is.
    pub fn read(key: &str, value: &[u8]) -> Result<Publication, String> {
        let p: Publication = super::wire::read_entry(value, MAX_ENTRY_BYTES, "publication")?;
        if p.name != key {
            return Err(format!("under {key:?} but says it is pack {:?}", p.name));
        }
        if p.bytes > MAX_PACK_BYTES {
            return Err(format!(
                "an archive of {} bytes, over the {MAX_PACK_BYTES} a pack may have",
                p.bytes
            ));
        }
        Ok(p)
    }
}

/// The hub's side: both buckets, made if they are not there.
pub async fn prepare(
    js: &jetstream::Context,
) -> anyhow::Result<(kv::Store, object_store::ObjectStore)> {
    let published = super::kv_bucket(
        js,
        PUBLISHED_BUCKET,
        "vigilo packs published to the fleet, one entry per pack",
        HISTORY,
    )
    .await?;
    let archives = match js.get_object_store(PACKS_BUCKET).await {
        Ok(b) => b,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: PACKS_BUCKET.into(),
                description: Some("vigilo pack archives published to the fleet".into()),
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the bucket {PACKS_BUCKET}: {e}"))?,
    };
    Ok((published, archives))
}

/// The hub's way to publish: the bus, and both buckets once they are made (the bus may be
/// away when the hub starts; they are made at the first use that finds it).
pub struct Publisher {
    client: async_nats::Client,
    buckets: tokio::sync::OnceCell<(kv::Store, object_store::ObjectStore)>,
}

impl Publisher {
    /// A publisher over `client`.
    pub fn new(client: async_nats::Client) -> Publisher {
        Publisher {
            client,
            buckets: tokio::sync::OnceCell::new(),
        }
    }

    /// Both buckets, made if they are not there yet.
    pub async fn buckets(&self) -> anyhow::Result<&(kv::Store, object_store::ObjectStore)> {
        // The context is made here, inside the runtime, as JetStream's client wants.
        let js = jetstream::new(self.client.clone());
        self.buckets
            .get_or_try_init(|| async move { prepare(&js).await })
            .await
    }

    /// Makes the buckets as soon as the bus is there, so that agents find them.
    pub async fn prepare_when_up(&self) {
        let mut said = false;
        while let Err(e) = self.buckets().await {
            if !said {
                tracing::warn!("fleet: packs: {e:#}; trying again");
                said = true;
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }

    /// Publishes `archive` as `publication` says (see [`publish`]).
    pub async fn publish(
        &self,
        archive: &[u8],
        publication: &Publication,
    ) -> Result<u64, PublishError> {
        let (published, archives) = self
            .buckets()
            .await
            .map_err(|e| PublishError::Bus(format!("{e:#}")))?;
        publish(published, archives, archive, publication).await
    }

    /// Every pack published now.
    pub async fn published(&self) -> anyhow::Result<Vec<Publication>> {
        published(&self.buckets().await?.0).await
    }
}

/// Why a publication was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The admin must change something (a reused version number).
    #[error("{0}")]
    Conflict(String),
    /// The bus did not take it; trying again may work.
    #[error("{0}")]
    Bus(String),
}

/// Every pack published now, as the bucket has it.
pub async fn published(bucket: &kv::Store) -> anyhow::Result<Vec<Publication>> {
    let mut keys = bucket
        .keys()
        .await
        .map_err(|e| anyhow::anyhow!("cannot list {PUBLISHED_BUCKET}: {e}"))?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| anyhow::anyhow!("cannot list {PUBLISHED_BUCKET}: {e}"))?;
        if let Some(value) = bucket
            .get(&key)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read {key} in {PUBLISHED_BUCKET}: {e}"))?
        {
            match Publication::read(&key, &value) {
                Ok(p) => out.push(p),
                Err(why) => tracing::warn!(key, "fleet: a publication not read: {why}"),
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Publishes `archive` as `publication` describes it: the archive first, then the entry that
/// points agents at it. A version published before with other bytes is refused: agents that
/// took the first would never take the second.
pub async fn publish(
    published: &kv::Store,
    archives: &object_store::ObjectStore,
    archive: &[u8],
    publication: &Publication,
) -> Result<u64, PublishError> {
    let bus = |what: &str, e: &dyn std::fmt::Display| PublishError::Bus(format!("{what}: {e}"));
    if let Ok(mut history) = published.history(&publication.name).await {
        while let Some(Ok(entry)) = history.next().await {
            if let Ok(before) = Publication::read(&entry.key, &entry.value)
                && before.version == publication.version
                && before.sha256 != publication.sha256
            {
                return Err(PublishError::Conflict(format!(
                    "{} {} was published before with different content; a changed pack needs a \
                     new version",
                    publication.name, publication.version
                )));
            }
        }
    }
    archives
        .put(
            publication.object.as_str(),
            &mut std::io::Cursor::new(archive),
        )
        .await
        .map_err(|e| bus("cannot store the archive", &e))?;
    let entry = serde_json::to_vec(publication).map_err(|e| bus("cannot encode", &e))?;
    published
        .put(&publication.name, entry.into())
        .await
        .map_err(|e| bus("cannot publish", &e))
}

/// An agent's side: fetches the archive `p` names, no more than it says, and checks it is
/// that archive.
pub async fn fetch(js: &jetstream::Context, p: &Publication) -> Result<Vec<u8>, FetchError> {
    super::fetch_object(
        js,
        PACKS_BUCKET,
        &p.object,
        p.bytes,
        &p.sha256,
        FETCH_TIMEOUT,
    )
    .await
}

/// How many times [`fetch_patiently`] asks before a publication counts as not fetched (the agent
/// tries again when the pack is next published, or at its next start).
pub const FETCH_TRIES: u32 = 5;

/// [`fetch`], asked again (after 2, 4, 8, 16 s) while the bus says "later": a rollout has every
/// agent fetch at once, and a bus busy for a moment is no reason to refuse a pack.
pub async fn fetch_patiently(
    js: &jetstream::Context,
    p: &Publication,
) -> Result<Vec<u8>, FetchError> {
    let mut tries = 0;
    loop {
        match fetch(js, p).await {
            Err(FetchError::Again(why)) if tries + 1 < FETCH_TRIES => {
                tries += 1;
                tracing::debug!(pack = %p.name, "fleet: {why}; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1 << tries)).await;
            }
            done => return done,
        }
    }
}

/// An agent's side: hears of every publication — each pack's current one first, then every
/// new one as it comes — until the process ends, finding the bucket once the hub has made it.
pub async fn watch(client: async_nats::Client, heard: tokio::sync::mpsc::Sender<Publication>) {
    let (entries, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(super::watch_kv(client, PUBLISHED_BUCKET, entries));
    while let Some(entry) = rx.recv().await {
        if entry.operation != kv::Operation::Put {
            continue;
        }
        match Publication::read(&entry.key, &entry.value) {
            Ok(p) => {
                if heard.send(p).await.is_err() {
                    return;
                }
            }
            Err(why) => tracing::warn!(key = %entry.key, "fleet: a publication refused: {why}"),
        }
    }
}

/// Where each publication runs, from the agents' last heartbeats: how many run each version
/// (an agent that refused the published one may run an earlier one), who refused the
/// published one and why, who has not said.
pub fn rollout(publications: &[Publication], agents: &[AgentSeen]) -> Vec<FleetPack> {
    publications
        .iter()
        .map(|p| {
            let mut running: BTreeMap<String, usize> = BTreeMap::new();
            let mut refused: BTreeMap<RolloutState, RefusedBy> = BTreeMap::new();
            let mut waiting = 0;
            for a in agents {
                let beat = &a.heartbeat;
                let said = beat
                    .rollout
                    .iter()
                    .find(|r| r.name == p.name && r.version == p.version);
                let runs = beat.packs.iter().find(|(name, _)| *name == p.name);
                if let Some((_, version)) = runs {
                    *running.entry(version.clone()).or_default() += 1;
                }
                match said {
                    Some(r) if r.state != RolloutState::Running => {
                        let by = refused.entry(r.state).or_insert_with(|| RefusedBy {
                            state: r.state,
                            agents: Vec::new(),
                            errors: r.errors.clone(),
                        });
                        by.agents.push(beat.agent.clone());
                    }
                    Some(_) => {}
                    None if runs.is_some_and(|(_, v)| *v == p.version) => {}
                    None => waiting += 1,
                }
            }
            let mut refused: Vec<RefusedBy> = refused.into_values().collect();
            for r in &mut refused {
                r.agents.sort();
            }
            FleetPack {
                name: p.name.clone(),
                version: p.version.clone(),
                published_by: p.published_by.clone(),
                published_at: p.published_at.clone(),
                targets: p.targets.words(),
                running,
                refused,
                waiting,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication() -> Publication {
        Publication {
            form: crate::model::FORM_VERSION,
            name: "dlp".into(),
            version: "1.4.0".into(),
            object: Publication::object_name("dlp", "1.4.0"),
            bytes: 100,
            sha256: "ab".repeat(32),
            signature: "untrusted comment: x".into(),
            targets: Targets::default(),
            published_by: "admin (alice)".into(),
            published_at: "2026-12-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_publication_is_read_under_its_own_key_within_bounds() {
        let p = publication();
        let json = serde_json::to_vec(&p).expect("json");
        assert_eq!(Publication::read("dlp", &json).expect("read"), p);
        assert!(Publication::read("other", &json).is_err_and(|e| e.contains("\"dlp\"")));
        let huge = Publication {
            bytes: MAX_PACK_BYTES + 1,
            ..p.clone()
        };
        let json = serde_json::to_vec(&huge).expect("json");
        assert!(Publication::read("dlp", &json).is_err_and(|e| e.contains("over the")));
        assert!(Publication::read("dlp", &vec![b' '; MAX_ENTRY_BYTES + 1]).is_err());
        assert!(Publication::read("dlp", b"{").is_err_and(|e| e.starts_with("not a publication")));
        let future = serde_json::to_vec(&Publication {
            form: crate::model::FORM_VERSION + 1,
            ..p
        })
        .expect("json");
        assert!(Publication::read("dlp", &future).is_err_and(|e| e.contains("form")));
    }
}
