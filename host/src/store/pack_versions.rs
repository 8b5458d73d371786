//! Uploaded packs: every version kept, which one runs, rollback.
//!
//! Every uploaded version of a pack is kept (archive and signature, as received), so a rollback
//! needs nothing from the network and a running agent can be rebuilt from the store alone. One
//! version per pack is *active*; a pack can be disabled without being forgotten. The built-in
//! standard pack has a row too (no versions), so it can be disabled like any other.

use anyhow::{Context, Result};
use chrono::Utc;
use serde::Serialize;
use sha2::Digest;

use crate::event::Event;
use crate::model::report::PackVersion;

use super::Store;
use super::engine::{Sql, args};

/// Why a pack cannot be rolled back: there is nothing to go back to (the admin's request
/// conflicts with what is stored), or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum RollBackError {
    /// No older version.
    #[error("{0}")]
    Nothing(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] anyhow::Error),
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
        let db = |e: anyhow::Error| format!("database: {e:#}");
        // The write lock from the start (see `Db::transaction`): a read that later wants to
        // write could otherwise lose its snapshot to the pipeline's alarm writes.
        let tx = self.db.transaction().map_err(db)?;
        let same: Option<(i64, String)> = tx
            .opt(
                "SELECT id, sha256 FROM pack_versions WHERE name = ?1 AND version = ?2",
                args![name, version],
            )
            .and_then(|r| r.map(|r| Ok((r.get(0)?, r.get(1)?))).transpose())
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
                let id = tx
                    .one(
                        "INSERT INTO pack_versions (name, version, archive, signature, sha256,
                            uploaded_at, uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         RETURNING id",
                        args![name, version, archive, signature, sha, now(), actor],
                    )
                    .and_then(|r| r.get(0))
                    .map_err(db)?;
                (id, true)
            }
        };
        tx.exec(
            "INSERT INTO packs (name, active, enabled) VALUES (?1, ?2, 1)
             ON CONFLICT (name) DO UPDATE SET active = ?2, enabled = 1",
            args![name, id],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok((id, new))
    }

    /// Removes a version that never ran (its upload could not be applied).
    pub fn forget_pack_version(&mut self, id: i64) -> Result<()> {
        self.db
            .exec("DELETE FROM pack_versions WHERE id = ?1", args![id])?;
        Ok(())
    }

    /// Every pack the store knows, with its versions, by name.
    pub fn packs(&self) -> Result<Vec<PackRow>> {
        let rows = self
            .db
            .rows("SELECT name, enabled, active FROM packs ORDER BY name", &[])?;
        rows.iter()
            .map(|r| {
                let (name, enabled, active): (String, bool, Option<i64>) =
                    (r.get(0)?, r.get(1)?, r.get(2)?);
                let versions = self
                    .db
                    .rows(
                        "SELECT id, version, sha256, uploaded_at, uploaded_by FROM pack_versions
                         WHERE name = ?1 ORDER BY id",
                        args![name],
                    )?
                    .iter()
                    .map(|r| {
                        Ok(PackVersion {
                            id: r.get(0)?,
                            version: r.get(1)?,
                            sha256: r.get(2)?,
                            uploaded_at: r.get(3)?,
                            uploaded_by: r.get(4)?,
                        })
                    })
                    .collect::<Result<_>>()?;
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
        let r = self
            .db
            .opt(
                "SELECT archive, signature FROM pack_versions WHERE id = ?1",
                args![id],
            )?
            .context("no such pack version")?;
        Ok((r.get(0)?, r.get(1)?))
    }

    /// Switches a pack on or off (creating the row of the built-in pack on first use).
    pub fn set_pack_enabled(&mut self, name: &str, enabled: bool) -> Result<()> {
        self.db.exec(
            "INSERT INTO packs (name, active, enabled) VALUES (?1, NULL, ?2)
             ON CONFLICT (name) DO UPDATE SET enabled = ?2",
            args![name, enabled],
        )?;
        Ok(())
    }

    /// Makes the version uploaded before the active one active; returns its version number.
    pub fn roll_back_pack(&mut self, name: &str) -> Result<String, RollBackError> {
        let active: Option<i64> = match self
            .db
            .opt("SELECT active FROM packs WHERE name = ?1", args![name])?
        {
            Some(r) => r.get(0)?,
            None => None,
        };
        let Some(active) = active else {
            return Err(RollBackError::Nothing(format!(
                "{name} has no uploaded version to roll back from"
            )));
        };
        let previous: Option<(i64, String)> = self
            .db
            .opt(
                "SELECT id, version FROM pack_versions WHERE name = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT 1",
                args![name, active],
            )?
            .map(|r| Ok::<_, anyhow::Error>((r.get(0)?, r.get(1)?)))
            .transpose()?;
        let Some((id, version)) = previous else {
            return Err(RollBackError::Nothing(format!(
                "{name} has no version older than the running one"
            )));
        };
        self.db.exec(
            "UPDATE packs SET active = ?1 WHERE name = ?2",
            args![id, name],
        )?;
        Ok(version)
    }

    /// Puts a pack back as it was (after a change that could not be applied).
    pub fn restore_pack_row(&mut self, row: &PackRow) -> Result<()> {
        self.db.exec(
            "INSERT INTO packs (name, active, enabled) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET active = ?2, enabled = ?3",
            args![row.name, row.active, row.enabled],
        )?;
        Ok(())
    }

    /// Removes a pack that never ran (its first upload could not be applied).
    pub fn forget_pack(&mut self, name: &str) -> Result<()> {
        self.db
            .exec("DELETE FROM packs WHERE name = ?1", args![name])?;
        Ok(())
    }
}

/// Now, in the store's UTC form.
pub(super) fn now() -> String {
    Event::utc_string(Utc::now().fixed_offset())
}
