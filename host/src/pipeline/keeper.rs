//! What becomes of a pipeline's output: the one assembly a live desktop (`vigilo run`) and a
//! recorded day (`vigilo replay`) both run, so the two cannot drift apart.
//!
//! For each step of the pipeline (an event, a clock tick, the end of a stream) the [`Keeper`]
//! counts the event for risk scores, collects what fired and what a cooldown folded, commits the
//! alarms to the store and *then* adds the folds to them (a fold adds to an alarm already
//! stored), and shows the caller what fired. At the end it saves the programs' state and the
//! activity records. What differs between the two is policy, chosen once at construction:
//!
//! | | live | back-test (`--store`) | back-test |
//! |---|---|---|---|
//! | origin | `live` (actions performed) | `replay:FILE` (history) | — |
//! | alarms committed | each step, before anything acts | in batches of [`REPLAY_BATCH`] | never |
//! | activity records | added every minute | the file's, replacing its last replay's | not counted |

use anyhow::{Context, Result};

use super::Pipeline;
use crate::alarms::FiredAlarm;
use crate::event::Event;
use crate::model::alarm::Fold;
use crate::model::program_state::PluginStates;
use crate::risk::ActivityTally;
use crate::store::{LIVE, Store};

/// Stored firings of one escalating alarm counted at a start, at most (newest first).
pub const SEEDED: u32 = 10_000;

/// Alarms a back-test commits per transaction.
pub const REPLAY_BATCH: usize = 1000;

/// Alarms could not all be kept: `stored` new ones were committed before `why` (the alarms'
/// transaction, or adding folds to them afterwards). The caller still acts on those stored.
#[derive(Debug, thiserror::Error)]
#[error("{why:#}")]
pub struct KeepError {
    /// New alarms committed before the failure.
    pub stored: usize,
    /// What failed.
    pub why: anyhow::Error,
}

/// Keeps what a pipeline produces; see the module docs.
pub struct Keeper {
    store: Option<Store>,
    origin: String,
    /// Commit once this many alarms (or folds) wait.
    batch: usize,
    /// Fired and not yet committed.
    pending: Vec<FiredAlarm>,
    /// Folded and not yet added to their alarms.
    folds: Vec<Fold>,
    activity: Option<Activity>,
    /// New alarms committed so far.
    stored: usize,
    /// Matches folded into alarms so far.
    folded: u64,
}

/// Activity records counted and not yet written.
struct Activity {
    tally: ActivityTally,
    writes: Writes,
    written: Option<std::time::Instant>,
}

/// How activity records reach the store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// Added every [`Activity::EVERY`] and when the agent stops.
    Periodic,
    /// Written once at the end, replacing what an earlier replay of the same file wrote, so
    /// replaying a day twice does not count it twice.
    ReplaceAtEnd,
}

impl Activity {
    /// How often a live agent writes its counts: risk scores are read over days, and one small
    /// transaction a minute costs nothing.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// Users counted before the counts are written whatever the time: many people passing
    /// through must not make the tally grow without bound.
    const MAX_USERS: usize = 10_000;

    fn new(writes: Writes) -> Activity {
        Activity {
            tally: ActivityTally::default(),
            writes,
            written: None,
        }
    }

    fn due(&self) -> bool {
        self.writes == Writes::Periodic
            && (self.tally.users() >= Activity::MAX_USERS
                || self
                    .written
                    .is_none_or(|at| at.elapsed() >= Activity::EVERY))
    }

    fn write(&mut self, store: &mut Store, origin: &str) -> Result<()> {
        self.written = Some(std::time::Instant::now());
        match self.writes {
            Writes::Periodic if self.tally.is_empty() => Ok(()),
            Writes::Periodic => store.add_activity(origin, &self.tally.take()),
            Writes::ReplaceAtEnd => store.replace_activity(origin, &self.tally.take()),
        }
        .context("cannot store activity records")
    }
}

impl Keeper {
    /// The running agent's: alarms committed as they fire, with their actions queued.
    pub fn live(store: Store) -> Keeper {
        Keeper::new(Some(store), LIVE.into(), 1, Some(Writes::Periodic))
    }

    /// A back-test's: with a store, alarms kept as history of `origin` (`replay:FILE`) in
    /// batches, the file's activity records replacing its last replay's; without one, nothing
    /// is kept or counted.
    pub fn replay(store: Option<Store>, origin: String) -> Keeper {
        let writes = store.as_ref().map(|_| Writes::ReplaceAtEnd);
        Keeper::new(store, origin, REPLAY_BATCH, writes)
    }

    fn new(store: Option<Store>, origin: String, batch: usize, writes: Option<Writes>) -> Keeper {
        Keeper {
            store,
            origin,
            batch,
            pending: Vec::new(),
            folds: Vec::new(),
            activity: writes.map(Activity::new),
            stored: 0,
            folded: 0,
        }
    }

    /// The store, for what the caller keeps besides alarms (the audit trail).
    pub fn store(&mut self) -> Option<&mut Store> {
        self.store.as_mut()
    }

