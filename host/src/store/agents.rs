//! A hub's agents: each one's last heartbeat, when it came, and whether the agent still reports.
//! In the store, so a restarted hub still knows who went quiet while it was away.

use super::Store;
use super::engine::{Sql, args};
use crate::model::report::{AgentSeen, Heartbeat};
use anyhow::Result;

/// Migration 15: the agents a hub hears from.
pub(super) const MIGRATION: &str = "CREATE TABLE agents (
        agent      TEXT PRIMARY KEY,
        last_seen  TEXT NOT NULL,          -- UTC, RFC 3339 with milliseconds
        reporting  INTEGER NOT NULL DEFAULT 1,
        heartbeat  TEXT NOT NULL           -- the last one, as JSON
    );";

impl Store {
    /// Records a heartbeat that came at `now`; returns whether the agent was counted as not
    /// reporting until now (it is back).
    pub fn agent_seen(&mut self, beat: &Heartbeat, now: &str) -> Result<bool> {
        let tx = self.db.transaction()?;
        let was_silent = match tx.opt(
            "SELECT reporting FROM agents WHERE agent = ?1",
            args![beat.agent],
        )? {
            Some(r) => !r.get::<bool>(0)?,
            None => false,
        };
        // The activity totals go to the risk tables; the rest is kept as it came.
        super::risk::set_activity_in(&tx, &format!("fleet:{}", beat.agent), &beat.activity)?;
        let kept = Heartbeat {
            activity: Vec::new(),
            ..beat.clone()
        };
        tx.exec(
            "INSERT INTO agents (agent, last_seen, reporting, heartbeat) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (agent) DO UPDATE SET last_seen = ?2, reporting = 1, heartbeat = ?3",
            args![beat.agent, now, serde_json::to_string(&kept)?],
        )?;
        tx.commit()?;
        Ok(was_silent)
    }

    /// Every agent, those not reporting first, then by id.
    pub fn agents(&self) -> Result<Vec<AgentSeen>> {
        let rows = self.db.rows(
            "SELECT agent, last_seen, reporting, heartbeat FROM agents
             ORDER BY reporting, agent",
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let (agent, last_seen, reporting, heartbeat): (String, String, bool, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            match serde_json::from_str(&heartbeat) {
                Ok(heartbeat) => out.push(AgentSeen {
                    agent,
                    last_seen,
                    reporting,
                    heartbeat,
                }),
                Err(e) => tracing::warn!(agent, "unreadable heartbeat in the store: {e}"),
            }
        }
        Ok(out)
    }

    /// Marks the agents still counted as reporting whose last heartbeat came before `cutoff`
    /// as not reporting; returns them, with when they were last seen.
    pub fn agents_gone_quiet(&mut self, cutoff: &str) -> Result<Vec<(String, String)>> {
        let tx = self.db.transaction()?;
        // Marked and returned in one statement, so of several hubs sharing a store only one
        // sees an agent go quiet (and raises the alarm).
        let quiet: Vec<(String, String)> = tx
            .rows(
                "UPDATE agents SET reporting = 0 WHERE reporting = 1 AND last_seen < ?1
                 RETURNING agent, last_seen",
                args![cutoff],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect::<Result<_>>()?;
        tx.commit()?;
        Ok(quiet)
    }
}
