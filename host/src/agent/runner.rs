//! The pipeline's own thread: events in, alarms stored, rules swapped between two events.
//!
//! Everything that reaches the rules — events from the sources, account events from admin
//! changes, a new rule set — arrives on one bounded channel and is handled in arrival order by
//! this one thread. That order is the hot-reload guarantee: each event is evaluated exactly once,
//! by the rules in force when it comes off the channel, and a swap hands open spans, cooldowns
//! and program states to the new rules ([`Pipeline::handover`]). A full channel blocks the
//! senders (back-pressure) rather than dropping anything.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use super::stats::Stats;
use crate::alarms::FiredAlarm;
use crate::event::Event;
use crate::model::report::ProgramStatus;
use crate::pipeline::{Keeper, Mode, Pipeline};
use crate::rule_set::RuleSet;
use crate::store::Store;
use crate::tabs::{TabReport, Tabs};

/// How many messages may wait for the pipeline before senders block.
pub const QUEUE: usize = 4096;

/// What the pipeline thread is asked to do.
// Events are nearly every message: boxing them to shrink the rare ones would cost an allocation
// per event.
#[allow(clippy::large_enum_variant)]
pub enum Msg {
    /// Evaluate an event, seen by its source at that instant.
    Event(Event, std::time::Instant),
    /// The clock moved on (live sources only): evaluate spans that crossed a threshold.
    Tick(chrono::DateTime<chrono::FixedOffset>),
    /// The person went idle (true) or came back (false) at this time.
    Idle(chrono::DateTime<chrono::FixedOffset>, bool),
    /// A browser reported its active tab.
    Tab(TabReport),
    /// From now on, use these rules; then evaluate these account events (the change itself).
    Swap(Arc<RuleSet>, Vec<Event>),
    /// From now on, judge targets here (the fleet's groups changed, or were first heard).
    Place(Arc<crate::model::targets::Place>),
    /// Save what must survive a restart and stop; the sender hears back when done.
    Stop(std::sync::mpsc::Sender<()>),
}

/// What moves the pipeline: an event, or the clock alone.
// As for `Msg`: events are the common case, and move through here once each.
#[allow(clippy::large_enum_variant)]
enum Input {
    Event(Event, std::time::Instant),
    Tick(chrono::DateTime<chrono::FixedOffset>),
    Idle(chrono::DateTime<chrono::FixedOffset>, bool),
    Tab(TabReport),
    /// Nothing came for a while: write what is due (activity records).
    Quiet,
}

/// Where the pipeline's output goes besides the store.
pub struct Output {
    /// Print each stored alarm as a JSON line on stdout.
    pub json: bool,
    /// Told when alarms were stored: their actions are due.
    pub wake: Option<std::sync::mpsc::SyncSender<()>>,
    /// Every live alarm is forwarded to the fleet's hub or sent to an output: each stored
    /// alarm has work queued.
    pub forwards: bool,
    /// Kept up to date with the window in front, for actions that go on over time.
    pub presence: crate::actions::presence::SharedPresence,
    /// Told how much screen pre-roll each rule set wants.
    pub recorder: Option<crate::actions::recorder::Recorder>,
    /// Where targets are judged at the start (the agent's id and tags in a fleet).
    pub place: Arc<crate::model::targets::Place>,
}

