//! The fleet: agents report to one hub through NATS JetStream.
//!
//! The bus is an existing distributed engine, not a home-made server: JetStream persists what
//! agents publish, acknowledges each publish, drops a publish it has seen under the same
//! `Nats-Msg-Id`, and keeps a durable consumer's place for the hub across restarts. What vigilo
//! adds is the discipline around it: an agent commits an alarm and its *forward* row in one
//! transaction (the outbox, as webhooks), publishes until the server acknowledges, and the hub
//! stores each agent's alarm once (keyed by agent and the agent's id) before it acknowledges the
//! message — so a bus down for an hour, an agent restarted, or `kill -9` anywhere loses nothing
//! and doubles nothing.
//!
//! - [`wire`]: the message an agent publishes, versioned like the model's forms.
//! - `actions::forward`: the agent's side, a blocking publish for the outbox's `forward` lane.
//! - [`ingest`]: the hub's side, the durable consumer into the store.
//! - [`heartbeat`]: agents' heartbeats in a key-value bucket, watched by the hub.
//!
//! Subjects: `vigilo.alarms.<agent>` and `vigilo.captures.<agent>` (both in one stream, so the
//! hub takes them through one consumer), and the capture files in the object store bucket
//! [`CAPTURES_BUCKET`]. An agent's id is one subject token (letters, digits, `-`,
//! `_`), so with per-agent credentials the bus lets an agent publish only under its own subject,
//! and the hub believes the subject, not the payload.

pub(crate) mod auth;
pub(crate) mod groups;
pub(crate) mod heartbeat;
pub(crate) mod ingest;
pub(crate) mod packs;
pub(crate) mod sources;
pub(crate) mod wire;

use std::time::Duration;

/// The JetStream stream every agent's alarms go to.
pub const ALARMS_STREAM: &str = "VIGILO_ALARMS";

/// The hub's durable consumer of [`ALARMS_STREAM`]: its place survives the hub's restarts.
pub const HUB_CONSUMER: &str = "vigilo-hub";

/// How long the stream keeps alarms the hub has not taken: a hub away longer loses them.
pub const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long JetStream remembers a message id to drop a repeated publish (the hub's store
/// drops repeats of any age; this spares it most of them).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The subject an agent publishes its alarms under.
pub fn alarms_subject(agent: &str) -> String {
    format!("vigilo.alarms.{agent}")
}

/// The subject an agent says under that a capture of one of its alarms is in the bucket.
pub fn captures_subject(agent: &str) -> String {
    format!("vigilo.captures.{agent}")
}

/// The object store bucket captures travel through: the hub takes each into its own data
/// folder and deletes it from the bucket; what the hub never takes expires with [`KEEP_FOR`].
pub const CAPTURES_BUCKET: &str = "vigilo_captures";

/// The largest capture that travels (a screenshot of a 4K screen is a few MiB, a video's clip
/// hundreds of KiB): a hub does not fetch more than this for one.
pub const MAX_CAPTURE_BYTES: u64 = 64 << 20;

/// How to reach the bus, and who this process is on it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSettings {
    /// The NATS server(s): `nats://host:4222` (`tls://` for TLS), comma-separated for a
    /// cluster; none for an agent that only takes packs from `pack_source`s.
    #[serde(default)]
    pub url: Option<String>,
    /// This agent's name in the fleet (default: the host name).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// A file holding this agent's (or the hub's) nkey seed, as `vigilo fleet credentials`
    /// writes them; owner-only.
    #[serde(default)]
    pub nkey: Option<std::path::PathBuf>,
    /// A NATS credentials file (JWT and nkey seed), for servers run in operator mode.
    #[serde(default)]
    pub credentials: Option<std::path::PathBuf>,
    /// A PEM file of the certificate authority the server's TLS certificate is checked against.
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// This agent's tags (`tags = { department = "finance" }`), which a pack's `[targets]` and
    /// an alarm's `applies_to` may name.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Web servers this agent takes packs from, besides (or without) the bus.
    #[serde(default)]
    pub pack_source: Vec<sources::PackSourceSettings>,
}

