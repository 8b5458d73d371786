//! Uploaded packs: every version kept, which one runs, rollback.
//!
//! Every uploaded version of a pack is kept (archive and signature, as received), so a rollback
//! needs nothing from the network and a running agent can be rebuilt from the store alone. One
//! version per pack is *active*; a pack can be disabled without being forgotten. The built-in
//! standard pack has a row too (no versions), so it can be disabled like any other.

use anyhow::{Context, Result};
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::Digest;

use crate::event::Event;
use crate::model::report::PackVersion;

use super::Store;

/// Why a pack cannot be rolled back: there is nothing to go back to (the admin's request
/// conflicts with what is stored), or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum RollBackError {
    /// No older version.
    #[error("{0}")]
    Nothing(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] rusqlite::Error),
}

/// A pack the agent knows: whether it runs, and which version.
#[derive(Clone, Debug, Serialize)]
pub struct PackRow {
    /// The pack's name.
    pub name: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// The running version's row id (none for the built-in pack).
    pub active: Option<i64>,
    /// Every uploaded version, oldest first.
    pub versions: Vec<PackVersion>,
}

impl PackRow {
    /// The running (or, when disabled, the selected) version.
    pub fn active_version(&self) -> Option<&PackVersion> {
        self.versions.iter().find(|v| Some(v.id) == self.active)
    }
}

impl Store {
    /// Keeps an uploaded archive as a version of pack `name` and makes it the active, enabled
    /// one; returns its id and whether it is new. The same archive uploaded again is the same
    /// version; the same version number with different content is refused (versions are
    /// immutable, so rollbacks mean something).
    pub fn add_pack_version(
        &mut self,
        name: &str,
        version: &str,
        archive: &[u8],
        signature: Option<&str>,
        actor: &str,
    ) -> Result<(i64, bool), String> {
        let sha = crate::hex::encode(&sha2::Sha256::digest(archive));
        let db = |e: rusqlite::Error| format!("database: {e}");
        // Immediate: a read that later wants to write could lose its snapshot to the pipeline's
        // alarm writes, and that error is not retried.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let same: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, sha256 FROM pack_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let (id, new) = match same {
            Some((_, other)) if other != sha => {
                return Err(format!(
                    "{name} {version} was uploaded before with different content; a changed \
                     pack needs a new version"
                ));
            }
            Some((id, _)) => (id, false),
            None => {
                tx.execute(
                    "INSERT INTO pack_versions (name, version, archive, signature, sha256,
                        uploaded_at, uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![name, version, archive, signature, sha, now(), actor],
                )
                .map_err(db)?;
                (tx.last_insert_rowid(), true)
            }
        };
        tx.execute(
            "INSERT INTO packs (name, active, enabled) VALUES (?1, ?2, 1)
             ON CONFLICT (name) DO UPDATE SET active = ?2, enabled = 1",
            params![name, id],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok((id, new))
    }

    /// Removes a version that never ran (its upload could not be applied).
    pub fn forget_pack_version(&mut self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM pack_versions WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every pack the store knows, with its versions, by name.
    pub fn packs(&self) -> Result<Vec<PackRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, enabled, active FROM packs ORDER BY name")?;
        let rows: Vec<(String, bool, Option<i64>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut versions = self.conn.prepare(
            "SELECT id, version, sha256, uploaded_at, uploaded_by FROM pack_versions
             WHERE name = ?1 ORDER BY id",
        )?;
        rows.into_iter()
            .map(|(name, enabled, active)| {
                let versions = versions
                    .query_map([&name], |r| {
                        Ok(PackVersion {
                            id: r.get(0)?,
                            version: r.get(1)?,
                            sha256: r.get(2)?,
                            uploaded_at: r.get(3)?,
                            uploaded_by: r.get(4)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(PackRow {
                    name,
                    enabled,
                    active,
                    versions,
                })
            })
            .collect()
    }

    /// The archive and signature of a stored version.
    pub fn pack_archive(&self, id: i64) -> Result<(Vec<u8>, Option<String>)> {
        self.conn
            .query_row(
                "SELECT archive, signature FROM pack_versions WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .context("no such pack version")
    }

    /// Switches a pack on or off (creating the row of the built-in pack on first use).
    pub fn set_pack_enabled(&mut self, name: &str, enabled: bool) -> Result<()> {
        self.conn.execute(
            "INSERT INTO packs (name, active, enabled) VALUES (?1, NULL, ?2)
             ON CONFLICT (name) DO UPDATE SET enabled = ?2",
            params![name, enabled],
        )?;
        Ok(())
    }

    /// Makes the version uploaded before the active one active; returns its version number.
    pub fn roll_back_pack(&mut self, name: &str) -> Result<String, RollBackError> {
        let active: Option<i64> = self
            .conn
            .query_row("SELECT active FROM packs WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        let Some(active) = active else {
            return Err(RollBackError::Nothing(format!(
                "{name} has no uploaded version to roll back from"
            )));
        };
        let previous: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, version FROM pack_versions WHERE name = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT 1",
                params![name, active],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, version)) = previous else {
            return Err(RollBackError::Nothing(format!(
                "{name} has no version older than the running one"
            )));
        };
        self.conn.execute(
            "UPDATE packs SET active = ?1 WHERE name = ?2",
            params![id, name],
        )?;
        Ok(version)
    }

    /// Puts a pack back as it was (after a change that could not be applied).
    pub fn restore_pack_row(&mut self, row: &PackRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO packs (name, active, enabled) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET active = ?2, enabled = ?3",
            params![row.name, row.active, row.enabled],
        )?;
        Ok(())
    }

    /// Removes a pack that never ran (its first upload could not be applied).
    pub fn forget_pack(&mut self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM packs WHERE name = ?1", [name])?;
        Ok(())
    }
}

/// Now, in the store's UTC form.
pub(super) fn now() -> String {
    Event::utc_string(Utc::now().fixed_offset())
}
