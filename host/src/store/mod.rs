//! The store: alarms, programs' state, uploaded packs and the audit trail, the actions'
//! outbox, captures, the activity records risk scores are computed from, and a hub's agents.
//!
//! By default one SQLite file in the data folder, write-ahead log, schema versioned with
//! `PRAGMA user_version` and migrated forward on open. A hub that outgrows one machine keeps
//! it in PostgreSQL instead (`vigilo hub --store postgres://…`, remembered in the data folder
//! as `store-url`), where several hub processes can share one database; its schema lives in
//! `postgres_schema`. Every query is written once for both engines (see `engine`). An alarm is
//! committed here before any of its actions is performed, and the actions it asks for are
//! queued in the outbox in the same transaction: a crash at any point loses neither the record
//! nor an action (at worst one is performed twice, with the same id, see `outbox`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;

use crate::event::Event;
use crate::model::alarm::{AlarmRecord, StoredAlarm};

mod agents;
mod audit;
mod captures;
pub(crate) mod engine;
mod outbox;
mod pack_versions;
mod postgres_schema;
mod risk;
#[cfg(test)]
pub(crate) mod testing;

use engine::{Db, Engine, Sql, Tx, args};

pub use captures::{Capture, FORWARD_CAPTURE, Retention};
pub use outbox::{ActionRun, Settle};
pub use pack_versions::{PackRow, RollBackError};

/// The origin of alarms the running agent stores: only these have their actions performed
/// (a replayed day is history, not something to act on now).
pub const LIVE: &str = "live";

/// The outbox kind and lane of an alarm's forwarding to the fleet's hub.
pub const FORWARD: &str = "forward";

/// The outbox kind of an alarm's sending to an output (a SIEM).
pub const OUTPUT: &str = "output";

/// The outbox lane of output `name`.
pub fn output_lane(name: &str) -> String {
    format!("{OUTPUT}:{name}")
}

/// Where an alarm's output rows start in the outbox. An alarm's rows are placed so none can
/// meet another: its actions at `0..n`, its forwarding at `n`, a capture's forwarding at `n` +
/// the capture's id, the `k`-th output at `OUTPUTS_FROM + k` (far past any capture id).
pub const OUTPUTS_FROM: usize = 1 << 40;

/// Schema migrations, in order; the store's `user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: alarms.
    "CREATE TABLE alarms (
        id            INTEGER PRIMARY KEY,
        fired_at      TEXT NOT NULL,     -- UTC, RFC 3339 with milliseconds: sorts in time order
        alarm         TEXT NOT NULL,
        pack          TEXT NOT NULL,
        pack_version  TEXT NOT NULL,
        risk          INTEGER NOT NULL CHECK (risk BETWEEN 1 AND 10),
        kind          TEXT NOT NULL,
        username      TEXT,
        computer      TEXT,
        summary       TEXT NOT NULL,
        actions       TEXT NOT NULL,     -- JSON array of planned actions
        event         TEXT NOT NULL,     -- the event as JSON
        origin        TEXT NOT NULL,     -- 'live', or 'replay:<file>'
        recorded_at   TEXT NOT NULL,
        UNIQUE (pack, alarm, fired_at, event)
    );
    CREATE INDEX alarms_by_time ON alarms (fired_at);
    CREATE INDEX alarms_by_user ON alarms (username, fired_at);
    CREATE INDEX alarms_by_name ON alarms (alarm, fired_at);",
    // 2: why a plugin's alarm fired.
    "ALTER TABLE alarms ADD COLUMN note TEXT;",
    // 3: plugins' key-value state, which outlives the agent's restarts.
    "CREATE TABLE plugin_state (
        pack    TEXT NOT NULL,
        plugin  TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   BLOB NOT NULL,
        PRIMARY KEY (pack, plugin, key)
    );",
    // 4: actions a plugin or script asked for beyond its pack's grants (JSON; NULL: none).
    "ALTER TABLE alarms ADD COLUMN refused TEXT;",
    // 5: uploaded packs (every version kept, for rollback), which one runs, and the audit trail.
    "CREATE TABLE pack_versions (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL,
        version      TEXT NOT NULL,
        archive      BLOB NOT NULL,
        signature    TEXT,              -- the .minisig text, if the archive came with one
        sha256       TEXT NOT NULL,
        uploaded_at  TEXT NOT NULL,
        uploaded_by  TEXT NOT NULL,
        UNIQUE (name, sha256)
    );
    CREATE TABLE packs (
        name     TEXT PRIMARY KEY,
        active   INTEGER REFERENCES pack_versions (id),   -- NULL: the built-in standard pack
        enabled  INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        object  TEXT NOT NULL,
        detail  TEXT
    );
    CREATE INDEX audit_by_time ON audit (at);",
    // 6: the action outbox.
    outbox::MIGRATION,
    // 7: screenshots and videos taken for alarms.
    captures::MIGRATION,
    // 8: activity records per user and hour, for risk scores.
    risk::MIGRATION,
    // 9: the console filters alarms by pack; risk scores add up a window's alarms from the
    // index alone (time, user, alarm, level), not from the rows.
    "CREATE INDEX alarms_by_pack ON alarms (pack, fired_at);
     CREATE INDEX alarms_for_risk ON alarms (fired_at, username, alarm, risk);",
    // 10: each action waits in its lane (kind; a webhook's endpoint) so lanes never wait for
    // each other.
    outbox::LANES_MIGRATION,
    // 11: plugins and scripts switched off, which stay off until an admin turns them back on.
    "CREATE TABLE quarantined (
        pack     TEXT NOT NULL,
        program  TEXT NOT NULL,
        since    TEXT NOT NULL,
        reason   TEXT NOT NULL,
        PRIMARY KEY (pack, program)
    );",
    // 12: matches an alarm's cooldown folded into it: how many, their bytes, their first paths.
    "ALTER TABLE alarms ADD COLUMN folded INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE alarms ADD COLUMN folded_bytes INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE alarms ADD COLUMN folded_paths TEXT;",
    // 13: risk scores leave setup changes (account events) out: the index covers the kind.
    "DROP INDEX alarms_for_risk;
     CREATE INDEX alarms_for_risk ON alarms (fired_at, username, alarm, risk, kind);",
    // 14: a hub keeps the alarms of many agents: which agent sent each, under which of its ids,
    // and one alarm per agent (the same record from two agents is two alarms). SQLite cannot
    // change a UNIQUE constraint in place: the table is rebuilt.
    "CREATE TABLE alarms_14 (
        id            INTEGER PRIMARY KEY,
        fired_at      TEXT NOT NULL,
        alarm         TEXT NOT NULL,
        pack          TEXT NOT NULL,
        pack_version  TEXT NOT NULL,
        risk          INTEGER NOT NULL CHECK (risk BETWEEN 1 AND 10),
        kind          TEXT NOT NULL,
        username      TEXT,
        computer      TEXT,
        summary       TEXT NOT NULL,
        actions       TEXT NOT NULL,
        event         TEXT NOT NULL,
        origin        TEXT NOT NULL,
        recorded_at   TEXT NOT NULL,
        note          TEXT,
        refused       TEXT,
        folded        INTEGER NOT NULL DEFAULT 0,
        folded_bytes  INTEGER NOT NULL DEFAULT 0,
        folded_paths  TEXT,
        agent         TEXT NOT NULL DEFAULT '',  -- '' on an agent; the sender's id on a hub
        agent_alarm   INTEGER,                   -- the alarm's id at its agent (hub only)
        UNIQUE (agent, pack, alarm, fired_at, event)
    );
    INSERT INTO alarms_14 (id, fired_at, alarm, pack, pack_version, risk, kind, username,
        computer, summary, actions, event, origin, recorded_at, note, refused, folded,
        folded_bytes, folded_paths)
    SELECT id, fired_at, alarm, pack, pack_version, risk, kind, username, computer, summary,
        actions, event, origin, recorded_at, note, refused, folded, folded_bytes, folded_paths
    FROM alarms;
    DROP TABLE alarms;
    ALTER TABLE alarms_14 RENAME TO alarms;
    CREATE INDEX alarms_by_time ON alarms (fired_at);
    CREATE INDEX alarms_by_user ON alarms (username, fired_at);
    CREATE INDEX alarms_by_name ON alarms (alarm, fired_at);
    CREATE INDEX alarms_by_pack ON alarms (pack, fired_at);
    CREATE INDEX alarms_by_computer ON alarms (computer, fired_at);
    CREATE INDEX alarms_for_risk ON alarms (fired_at, username, alarm, risk, kind);",
    // 15: a hub's agents and their heartbeats.
    agents::MIGRATION,
    // 16: a hub finds the alarm an agent's capture belongs to.
    "CREATE INDEX alarms_by_agent_alarm ON alarms (agent, agent_alarm)",
];