/// A tag that cannot be matched as written.
#[derive(Debug, thiserror::Error)]
#[error(
    "[fleet] tags: {0:?}: a tag's name and value are 1 to 64 characters, no control characters"
)]
pub struct BadTag(pub String);

impl FleetSettings {
    /// Checks the tags are ones a target can name.
    pub fn check_tags(&self) -> Result<(), BadTag> {
        let ok =
            |s: &str| (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control);
        match self.tags.iter().find(|(k, v)| !ok(k) || !ok(v)) {
            Some((k, v)) => Err(BadTag(format!("{k} = {v}"))),
            None => Ok(()),
        }
    }
}

/// An agent id that cannot be a subject token.
#[derive(Debug, thiserror::Error)]
#[error(
    "agent id {0:?}: use 1 to 64 letters, digits, `-` or `_` (it is a NATS subject token; \
     set one with --agent-id or [fleet] agent_id)"
)]
pub struct BadAgentId(pub String);

/// Checks `id` is one subject token (and a sensible name).
pub fn check_agent_id(id: &str) -> Result<&str, BadAgentId> {
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(BadAgentId(id.to_string()))
    }
}

/// The default agent id: the host name, with what a subject token cannot hold replaced.
pub fn default_agent_id() -> String {
    let host = crate::os::process::hostname();
    let id: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() { "agent".into() } else { id }
}

/// Opens a key-value bucket, creating it if it is not there (the hub, at every start), keeping
/// `history` values per key.
///
/// A bucket is a stream `KV_<bucket>` on subjects `$KV.<bucket>.>`. It is created as that
/// stream: the client's own `create_key_value` first asks for the account's limits in a form
/// newer servers answer and Debian's nats-server 2.9 does not.
pub(crate) async fn kv_bucket(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    description: &str,
    history: i64,
) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    use async_nats::jetstream::stream;
    if let Ok(found) = js.get_key_value(bucket).await {
        return Ok(found);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the bucket {bucket}: {e}"))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the bucket {bucket}: {e}"))
}