/// Runs the pipeline until told to stop. Returns when the stop was acknowledged or every sender
/// is gone.
pub fn run(
    rules: Arc<RuleSet>,
    rx: Receiver<Msg>,
    store: Store,
    stats: Arc<Stats>,
    output: Output,
) {
    // Alarms committed before anything acts, activity records for risk scores: the same
    // assembly a back-test runs.
    let mut keeper = Keeper::live(store);
    let states = keeper.plugin_states().unwrap_or_else(|e| {
        tracing::error!("cannot read saved plugin states, starting empty: {e:#}");
        Default::default()
    });
    stats.generation.store(1, Ordering::Relaxed);
    let mut rules = rules;
    let mut saved = Some(states);
    let mut handover = None;
    // Account events describing the last swap: the new rules see them first.
    let mut pending: Vec<Event> = Vec::new();
    // Browser tabs outlive rule sets: they describe the desktop, not the rules.
    let mut tabs = Tabs::new();
    // When the programs' counts were last published for the status.
    let mut published = std::time::Instant::now();
    // Where targets are judged: the agent's id and tags until the fleet's groups are heard.
    let mut place = output.place.clone();
    loop {
        if let Some(recorder) = &output.recorder {
            recorder.want(rules.video_preroll());
        }
        // One pipeline per rule set; it borrows the rules, so it lives in this block.
        let next = {
            let mut pipeline = match handover.take() {
                Some(h) => Pipeline::resume(&rules, Mode::Spans, h),
                None => {
                    let mut pipeline = Pipeline::with_plugin_state(
                        &rules,
                        Mode::Spans,
                        &saved.take().unwrap_or_default(),
                    );
                    pipeline.set_place(place.clone());
                    // A restart goes on counting toward escalation.
                    if let Err(e) = keeper.seed_escalations(&mut pipeline) {
                        tracing::error!("cannot count earlier alarms toward escalation: {e:#}");
                    }
                    pipeline
                }
            };
            // A program switched off stays off, restarts and new rule sets included, until an
            // admin turns its pack back on.
            match keeper
                .store()
                .map_or(Ok(Vec::new()), |store| store.quarantined())
            {
                Ok(off) => {
                    for (pack, program, why) in off {
                        pipeline.switch_off(&pack, &program, why);
                    }
                }
                Err(e) => tracing::error!("cannot read switched-off programs: {e:#}"),
            }
            publish_programs(&stats, &pipeline);
            let mut take = |pipeline: &mut Pipeline<'_>, input: Input| {
                let mut seen = None;
                let mut performs = false;
                let see = |fired: &[FiredAlarm]| performs = show(fired, &output);
                let kept = match input {
                    Input::Event(mut event, at) => {
                        tabs.enrich(&mut event);
                        output.presence.saw(&event);
                        seen = Some(at);
                        keeper.event(pipeline, event, see)
                    }
                    Input::Tab(report) => {
                        let now = chrono::Utc::now().fixed_offset();
                        match tabs.report(report, now) {
                            Some(event) => keeper.step(pipeline, |p, out| p.push(event, out), see),
                            None => Ok(0),
                        }
                    }
                    Input::Tick(now) => {
                        let kept = keeper.step(pipeline, |p, out| p.tick(now, out), see);
                        keeper.quiet();
                        kept
                    }
                    Input::Quiet => {
                        keeper.quiet();
                        Ok(0)
                    }
                    Input::Idle(at, true) => {
                        output.presence.idle(true);
                        keeper.step(pipeline, |p, out| p.idle(at, out), see)
                    }
                    Input::Idle(at, false) => {
                        output.presence.idle(false);
                        keeper.step(pipeline, |p, out| p.back(at, out), see)
                    }
                };
                // What was stored before a failure is acted on all the same.
                let stored = kept.unwrap_or_else(|e| {
                    tracing::error!("{e}");
                    e.stored
                });
                stats.alarms.fetch_add(stored as u64, Ordering::Relaxed);
                if stored > 0
                    && (performs || output.forwards)
                    && let Some(wake) = &output.wake
                {
                    // Full means a wake-up is already pending: that one will see these too.
                    let _ = wake.try_send(());
                }
                let evicted = pipeline.take_evicted();
                if evicted > 0 {
                    stats.shed("open spans of people not seen lately", evicted);
                }
                let notices = pipeline.drain_notices();
                if let Some(store) = keeper.store() {
                    for notice in &notices {
                        audit_notice(store, notice);
                        remember_quarantine(store, notice);
                    }
                }
                if !notices.is_empty() || published.elapsed() >= PUBLISH_EVERY {
                    publish_programs(&stats, pipeline);
                    published = std::time::Instant::now();
                }
                if let Some(at) = seen.filter(|_| stored > 0) {
                    stats.record_latency(at.elapsed());
                }
                // Counted once all it caused is stored: the count says what is done.
                if seen.is_some() {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                }
            };
            for event in pending.drain(..) {
                take(
                    &mut pipeline,
                    Input::Event(event, std::time::Instant::now()),
                );
            }
            loop {
                // Woken at least once a second, so activity records reach the store and the
                // programs' counts the status on a headless agent too (no desktop, no clock
                // ticks, perhaps no events).
                let msg = match rx.recv_timeout(PUBLISH_EVERY) {
                    Ok(msg) => msg,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        take(&mut pipeline, Input::Quiet);
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        close(&mut keeper, &pipeline);
                        return;
                    }
                };
                match msg {
                    Msg::Event(event, at) => take(&mut pipeline, Input::Event(event, at)),
                    Msg::Tick(now) => take(&mut pipeline, Input::Tick(now)),
                    Msg::Idle(at, idle) => take(&mut pipeline, Input::Idle(at, idle)),
                    Msg::Tab(report) => take(&mut pipeline, Input::Tab(report)),
                    Msg::Place(new) => {
                        place = new;
                        pipeline.set_place(place.clone());
                    }
                    Msg::Swap(new, notices) => {
                        handover = Some(pipeline.handover());
                        break Some((new, notices));
                    }
                    Msg::Stop(done) => {
                        close(&mut keeper, &pipeline);
                        let _ = done.send(());
                        return;
                    }
                }
            }
        };
        let Some((new, notices)) = next else { return };
        rules = new;
        pending = notices;
        stats.generation.fetch_add(1, Ordering::Relaxed);
        tracing::info!(packs = rules.packs().len(), "rules replaced");
    }
}

