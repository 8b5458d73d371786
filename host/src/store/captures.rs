//! Captures (screenshots, videos) taken for alarms: which files, how big, when — and their
//! retention, so the data folder cannot fill the disk.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::Store;
use crate::event::Event;

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
    /// Records a capture taken for an alarm.
    pub fn add_capture(
        &mut self,
        alarm_id: i64,
        kind: &str,
        path: &Path,
        bytes: u64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO captures (alarm_id, kind, path, bytes, taken_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                alarm_id,
                kind,
                path.to_string_lossy(),
                bytes as i64,
                Event::utc_string(Utc::now().fixed_offset())
            ],
        )?;
        Ok(())
    }

    /// The captures of an alarm, oldest first.
    pub fn captures_of(&self, alarm_id: i64) -> Result<Vec<Capture>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, path, bytes, taken_at FROM captures WHERE alarm_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([alarm_id], |r| {
            Ok(Capture {
                kind: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                bytes: r.get::<_, i64>(2)?.max(0) as u64,
                taken_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        let tx = self.conn.transaction()?;
        let mut gone = Vec::new();
        {
            let mut stmt =
                tx.prepare("SELECT id, path, bytes, taken_at FROM captures ORDER BY id DESC")?;
            let mut rows = stmt.query([])?;
            let mut kept: u64 = 0;
            let cutoff = Event::utc_string(cutoff.fixed_offset());
            while let Some(r) = rows.next()? {
                let (id, path, bytes, taken_at): (i64, String, i64, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                kept += bytes.max(0) as u64;
                if taken_at < cutoff || kept > policy.max_bytes {
                    gone.push((id, PathBuf::from(path)));
                }
            }
        }
        for (id, _) in &gone {
            tx.execute("DELETE FROM captures WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(gone.into_iter().map(|(_, p)| p).collect())
    }
}
