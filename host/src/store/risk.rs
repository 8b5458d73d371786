//! What risk scores are computed from: activity records per user and hour (migration 8), and
//! the risk points of the alarms in a window.

use super::Store;
use super::engine::{Engine, Sql, Tx, args};
use crate::event::Event;
use crate::risk::{ActivityCount, WindowTally};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// The schema (migration 8). One row per origin, user and UTC hour: the live agent adds to its
/// rows; a replay replaces its own, so replaying a day twice does not count it twice.
pub(super) const MIGRATION: &str = "CREATE TABLE activity (
        origin    TEXT NOT NULL,          -- 'live', or 'replay:<file>' as for alarms
        username  TEXT NOT NULL,
        hour      TEXT NOT NULL,          -- the hour's start, UTC
        records   INTEGER NOT NULL,
        PRIMARY KEY (origin, username, hour)
    );
    CREATE INDEX activity_by_hour ON activity (hour);";

impl Store {
    /// Adds activity records counted by the live agent.
    pub fn add_activity(&mut self, origin: &str, counts: &[ActivityCount]) -> Result<()> {
        let tx = self.db.transaction()?;
        for c in counts {
            tx.exec(
                "INSERT INTO activity (origin, username, hour, records) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (origin, username, hour)
                 DO UPDATE SET records = activity.records + excluded.records",
                args![origin, c.user, c.hour, c.records],
            )?;
        }
        tx.commit()
    }

    /// The live agent's totals per user and hour from `since`, newest hours first, at most
    /// `limit` (what its heartbeat carries).
    pub fn live_activity_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ActivityCount>> {
        self.db
            .rows(
                "SELECT username, hour, records FROM activity WHERE origin = ?1 AND hour >= ?2
                 ORDER BY hour DESC, username LIMIT ?3",
                args![
                    super::LIVE,
                    crate::risk::hour_of(since.fixed_offset()),
                    limit
                ],
            )?
            .iter()
            .map(|r| {
                Ok(ActivityCount {
                    user: r.get(0)?,
                    hour: r.get(1)?,
                    records: r.get::<i64>(2)?.max(0) as u64,
                })
            })
            .collect()
    }

    /// Replaces what `origin` counted (a replay counts its whole file each time).
    pub fn replace_activity(&mut self, origin: &str, counts: &[ActivityCount]) -> Result<()> {
        self.db
            .exec("DELETE FROM activity WHERE origin = ?1", args![origin])?;
        self.add_activity(origin, counts)
    }