/// Prints what was stored, as JSON lines when asked. Says whether any of it has an action the
/// worker performs (most alarms only record).
fn show(fired: &[FiredAlarm], output: &Output) -> bool {
    if output.json && !fired.is_empty() {
        let mut out = std::io::stdout().lock();
        for f in fired {
            if serde_json::to_writer(&mut out, f).is_ok() {
                let _ = writeln!(out);
            }
        }
        let _ = out.flush();
    }
    fired.iter().any(|f| {
        f.record
            .actions
            .iter()
            .any(|a| crate::model::action::PERFORMED.contains(&a.name()))
    })
}

/// Saves what must survive a restart: programs' state, activity records, alarms waiting.
fn close(keeper: &mut Keeper, pipeline: &Pipeline<'_>) {
    if let Err(e) = keeper.close(pipeline) {
        tracing::error!("{e:#}");
    }
}

/// Tells the status endpoint which programs run and which were switched off.
/// How often the programs' call and fault counts reach the status, at most.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps a program's switch-off in the store, so a restart does not give it three more faults
/// (and the alarm again) before it is switched off again.
fn remember_quarantine(store: &mut Store, notice: &Event) {
    use crate::event::Field;
    let name = notice.text(Field::EventName).unwrap_or_default();
    if !name.ends_with("_quarantined") {
        return;
    }
    let object = notice.text(Field::ActionObject).unwrap_or_default();
    let Some((pack, program)) = object.split_once('/') else {
        return;
    };
    let why = notice.text(Field::Detail).unwrap_or_default();
    if let Err(e) = store.quarantine(pack, program, why) {
        tracing::error!("cannot remember that {object} is switched off: {e:#}");
    }
}

fn publish_programs(stats: &Stats, pipeline: &Pipeline<'_>) {
    let programs = pipeline
        .programs()
        .into_iter()
        .map(|p| ProgramStatus {
            quarantined: p.switched_off.is_some(),
            switched_off: p.switched_off,
            last_fault: p.stats.last_fault,
            calls: p.stats.calls,
            faults: p.stats.faults,
            us_per_call: p.stats.us_per_call,
            pack: p.pack,
            name: p.name,
            kind: p.kind.to_string(),
        })
        .collect();
    stats.set_programs(programs);
}

/// A program switched off is a change to the setup: it goes in the audit trail too.
fn audit_notice(store: &mut Store, notice: &Event) {
    use crate::event::Field;
    let text = |f| notice.text(f).unwrap_or_default().to_string();
    if let Err(e) = store.audit(
        &text(Field::Actor),
        &text(Field::EventName),
        &text(Field::ActionObject),
        notice.text(Field::Detail),
    ) {
        tracing::error!("cannot write the audit trail: {e:#}");
    }
}

/// The sending side, shared by the sources and the admin API.
#[derive(Clone)]
pub struct Handle {
    tx: SyncSender<Msg>,
    stats: Arc<Stats>,
}

impl Handle {
    /// A channel to a pipeline thread; the receiver goes to [`run`]. What cannot wait is
    /// counted in `stats` when it is shed.
    pub fn channel(stats: Arc<Stats>) -> (Handle, Receiver<Msg>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        (Handle { tx, stats }, rx)
    }

    /// Queues a rule swap and the account events that describe it.
    pub fn swap(&self, rules: Arc<RuleSet>, notices: Vec<Event>) -> bool {
        self.tx.send(Msg::Swap(rules, notices)).is_ok()
    }

    /// Queues a change of where targets are judged.
    pub fn place(&self, place: Arc<crate::model::targets::Place>) -> bool {
        self.tx.send(Msg::Place(place)).is_ok()
    }

    /// Asks the pipeline to save and stop, and waits until it has.
    pub fn stop(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Stop(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// The sources' way into the pipeline: events, the clock, presence and tabs on the queue;
/// what they lost and how they are doing in the agent's status.
impl crate::sources::Sink for Handle {
    /// Waits while the queue is full: back-pressure, nothing dropped.
    fn observed(&self, event: Event, seen: std::time::Instant) -> bool {
        self.tx.send(Msg::Event(event, seen)).is_ok()
    }

    /// Skipped, and counted, when the queue is full: a busy pipeline is not kept waiting by the
    /// clock (the next tick carries the time just as well).
    fn tick(&self, now: chrono::DateTime<chrono::FixedOffset>) -> bool {
        match self.tx.try_send(Msg::Tick(now)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.stats.shed("tick", 1);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn idle(&self, at: chrono::DateTime<chrono::FixedOffset>, idle: bool) -> bool {
        self.tx.send(Msg::Idle(at, idle)).is_ok()
    }

    fn tab(&self, report: TabReport) -> bool {
        self.tx.send(Msg::Tab(report)).is_ok()
    }

    fn lost(&self, what: &str, n: u64) {
        self.stats.shed(what, n);
    }

    fn status(&self, part: &str, up: bool, detail: String) {
        self.stats.source(part, up, detail);
    }
}