/// An open store.
pub struct Store {
    db: Db,
    /// Where it is, for messages: the SQLite file, or the PostgreSQL address without password.
    location: String,
    /// The SQLite file (none on PostgreSQL).
    file: Option<PathBuf>,
    /// At most this many of one action an hour for one alarm and user (`None`: no limit).
    action_limit: Option<u32>,
    /// Live alarms are forwarded to a fleet's hub.
    forward: bool,
    /// The outputs every stored alarm is also sent to (their names).
    outputs: Vec<String>,
}

/// Which alarms to list.
#[derive(Debug, Default)]
pub struct AlarmFilter {
    /// Only the alarm with this row id.
    pub id: Option<i64>,
    /// Only this user (exact).
    pub user: Option<String>,
    /// Only this computer (exact).
    pub computer: Option<String>,
    /// Only alarms whose name contains this (case-insensitive).
    pub alarm: Option<String>,
    /// Fired at or after (UTC RFC 3339).
    pub since: Option<String>,
    /// Fired before (UTC RFC 3339).
    pub until: Option<String>,
    /// Only alarms of this pack (exact).
    pub pack: Option<String>,
    /// Only alarms of at least this risk level.
    pub min_risk: Option<u8>,
    /// Only alarms listed after this one, newest first: (its `fired_at`, its id). Pages of a
    /// large store follow each other this way without `OFFSET` scanning what came before.
    pub after: Option<(String, i64)>,
    /// At most this many, newest first.
    pub limit: Option<u32>,
}

/// Where a store is: what `vigilo hub --store` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// SQLite in the data folder (the default).
    DataFolder,
    /// A PostgreSQL database: its `postgres://` address.
    Postgres(String),
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Location, String> {
        if s == "sqlite" {
            Ok(Location::DataFolder)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Location::Postgres(s.to_string()))
        } else {
            Err(format!(
                "expected `sqlite` (the data folder) or a postgres://user:password@host/db \
                 address, not `{s}`"
            ))
        }
    }
}

impl Store {
    /// One alarm by its row id.
    pub fn alarm(&self, id: i64) -> Result<Option<StoredAlarm>> {
        let filter = AlarmFilter {
            id: Some(id),
            ..AlarmFilter::default()
        };
        Ok(self.alarms(&filter)?.pop())
    }

    /// The database's size: on disk with its write-ahead log (SQLite), or as PostgreSQL
    /// counts it.
    pub fn size_bytes(&self) -> u64 {
        match &self.file {
            Some(file) => {
                let wal = PathBuf::from(format!("{}-wal", file.display()));
                [file.as_path(), wal.as_path()]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            }
            None => self
                .db
                .one("SELECT pg_database_size(current_database())", &[])
                .and_then(|r| r.get::<u64>(0))
                .unwrap_or(0),
        }
    }

