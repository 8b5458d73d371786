//! Risk scores: who is trending risky, fairly to people who simply use the computer more.
//!
//! Every alarm has a risk level from 1 to 10. Over a window of time:
//!
//! ```text
//! points(user)   = Σ level × times fired           (each alarm of the user fired in the window)
//! records(user)  = the user's activity records      (window/title/URL changes the agent saw)
//! score(user)    = 100 × points / max(records, 100)
//! ```
//!
//! That is *risk points per 100 activity records*, the normalisation ActivTrak uses (a user's
//! points divided by their activity records in the range): someone who fires two alarms in a
//! thousand window changes scores lower than someone who fires two in a hundred. The floor of
//! 100 records keeps a user who barely used the computer (or whose alarms come from USB or
//! account events only) from scoring sky-high on one alarm: their score is then their points.
//!
//! The **trend** is the score's change from the window of the same length just before.
//!
//! Activity records are counted per user and UTC hour by the pipeline ([`ActivityTally`]) and
//! stored next to the alarms, so a window is whole hours of activity and exact alarm times.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use serde::Serialize;

use crate::event::{Event, EventKind, Field};

/// Below this many activity records a user's points are divided as if they had this many.
pub const RECORDS_FLOOR: u64 = 100;

/// The score for `points` over `records` activity records (see the module docs).
pub fn score(points: u64, records: u64) -> f64 {
    let raw = 100.0 * points as f64 / records.max(RECORDS_FLOOR) as f64;
    // One decimal: a score is read, not computed with.
    (raw * 10.0).round() / 10.0
}

pub use crate::model::report::ActivityCount;

/// Counts activity records per user and hour as events pass, until taken for the store.
/// Counting is on the pipeline's path: no allocation once a user has been seen.
#[derive(Debug, Default)]
pub struct ActivityTally {
    /// User → hour (seconds since the epoch of its start) → records.
    counts: HashMap<String, HashMap<i64, u64>>,
}

impl ActivityTally {
    /// Counts `event` if it is an activity record (an activity event with a user).
    pub fn count(&mut self, event: &Event) {
        if event.kind() != EventKind::Activity {
            return;
        }
        let Some(user) = event.text(Field::Username) else {
            return;
        };
        let hour = event.ts().timestamp().div_euclid(3600) * 3600;
        let hours = match self.counts.get_mut(user) {
            Some(h) => h,
            None => self.counts.entry(user.to_string()).or_default(),
        };
        *hours.entry(hour).or_default() += 1;
    }

    /// Whether nothing was counted since the last [`ActivityTally::take`].
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// How many users were counted since the last [`ActivityTally::take`].
    pub fn users(&self) -> usize {
        self.counts.len()
    }

    /// What was counted, emptying the tally.
    pub fn take(&mut self) -> Vec<ActivityCount> {
        // Taken whole, not drained: a map once grown by many users gives its memory back.
        let mut counts: Vec<ActivityCount> = std::mem::take(&mut self.counts)
            .into_iter()
            .flat_map(|(user, hours)| {
                hours
                    .into_iter()
                    .map(move |(start, records)| ActivityCount {
                        user: user.clone(),
                        hour: DateTime::from_timestamp(start, 0)
                            .map(|t| Event::utc_string(t.fixed_offset()))
                            .unwrap_or_default(),
                        records,
                    })
            })
            .collect();
        counts.sort_by(|a, b| (&a.user, &a.hour).cmp(&(&b.user, &b.hour)));
        counts
    }
}

/// The start of `ts`'s hour, in the store's UTC form.
pub fn hour_of(ts: DateTime<FixedOffset>) -> String {
    let utc = ts.with_timezone(&Utc);
    let start = utc
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(utc);
    Event::utc_string(start.fixed_offset())
}

/// What one user's alarms added up to in a window, per alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmPoints {
    /// The alarm's name.
    pub alarm: String,
    /// Its risk level.
    pub risk: u8,
    /// Times it fired for the user.
    pub fired: u64,
    /// `risk × fired`.
    pub points: u64,
}

/// What a window holds: per user, the alarms that fired and the activity records.
#[derive(Debug, Default, Clone)]
pub struct WindowTally {
    /// Per user, per (alarm, risk level): times fired.
    pub fired: BTreeMap<String, Vec<(String, u8, u64)>>,
    /// Per user: activity records.
    pub records: HashMap<String, u64>,
}

impl WindowTally {
    fn points(&self, user: &str) -> u64 {
        self.fired.get(user).map_or(0, |alarms| {
            alarms.iter().map(|(_, risk, n)| u64::from(*risk) * n).sum()
        })
    }

    fn score(&self, user: &str) -> f64 {
        score(
            self.points(user),
            self.records.get(user).copied().unwrap_or(0),
        )
    }

    fn users(&self) -> impl Iterator<Item = &String> {
        self.fired.keys().chain(self.records.keys())
    }
}