/// Hears every entry of a key-value bucket — each key's current value first, then every change
/// as it comes — until nobody listens, finding the bucket once the hub has made it and
/// watching again after the bus comes back.
pub(crate) async fn watch_kv(
    client: async_nats::Client,
    bucket: &'static str,
    heard: tokio::sync::mpsc::Sender<async_nats::jetstream::kv::Entry>,
) {
    let js = async_nats::jetstream::new(client);
    let mut waited = false;
    loop {
        match watch_kv_once(&js, bucket, &heard).await {
            Ok(()) => return,
            Err(e) if !waited => {
                tracing::info!("fleet: {e:#}");
                waited = true;
            }
            Err(e) => tracing::debug!("fleet: {e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One watch, until it fails (`Ok`: nobody listens any more).
async fn watch_kv_once(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    heard: &tokio::sync::mpsc::Sender<async_nats::jetstream::kv::Entry>,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let store = js
        .get_key_value(bucket)
        .await
        .map_err(|e| anyhow::anyhow!("no bucket {bucket} yet (is the hub running?): {e}"))?;
    let mut entries = store
        .watch_with_history(">")
        .await
        .map_err(|e| anyhow::anyhow!("cannot watch {bucket}: {e}"))?;
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| anyhow::anyhow!("the watch of {bucket} ended: {e}"))?;
        if heard.send(entry).await.is_err() {
            return Ok(());
        }
    }
    anyhow::bail!("the watch of {bucket} ended")
}

/// Why an object was not fetched from a bucket.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The bus did not give it now; later may work.
    #[error("{0}")]
    Again(String),
    /// What the bus holds is not what was announced (missing, another size, another SHA-256).
    #[error("{0}")]
    Wrong(String),
}

/// Fetches `object` from the object store `bucket`: no more than the `bytes` announced for
/// it, within `timeout`, and only if its SHA-256 (hex) is the one announced — what a capture's
/// message and a pack's publication say, each from its own sender.
///
/// Its description and each chunk are read with direct gets (`$JS.API.DIRECT.GET`), not the
/// ordered consumer the client's `ObjectStore::get` creates: a rollout has every agent fetch
/// the same archive at once, and ten thousand consumers created and deleted in the same
/// seconds cost the bus hundreds of MiB it keeps; a direct get is a request the stream answers
/// and forgets. Object store buckets allow direct gets from their creation.
pub(crate) async fn fetch_object(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    object: &str,
    bytes: u64,
    sha256: &str,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    use sha2::Digest;
    let fetched = tokio::time::timeout(timeout, read_object(js, bucket, object, bytes))
        .await
        .map_err(|_| FetchError::Again(format!("fetching {object} took too long")))??;
    if crate::hex::encode(&sha2::Sha256::digest(&fetched)) != sha256 {
        return Err(FetchError::Wrong(format!(
            "the object {object} is not the one announced (its SHA-256 differs)"
        )));
    }
    Ok(fetched)
}

/// Reads `object`'s chunks in order, one direct get each, stopping at `bytes`.
async fn read_object(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    object: &str,
    bytes: u64,
) -> Result<Vec<u8>, FetchError> {
    use async_nats::jetstream::object_store::InfoErrorKind;
    use async_nats::jetstream::stream::DirectGetErrorKind;
    let store = js
        .get_object_store(bucket)
        .await
        .map_err(|e| FetchError::Again(format!("no bucket {bucket}: {e}")))?;
    let info = store.info(object).await.map_err(|e| match e.kind() {
        InfoErrorKind::NotFound => FetchError::Wrong(format!("no object {object} in {bucket}")),
        _ => FetchError::Again(format!("cannot look {object} up: {e}")),
    })?;
    if info.deleted {
        return Err(FetchError::Wrong(format!(
            "{object} was deleted from {bucket}"
        )));
    }
    if info.size as u64 != bytes {
        return Err(FetchError::Wrong(format!(
            "the object {object} has {} bytes, {bytes} were announced",
            info.size
        )));
    }
    let subject = chunks_subject(bucket, object, &info.nuid)?;
    let chunks = js
        .get_stream_no_info(format!("OBJ_{bucket}"))
        .await
        .map_err(|e| FetchError::Again(format!("no stream for {bucket}: {e}")))?;
    let mut read = Vec::with_capacity(bytes as usize);
    let mut next = None;
    while (read.len() as u64) < bytes {
        let chunk = chunks
            .direct_get_next_for_subject(subject.as_str(), next)
            .await
            .map_err(|e| match e.kind() {
                DirectGetErrorKind::NotFound => FetchError::Wrong(format!(
                    "the object {object} ends after {} of its {bytes} bytes",
                    read.len()
                )),
                _ => FetchError::Again(format!("cannot read {object}: {e}")),
            })?;
        take_chunk(&mut read, &chunk.payload, bytes, object)?;
        next = Some(chunk.sequence + 1);
    }
    Ok(read)
}

/// The subject an object's chunks are on, from the identifier its writer gave them: only
/// letters and digits, for a wildcard there would read other objects' chunks.
fn chunks_subject(bucket: &str, object: &str, nuid: &str) -> Result<String, FetchError> {
    if nuid.is_empty() || !nuid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FetchError::Wrong(format!(
            "the object {object} names its chunks {nuid:?}, not an identifier"
        )));
    }
    Ok(format!("$O.{bucket}.C.{nuid}"))
}

