//! Captures (screenshots, videos) taken for alarms: which files, how big, when — and their
//! retention, so the data folder cannot fill the disk.
//!
//! A capture of an alarm that is forwarded to the fleet's hub is forwarded too: recording it
//! queues, in the same transaction, a `forward-capture` row in the forwarding lane. Its
//! position in the outbox is past the alarm's own forward row (at `actions.len()`) by the
//! capture's id, so every capture of an alarm has a row of its own and the worker finds the
//! capture from the row ([`Store::forwarded_capture`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::engine::{Row, Sql, args};
use super::{FORWARD, Store, outbox};
use crate::event::Event;

/// The outbox kind of a capture's forwarding to the fleet's hub (in the [`FORWARD`] lane).
pub const FORWARD_CAPTURE: &str = "forward-capture";

/// The schema (migration 7).
pub(super) const MIGRATION: &str = "CREATE TABLE captures (
        id        INTEGER PRIMARY KEY,
        alarm_id  INTEGER NOT NULL REFERENCES alarms (id),
        kind      TEXT NOT NULL,          -- screenshot, video
        path      TEXT NOT NULL,
        bytes     INTEGER NOT NULL,
        taken_at  TEXT NOT NULL
    );
    CREATE INDEX captures_by_alarm ON captures (alarm_id);
    CREATE INDEX captures_by_time ON captures (taken_at);";

/// One capture file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capture {
    /// Its row (the hub's own, in a hub's store).
    #[serde(skip)]
    pub id: i64,
    /// `screenshot` or `video`.
    pub kind: String,
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// When it was taken (UTC).
    pub taken_at: String,
}

/// How long captures are kept, and how much room they may take.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Captures older than this are deleted.
    pub max_age: std::time::Duration,
    /// Beyond this total, the oldest are deleted.
    pub max_bytes: u64,
}

impl Default for Retention {
    /// 30 days, 1 GiB.
    fn default() -> Retention {
        Retention {
            max_age: std::time::Duration::from_secs(30 * 24 * 3600),
            max_bytes: 1 << 30,
        }
    }
}

impl Store {
    /// Records a capture taken for an alarm (now), and queues its forwarding when the alarm
    /// is forwarded to the fleet's hub; returns its id.
    pub fn add_capture(
        &mut self,
        alarm_id: i64,
        kind: &str,
        path: &Path,
        bytes: u64,
    ) -> Result<i64> {
        self.insert_capture(alarm_id, kind, path, bytes, &now(), true)
    }

    /// Records a capture another agent took and the hub fetched (kept under the agent's
    /// time), unless the alarm has it already (a message delivered twice): `false` then.
    pub fn add_fetched_capture(
        &mut self,
        alarm_id: i64,
        kind: &str,
        path: &Path,
        bytes: u64,
        taken_at: &str,
    ) -> Result<bool> {
        let known = self.db.opt(
            "SELECT id FROM captures WHERE alarm_id = ?1 AND path = ?2",
            args![alarm_id, path.to_string_lossy()],
        )?;
        if known.is_some() {
            return Ok(false);
        }
        self.insert_capture(alarm_id, kind, path, bytes, taken_at, false)?;
        Ok(true)
    }

    /// Whether a hub keeps the captures it fetches in the store itself (PostgreSQL, which
    /// several hubs may share) rather than as files in its data folder (SQLite).
    pub fn keeps_capture_bytes(&self) -> bool {
        self.file.is_none()
    }

