//! The action outbox: each action a live alarm asks for, with its state, kept in the same
//! database as the alarm and written in the same transaction. A worker takes due rows, performs
//! them and settles each: done, to be retried at a later time, or dead (given up). Nothing is
//! lost when the agent stops or is killed between the two: the row is still due when it starts
//! again.

use super::Store;
use super::engine::{Engine, Row, Sql, Tx, args};
use crate::event::Event;
use anyhow::Result;
use chrono::{DateTime, Utc};

/// The schema (migration 6).
pub(super) const MIGRATION: &str = "CREATE TABLE action_runs (
        id          INTEGER PRIMARY KEY,
        alarm_id    INTEGER NOT NULL REFERENCES alarms (id),
        position    INTEGER NOT NULL,     -- the action's place in the alarm's list
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,        -- pending, done, dead, limited
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_at     TEXT,                 -- when a pending action is due (UTC RFC 3339)
        detail      TEXT,                 -- the last outcome, for people
        message_id  TEXT NOT NULL,        -- the same on every attempt (a webhook's id)
        updated_at  TEXT NOT NULL,
        UNIQUE (alarm_id, position)
    );
    CREATE INDEX action_runs_due ON action_runs (state, next_at);";

/// Migration 10: the lane of each action (see `Action::lane`); rows queued before it wait in
/// their kind's lane.
pub(super) const LANES_MIGRATION: &str =
    "ALTER TABLE action_runs ADD COLUMN lane TEXT NOT NULL DEFAULT '';
     UPDATE action_runs SET lane = kind;
     CREATE INDEX action_runs_lane_due ON action_runs (lane, state, next_at);";

/// One action to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    /// Row id.
    pub id: i64,
    /// The alarm it belongs to.
    pub alarm_id: i64,
    /// Its place in the alarm's list of actions.
    pub position: usize,
    /// The action's name (`webhook`…).
    pub kind: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Stays the same on every attempt, so receivers can tell a retry from a new message.
    pub message_id: String,
    /// The lane it waits in (`webhook https://…`, `output:siem`…).
    pub lane: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// Performed; the detail says what came of it.
    Done(String),
    /// Performed in part (a screenshot series stopped early); the detail says how far.
    Partial(String),
    /// Performed one step of several (a screenshot of a series, a video's start); the next is
    /// due then.
    Next(DateTime<Utc>, String),
    /// Failed; try again at this time.
    Retry(DateTime<Utc>, String),
    /// Failed for good.
    Dead(String),
    /// Not attempted yet: waits for something else (another lane's action) until this time;
    /// not counted as an attempt.
    Wait(DateTime<Utc>, String),
}

fn ts(t: DateTime<Utc>) -> String {
    Event::utc_string(t.fixed_offset())
}

/// One action of a stored alarm to queue.
pub(super) struct Queue<'a> {
    /// The alarm's row.
    pub alarm_id: i64,
    /// The action's place in its list.
    pub position: usize,
    /// Its name.
    pub kind: &'a str,
    /// The lane it waits in (see `Action::lane`).
    pub lane: &'a str,
    /// At most this many of it an hour for the alarm and user.
    pub limit: Option<u32>,
    /// Recorded as skipped, for this reason, instead of queued.
    pub skip: Option<&'a str>,
}

/// Queues an action, due now — or, when the same alarm already asked the same user's computer
/// for `limit` of these in the last hour, records it as `limited`, or as `skipped` when it must
/// not be performed. Part of the transaction that stores the alarm.
pub(super) fn enqueue(tx: &Tx<'_>, q: &Queue<'_>) -> Result<()> {
    let Queue {
        alarm_id,
        position,
        kind,
        lane,
        limit,
        skip,
    } = *q;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no randomness for a message id: {e}"))?;
    let now = Utc::now();
    let (state, next_at, detail) = match limit {
        _ if skip.is_some() => ("skipped", None, skip.map(str::to_string)),
        Some(limit) if recent(tx, alarm_id, kind, now)? >= u64::from(limit) => (
            "limited",
            None,
            Some(format!(
                "not performed: over {limit} {kind} an hour for this alarm and user"
            )),
        ),
        _ => ("pending", Some(ts(now)), None),
    };
    tx.exec(
        "INSERT INTO action_runs
            (alarm_id, position, kind, state, next_at, detail, message_id, updated_at, lane)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        args![
            alarm_id,
            position,
            kind,
            state,
            next_at,
            detail,
            format!("msg_{}", crate::hex::encode(&id)),
            ts(now),
            lane
        ],
    )?;
    Ok(())
}

/// How long a claimed outbox row is left to the hub that took it (see [`Store::take_due`]).
pub const CLAIM: std::time::Duration = std::time::Duration::from_secs(300);

/// An outbox row as the due queries select it.
fn action_run(r: &Row) -> Result<ActionRun> {
    Ok(ActionRun {
        id: r.get(0)?,
        alarm_id: r.get(1)?,
        position: r.get(2)?,
        kind: r.get(3)?,
        attempts: r.get(4)?,
        message_id: r.get(5)?,
        lane: r.get(6)?,
    })
}