/// Adds a chunk to what was read of `object`, unless it would pass the `bytes` announced.
fn take_chunk(
    read: &mut Vec<u8>,
    chunk: &[u8],
    bytes: u64,
    object: &str,
) -> Result<(), FetchError> {
    if read.len() as u64 + chunk.len() as u64 > bytes {
        return Err(FetchError::Wrong(format!(
            "the object {object} has more than the {bytes} bytes announced"
        )));
    }
    read.extend_from_slice(chunk);
    Ok(())
}

/// Told when the bus comes and goes: whether it is there, and what to show about it.
pub type OnBusChange = std::sync::Arc<dyn Fn(bool, String) + Send + Sync>;

/// Connects to the bus in the background: the client returns at once and keeps connecting,
/// so a process starts, and works alone, while the bus is away. `on_change` hears whether the
/// connection is up, from the client's own state (looked at twice a second: its events can be
/// missed around the first connection).
pub(crate) async fn connect(
    settings: &FleetSettings,
    name: &str,
    on_change: OnBusChange,
) -> anyhow::Result<async_nats::Client> {
    crate::use_ring_for_tls();
    let Some(url) = settings.url.clone() else {
        anyhow::bail!("[fleet] has no url: no bus to connect to");
    };
    on_change(false, format!("connecting to {url}"));
    let logged = url.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        // Replies to this process only: the server's permissions keep others' from it.
        .custom_inbox_prefix(auth::inbox_prefix(name))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let url = logged.clone();
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("fleet: connected to {url}"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("fleet: disconnected from {url}; reconnecting")
                    }
                    // A permission refused, a key not accepted: what an operator must see.
                    async_nats::Event::ServerError(e) => {
                        tracing::warn!("fleet: the server at {url} says: {e}")
                    }
                    async_nats::Event::ClientError(e) => tracing::warn!("fleet: {e}"),
                    other => tracing::debug!("fleet: {other}"),
                }
            }
        });
    if let Some(path) = &settings.nkey {
        options = options.nkey(auth::read_seed(path)?);
    }
    if let Some(path) = &settings.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| anyhow::anyhow!("fleet credentials {}: {e}", path.display()))?;
    }
    if let Some(ca) = &settings.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let urls: Vec<&str> = url.split(',').map(str::trim).collect();
    let servers = urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("fleet url {url:?}: {e}"))?;
    let client = options.connect(servers).await?;
    let watched = client.clone();
    tokio::spawn(async move {
        let mut was = None;
        loop {
            let up = watched.connection_state() == async_nats::connection::State::Connected;
            if was != Some(up) {
                let detail = if up {
                    format!("connected to {url}")
                } else {
                    format!("not connected to {url}; reconnecting")
                };
                on_change(up, detail);
                was = Some(up);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_whose_writer_names_its_chunks_with_a_wildcard_is_not_read() {
        assert_eq!(
            chunks_subject("vigilo_packs", "dlp", "Ab12")
                .ok()
                .as_deref(),
            Some("$O.vigilo_packs.C.Ab12")
        );
        for hostile in ["", ">", "*", "a.>", "a b", "x.*.y"] {
            assert!(
                matches!(
                    chunks_subject("vigilo_packs", "dlp", hostile),
                    Err(FetchError::Wrong(_))
                ),
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn chunks_past_the_announced_size_are_refused_not_kept() {
        let mut read = Vec::new();
        take_chunk(&mut read, &[1; 6], 10, "dlp").expect("within");
        take_chunk(&mut read, &[2; 4], 10, "dlp").expect("exactly the size");
        let mut more = read.clone();
        assert!(matches!(
            take_chunk(&mut more, &[3], 10, "dlp"),
            Err(FetchError::Wrong(_))
        ));
        assert_eq!(more, read, "nothing past the bound is kept");
    }

    #[test]
    fn an_agent_id_is_one_subject_token() {
        assert!(check_agent_id("ws-dave_04").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">", &"x".repeat(65)] {
            assert!(check_agent_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_agent_id(&default_agent_id()).is_ok());
        assert_eq!(alarms_subject("ws-1"), "vigilo.alarms.ws-1");
    }
}
