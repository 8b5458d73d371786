//! Heartbeats: each agent keeps one entry in a JetStream key-value bucket, its key the agent's
//! id, rewritten every little while; the hub watches the bucket into its store and counts an
//! agent silent for too long as not reporting (ActivTrak's "computers not reporting").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

use crate::model::report::{ACTIVITY_ROWS, Heartbeat, ROLLOUT_ERRORS, ROLLOUT_ROWS};

/// At most this many tags in a heartbeat.
const MAX_TAGS: usize = 64;
use crate::store::Store;

/// The key-value bucket of heartbeats.
pub const AGENTS_BUCKET: &str = "vigilo_agents";

/// How often an agent says it is there, unless told otherwise.
pub const EVERY: Duration = Duration::from_secs(30);

/// How long the hub waits after an agent's last heartbeat before it counts it as not
/// reporting, unless told otherwise.
pub const QUIET_AFTER: Duration = Duration::from_secs(5 * 60);

/// Creates the bucket if it is not there (the hub, at every start).
pub async fn prepare(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    super::kv_bucket(
        js,
        AGENTS_BUCKET,
        "vigilo agents' heartbeats, one entry per agent",
        1,
    )
    .await
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

/// Reads the heartbeat stored under `key`, believing the key (what the bus lets an agent
/// write) about who sent it, not the payload.
fn read(key: &str, value: &[u8]) -> Result<Heartbeat, String> {
    super::wire::check_form(value).map_err(|e| match e {
        super::wire::BadMessage::Json(e) => format!("not a heartbeat: {e}"),
        other => other.to_string(),
    })?;
    let beat: Heartbeat =
        serde_json::from_slice(value).map_err(|e| format!("not a heartbeat: {e}"))?;
    if beat.agent != key {
        return Err(format!(
            "under {key:?} but says it is from agent {:?}",
            beat.agent
        ));
    }
    // The activity totals go into the risk tables: as many as an agent sends, and each an
    // hour's start in the store's form, or none of them.
    if beat.activity.len() > ACTIVITY_ROWS {
        return Err(format!(
            "{} activity totals, at most {ACTIVITY_ROWS} are taken",
            beat.activity.len()
        ));
    }
    // What it says of the fleet's packs and its tags is shown on the hub's pages: bounded.
    if beat.rollout.len() > ROLLOUT_ROWS || beat.tags.len() > MAX_TAGS {
        return Err(format!(
            "{} packs' rollout and {} tags, at most {ROLLOUT_ROWS} and {MAX_TAGS} are taken",
            beat.rollout.len(),
            beat.tags.len()
        ));
    }
    if let Some(r) = beat
        .rollout
        .iter()
        .find(|r| r.errors.len() > ROLLOUT_ERRORS)
    {
        return Err(format!(
            "pack {:?}: {} errors, at most {ROLLOUT_ERRORS} are taken",
            r.name,
            r.errors.len()
        ));
    }
    if let Some(bad) = beat.activity.iter().find(|c| {
        c.user.is_empty()
            || c.user.len() > 256
            || chrono::DateTime::parse_from_rfc3339(&c.hour)
                .map_or(true, |t| crate::risk::hour_of(t) != c.hour)
    }) {
        return Err(format!(
            "activity total of {:?} at {:?}: expected a user name and an hour's start \
             (2026-11-02T09:00:00.000Z)",
            bad.user, bad.hour
        ));
    }
    Ok(beat)
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
        let beat = match read(&entry.key, &entry.value) {
            Ok(b) => b,
            Err(why) => {
                tracing::warn!(key = %entry.key, "fleet: heartbeat refused: {why}");
                continue;
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::ActivityCount;

    #[test]
    fn a_heartbeat_is_believed_only_under_its_own_key_and_form() {
        let report = r#"{"events":0,"events_per_second":0.0,"alarms":0,"alarms_today":0,
            "generation":1,"sources":{},"programs":[],"latency":null,"shed":{},
            "outbox":{"pending":0,"dead":0},"store":{"bytes":0}}"#;
        let beat = |agent: &str, form: u32| {
            format!(
                r#"{{"form":{form},"agent":"{agent}","host":"h","version":"0.1.0","os":"linux",
                "at":"2026-12-01T00:00:00.000Z","packs":[["standard","1.0.0"]],"status":{report}}}"#
            )
        };
        let good = read("ws-1", beat("ws-1", crate::model::FORM_VERSION).as_bytes()).expect("read");
        assert_eq!(good.packs, [("standard".to_string(), "1.0.0".to_string())]);
        let other = read("ws-2", beat("ws-1", crate::model::FORM_VERSION).as_bytes());
        assert!(other.is_err_and(|e| e.contains("\"ws-1\"")));
        let future = read(
            "ws-1",
            beat("ws-1", crate::model::FORM_VERSION + 1).as_bytes(),
        );
        assert!(future.is_err_and(|e| e.contains("form")));
        assert!(read("ws-1", b"\xff{not json").is_err_and(|e| e.starts_with("not a heartbeat")));

        // Activity totals: bounded in number, each a real hour's start.
        let with = |activity: Vec<ActivityCount>| {
            let mut beat: serde_json::Value =
                serde_json::from_str(&beat("ws-1", crate::model::FORM_VERSION)).expect("json");
            beat["activity"] = serde_json::to_value(activity).expect("json");
            read("ws-1", beat.to_string().as_bytes())
        };
        let count = |hour: &str| ActivityCount {
            user: "ann".into(),
            hour: hour.into(),
            records: 3,
        };
        let nine = "2026-11-02T09:00:00.000Z";
        assert_eq!(with(vec![count(nine)]).expect("good").activity.len(), 1);
        for hour in ["2026-11-02T09:30:00.000Z", "yesterday", ""] {
            assert!(
                with(vec![count(hour)]).is_err_and(|e| e.contains("an hour's start")),
                "{hour}"
            );
        }
        let flood = vec![count(nine); ACTIVITY_ROWS + 1];
        assert!(with(flood).is_err_and(|e| e.contains("at most")));

        // A rollout and tags: bounded too.
        let rollout = |rows: usize, errors: usize| {
            let mut beat: serde_json::Value =
                serde_json::from_str(&beat("ws-1", crate::model::FORM_VERSION)).expect("json");
            let row = crate::model::report::PackRollout {
                name: "dlp".into(),
                version: "1.0.0".into(),
                state: crate::model::report::RolloutState::DoesNotLoad,
                errors: vec!["x".into(); errors],
                at: nine.into(),
            };
            beat["rollout"] = serde_json::to_value(vec![row; rows]).expect("json");
            read("ws-1", beat.to_string().as_bytes())
        };
        assert_eq!(rollout(2, 3).expect("good").rollout.len(), 2);
        assert!(rollout(ROLLOUT_ROWS + 1, 0).is_err_and(|e| e.contains("at most")));
        assert!(rollout(1, ROLLOUT_ERRORS + 1).is_err_and(|e| e.contains("\"dlp\"")));
    }
}
