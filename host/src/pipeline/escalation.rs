//! What happens when an alarm keeps firing for one person: its `escalate` steps (warn at the
//! 3rd time in an hour, end the application at the 5th) give the firing another risk and other
//! actions.
//!
//! The count is of the alarm's firings for the same user on the same computer (as cooldowns
//! are kept, and as a back-test shards people over threads), back from this one over a step's
//! window. It is kept here, beside the cooldowns, so that a back-test counts exactly as the
//! live agent does; the live agent seeds it from the alarms its store kept (see
//! [`crate::pipeline::Pipeline::seed_escalations`]), so a restart does not start the count
//! again.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, FixedOffset};

use crate::rules::{AlarmDef, AlarmIndex, Escalated};

/// People whose firings are remembered, before those whose windows have all passed are
/// forgotten (and then, if still over, the half longest quiet).
const KEPT: usize = 10_000;

/// Whose firings are counted together: (alarm, user, computer).
type Key = (AlarmIndex, String, String);

/// Recent firings per (alarm, user, computer), of alarms that escalate.
#[derive(Default)]
pub(super) struct Escalations {
    fired: HashMap<Key, VecDeque<DateTime<FixedOffset>>>,
}

impl Escalations {
    /// Counts a firing of `alarm` (number `id`) for `(user, computer)` at `at`; says which
    /// step it reached, if any.
    pub fn fire(
        &mut self,
        id: AlarmIndex,
        alarm: &AlarmDef,
        (user, computer): (&str, &str),
        at: DateTime<FixedOffset>,
    ) -> Option<Escalated> {
        let (keep, longest) = bounds(alarm)?;
        let key = (id, user.to_string(), computer.to_string());
        if self.fired.len() >= KEPT && !self.fired.contains_key(&key) {
            self.forget(at);
        }
        let times = self.fired.entry(key).or_default();
        times.push_back(at);
        while times.len() > keep || times.front().is_some_and(|t| !within(*t, at, longest)) {
            times.pop_front();
        }
        let full = times.len() == keep;
        alarm
            .escalate
            .iter()
            .enumerate()
            .rev()
            .find_map(|(step, s)| {
                let count = times.iter().filter(|t| within(**t, at, s.within)).count() as u32;
                (count >= s.after).then_some(Escalated {
                    step,
                    count,
                    at_least: full && count as usize == keep,
                })
            })
    }

    /// Remembers an earlier firing (from the store), oldest first, without deciding anything.
    pub fn remember(
        &mut self,
        id: AlarmIndex,
        alarm: &AlarmDef,
        who: (&str, &str),
        at: DateTime<FixedOffset>,
    ) {
        self.fire(id, alarm, who, at);
    }

    /// Forgets people whose every firing is older than a month (the longest window a step
    /// may have); if still over, those quiet longest.
    fn forget(&mut self, now: DateTime<FixedOffset>) {
        let month = std::time::Duration::from_secs(30 * 24 * 3600);
        self.fired
            .retain(|_, times| times.back().is_some_and(|t| within(*t, now, month)));
        if self.fired.len() >= KEPT {
            let mut last: Vec<DateTime<FixedOffset>> = self
                .fired
                .values()
                .filter_map(|t| t.back().copied())
                .collect();
            let half = last.len() / 2;
            let (_, median, _) = last.select_nth_unstable(half);
            let median = *median;
            self.fired
                .retain(|_, times| times.back().is_some_and(|t| *t > median));
        }
    }

    /// Carries the counts over to a new rule set, alarms renumbered by `remap` (those gone
    /// are dropped).
    pub fn rebind(self, remap: &dyn Fn(AlarmIndex) -> Option<AlarmIndex>) -> Escalations {
        Escalations {
            fired: self
                .fired
                .into_iter()
                .filter_map(|((id, user, computer), times)| {
                    Some(((remap(id)?, user, computer), times))
                })
                .collect(),
        }
    }
}