/// How many `kind` actions the alarm of `alarm_id` (same pack, alarm and user) queued in the
/// hour before `now`, not counting those already limited.
fn recent(tx: &Tx<'_>, alarm_id: i64, kind: &str, now: DateTime<Utc>) -> Result<u64> {
    let since = ts(now - chrono::Duration::hours(1));
    tx.one(
        "SELECT count(*) FROM action_runs r JOIN alarms a ON a.id = r.alarm_id
          JOIN alarms this ON this.id = ?1
         WHERE a.alarm = this.alarm AND a.pack = this.pack
           AND a.username IS NOT DISTINCT FROM this.username AND a.id != this.id
           AND r.kind = ?2 AND r.state != 'limited' AND a.fired_at >= ?3",
        args![alarm_id, kind, since],
    )?
    .get(0)
}

impl Store {
    /// Pending actions due at `now`, oldest first, at most `limit`.
    pub fn due_actions(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ActionRun>> {
        self.due_in_lane(None, now, limit)
    }

    /// [`Store::due_actions`] of one lane (`None`: every lane).
    pub fn due_in_lane(
        &self,
        lane: Option<&str>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ActionRun>> {
        self.db
            .rows(
                "SELECT id, alarm_id, position, kind, attempts, message_id, lane FROM action_runs
                 WHERE state = 'pending' AND next_at <= ?1 AND (CAST(?3 AS TEXT) IS NULL OR lane = ?3)
                 ORDER BY next_at, id LIMIT ?2",
                args![ts(now), limit, lane],
            )?
            .iter()
            .map(action_run)
            .collect()
    }

    /// [`Store::due_in_lane`] for a worker that performs them: on PostgreSQL, where several
    /// hubs share one outbox, each row is also *claimed* — due again only after [`CLAIM`]
    /// unless settled first, and skipped by the others meanwhile — so two hubs never send one
    /// alarm to an output twice (a hub killed mid-send leaves its rows to the others after
    /// the claim runs out). On SQLite one agent holds the data folder, and rows stay due until
    /// settled, so a restart performs at once what was cut short.
    pub fn take_due(
        &self,
        lane: Option<&str>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ActionRun>> {
        if self.db.engine() == Engine::Sqlite {
            return self.due_in_lane(lane, now, limit);
        }
        let until = now + chrono::Duration::from_std(CLAIM).unwrap_or(chrono::Duration::MAX);
        let mut taken = self
            .db
            .rows(
                "UPDATE action_runs SET next_at = ?4 WHERE id IN (
                    SELECT id FROM action_runs
                     WHERE state = 'pending' AND next_at <= ?1
                       AND (CAST(?3 AS TEXT) IS NULL OR lane = ?3)
                     ORDER BY next_at, id LIMIT ?2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, alarm_id, position, kind, attempts, message_id, lane",
                args![ts(now), limit, lane, ts(until)],
            )?
            .iter()
            .map(action_run)
            .collect::<Result<Vec<_>>>()?;
        taken.sort_by_key(|r| r.id);
        Ok(taken)
    }

    /// When the next pending action is due, if any is pending.
    pub fn next_due_action(&self) -> Result<Option<DateTime<Utc>>> {
        self.next_due_in_lane(None)
    }

    /// The lanes that have pending actions.
    pub fn pending_lanes(&self) -> Result<Vec<String>> {
        self.db
            .rows(
                "SELECT DISTINCT lane FROM action_runs WHERE state = 'pending'",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// [`Store::next_due_action`] of one lane (`None`: every lane).
    pub fn next_due_in_lane(&self, lane: Option<&str>) -> Result<Option<DateTime<Utc>>> {
        let next: Option<String> = self
            .db
            .one(
                "SELECT min(next_at) FROM action_runs WHERE state = 'pending'
                   AND (CAST(?1 AS TEXT) IS NULL OR lane = ?1)",
                args![lane],
            )?
            .get(0)?;
        Ok(next
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Records how an attempt at action `id` ended.
    pub fn settle_action(&mut self, id: i64, outcome: &Settle) -> Result<()> {
        let (state, next_at, detail, attempted) = match outcome {
            Settle::Done(d) => ("done", None, d, 1),
            Settle::Partial(d) => ("partial", None, d, 1),
            Settle::Next(at, d) => ("pending", Some(ts(*at)), d, 1),
            Settle::Retry(at, d) => ("pending", Some(ts(*at)), d, 1),
            Settle::Dead(d) => ("dead", None, d, 1),
            Settle::Wait(at, d) => ("pending", Some(ts(*at)), d, 0),
        };
        self.db.exec(
            "UPDATE action_runs SET state = ?2, next_at = ?3, detail = ?4,
                attempts = attempts + ?6, updated_at = ?5 WHERE id = ?1",
            args![id, state, next_at, detail, ts(Utc::now()), attempted],
        )?;
        Ok(())
    }

    /// Whether alarm `alarm_id` asked for a screenshot that is not taken yet (its first one
    /// still due): an e-mail that attaches screenshots waits for it.
    pub fn screenshot_awaited(&self, alarm_id: i64) -> Result<bool> {
        let n: i64 = self
            .db
            .one(
                "SELECT count(*) FROM action_runs WHERE alarm_id = ?1 AND kind = 'screenshot'
                   AND state = 'pending' AND attempts = 0",
                args![alarm_id],
            )?
            .get(0)?;
        Ok(n > 0)
    }

    /// How many actions are waiting (pending), and how many were given up (dead).
    pub fn outbox_counts(&self) -> Result<(u64, u64)> {
        let count = |state: &str| -> Result<u64> {
            self.db
                .one(
                    "SELECT count(*) FROM action_runs WHERE state = ?1",
                    args![state],
                )?
                .get(0)
        };
        Ok((count("pending")?, count("dead")?))
    }
}