    /// Counts the live alarms the store kept toward escalation (those within each escalating
    /// alarm's longest window, at most [`SEEDED`] each), so that a restart goes on counting
    /// where the last run stopped. A back-test counts only its own day.
    pub fn seed_escalations(&self, pipeline: &mut Pipeline<'_>) -> Result<()> {
        let Some(store) = self.store.as_ref().filter(|_| self.origin == LIVE) else {
            return Ok(());
        };
        let now = chrono::Utc::now();
        let mut fired = Vec::new();
        for (pack, alarm) in pipeline.rules().alarms() {
            let Some(longest) = alarm.escalate.iter().map(|s| s.within).max() else {
                continue;
            };
            let since = now - chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::MAX);
            let rows = store.alarms(&crate::store::AlarmFilter {
                pack: Some(pack.name.clone()),
                alarm: Some(alarm.name.clone()),
                since: Some(Event::utc_string(since.fixed_offset())),
                limit: Some(SEEDED),
                ..Default::default()
            })?;
            fired.extend(
                rows.into_iter()
                    .filter(|r| r.origin == LIVE && r.record.alarm == alarm.name)
                    .map(|r| {
                        let who = (
                            r.record.user.unwrap_or_default(),
                            r.record.computer.unwrap_or_default(),
                        );
                        (
                            (pack.name.clone(), alarm.name.clone()),
                            who,
                            r.record.fired_at,
                        )
                    }),
            );
        }
        fired.sort_by_key(|f| f.2);
        pipeline.seed_escalations(
            fired.iter().map(|((p, a), (u, c), at)| {
                ((p.as_str(), a.as_str()), (u.as_str(), c.as_str()), *at)
            }),
        );
        Ok(())
    }

    /// The programs' state the last run saved (none without a store).
    pub fn plugin_states(&self) -> Result<PluginStates> {
        match &self.store {
            Some(store) => store.plugin_states(),
            None => Ok(PluginStates::new()),
        }
    }

    /// New alarms committed so far.
    pub fn stored(&self) -> usize {
        self.stored
    }

    /// Matches folded into alarms within their cooldowns so far.
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// Where alarms go: the store's file (or database), if any.
    pub fn store_location(&self) -> Option<&str> {
        self.store.as_ref().map(Store::location)
    }

    /// One event through the pipeline: counted for risk scores, evaluated, what fired kept;
    /// `see` is shown what fired (after it is committed, when this keeper commits each step).
    /// Returns how many new alarms were committed.
    pub fn event(
        &mut self,
        pipeline: &mut Pipeline<'_>,
        event: Event,
        see: impl FnOnce(&[FiredAlarm]),
    ) -> Result<usize, KeepError> {
        if let Some(activity) = &mut self.activity {
            activity.tally.count(&event);
        }
        self.quiet();
        self.step(pipeline, |p, out| p.push(event, out), see)
    }

    /// The pipeline moved without a recorded event (a clock tick, idle or back, a browser
    /// tab's event, the end of a stream) by `op`; what fired is kept as for [`Keeper::event`].
    pub fn step(
        &mut self,
        pipeline: &mut Pipeline<'_>,
        op: impl FnOnce(&mut Pipeline<'_>, &mut Vec<FiredAlarm>),
        see: impl FnOnce(&[FiredAlarm]),
    ) -> Result<usize, KeepError> {
        let start = self.pending.len();
        op(pipeline, &mut self.pending);
        let folds = pipeline.drain_folds();
        self.folded += folds.len() as u64;
        let Some(store) = self.store.as_mut() else {
            see(&self.pending[start..]);
            self.pending.clear();
            return Ok(0);
        };
        self.folds.extend(folds);
        let due = self.pending.len() >= self.batch || self.folds.len() >= self.batch;
        if !due {
            see(&self.pending[start..]);
            return Ok(0);
        }
        let (stored, failed) = commit(store, &self.origin, &self.pending, &self.folds);
        self.stored += stored;
        see(&self.pending[start..]);
        // Committed or not, they are done with: a store that refuses them now would refuse
        // them again, and the agent must not hold what it cannot write without bound.
        self.pending.clear();
        self.folds.clear();
        match failed {
            None => Ok(stored),
            Some(why) => Err(KeepError { stored, why }),
        }
    }

    /// Nothing happened for a while: a live agent writes its activity records when they are
    /// due. A store that refuses them is logged and those counts are dropped: risk scores
    /// lose a minute of activity, the agent goes on.
    pub fn quiet(&mut self) {
        if let (Some(activity), Some(store)) = (&mut self.activity, self.store.as_mut())
            && activity.due()
            && let Err(e) = activity.write(store, &self.origin)
        {
            tracing::error!("{e:#}");
        }
    }

    /// At the end of a stream, or when the agent stops: commits what waits, saves the
    /// programs' state from `pipeline` and writes the activity records. Each is attempted; the
    /// first failure is returned.
    pub fn close(&mut self, pipeline: &Pipeline<'_>) -> Result<()> {
        let Some(store) = self.store.as_mut() else {
            return Ok(());
        };
        let (stored, failed) = commit(store, &self.origin, &self.pending, &self.folds);
        self.pending.clear();
        self.folds.clear();
        self.stored += stored;
        let committed = failed.map_or(Ok(()), Err);
        let saved = store
            .save_plugin_states(&pipeline.plugin_states())
            .context("cannot save plugin states");
        let written = match &mut self.activity {
            Some(activity) => activity.write(store, &self.origin),
            None => Ok(()),
        };
        committed.and(saved).and(written)
    }
}

/// Commits `alarms`, then adds `folds` to the alarms they were folded into (which may be among
/// these). Returns how many alarms were new, and what failed, if anything did.
fn commit(
    store: &mut Store,
    origin: &str,
    alarms: &[FiredAlarm],
    folds: &[Fold],
) -> (usize, Option<anyhow::Error>) {
    let stored = if alarms.is_empty() {
        0
    } else {
        match store.record(alarms.iter().map(|f| &f.record), origin) {
            Ok(n) => n,
            Err(e) => {
                return (
                    0,
                    Some(e.context(format!("cannot store {} alarms", alarms.len()))),
                );
            }
        }
    };
    let folded = if folds.is_empty() {
        Ok(())
    } else {
        store
            .fold(folds)
            .context("cannot add folded matches to their alarms")
    };
    (stored, folded.err())
}
