//! What the two kinds of programmable rule — WASM plugins and Rhai scripts — share: the
//! description a program gives of itself, its limits, its log, the ways a call can fail, and the
//! supervision that contains a failing program.
//!
//! Each runtime implements [`Runner`] (one raw call, its state, its log); [`Supervised`] wraps a
//! runner with the policy both obey: a program sees only the event kinds it subscribed to; a
//! faulty call is recorded and the next event goes on; the program is switched off after
//! `quarantine_after` faults in a row, **or** [`Limits::faults_per_window`] faults among its last
//! [`WINDOW`] calls (one that faults every other event never has three in a row), **or** when its
//! last [`WINDOW`] calls took more than a tenth of their deadlines on average (one
//! that takes 30 ms per event never faults, yet slows the whole pipeline to 30 events/s). The
//! pipeline holds every running program as a `dyn` [`Program`].

pub mod clock;
pub mod limits;

pub use limits::Limits;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::event::{Event, FieldSet, KindSet};
use crate::model::action::PlannedAction;

/// What a program says it is (`describe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The kinds of event it wants.
    pub subscribes: KindSet,
    /// What its configuration accepts.
    pub config_help: String,
    /// The fields of an event it is given (the others are left out for it).
    pub reads: FieldSet,
}

impl ProgramInfo {
    /// Checks what `describe` returned: a usable name and a semantic version.
    pub fn check(self) -> Result<ProgramInfo, String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(format!(
                "describe returned an invalid name {:?} (1 to 64 letters, digits, '.', '_', '-')",
                self.name
            ));
        }
        if semver::Version::parse(&self.version).is_err() {
            return Err(format!(
                "describe returned version {:?}, not a semantic version",
                self.version
            ));
        }
        Ok(self)
    }
}

/// An alarm a program said the event triggers, checked against its limits and the action rules.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginAlarm {
    /// The alarm's name.
    pub alarm: String,
    /// Risk 1–10.
    pub risk: u8,
    /// What it asks for.
    pub actions: Vec<PlannedAction>,
    /// Why it fired.
    pub note: Option<String>,
}

/// One line a program logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// What it said.
    pub message: String,
}

/// Why a call to a program failed. The agent carries on either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call ran past its deadline.
    Deadline(Duration),
    /// The program tried to use more memory than it may (a WASM plugin's linear memory).
    Memory(usize),
    /// The call did more work than it may (a script's operation budget, or the size of a
    /// string, array or map it built).
    Budget(String),
    /// The program failed: a trap (a panic, `unreachable`…) or a script error, with where.
    Trap(String),
    /// The program returned something the contract or its limits forbid.
    Invalid(String),
    /// The program was switched off after repeated faults.
    Quarantined,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Deadline(d) => write!(f, "ran past its deadline of {} ms", d.as_millis()),
            Fault::Memory(cap) => {
                write!(f, "tried to use more than its {} MiB of memory", cap >> 20)
            }
            Fault::Budget(what) => write!(f, "went over its budget: {what}"),
            Fault::Trap(t) => write!(f, "trapped: {t}"),
            Fault::Invalid(why) => write!(f, "returned an invalid answer: {why}"),
            Fault::Quarantined => f.write_str("is switched off after repeated faults"),
        }
    }
}

impl std::error::Error for Fault {}

/// A log that keeps at most a set number of lines per call and says how many it dropped.
#[derive(Debug, Default)]
pub struct CallLog {
    lines: Vec<LogLine>,
    dropped: usize,
}

impl CallLog {
    /// Records a line, cut to `limits.max_text_bytes`; past `limits.max_log_lines` it only
    /// counts.
    pub fn push(&mut self, program: &str, level: &'static str, message: String, limits: &Limits) {
        if self.lines.len() >= limits.max_log_lines {
            self.dropped += 1;
            return;
        }
        let mut message = message;
        if message.len() > limits.max_text_bytes {
            let mut cut = limits.max_text_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        tracing::debug!(program, level, "{message}");
        self.lines.push(LogLine { level, message });
    }

    /// Hands over the lines of a call and readies the log for the next; lines over the cap are
    /// summed up in one closing warning rather than vanishing unnoticed.
    pub fn take(&mut self, limits: &Limits) -> Vec<LogLine> {
        let mut log = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            log.push(LogLine {
                level: "warn",
                message: format!(
                    "{} more lines dropped: at most {} per event",
                    self.dropped, limits.max_log_lines
                ),
            });
            self.dropped = 0;
        }
        log
    }
}

/// A program's key-value state, as the store keeps it.
pub type State = BTreeMap<String, Vec<u8>>;

/// One runtime's side of a running program.
pub trait Runner {
    /// Calls the program's `on-event`. After a fault the runner must be ready for the next
    /// call (rebuilt if need be) and must keep the state the program had.
    fn call(&mut self, event: &Event, now_ms: i64) -> Result<Vec<PluginAlarm>, Fault>;
    /// What the program logged during the last call.
    fn take_log(&mut self) -> Vec<LogLine>;
    /// The program's state, to persist.
    fn state(&self) -> State;
    /// Frees what the program holds once it is switched off; its state must stay readable.
    fn shut_down(&mut self) {}
}