    /// Makes the store of `data_dir` live at `location` from now on (checking it can be
    /// opened there first): every later [`Store::open`] of the folder opens it there.
    pub fn set_location(data_dir: &Path, location: &Location) -> Result<()> {
        crate::data_dir::prepare(data_dir)?;
        let file = data_dir.join(crate::data_dir::STORE_URL);
        match location {
            Location::DataFolder => match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot remove {}", file.display()))
                }
                _ => Ok(()),
            },
            Location::Postgres(url) => {
                Store::open_postgres(url)?;
                crate::owner_only::replace(&file, format!("{url}\n").as_bytes())
                    .with_context(|| format!("cannot write {}", file.display()))
            }
        }
    }

    /// Opens (creating if needed) the store of `data_dir`, migrating the schema forward: the
    /// SQLite file in the folder, or the PostgreSQL database its `store-url` names.
    pub fn open(data_dir: &Path) -> Result<Store> {
        crate::data_dir::prepare(data_dir)?;
        let url_file = data_dir.join(crate::data_dir::STORE_URL);
        match std::fs::read_to_string(&url_file) {
            Ok(url) => {
                return Store::open_postgres(url.trim())
                    .with_context(|| format!("the store named in {}", url_file.display()));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot read {}", url_file.display()));
            }
            Err(_) => {}
        }
        let path = data_dir.join(crate::data_dir::STORE);
        let mut conn = rusqlite::Connection::open(&path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        // Alarms hold what people did on their computers: owner-only, whatever the umask.
        // (SQLite gives its -wal and -shm files the database file's permissions.)
        crate::owner_only::restrict(&path)
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // What statements keep for themselves (the rows a RETURNING gives back, a statement's
        // own journal when it changes many rows) stays in memory, not in temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn).with_context(|| format!("cannot migrate {}", path.display()))?;
        tracing::debug!(path = %path.display(), schema = MIGRATIONS.len(), "store opened");
        Ok(Store::new(
            Db::Sqlite(conn),
            path.display().to_string(),
            Some(path),
        ))
    }

    /// Opens (creating the schema if needed) the store in the PostgreSQL database at `url`.
    pub fn open_postgres(url: &str) -> Result<Store> {
        let pg = engine::postgres::Pg::connect(url)?;
        let location = pg.shown.clone();
        let mut db = Db::Postgres(Box::new(pg));
        postgres_schema::migrate(&mut db).with_context(|| format!("cannot migrate {location}"))?;
        tracing::debug!(%location, "store opened");
        Ok(Store::new(db, location, None))
    }

    fn new(db: Db, location: String, file: Option<PathBuf>) -> Store {
        Store {
            db,
            location,
            file,
            action_limit: None,
            forward: false,
            outputs: Vec::new(),
        }
    }

    /// Where the store is: its SQLite file, or its PostgreSQL address (without password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes fired alarms in one transaction; returns how many were new (an alarm already
    /// stored — same pack, alarm, time and event, e.g. a day replayed twice — is not duplicated).
    /// Alarms of the [`LIVE`] origin have the actions vigilo performs queued in the same
    /// transaction (the outbox), so none is lost between the commit and its worker — and, in a
    /// fleet, their forwarding to the hub.
    pub fn record<'a>(
        &mut self,
        alarms: impl IntoIterator<Item = &'a AlarmRecord>,
        origin: &str,
    ) -> Result<usize> {
        let (limit, forward) = (self.action_limit, self.forward);
        let tx = self.db.transaction()?;
        let mut inserted = 0;
        for a in alarms {
            let Some(alarm_id) = insert_alarm(&tx, a, origin, None)? else {
                continue;
            };
            inserted += 1;
            if origin != LIVE {
                continue;
            }
            for (position, action) in a.actions.iter().enumerate() {
                if crate::model::action::PERFORMED.contains(&action.name()) {
                    let (kind, lane) = (action.name(), action.lane());
                    let skip = (a.event.kind() == crate::event::EventKind::Account
                        && crate::model::action::ON_THIS_DESKTOP.contains(&kind))
                    .then_some(
                        "not performed: a setup change is not about the person at this desktop",
                    );
                    let queue = outbox::Queue {
                        alarm_id,
                        position,
                        kind,
                        lane: &lane,
                        limit,
                        skip,
                    };
                    outbox::enqueue(&tx, &queue)?;
                }
            }
            if forward {
                // After the alarm's own actions; its own lane, never waiting for them.
                let queue = outbox::Queue {
                    alarm_id,
                    position: a.actions.len(),
                    kind: FORWARD,
                    lane: FORWARD,
                    limit: None,
                    skip: None,
                };
                outbox::enqueue(&tx, &queue)?;
            }
            queue_outputs(&tx, &self.outputs, alarm_id)?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// Writes alarms another agent sent (a hub's store), in one transaction: each under its
    /// agent and that agent's id for it, once — the same alarm arriving again (a publish
    /// retried, a message delivered twice) changes nothing. Nothing is queued: the agent
    /// performed the actions. Says of each whether it was new.
    pub fn record_forwarded<'a>(
        &mut self,
        alarms: impl IntoIterator<Item = (&'a str, i64, &'a AlarmRecord)>,
    ) -> Result<Vec<bool>> {
        let alarms: Vec<_> = alarms.into_iter().collect();
        let tx = self.db.transaction()?;
        let mut fresh = Vec::with_capacity(alarms.len());
        // Many rows to one statement: a hub takes batches, and on PostgreSQL each statement
        // is a round trip.
        for chunk in alarms.chunks(FORWARDED_PER_INSERT) {
            for id in insert_forwarded(&tx, chunk)? {
                if let Some(id) = id {
                    queue_outputs(&tx, &self.outputs, id)?;
                }
                fresh.push(id.is_some());
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// The hub's id of the alarm agent `agent` calls `agent_alarm`, once it has arrived.
    pub fn alarm_from_agent(&self, agent: &str, agent_alarm: i64) -> Result<Option<i64>> {
        self.db
            .opt(
                // The newest: an agent that started over with a new data folder counts again.
                "SELECT id FROM alarms WHERE agent = ?1 AND agent_alarm = ?2
                  ORDER BY id DESC LIMIT 1",
                args![agent, agent_alarm],
            )?
            .map(|r| r.get(0))
            .transpose()
    }

    /// Queues, with every alarm stored from now on (an agent's live ones, a hub's forwarded
    /// ones), its sending to each of `outputs` (their names; see `actions::output`).
    pub fn set_outputs(&mut self, outputs: Vec<String>) {
        self.outputs = outputs;
    }

    /// Queues, with every live alarm from now on, its forwarding to the fleet's hub.
    pub fn set_forward(&mut self, forward: bool) {
        self.forward = forward;
    }

    /// How many alarms fired at or after `since` (by the time index).
    pub fn count_alarms_since(&self, since: chrono::DateTime<chrono::FixedOffset>) -> Result<u64> {
        self.db
            .one(
                "SELECT count(*) FROM alarms WHERE fired_at >= ?1",
                args![Event::utc_string(since)],
            )?
            .get(0)
    }

    /// Caps each action at `per_hour` for one alarm and one user: beyond it, the action is
    /// recorded as `limited` and not performed (a flapping title sends a few e-mails, not 500).
    pub fn set_action_limit(&mut self, per_hour: Option<u32>) {
        self.action_limit = per_hour;
    }

    /// Lists stored alarms, newest first.
    pub fn alarms(&self, filter: &AlarmFilter) -> Result<Vec<StoredAlarm>> {
        let mut sql = String::from(
            "SELECT id, fired_at, alarm, pack, pack_version, risk, username, computer, summary,
                    actions, event, origin, recorded_at, note, refused,
                    folded, folded_bytes, folded_paths
             FROM alarms WHERE 1=1",
        );
        let mut args: Vec<engine::Value> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: engine::Value| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        use engine::IntoValue;
        if let Some(id) = filter.id {
            bind(&mut sql, " AND id = ?", id.value());
        }
        if let Some(u) = &filter.user {
            bind(&mut sql, " AND username = ?", u.value());
        }
        if let Some(c) = &filter.computer {
            bind(&mut sql, " AND computer = ?", c.value());
        }
        if let Some(a) = &filter.alarm {
            let contains = match self.db.engine() {
                Engine::Sqlite => " AND instr(lower(alarm), lower(?)) > 0",
                Engine::Postgres => " AND strpos(lower(alarm), lower(?)) > 0",
            };
            bind(&mut sql, contains, a.value());
        }
        if let Some(s) = &filter.since {
            bind(&mut sql, " AND fired_at >= ?", s.value());
        }
        if let Some(u) = &filter.until {
            bind(&mut sql, " AND fired_at < ?", u.value());
        }
        if let Some(p) = &filter.pack {
            bind(&mut sql, " AND pack = ?", p.value());
        }
        if let Some(r) = filter.min_risk {
            bind(&mut sql, " AND risk >= ?", r.value());
        }
        if let Some((fired_at, id)) = &filter.after {
            bind(&mut sql, " AND (fired_at < ?", fired_at.value());
            bind(&mut sql, " OR (fired_at = ?", fired_at.value());
            bind(&mut sql, " AND id < ?))", id.value());
        }
        sql.push_str(" ORDER BY fired_at DESC, id DESC");
        if let Some(l) = filter.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let rows = self.db.rows(&sql, &args)?;
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.get(0).ok()).collect();
        let mut outcomes = self.outcomes_of(&ids)?;
        let mut out = Vec::new();
        for r in &rows {
            let id: i64 = r.get(0)?;
            match self.stored_alarm(r, outcomes.remove(&id).unwrap_or_default()) {
                Ok(alarm) => out.push(alarm),
                // Asked for by id, the caller learns why it cannot have it (the action worker
                // records that as the action's end). In a listing one row that no longer reads
                // back (edited by hand, or written before a check existed) must not hide the
                // others: it is reported and passed over.
                Err(e) if filter.id.is_some() => return Err(e),
                Err(e) => tracing::warn!("{e:#}; left out of the list"),
            }
        }
        Ok(out)
    }

    /// The outbox rows of alarms `ids`, by alarm, each alarm's in their order.
    fn outcomes_of(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<crate::model::alarm::ActionOutcome>>> {
        let mut by_alarm: std::collections::HashMap<_, Vec<_>> = Default::default();
        // A page of alarms at a time (a listing's limit), in as few queries as placeholders
        // allow.
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "SELECT alarm_id, position, kind, state, attempts, detail FROM action_runs
                  WHERE alarm_id IN ({}) ORDER BY alarm_id, position",
                marks.join(", ")
            );
            let args: Vec<engine::Value> = chunk.iter().map(|i| engine::Value::Int(*i)).collect();
            for r in self.db.rows(&sql, &args)? {
                let state: String = r.get(3)?;
                by_alarm.entry(r.get::<i64>(0)?).or_default().push(
                    crate::model::alarm::ActionOutcome {
                        position: r.get(1)?,
                        kind: r.get(2)?,
                        state: serde_json::from_value(serde_json::Value::String(state))?,
                        attempts: r.get(4)?,
                        detail: r.get(5)?,
                    },
                );
            }
        }
        Ok(by_alarm)
    }

    /// One row of the alarms query in [`Store::alarms`], decoded, with its outbox rows.
    fn stored_alarm(
        &self,
        r: &engine::Row,
        outcomes: Vec<crate::model::alarm::ActionOutcome>,
    ) -> Result<StoredAlarm> {
        let id: i64 = r.get(0)?;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            anyhow::anyhow!("alarm {id} in {}: bad {what}: {e}", self.location)
        };
        let fired_at: String = r.get(1)?;
        let actions: String = r.get(9)?;
        let event: String = r.get(10)?;
        let refused: Option<String> = r.get(14)?;
        Ok(StoredAlarm {
            id,
            record: AlarmRecord {
                fired_at: chrono::DateTime::parse_from_rfc3339(&fired_at)
                    .map_err(|e| bad("fired_at", &e))?,
                alarm: r.get(2)?,
                pack: r.get(3)?,
                pack_version: r.get(4)?,
                risk: r.get(5).map_err(|e| bad("risk", &e))?,
                user: r.get(6)?,
                computer: r.get(7)?,
                summary: r.get(8)?,
                actions: serde_json::from_str(&actions).map_err(|e| bad("actions", &e))?,
                event: crate::event::parse_line(&event).map_err(|e| bad("event", &e))?,
                note: r.get(13)?,
                refused: match refused {
                    Some(text) => serde_json::from_str(&text).map_err(|e| bad("refused", &e))?,
                    None => Vec::new(),
                },
            },
            origin: r.get(11)?,
            recorded_at: r.get(12)?,
            outcomes,
            folded: match r.get::<i64>(15)? {
                0 => None,
                count => Some(crate::model::alarm::Folded {
                    count: count.max(0) as u64,
                    bytes: r.get::<i64>(16)?.max(0) as u64,
                    paths: match r.get::<Option<String>>(17)? {
                        Some(text) => {
                            serde_json::from_str(&text).map_err(|e| bad("folded_paths", &e))?
                        }
                        None => Vec::new(),
                    },
                }),
            },
        })
    }

    /// Adds matches a cooldown kept from firing to the alarms they were folded into, in one
    /// transaction. A fold whose alarm is not stored (a replay not kept) changes nothing.
    pub fn fold(&mut self, folds: &[crate::model::alarm::Fold]) -> Result<()> {
        if folds.is_empty() {
            return Ok(());
        }
        let tx = self.db.transaction()?;
        for f in folds {
            let found = tx.rows(
                "SELECT id, folded_paths FROM alarms
                  WHERE pack = ?1 AND alarm = ?2 AND fired_at = ?3
                    AND username IS NOT DISTINCT FROM ?4 AND computer IS NOT DISTINCT FROM ?5",
                args![
                    f.pack,
                    f.alarm,
                    Event::utc_string(f.into),
                    f.user,
                    f.computer
                ],
            )?;
            for r in found {
                let id: i64 = r.get(0)?;
                // The first paths are kept, as many as a person can read in a list.
                let paths = match (&f.path, r.get::<Option<String>>(1)?) {
                    (None, kept) => kept,
                    (Some(path), kept) => {
                        let mut paths: Vec<String> = kept
                            .as_deref()
                            .and_then(|k| serde_json::from_str(k).ok())
                            .unwrap_or_default();
                        if paths.len() < crate::model::alarm::Folded::PATHS_KEPT {
                            paths.push(path.clone());
                        }
                        Some(serde_json::to_string(&paths)?)
                    }
                };
                tx.exec(
                    "UPDATE alarms SET folded = folded + 1, folded_bytes = folded_bytes + ?2,
                        folded_paths = ?3 WHERE id = ?1",
                    args![id, f.bytes.unwrap_or(0), paths],
                )?;
            }
        }
        tx.commit()
    }

    /// Remembers that `program` of `pack` was switched off, and why.
    pub fn quarantine(&mut self, pack: &str, program: &str, reason: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO quarantined (pack, program, since, reason) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (pack, program) DO UPDATE SET since = excluded.since,
                reason = excluded.reason",
            args![
                pack,
                program,
                Event::utc_string(Utc::now().fixed_offset()),
                reason
            ],
        )?;
        Ok(())
    }

    /// The programs switched off: (pack, program, why).
    pub fn quarantined(&self) -> Result<Vec<(String, String, String)>> {
        self.db
            .rows(
                "SELECT pack, program, reason FROM quarantined ORDER BY pack, program",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
    }

    /// Turns `pack`'s switched-off programs back on; returns their names.
    pub fn release_programs(&mut self, pack: &str) -> Result<Vec<String>> {
        self.db
            .rows(
                "DELETE FROM quarantined WHERE pack = ?1 RETURNING program",
                args![pack],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Every plugin's saved key-value state, by (pack, plugin).
    pub fn plugin_states(&self) -> Result<crate::model::program_state::PluginStates> {
        let mut states = crate::model::program_state::PluginStates::new();
        for r in self
            .db
            .rows("SELECT pack, plugin, key, value FROM plugin_state", &[])?
        {
            states
                .entry((r.get(0)?, r.get(1)?))
                .or_default()
                .insert(r.get(2)?, r.get(3)?);
        }
        Ok(states)
    }

    /// Replaces the saved states of the given plugins with these, in one transaction.
    pub fn save_plugin_states(
        &mut self,
        states: &crate::model::program_state::PluginStates,
    ) -> Result<()> {
        let tx = self.db.transaction()?;
        for ((pack, plugin), state) in states {
            tx.exec(
                "DELETE FROM plugin_state WHERE pack = ?1 AND plugin = ?2",
                args![pack, plugin],
            )?;
            for (key, value) in state {
                tx.exec(
                    "INSERT INTO plugin_state (pack, plugin, key, value) VALUES (?1, ?2, ?3, ?4)",
                    args![pack, plugin, key, value],
                )?;
            }
        }
        tx.commit()
    }

    /// The schema version (number of migrations applied on this engine).
    pub fn schema_version(&self) -> Result<usize> {
        match &self.db {
            Db::Sqlite(_) => self.db.one("PRAGMA user_version", &[])?.get(0),
            Db::Postgres(_) => postgres_schema::version(&self.db),
        }
    }

    /// The journal mode in force (`wal` once opened; `postgres` on PostgreSQL).
    pub fn journal_mode(&self) -> Result<String> {
        match &self.db {
            Db::Sqlite(_) => self.db.one("PRAGMA journal_mode", &[])?.get(0),
            Db::Postgres(_) => Ok("postgres".into()),
        }
    }
}

/// Queues alarm `alarm_id`'s sending to each output, past every other row of it (see
/// [`OUTPUTS_FROM`]).
fn queue_outputs(tx: &Tx<'_>, outputs: &[String], alarm_id: i64) -> Result<()> {
    for (k, name) in outputs.iter().enumerate() {
        let lane = output_lane(name);
        let queue = outbox::Queue {
            alarm_id,
            position: OUTPUTS_FROM + k,
            kind: OUTPUT,
            lane: &lane,
            limit: None,
            skip: None,
        };
        outbox::enqueue(tx, &queue)?;
    }
    Ok(())
}

/// The columns an alarm is inserted with, in the order of [`alarm_values`].
const ALARM_COLUMNS: &str = "fired_at, alarm, pack, pack_version, risk, kind, username, computer,
    summary, actions, event, origin, recorded_at, note, refused, agent, agent_alarm";

/// How many values [`alarm_values`] gives.
const ALARM_VALUES: usize = 17;

/// Forwarded alarms inserted by one statement: 3,400 values, well under both engines' limits
/// (SQLite 32,766; PostgreSQL 65,535).
const FORWARDED_PER_INSERT: usize = 200;

/// An alarm's row as values. `from`: the agent that sent it and its id there (a hub's store).
fn alarm_values(
    a: &AlarmRecord,
    origin: &str,
    from: Option<(&str, i64)>,
) -> Result<[engine::Value; ALARM_VALUES]> {
    use engine::IntoValue;
    Ok([
        Event::utc_string(a.fired_at).value(),
        a.alarm.value(),
        a.pack.value(),
        a.pack_version.value(),
        a.risk.value(),
        a.event.kind().name().value(),
        a.user.value(),
        a.computer.value(),
        a.summary.value(),
        serde_json::to_string(&a.actions)?.value(),
        a.event.to_json().value(),
        origin.value(),
        Event::utc_string(Utc::now().fixed_offset()).value(),
        a.note.value(),
        (!a.refused.is_empty())
            .then(|| serde_json::to_string(&a.refused))
            .transpose()?
            .value(),
        from.map_or("", |(agent, _)| agent).value(),
        from.map(|(_, id)| id).value(),
    ])
}

/// `(?1, …, ?17), (?18, …)`: the placeholders of `rows` alarms.
fn alarm_placeholders(rows: usize) -> String {
    (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=ALARM_VALUES)
                .map(|c| format!("?{}", r * ALARM_VALUES + c))
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts one alarm unless it is already stored (same agent, pack, alarm, time and event);
/// returns its new row id.
fn insert_alarm(
    tx: &Tx<'_>,
    a: &AlarmRecord,
    origin: &str,
    from: Option<(&str, i64)>,
) -> Result<Option<i64>> {
    let sql = format!(
        "INSERT INTO alarms ({ALARM_COLUMNS}) VALUES {} ON CONFLICT DO NOTHING RETURNING id",
        alarm_placeholders(1)
    );
    let added = tx.opt(&sql, &alarm_values(a, origin, from)?)?;
    added.map(|r| r.get(0)).transpose()
}

/// Inserts alarms other agents sent, in one statement, each unless already stored; returns
/// each one's new row id, in order (`None`: it was there).
fn insert_forwarded(tx: &Tx<'_>, alarms: &[(&str, i64, &AlarmRecord)]) -> Result<Vec<Option<i64>>> {
    let mut values = Vec::with_capacity(alarms.len() * ALARM_VALUES);
    for (agent, agent_alarm, a) in alarms {
        let origin = format!("fleet:{agent}");
        values.extend(alarm_values(a, &origin, Some((agent, *agent_alarm)))?);
    }
    let sql = format!(
        "INSERT INTO alarms ({ALARM_COLUMNS}) VALUES {} ON CONFLICT DO NOTHING
         RETURNING id, agent, agent_alarm",
        alarm_placeholders(alarms.len())
    );
    // The rows that went in come back in no promised order: by (agent, its id), the first
    // alarm sent under that pair is the one stored (the same pair twice in a batch is one
    // message delivered twice).
    let mut added: std::collections::HashMap<(String, i64), Vec<i64>> = Default::default();
    for r in tx.rows(&sql, &values)? {
        added
            .entry((r.get(1)?, r.get(2)?))
            .or_default()
            .push(r.get(0)?);
    }
    for ids in added.values_mut() {
        ids.sort_unstable_by(|a, b| b.cmp(a));
    }
    Ok(alarms
        .iter()
        .map(|(agent, agent_alarm, _)| {
            added
                .get_mut(&(agent.to_string(), *agent_alarm))
                .and_then(Vec::pop)
        })
        .collect())
}

fn migrate(conn: &mut rusqlite::Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    anyhow::ensure!(
        current <= MIGRATIONS.len(),
        "the database is at schema version {current}, newer than this agent knows ({}); \
         upgrade vigilo",
        MIGRATIONS.len()
    );
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alarm::{ActionOutcome, ActionState};
    use crate::packs::Pack;

    fn fired(pack: &Pack, n: usize, user: &str) -> AlarmRecord {
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:00:00+01:00").expect("ts");
        let event = Event::new(crate::event::EventKind::Usb, ts)
            .with_text(crate::event::Field::Username, user)
            .with_text(crate::event::Field::Action, "inserted");
        crate::alarms::FiredAlarm::new(n as u32, pack, &pack.alarms[n], &event, ts, None).record
    }

    #[test]
    fn a_hub_keeps_each_agents_alarm_once_and_an_agent_queues_its_forwarding() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            let (a, b) = (fired(&pack, 0, "alice"), fired(&pack, 3, "bob"));
            let sent = [
                ("ws-1", 1, &a),
                ("ws-1", 1, &a),
                ("ws-2", 1, &a),
                ("ws-1", 2, &b),
            ];
            assert_eq!(
                store.record_forwarded(sent).expect("record"),
                [true, false, true, true]
            );
            assert_eq!(
                store.record_forwarded(sent).expect("again"),
                [false; 4],
                "repeats change nothing"
            );
            let all = store.alarms(&AlarmFilter::default()).expect("list");
            let mut origins: Vec<&str> = all.iter().map(|s| s.origin.as_str()).collect();
            origins.sort();
            assert_eq!(origins, ["fleet:ws-1", "fleet:ws-1", "fleet:ws-2"]);
            assert!(
                store.due_actions(Utc::now(), 10).expect("due").is_empty(),
                "nothing to do"
            );

            let mut agent = engine.open("agent");
            agent.set_forward(true);
            assert_eq!(agent.record([&a, &b], LIVE).expect("live"), 2);
            assert_eq!(agent.record([&a], "replay:day").expect("replayed"), 0);
            let due = agent.due_actions(Utc::now(), 10).expect("due");
            let forwards: Vec<i64> = due
                .iter()
                .filter(|r| r.kind == FORWARD)
                .map(|r| r.alarm_id)
                .collect();
            assert_eq!(forwards.len(), 2, "{due:?}");
        }
    }

    #[test]
    fn a_store_from_before_the_fleet_keeps_its_alarms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir");
        let pack = Pack::standard().expect("standard");
        {
            // Schema 13, written as that version did.
            let mut conn =
                rusqlite::Connection::open(data.join(crate::data_dir::STORE)).expect("open");
            for (i, sql) in MIGRATIONS[..13].iter().enumerate() {
                let tx = conn.transaction().expect("tx");
                tx.execute_batch(sql).expect("migrate");
                tx.pragma_update(None, "user_version", (i + 1) as i64)
                    .expect("version");
                tx.commit().expect("commit");
            }
            let a = fired(&pack, 0, "alice");
            conn.execute(
                "INSERT INTO alarms (fired_at, alarm, pack, pack_version, risk, kind, username,
                    summary, actions, event, origin, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'usb', 'alice', ?6, '[]', ?7, 'live', ?1)",
                rusqlite::params![
                    Event::utc_string(a.fired_at),
                    a.alarm,
                    a.pack,
                    a.pack_version,
                    a.risk,
                    a.summary,
                    a.event.to_json()
                ],
            )
            .expect("insert");
        }
        let store = Store::open(&data).expect("migrates");
        assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
        let all = store.alarms(&AlarmFilter::default()).expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].record.user.as_deref(), Some("alice"));
    }

    #[test]
    fn a_row_that_no_longer_reads_back_hides_no_other() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            store
                .record(
                    &[fired(&pack, 3, "alice"), fired(&pack, 3, "bob")],
                    "replay:day",
                )
                .expect("record");
            // As an agent before the range check could store it: year 10000.
            store
            .db
            .exec(
                "UPDATE alarms SET fired_at = '+10000-01-01T23:58:59.000Z' WHERE username = 'bob'",
                &[],
            )
            .expect("edit");
            let listed = store
                .alarms(&AlarmFilter::default())
                .expect("the list still reads");
            let users: Vec<_> = listed.iter().map(|a| a.record.user.as_deref()).collect();
            assert_eq!(users, [Some("alice")]);
            // Asked for by id, the bad row says why.
            let bob: i64 = store
                .db
                .one("SELECT id FROM alarms WHERE username = 'bob'", &[])
                .and_then(|r| r.get(0))
                .expect("id");
            let err = store.alarm(bob).expect_err("unreadable");
            assert!(format!("{err:#}").contains("bad fired_at"), "{err:#}");
        }
    }

    #[test]
    fn live_alarms_queue_their_performed_actions_and_outcomes_read_back() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            let now = Utc::now();
            // A replayed day is history: nothing to perform.
            store
                .record(&[fired(&pack, 3, "alice")], "replay:day")
                .expect("replay");
            assert!(store.due_actions(now, 10).expect("due").is_empty());
            // Live: its screenshot and pop-up are queued, in the alarm's order.
            store.record(&[fired(&pack, 3, "bob")], LIVE).expect("live");
            let due = store
                .due_actions(now + chrono::Duration::seconds(1), 10)
                .expect("due");
            let kinds: Vec<&str> = due.iter().map(|r| r.kind.as_str()).collect();
            assert_eq!(kinds, ["screenshot", "popup"]);
            store
                .settle_action(due[1].id, &Settle::Done("shown".into()))
                .expect("settle");
            let run = due[0].clone();
            assert_eq!(
                (run.kind.as_str(), run.position, run.attempts),
                ("screenshot", 0, 0)
            );
            assert!(run.message_id.starts_with("msg_") && run.message_id.len() == 36);

            let later = now + chrono::Duration::seconds(30);
            store
                .settle_action(run.id, &Settle::Retry(later, "1 of 2".into()))
                .expect("settle");
            assert!(
                store
                    .due_actions(now + chrono::Duration::seconds(1), 10)
                    .expect("due")
                    .is_empty()
            );
            let next = store.next_due_action().expect("next").expect("one pending");
            assert!(
                (next - later).num_milliseconds().abs() < 2,
                "{next} vs {later}"
            );
            let again = store.due_actions(later, 10).expect("due");
            assert_eq!(again[0].attempts, 1);
            assert_eq!(
                again[0].message_id, run.message_id,
                "one id for every attempt"
            );

            store
                .settle_action(run.id, &Settle::Dead("no X display".into()))
                .expect("settle");
            assert_eq!(store.outbox_counts().expect("counts"), (0, 1));
            let bob = store
                .alarms(&AlarmFilter {
                    user: Some("bob".into()),
                    ..Default::default()
                })
                .expect("bob");
            assert_eq!(
                bob[0].outcomes,
                [
                    ActionOutcome {
                        position: 0,
                        kind: "screenshot".into(),
                        state: ActionState::Dead,
                        attempts: 2,
                        detail: Some("no X display".into()),
                    },
                    ActionOutcome {
                        position: 1,
                        kind: "popup".into(),
                        state: ActionState::Done,
                        attempts: 1,
                        detail: Some("shown".into()),
                    }
                ]
            );
            let alice = store
                .alarms(&AlarmFilter {
                    user: Some("alice".into()),
                    ..Default::default()
                })
                .expect("alice");
            assert!(alice[0].outcomes.is_empty());
        }
    }

    #[test]
    fn actions_over_the_hourly_limit_per_alarm_and_user_are_recorded_not_performed() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            store.set_action_limit(Some(2));
            let now = chrono::Utc::now().fixed_offset();
            let at = |s: i64, user: &str| {
                let ts = now + chrono::Duration::seconds(s);
                let event = Event::new(crate::event::EventKind::Usb, ts)
                    .with_text(crate::event::Field::Username, user)
                    .with_text(crate::event::Field::Action, "inserted");
                crate::alarms::FiredAlarm::new(3, &pack, &pack.alarms[3], &event, ts, None).record
            };
            for s in 0..4 {
                store.record(&[at(s, "bob")], LIVE).expect("bob");
            }
            store.record(&[at(9, "carol")], LIVE).expect("carol");
            let states = |user: &str| -> Vec<String> {
                let mut alarms = store
                    .alarms(&AlarmFilter {
                        user: Some(user.into()),
                        ..Default::default()
                    })
                    .expect("alarms");
                alarms.reverse();
                alarms
                    .iter()
                    .map(|a| a.outcomes[0].state.to_string())
                    .collect()
            };
            assert_eq!(states("bob"), ["pending", "pending", "limited", "limited"]);
            assert_eq!(
                states("carol"),
                ["pending"],
                "another user has a budget of their own"
            );
        }
    }

    #[test]
    fn captures_expire_by_age_and_by_total_size_oldest_first() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            store.record(&[fired(&pack, 3, "bob")], LIVE).expect("live");
            let id = store.alarms(&AlarmFilter::default()).expect("alarms")[0].id;
            for n in 1..=3 {
                store
                    .add_capture(id, "screenshot", Path::new(&format!("/c/{n}.png")), 100)
                    .expect("add");
            }
            let keep_250 = Retention {
                max_age: std::time::Duration::from_secs(3600),
                max_bytes: 250,
            };
            let gone = store
                .expire_captures(&keep_250, Utc::now())
                .expect("expire");
            assert_eq!(gone, [PathBuf::from("/c/1.png")]);
            assert_eq!(store.captures_of(id).expect("left").len(), 2);
            let a_day_later = Utc::now() + chrono::Duration::days(1);
            let gone = store
                .expire_captures(&keep_250, a_day_later)
                .expect("expire");
            assert_eq!(gone.len(), 2, "all older than an hour by then");
            assert!(store.captures_of(id).expect("left").is_empty());
        }
    }

    #[test]
    fn a_forwarded_alarms_captures_are_forwarded_each_and_a_hub_keeps_each_once() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            store
                .record(&[fired(&pack, 3, "ann")], LIVE)
                .expect("alone");
            store.set_forward(true);
            store
                .record(&[fired(&pack, 3, "bob")], LIVE)
                .expect("forwarded");
            let by_user = |user: &str| {
                store
                    .alarms(&AlarmFilter {
                        user: Some(user.into()),
                        ..Default::default()
                    })
                    .expect("alarms")[0]
                    .id
            };
            let (alone, forwarded) = (by_user("ann"), by_user("bob"));
            for (alarm, n) in [(alone, 1), (forwarded, 2), (forwarded, 3)] {
                let path = PathBuf::from(format!("/c/{n}.png"));
                store
                    .add_capture(alarm, "screenshot", &path, 10)
                    .expect("add");
            }
            let due = store
                .due_in_lane(Some(FORWARD), Utc::now(), 10)
                .expect("due");
            let kinds: Vec<&str> = due.iter().map(|r| r.kind.as_str()).collect();
            assert_eq!(kinds, [FORWARD, FORWARD_CAPTURE, FORWARD_CAPTURE]);
            assert!(due.iter().all(|r| r.alarm_id == forwarded));
            let paths: Vec<PathBuf> = due[1..]
                .iter()
                .map(|r| {
                    store
                        .forwarded_capture(r)
                        .expect("read")
                        .expect("there")
                        .path
                })
                .collect();
            assert_eq!(
                paths,
                [PathBuf::from("/c/2.png"), PathBuf::from("/c/3.png")]
            );
            assert_eq!(store.forwarded_capture(&due[0]).expect("read"), None);

            // A hub: the alarm found by its agent's id, each fetched capture kept once.
            let mut hub = engine.open("hub");
            let alarm = fired(&pack, 3, "bob");
            assert_eq!(hub.alarm_from_agent("ws-1", 41).expect("find"), None);
            hub.record_forwarded([("ws-1", 41, &alarm)]).expect("store");
            let at_hub = hub
                .alarm_from_agent("ws-1", 41)
                .expect("find")
                .expect("there");
            assert_eq!(hub.alarm_from_agent("ws-2", 41).expect("find"), None);
            let taken = "2026-11-02T10:00:00.000Z";
            let file = Path::new("/hub/ws-1-41-0-1.png");
            assert!(
                hub.add_fetched_capture(at_hub, "screenshot", file, 10, taken)
                    .expect("add")
            );
            assert!(
                !hub.add_fetched_capture(at_hub, "screenshot", file, 10, taken)
                    .expect("again")
            );
            let kept = hub.captures_of(at_hub).expect("captures");
            assert_eq!((kept.len(), kept[0].taken_at.as_str()), (1, taken));
            assert_eq!(
                hub.outbox_counts().expect("outbox"),
                (0, 0),
                "a hub forwards nothing"
            );
        }
    }

    #[test]
    fn records_once_migrates_and_filters() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut store = engine.open("data");
            if let crate::store::testing::TestEngine::Sqlite(dir) = &engine {
                assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
                assert_eq!(store.journal_mode().expect("mode"), "wal");
                use std::os::unix::fs::PermissionsExt;
                let mode =
                    |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
                assert_eq!(mode(store.file.as_deref().expect("a file")), 0o600);
                assert_eq!(mode(&dir.path().join("data")), 0o700);
            } else {
                assert_eq!(
                    store.schema_version().expect("version"),
                    postgres_schema::MIGRATIONS.len()
                );
            }
            let batch = [fired(&pack, 0, "alice"), fired(&pack, 3, "bob")];
            assert_eq!(store.record(&batch, "replay:test").expect("record"), 2);
            assert_eq!(
                store.record(&batch, "replay:test").expect("again"),
                0,
                "idempotent"
            );
            drop(store);

            let mut store = engine.open("data");
            let state = crate::model::program_state::PluginStates::from([(
                ("pack".to_string(), "plugin".to_string()),
                std::collections::BTreeMap::from([("k".to_string(), vec![1u8, 2])]),
            )]);
            store.save_plugin_states(&state).expect("save");
            store
                .save_plugin_states(&state)
                .expect("save again replaces");
            assert_eq!(store.plugin_states().expect("load"), state);
            let all = store.alarms(&AlarmFilter::default()).expect("list");
            assert_eq!(all.len(), 2);
            assert_eq!(
                Event::utc_string(all[0].record.fired_at),
                "2026-11-02T09:00:00.000Z"
            );
            let bob = store
                .alarms(&AlarmFilter {
                    user: Some("bob".into()),
                    ..Default::default()
                })
                .expect("bob");
            assert_eq!(bob.len(), 1);
            assert_eq!(bob[0].record.alarm, pack.alarms[3].name);
            assert_eq!(bob[0].record.actions, batch[1].actions, "actions read back");
            let by_name = store
                .alarms(&AlarmFilter {
                    alarm: Some("YOUTUBE".into()),
                    since: Some("2026-11-02T08:00:00.000Z".into()),
                    until: Some("2026-11-02T10:00:00.000Z".into()),
                    ..Default::default()
                })
                .expect("filtered");
            assert_eq!(by_name.len(), 1);
            assert_eq!(
                by_name[0].record.event, batch[0].event,
                "the event reads back"
            );
        }
    }

    #[test]
    fn hubs_sharing_a_postgresql_outbox_never_take_one_row_twice() {
        for engine in crate::store::testing::engines() {
            let pack = Pack::standard().expect("standard");
            let mut hub = engine.open("hub");
            hub.set_outputs(vec!["siem".into()]);
            let (a, b) = (fired(&pack, 0, "alice"), fired(&pack, 3, "bob"));
            hub.record_forwarded([("ws-1", 1, &a), ("ws-1", 2, &b)])
                .expect("record");
            let other = engine.open("hub");
            let now = Utc::now();
            let lane = output_lane("siem");
            let first = hub.take_due(Some(&lane), now, 1).expect("take");
            assert_eq!(first.len(), 1);
            let second = other.take_due(Some(&lane), now, 10).expect("take");
            if matches!(engine, crate::store::testing::TestEngine::Postgres { .. }) {
                assert_eq!(second.len(), 1, "only the row the first hub did not take");
                assert_ne!(first[0].id, second[0].id);
                assert!(
                    other
                        .take_due(Some(&lane), now, 10)
                        .expect("take")
                        .is_empty(),
                    "both claimed"
                );
                // A hub that took a row and died leaves it to the others, after the claim.
                let later = now
                    + chrono::Duration::from_std(outbox::CLAIM).expect("d")
                    + chrono::Duration::seconds(1);
                assert_eq!(
                    other.take_due(Some(&lane), later, 10).expect("take").len(),
                    2
                );
            } else {
                // One agent per data folder: rows stay due until settled.
                assert_eq!(second.len(), 2);
            }
            hub.settle_action(first[0].id, &Settle::Done("sent".into()))
                .expect("settle");
            assert_eq!(
                hub.outbox_counts().expect("counts").0,
                1,
                "one left pending"
            );
        }
    }

    #[test]
    fn a_store_address_that_is_no_address_is_refused_naming_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!("mysql://db/x".parse::<Location>().is_err());
        std::fs::write(
            dir.path().join(crate::data_dir::STORE_URL),
            "postgres://[::1\n",
        )
        .expect("write");
        let err = format!("{:#}", Store::open(dir.path()).err().expect("refused"));
        assert!(
            err.contains("store-url") && err.contains("bad address"),
            "{err}"
        );
        assert!(
            !dir.path().join(crate::data_dir::STORE).exists(),
            "no SQLite in its place"
        );
    }

    #[test]
    fn refuses_a_database_from_the_future() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn =
            rusqlite::Connection::open(dir.path().join(crate::data_dir::STORE)).expect("open");
        conn.pragma_update(None, "user_version", 99).expect("set");
        drop(conn);
        let err = format!("{:#}", Store::open(dir.path()).err().expect("refused"));
        assert!(err.contains("newer than this agent"), "{err}");
    }
}
