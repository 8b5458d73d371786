//! The audit trail: every change to the monitoring setup (a pack uploaded, enabled, rolled
//! back, refused; a program switched off), who made it and when.

use super::Store;
use super::engine::{Sql, args};
use super::pack_versions::now;
use crate::model::report::AuditEntry;
use anyhow::Result;

impl Store {
    /// Writes an audit entry; returns it.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        object: &str,
        detail: Option<&str>,
    ) -> Result<AuditEntry> {
        let at = now();
        let id = self
            .db
            .one(
                "INSERT INTO audit (at, actor, action, object, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                args![at, actor, action, object, detail],
            )?
            .get(0)?;
        Ok(AuditEntry {
            id,
            at,
            actor: actor.to_string(),
            action: action.to_string(),
            object: object.to_string(),
            detail: detail.map(str::to_string),
        })
    }

    /// The latest audit entries, newest first.
    pub fn audit_trail(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.db
            .rows(
                "SELECT id, at, actor, action, object, detail FROM audit
                  ORDER BY id DESC LIMIT ?1",
                args![limit],
            )?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    object: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .collect()
    }
}