    /// [`Store::add_fetched_capture`] with the capture's bytes in the store, under `name`
    /// (the same for every hub, so a message delivered twice, to either, keeps one).
    pub fn add_fetched_capture_bytes(
        &mut self,
        alarm_id: i64,
        kind: &str,
        name: &str,
        bytes: &[u8],
        taken_at: &str,
    ) -> Result<bool> {
        let tx = self.db.transaction()?;
        let known = tx.opt(
            "SELECT id FROM captures WHERE alarm_id = ?1 AND path = ?2",
            args![alarm_id, name],
        )?;
        if known.is_some() {
            return Ok(false);
        }
        let id: i64 = tx
            .one(
                "INSERT INTO captures (alarm_id, kind, path, bytes, taken_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                args![alarm_id, kind, name, bytes.len(), taken_at],
            )?
            .get(0)?;
        tx.exec(
            "INSERT INTO capture_bytes (capture_id, bytes) VALUES (?1, ?2)",
            args![id, bytes],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The bytes of capture `id` when the store keeps them (see
    /// [`Store::keeps_capture_bytes`]); `None`: it is a file.
    pub fn capture_bytes(&self, id: i64) -> Result<Option<Vec<u8>>> {
        if !self.keeps_capture_bytes() {
            return Ok(None);
        }
        self.db
            .opt(
                "SELECT bytes FROM capture_bytes WHERE capture_id = ?1",
                args![id],
            )?
            .map(|r| r.get(0))
            .transpose()
    }

    fn insert_capture(
        &mut self,
        alarm_id: i64,
        kind: &str,
        path: &Path,
        bytes: u64,
        taken_at: &str,
        forward: bool,
    ) -> Result<i64> {
        // Two lanes (screenshots, a video) may add captures to one alarm at once: the
        // transaction holds the write lock from its start.
        let tx = self.db.transaction()?;
        let id: i64 = tx
            .one(
                "INSERT INTO captures (alarm_id, kind, path, bytes, taken_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                args![alarm_id, kind, path.to_string_lossy(), bytes, taken_at],
            )?
            .get(0)?;
        let forwarded: Option<i64> = if forward {
            tx.opt(
                "SELECT position FROM action_runs WHERE alarm_id = ?1 AND kind = ?2",
                args![alarm_id, FORWARD],
            )?
            .map(|r| r.get(0))
            .transpose()?
        } else {
            None
        };
        if let Some(position) = forwarded {
            let queue = outbox::Queue {
                alarm_id,
                position: (position + id) as usize,
                kind: FORWARD_CAPTURE,
                lane: FORWARD,
                limit: None,
                skip: None,
            };
            outbox::enqueue(&tx, &queue)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// The capture a `forward-capture` row of the outbox is for; `None` when it is gone
    /// (expired before it could be forwarded).
    pub fn forwarded_capture(&self, run: &super::ActionRun) -> Result<Option<Capture>> {
        self.db
            .opt(
                "SELECT c.id, c.kind, c.path, c.bytes, c.taken_at FROM captures c
                   JOIN action_runs f ON f.alarm_id = c.alarm_id AND f.kind = ?3
                  WHERE c.alarm_id = ?1 AND c.id = ?2 - f.position",
                args![run.alarm_id, run.position, FORWARD],
            )?
            .as_ref()
            .map(read_capture)
            .transpose()
    }
    /// The captures of an alarm, oldest first.
    pub fn captures_of(&self, alarm_id: i64) -> Result<Vec<Capture>> {
        self.db
            .rows(
                "SELECT id, kind, path, bytes, taken_at FROM captures WHERE alarm_id = ?1
                  ORDER BY id",
                args![alarm_id],
            )?
            .iter()
            .map(read_capture)
            .collect()
    }

    /// Forgets the captures `policy` no longer keeps at `now` — too old, or the oldest beyond
    /// the size limit — and returns their files, for the caller to delete.
    pub fn expire_captures(
        &mut self,
        policy: &Retention,
        now: DateTime<Utc>,
    ) -> Result<Vec<PathBuf>> {
        let cutoff =
            now - chrono::Duration::from_std(policy.max_age).unwrap_or(chrono::Duration::MAX);
        let tx = self.db.transaction()?;
        let mut gone = Vec::new();
        let mut kept: u64 = 0;
        let cutoff = Event::utc_string(cutoff.fixed_offset());
        for r in tx.rows(
            "SELECT id, path, bytes, taken_at FROM captures ORDER BY id DESC",
            &[],
        )? {
            let (id, path, bytes, taken_at): (i64, String, i64, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            kept += bytes.max(0) as u64;
            if taken_at < cutoff || kept > policy.max_bytes {
                gone.push((id, PathBuf::from(path)));
            }
        }
        for (id, _) in &gone {
            tx.exec("DELETE FROM captures WHERE id = ?1", args![id])?;
        }
        tx.commit()?;
        Ok(gone.into_iter().map(|(_, p)| p).collect())
    }

    /// [`Store::expire_captures`] now, and deletes the files: what an agent's worker and a
    /// hub's ingest run after each capture they keep.
    pub fn expire_capture_files(&mut self, policy: &Retention) {
        match self.expire_captures(policy, Utc::now()) {
            Ok(gone) => {
                for path in gone {
                    if let Err(e) = std::fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!("cannot delete {}: {e}", path.display());
                    }
                }
            }
            Err(e) => tracing::error!("cannot expire captures: {e:#}"),
        }
    }
}

fn now() -> String {
    Event::utc_string(Utc::now().fixed_offset())
}

fn read_capture(r: &Row) -> Result<Capture> {
    Ok(Capture {
        id: r.get(0)?,
        kind: r.get(1)?,
        path: PathBuf::from(r.get::<String>(2)?),
        bytes: r.get::<i64>(3)?.max(0) as u64,
        taken_at: r.get(4)?,
    })
}