/// How many firings and how far back an alarm's steps need; `None`: it does not escalate.
fn bounds(alarm: &AlarmDef) -> Option<(usize, std::time::Duration)> {
    alarm.escalate.first()?;
    let keep = Escalated::REMEMBERED;
    let longest = alarm.escalate.iter().map(|s| s.within).max()?;
    Some((keep, longest))
}

/// Whether `then` is within `window` before `now` (a later `then`, from a clock set back,
/// counts as now).
fn within(
    then: DateTime<FixedOffset>,
    now: DateTime<FixedOffset>,
    window: std::time::Duration,
) -> bool {
    now.signed_duration_since(then)
        .to_std()
        .map_or(true, |ago| ago <= window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packs::Pack;

    fn alarm() -> AlarmDef {
        let text = r#"
[pack]
name = "t"
version = "1.0.0"
[grants]
actions = ["popup", "terminate"]
[[alarm]]
name = "Game"
conditions = [{ field = "executable", op = "eq", value = "game" }]
escalate = [
  { after = 3, within = "1h", risk = 6, actions = [{ popup = { message = "stop" } }] },
  { after = 5, within = "1h", risk = 9, actions = [{ terminate = {} }] },
]
"#;
        let pack = Pack::from_manifest_text("t", text, "test").expect("pack");
        pack.alarms[0].clone()
    }

    fn at(minute: i64) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts")
            + chrono::Duration::minutes(minute)
    }

    #[test]
    fn the_third_and_fifth_firings_within_an_hour_escalate_and_an_old_one_does_not_count() {
        let a = alarm();
        let mut e = Escalations::default();
        let steps: Vec<Option<(usize, u32)>> = [0, 10, 20, 30, 40, 50]
            .into_iter()
            .map(|m| {
                e.fire(0, &a, ("dave", "ws"), at(m))
                    .map(|x| (x.step, x.count))
            })
            .collect();
        assert_eq!(
            steps,
            [
                None,
                None,
                Some((0, 3)),
                Some((0, 4)),
                Some((1, 5)),
                Some((1, 6))
            ]
        );
        // Another person counts alone.
        assert_eq!(e.fire(0, &a, ("erin", "ws"), at(50)), None);
        // Two hours later, the window is empty again but for this one.
        assert_eq!(e.fire(0, &a, ("dave", "ws"), at(170)), None);
        assert_eq!(
            e.fire(0, &a, ("dave", "ws"), at(20)).map(|x| x.note(&a)),
            None,
            "a clock set back counts as now, and the window holds 2"
        );
        let third = Escalated {
            step: 0,
            count: 3,
            at_least: false,
        };
        assert_eq!(third.note(&a), "3rd time in 1h: escalated");
        let eleventh = Escalated {
            step: 1,
            count: 11,
            at_least: false,
        };
        assert_eq!(eleventh.note(&a), "11th time in 1h: escalated");
        // Past what is remembered, the count says so.
        let mut e = Escalations::default();
        let many = (0..1200)
            .map(|i| e.fire(0, &a, ("flo", "ws"), at(0) + chrono::Duration::seconds(i)))
            .last()
            .flatten()
            .expect("escalated");
        assert_eq!(many.note(&a), "1000 times or more in 1h: escalated");
    }

    #[test]
    fn firings_remembered_from_the_store_count_toward_the_next() {
        let a = alarm();
        let mut e = Escalations::default();
        e.remember(0, &a, ("dave", "ws"), at(0));
        e.remember(0, &a, ("dave", "ws"), at(5));
        let third = e.fire(0, &a, ("dave", "ws"), at(10)).expect("escalated");
        assert_eq!((third.step, third.count), (0, 3));
        // Renumbered across a rule swap; an alarm gone is dropped.
        let e = e.rebind(&|id| (id == 0).then_some(4));
        let mut e = e;
        assert_eq!(
            e.fire(4, &a, ("dave", "ws"), at(11)).map(|x| x.count),
            Some(4)
        );
        let mut gone = e.rebind(&|_| None);
        assert_eq!(gone.fire(4, &a, ("dave", "ws"), at(12)), None);
    }
}
