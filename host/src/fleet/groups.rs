//! Groups, defined once on the hub, known to every agent: the names targets list
//! (`groups = ["finance"]`) and their member users and computers.
//!
//! They live in the key-value bucket [`GROUPS_BUCKET`], one entry per group under its folded
//! name. The hub writes them (its Groups page, `PUT /api/v1/fleet/groups/NAME`); agents only
//! watch. An agent does not take the hub's word for what its *packs* are (they are signed),
//! but a group is the hub's to define: who is in finance is an admin's decision made at the
//! hub, so an agent believes it — bounded, checked, and only ever narrowing or widening
//! whom a signed pack's own targets already name.

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use crate::model::targets::{Group, check_group_name, fold};

/// The key-value bucket of groups.
pub const GROUPS_BUCKET: &str = "vigilo_groups";

/// Values kept per group (the current one and those before it).
const HISTORY: i64 = 5;

/// The largest entry read (the bus's default largest message).
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// The most groups an agent keeps.
pub const MAX_GROUPS: usize = 1000;

/// The key a group is kept under.
pub fn key_of(name: &str) -> String {
    fold(name)
}

/// Reads the entry under `key`: bounded, of a form this agent reads, and the group the key
/// says.
pub fn read(key: &str, value: &[u8]) -> Result<Group, String> {
    let group: Group = super::wire::read_entry(value, MAX_ENTRY_BYTES, "group")?;
    group.check().map_err(|e| e.to_string())?;
    if key_of(&group.name) != key {
        return Err(format!(
            "under {key:?} but says it is group {:?}",
            group.name
        ));
    }
    Ok(group)
}

/// A change an agent hears of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A group is set (made or changed).
    Set(Group),
    /// The group under this key is gone.
    Removed(String),
}

/// The hub's side: the bucket, made at the first use that finds the bus.
pub struct GroupBook {
    client: async_nats::Client,
    bucket: tokio::sync::OnceCell<kv::Store>,
}

/// Why a group was not kept.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// What the admin gave is not a group.
    #[error("{0}")]
    Bad(#[from] crate::model::targets::BadGroup),
    /// The bus did not take it; trying again may work.
    #[error("{0}")]
    Bus(String),
}

impl GroupBook {
    /// The groups over `client`.
    pub fn new(client: async_nats::Client) -> GroupBook {
        GroupBook {
            client,
            bucket: tokio::sync::OnceCell::new(),
        }
    }

    async fn bucket(&self) -> Result<&kv::Store, GroupError> {
        let js = async_nats::jetstream::new(self.client.clone());
        self.bucket
            .get_or_try_init(|| async move {
                super::kv_bucket(
                    &js,
                    GROUPS_BUCKET,
                    "vigilo groups: users and computers under one name",
                    HISTORY,
                )
                .await
            })
            .await
            .map_err(|e| GroupError::Bus(format!("{e:#}")))
    }

    /// Makes the bucket as soon as the bus is there, so that agents find it.
    pub async fn prepare_when_up(&self) {
        let mut said = false;
        while let Err(e) = self.bucket().await {
            if !said {
                tracing::warn!("fleet: groups: {e}; trying again");
                said = true;
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }

    /// Every group, by name.
    pub async fn list(&self) -> Result<Vec<Group>, GroupError> {
        let bucket = self.bucket().await?;
        let bus = |e: &dyn std::fmt::Display| GroupError::Bus(format!("{GROUPS_BUCKET}: {e}"));
        let mut keys = bucket.keys().await.map_err(|e| bus(&e))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| bus(&e))?;
            if let Some(value) = bucket.get(&key).await.map_err(|e| bus(&e))? {
                match read(&key, &value) {
                    Ok(g) => out.push(g),
                    Err(why) => tracing::warn!(key, "fleet: a group not read: {why}"),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Keeps `group` (made or replaced), checked first, in this release's form.
    pub async fn set(&self, group: &Group) -> Result<u64, GroupError> {
        group.check()?;
        let group = Group {
            form: crate::model::FORM_VERSION,
            ..group.clone()
        };
        let value = serde_json::to_vec(&group).map_err(|e| GroupError::Bus(e.to_string()))?;
        self.bucket()
            .await?
            .put(key_of(&group.name), value.into())
            .await
            .map_err(|e| GroupError::Bus(format!("cannot keep the group: {e}")))
    }

    /// Removes the group `name`; says whether there was one.
    pub async fn remove(&self, name: &str) -> Result<bool, GroupError> {
        check_group_name(name)?;
        let bucket = self.bucket().await?;
        let key = key_of(name);
        let there = bucket
            .get(&key)
            .await
            .map_err(|e| GroupError::Bus(format!("{GROUPS_BUCKET}: {e}")))?
            .is_some();
        if there {
            bucket
                .delete(&key)
                .await
                .map_err(|e| GroupError::Bus(format!("cannot remove the group: {e}")))?;
        }
        Ok(there)
    }
}

/// An agent's side: hears of every group — each one's current value first, then every change
/// — until nobody listens.
pub async fn watch(client: async_nats::Client, heard: tokio::sync::mpsc::Sender<Change>) {
    let (entries, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(super::watch_kv(client, GROUPS_BUCKET, entries));
    while let Some(entry) = rx.recv().await {
        let change = match entry.operation {
            kv::Operation::Put => match read(&entry.key, &entry.value) {
                Ok(g) => Change::Set(g),
                Err(why) => {
                    tracing::warn!(key = %entry.key, "fleet: a group refused: {why}");
                    continue;
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => Change::Removed(entry.key),
        };
        if heard.send(change).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_entry_is_read_only_under_its_own_key_and_in_bounds() {
        let g = Group {
            form: crate::model::FORM_VERSION,
            name: "Finance".into(),
            users: vec!["ann".into()],
            ..Default::default()
        };
        let value = serde_json::to_vec(&g).expect("json");
        assert_eq!(read("finance", &value), Ok(g.clone()));
        assert!(
            read("sales", &value)
                .unwrap_err()
                .contains("says it is group")
        );
        assert!(read("finance", b"[1,").unwrap_err().contains("not a group"));
        assert!(
            read("finance", &vec![b' '; MAX_ENTRY_BYTES + 1])
                .unwrap_err()
                .contains("at most")
        );
        let bad = serde_json::to_vec(&Group {
            name: "no spaces".into(),
            ..g
        })
        .expect("json");
        assert!(read("no spaces", &bad).unwrap_err().starts_with("name:"));
    }
}