/// A loaded program — compiled, described, configured — ready to be started.
pub trait Loaded: Send + Sync {
    /// What it is.
    fn info(&self) -> &ProgramInfo;
    /// Starts a running copy with `state` as its state.
    fn start(&self, state: State) -> anyhow::Result<Box<dyn Program + '_>>;
}

/// A running program, as the pipeline sees it.
pub trait Program {
    /// What it is.
    fn info(&self) -> &ProgramInfo;
    /// `plugin` or `script`: how reports name it.
    fn kind(&self) -> &'static str;
    /// Hands it one event at time `now_ms` (the agent's clock). Events of kinds it did not
    /// subscribe to return nothing without a call.
    fn on_event(&mut self, event: &Event, now_ms: i64) -> Result<Vec<PluginAlarm>, Fault>;
    /// Whether it was switched off after repeated faults.
    fn is_quarantined(&self) -> bool;
    /// Its key-value state (what the store persists).
    fn state(&self) -> State;
    /// The log lines of the last `on_event` (empty when it was not called), including those
    /// written before a fault.
    fn log(&self) -> &[LogLine];
    /// Why it was switched off, if it was.
    fn switched_off(&self) -> Option<&str>;
    /// Switches it off for `reason` (a quarantine remembered from an earlier run).
    fn switch_off(&mut self, reason: String);
    /// How it has done since it started.
    fn stats(&self) -> ProgramStats;
}

/// How a running program has done: what `vigilo status`, `/metrics` and the console show.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProgramStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that faulted.
    pub faults: u64,
    /// Mean time per call, in microseconds.
    pub us_per_call: u64,
    /// The last fault, if any.
    pub last_fault: Option<String>,
}

/// Calls looked back over for the fault rate and the time budget.
pub const WINDOW: usize = 100;

/// A [`Runner`] under the containment policy: subscription filter, fault counts, time budget,
/// quarantine.
pub struct Supervised<R> {
    info: ProgramInfo,
    kind: &'static str,
    limits: Limits,
    runner: R,
    last_log: Vec<LogLine>,
    faults_in_a_row: u32,
    /// The last [`WINDOW`] calls: whether each faulted, and the time it took.
    recent: VecDeque<(bool, Duration)>,
    /// Their faults and time together, kept as calls come and go (not summed per call).
    recent_faults: u32,
    recent_time: Duration,
    stats: ProgramStats,
    time_total: Duration,
    switched_off: Option<String>,
}

impl<R: Runner> Supervised<R> {
    /// Supervises `runner`, which runs the program `info` describes.
    pub fn new(info: ProgramInfo, kind: &'static str, limits: &Limits, runner: R) -> Self {
        Supervised {
            info,
            kind,
            limits: limits.clone(),
            runner,
            last_log: Vec::new(),
            faults_in_a_row: 0,
            recent: VecDeque::with_capacity(WINDOW),
            recent_faults: 0,
            recent_time: Duration::ZERO,
            stats: ProgramStats::default(),
            time_total: Duration::ZERO,
            switched_off: None,
        }
    }

    /// Counts one call; returns why the program must be switched off, if it must.
    fn count(&mut self, fault: Option<&Fault>, took: Duration) -> Option<String> {
        self.stats.calls += 1;
        self.time_total += took;
        self.stats.us_per_call =
            u64::try_from(self.time_total.as_micros() / u128::from(self.stats.calls)).unwrap_or(0);
        if self.recent.len() == WINDOW
            && let Some((faulted, took)) = self.recent.pop_front()
        {
            self.recent_faults -= u32::from(faulted);
            self.recent_time = self.recent_time.saturating_sub(took);
        }
        self.recent.push_back((fault.is_some(), took));
        self.recent_faults += u32::from(fault.is_some());
        self.recent_time += took;
        let Some(fault) = fault else {
            self.faults_in_a_row = 0;
            let spent = self.recent_time;
            let budget = self.limits.deadline / 10;
            if self.recent.len() == WINDOW && spent > budget * WINDOW as u32 {
                return Some(format!(
                    "took {:.1} ms per call over its last {WINDOW} calls; its budget is {:.1} ms \
                     (a tenth of its {} ms deadline)",
                    spent.as_secs_f64() * 1000.0 / WINDOW as f64,
                    budget.as_secs_f64() * 1000.0,
                    self.limits.deadline.as_millis()
                ));
            }
            return None;
        };
        self.stats.faults += 1;
        self.stats.last_fault = Some(fault.to_string());
        self.faults_in_a_row += 1;
        let in_window = self.recent_faults;
        if self.faults_in_a_row >= self.limits.quarantine_after {
            Some(format!(
                "{} faults in a row, the last: {fault}",
                self.faults_in_a_row
            ))
        } else if in_window >= self.limits.faults_per_window {
            Some(format!(
                "{in_window} faults in its last {} calls, the last: {fault}",
                self.recent.len()
            ))
        } else {
            None
        }
    }
}