/// One user's risk over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRisk {
    /// Who.
    pub user: String,
    /// Risk points per 100 activity records (see the module docs).
    pub score: f64,
    /// The score in the window of the same length just before.
    pub previous: f64,
    /// `score − previous`.
    pub trend: f64,
    /// Σ level × times fired.
    pub points: u64,
    /// Alarms fired.
    pub alarms: u64,
    /// Activity records.
    pub records: u64,
    /// The alarms that made the points, most points first.
    pub by_alarm: Vec<AlarmPoints>,
}

/// Users ranked by their score in `now` (then points, then name), each with the trend from
/// `before`. A user with neither alarms nor activity in `now` is left out.
pub fn rank(now: &WindowTally, before: &WindowTally) -> Vec<UserRisk> {
    let mut users: Vec<&String> = now.users().collect();
    users.sort();
    users.dedup();
    let mut ranked: Vec<UserRisk> = users
        .into_iter()
        .map(|user| {
            let mut by_alarm: Vec<AlarmPoints> = now
                .fired
                .get(user)
                .map(|alarms| {
                    alarms
                        .iter()
                        .map(|(alarm, risk, fired)| AlarmPoints {
                            alarm: alarm.clone(),
                            risk: *risk,
                            fired: *fired,
                            points: u64::from(*risk) * fired,
                        })
                        .collect()
                })
                .unwrap_or_default();
            by_alarm.sort_by(|a, b| b.points.cmp(&a.points).then(a.alarm.cmp(&b.alarm)));
            let (score, previous) = (now.score(user), before.score(user));
            UserRisk {
                user: user.clone(),
                score,
                previous,
                trend: ((score - previous) * 10.0).round() / 10.0,
                points: now.points(user),
                alarms: by_alarm.iter().map(|a| a.fired).sum(),
                records: now.records.get(user).copied().unwrap_or(0),
                by_alarm,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.points.cmp(&a.points))
            .then(a.user.cmp(&b.user))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(user: &str, ts: &str) -> Event {
        crate::event::parse_line(&format!(
            r#"{{"ts":"{ts}","kind":"activity","username":"{user}","executable":"/usr/bin/xterm","title":"t"}}"#
        ))
        .expect("event")
    }

    #[test]
    fn the_score_is_points_per_hundred_records_with_a_floor() {
        assert_eq!(score(10, 1000), 1.0);
        assert_eq!(score(10, 200), 5.0);
        // Fewer than 100 records count as 100: one risk-8 alarm is a score of 8, not 800.
        assert_eq!(score(8, 1), 8.0);
        assert_eq!(score(0, 5000), 0.0);
        assert_eq!(score(1, 300), 0.3);
    }

    #[test]
    fn activity_is_counted_per_user_and_utc_hour() {
        let mut tally = ActivityTally::default();
        for (user, ts) in [
            ("alice", "2026-11-02T09:59:59+00:00"),
            ("alice", "2026-11-02T11:05:00+01:00"), // 10:05 UTC
            ("alice", "2026-11-02T10:30:00Z"),
            ("bob", "2026-11-02T09:00:00Z"),
        ] {
            tally.count(&activity(user, ts));
        }
        let usb = crate::event::parse_line(
            r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","username":"bob","action":"inserted"}"#,
        )
        .expect("event");
        tally.count(&usb);
        let counts = tally.take();
        let row = |u: &str, h: &str, n| ActivityCount {
            user: u.into(),
            hour: h.into(),
            records: n,
        };
        assert_eq!(
            counts,
            [
                row("alice", "2026-11-02T09:00:00.000Z", 1),
                row("alice", "2026-11-02T10:00:00.000Z", 2),
                row("bob", "2026-11-02T09:00:00.000Z", 1),
            ]
        );
        assert!(tally.is_empty());
    }

    #[test]
    fn users_rank_by_normalised_score_with_their_trend() {
        let mut now = WindowTally::default();
        // Dave: two USB alarms (risk 4) in 200 records = 8 points → 4.0.
        now.fired
            .insert("dave".into(), vec![("USB storage".into(), 4, 2)]);
        now.records.insert("dave".into(), 200);
        // Alice: more points (YouTube 2 × 5 + job sites 4 × 1 = 14) but in 1400 records → 1.0.
        now.fired.insert(
            "alice".into(),
            vec![("YouTube".into(), 2, 5), ("Job sites".into(), 4, 1)],
        );
        now.records.insert("alice".into(), 1400);
        // Carol worked and fired nothing.
        now.records.insert("carol".into(), 900);
        let mut before = WindowTally::default();
        before
            .fired
            .insert("alice".into(), vec![("YouTube".into(), 2, 1)]);
        before.records.insert("alice".into(), 1000);

        let ranked = rank(&now, &before);
        let order: Vec<(&str, f64, f64)> = ranked
            .iter()
            .map(|r| (r.user.as_str(), r.score, r.trend))
            .collect();
        assert_eq!(
            order,
            [("dave", 4.0, 4.0), ("alice", 1.0, 0.8), ("carol", 0.0, 0.0)]
        );
        let alice = &ranked[1];
        assert_eq!((alice.points, alice.alarms, alice.records), (14, 6, 1400));
        assert_eq!(alice.previous, 0.2);
        assert_eq!(alice.by_alarm[0].alarm, "YouTube", "most points first");
        assert_eq!(alice.by_alarm[0].points, 10);
    }
}