    /// The alarms fired and the activity records of every user from `since` to `until`
    /// (alarms by their exact time; activity by the hours the window overlaps).
    pub fn risk_window(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<WindowTally> {
        let first_hour = crate::risk::hour_of(since.fixed_offset());
        let (since, until) = (
            Event::utc_string(since.fixed_offset()),
            Event::utc_string(until.fixed_offset()),
        );
        let mut tally = WindowTally::default();
        // The window's alarms from the covering index alone (migration 9).
        let window = match self.db.engine() {
            Engine::Sqlite => {
                "SELECT username, alarm, risk, COUNT(*) FROM alarms INDEXED BY alarms_for_risk
                 WHERE fired_at >= ?1 AND fired_at < ?2 AND username IS NOT NULL
                   AND kind != 'account'
                 GROUP BY username, alarm, risk"
            }
            // The same; PostgreSQL's planner takes no orders (the index is there).
            Engine::Postgres => {
                "SELECT username, alarm, risk, COUNT(*) FROM alarms
                 WHERE fired_at >= ?1 AND fired_at < ?2 AND username IS NOT NULL
                   AND kind != 'account'
                 GROUP BY username, alarm, risk"
            }
        };
        for r in self.db.rows(window, args![since, until])? {
            let (user, alarm, risk, n): (String, String, u8, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            tally
                .fired
                .entry(user)
                .or_default()
                .push((alarm, risk, n.max(0) as u64));
        }
        for r in self.db.rows(
            // Cast: PostgreSQL sums integers as NUMERIC.
            "SELECT username, CAST(SUM(records) AS BIGINT) FROM activity
             WHERE hour >= ?1 AND hour < ?2 GROUP BY username",
            args![first_hour, until],
        )? {
            let (user, n): (String, i64) = (r.get(0)?, r.get(1)?);
            tally.records.insert(user, n.max(0) as u64);
        }
        Ok(tally)
    }
}

/// Sets `origin`'s totals for the hours in `counts`, inside a transaction: what a hub keeps of
/// an agent's heartbeat (with the heartbeat, in one). Totals replace, so a heartbeat seen twice
/// counts once.
pub(super) fn set_activity_in(tx: &Tx<'_>, origin: &str, counts: &[ActivityCount]) -> Result<()> {
    for c in counts {
        tx.exec(
            "INSERT INTO activity (origin, username, hour, records) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (origin, username, hour) DO UPDATE SET records = excluded.records",
            args![origin, c.user, c.hour, c.records],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(user: &str, hour: &str, records: u64) -> ActivityCount {
        ActivityCount {
            user: user.into(),
            hour: hour.into(),
            records,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn live_counts_add_up_replays_replace_theirs_and_windows_cover_whole_hours() {
        for engine in crate::store::testing::engines() {
            let mut store = engine.open("data");
            let nine = "2026-11-02T09:00:00.000Z";
            let ten = "2026-11-02T10:00:00.000Z";
            store
                .add_activity("live", &[count("ann", nine, 5), count("ann", ten, 1)])
                .expect("add");
            store
                .add_activity("live", &[count("ann", nine, 2)])
                .expect("add");
            store
                .replace_activity("replay:day", &[count("ann", nine, 100)])
                .expect("replay");
            store
                .replace_activity("replay:day", &[count("ann", nine, 10)])
                .expect("replayed again");
            let records = |since, until| {
                store
                    .risk_window(at(since), at(until))
                    .expect("window")
                    .records
                    .get("ann")
                    .copied()
            };
            // 7 live + 10 replayed at nine, 1 at ten.
            assert_eq!(
                records("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"),
                Some(18)
            );
            // A window from 09:30 overlaps the nine o'clock hour; one ending at 10:00 stops there.
            assert_eq!(
                records("2026-11-02T09:30:00Z", "2026-11-02T10:00:00Z"),
                Some(17)
            );
            assert_eq!(
                records("2026-11-02T11:00:00Z", "2026-11-02T12:00:00Z"),
                None
            );
        }
    }

    #[test]
    fn an_agent_sends_its_recent_totals_and_a_hub_counts_each_computer_once() {
        for engine in crate::store::testing::engines() {
            let mut agent = engine.open("agent");
            let now = Utc::now();
            let hour = |back: i64| {
                crate::risk::hour_of((now - chrono::Duration::hours(back)).fixed_offset())
            };
            let (this, last, old) = (hour(0), hour(1), hour(72));
            agent
                .add_activity(
                    super::super::LIVE,
                    &[
                        count("ann", &this, 3),
                        count("ann", &last, 5),
                        count("ann", &old, 9),
                    ],
                )
                .expect("add");
            agent
                .add_activity("replay:day", &[count("ann", &this, 100)])
                .expect("a replay's");
            let since = now - chrono::Duration::hours(48);
            let sent = agent.live_activity_since(since, 10).expect("recent");
            assert_eq!(
                sent,
                [count("ann", &this, 3), count("ann", &last, 5)],
                "newest first, live only"
            );
            assert_eq!(
                agent.live_activity_since(since, 1).expect("capped").len(),
                1
            );

            // The hub: two computers' heartbeats, one of them twice with a grown total.
            let mut hub = engine.open("hub");
            let beat = |agent: &str, records: u64| -> crate::model::report::Heartbeat {
                let mut beat: crate::model::report::Heartbeat =
                    serde_json::from_value(serde_json::json!({
                        "form": crate::model::FORM_VERSION, "agent": agent, "host": agent,
                        "version": "0.1.0", "os": "linux", "at": "2026-12-01T00:00:00.000Z",
                        "packs": [], "status": {"events": 0, "events_per_second": 0.0, "alarms": 0,
                        "alarms_today": 0, "generation": 1, "sources": {}, "programs": [],
                        "latency": null, "shed": {}, "outbox": {"pending": 0, "dead": 0},
                        "store": {"bytes": 0}}
                    }))
                    .expect("a heartbeat");
                beat.activity = vec![count("ann", &last, records)];
                beat
            };
            for (agent, records) in [("ws-1", 5), ("ws-2", 7), ("ws-1", 6)] {
                hub.agent_seen(&beat(agent, records), "2026-12-01T00:00:00.000Z")
                    .expect("seen");
            }
            let tally = hub
                .risk_window(now - chrono::Duration::hours(24), now)
                .expect("window");
            assert_eq!(
                tally.records.get("ann"),
                Some(&13),
                "ws-1's latest total and ws-2's"
            );
            let kept = &hub.agents().expect("agents")[0];
            assert!(
                kept.heartbeat.activity.is_empty(),
                "the counts live in the risk tables"
            );
        }
    }
}