impl<R: Runner> Program for Supervised<R> {
    fn info(&self) -> &ProgramInfo {
        &self.info
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn on_event(&mut self, event: &Event, now_ms: i64) -> Result<Vec<PluginAlarm>, Fault> {
        self.last_log.clear();
        if self.switched_off.is_some() {
            return Err(Fault::Quarantined);
        }
        if !self.info.subscribes.contains(event.kind()) {
            return Ok(Vec::new());
        }
        // The budget is counted on the wall clock (two vDSO reads a call): a call's CPU time
        // costs a system call, and a busy machine stretches a microsecond call by far less than
        // the budget. The deadline, where one preemption matters, is in CPU time.
        let started = std::time::Instant::now();
        let result = self.runner.call(event, now_ms);
        let took = started.elapsed();
        self.last_log = self.runner.take_log();
        if let Err(fault) = &result {
            tracing::warn!(program = %self.info.name, kind = self.kind, "{fault}");
        }
        if let Some(why) = self.count(result.as_ref().err(), took) {
            tracing::error!(program = %self.info.name, kind = self.kind, "switched off: {why}");
            self.switch_off(why);
        }
        // What a call found before its program was switched off for its time still stands.
        result
    }

    fn is_quarantined(&self) -> bool {
        self.switched_off.is_some()
    }

    fn state(&self) -> State {
        self.runner.state()
    }

    fn log(&self) -> &[LogLine] {
        &self.last_log
    }

    fn switched_off(&self) -> Option<&str> {
        self.switched_off.as_deref()
    }

    fn switch_off(&mut self, reason: String) {
        if self.switched_off.is_none() {
            self.runner.shut_down();
            self.switched_off = Some(reason);
        }
    }

    fn stats(&self) -> ProgramStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runner that faults on the calls `fault(n)` says, and spins `cpu` on each.
    struct Fake {
        n: u32,
        fault: fn(u32) -> bool,
        cpu: Duration,
        shut: bool,
    }

    impl Runner for Fake {
        fn call(&mut self, _: &Event, _: i64) -> Result<Vec<PluginAlarm>, Fault> {
            self.n += 1;
            let clock = clock::CallClock::start();
            while clock.cpu() < self.cpu {}
            if (self.fault)(self.n) {
                Err(Fault::Trap("boom".into()))
            } else {
                Ok(Vec::new())
            }
        }
        fn take_log(&mut self) -> Vec<LogLine> {
            Vec::new()
        }
        fn state(&self) -> State {
            State::new()
        }
        fn shut_down(&mut self) {
            self.shut = true;
        }
    }

    fn supervised(fault: fn(u32) -> bool, cpu: Duration) -> Supervised<Fake> {
        let info = ProgramInfo {
            name: "fake".into(),
            version: "1.0.0".into(),
            subscribes: KindSet::ALL,
            config_help: String::new(),
            reads: FieldSet::ALL,
        };
        let runner = Fake {
            n: 0,
            fault,
            cpu,
            shut: false,
        };
        Supervised::new(info, "plugin", &Limits::default(), runner)
    }

    fn event() -> Event {
        crate::event::parse_line(r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity"}"#)
            .expect("event")
    }

    #[test]
    fn faulting_every_other_call_is_switched_off_by_its_rate() {
        let mut p = supervised(|n| n % 2 == 0, Duration::ZERO);
        let mut calls = 0;
        while p.switched_off().is_none() {
            let _ = p.on_event(&event(), 0);
            calls += 1;
            assert!(calls < 100, "never switched off");
        }
        assert_eq!(calls, 20, "the 10th fault, on the 20th call");
        assert_eq!(
            p.switched_off(),
            Some("10 faults in its last 20 calls, the last: trapped: boom")
        );
        assert!(p.runner.shut);
        let stats = p.stats();
        assert_eq!((stats.calls, stats.faults), (20, 10));
        assert_eq!(p.on_event(&event(), 0), Err(Fault::Quarantined));
    }

    #[test]
    fn a_program_that_never_faults_but_spends_its_time_is_switched_off() {
        // 6 ms of CPU a call against a budget of 5 (a tenth of the 50 ms deadline).
        let mut p = supervised(|_| false, Duration::from_millis(6));
        for _ in 0..WINDOW {
            assert!(
                p.on_event(&event(), 0).is_ok(),
                "its own results still count"
            );
        }
        let why = p
            .switched_off()
            .expect("switched off at the end of the window");
        assert!(
            why.contains(&format!(
                "over its last {WINDOW} calls; its budget is 5.0 ms"
            )),
            "{why}"
        );
        assert!(p.stats().us_per_call >= 6000, "{:?}", p.stats());
        // A cheap one runs on.
        let mut cheap = supervised(|_| false, Duration::ZERO);
        for _ in 0..2 * WINDOW {
            let _ = cheap.on_event(&event(), 0);
        }
        assert!(cheap.switched_off().is_none());
    }

    #[test]
    fn three_faults_in_a_row_still_switch_it_off_at_once() {
        let mut p = supervised(|n| n > 5, Duration::ZERO);
        for _ in 0..8 {
            let _ = p.on_event(&event(), 0);
        }
        assert_eq!(
            p.switched_off(),
            Some("3 faults in a row, the last: trapped: boom")
        );
    }
}
