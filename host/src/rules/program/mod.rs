//! What the two kinds of programmable rule — WASM plugins and Rhai scripts — share: the
//! description a program gives of itself, its limits, its log, the ways a call can fail, and the
//! supervision that contains a failing program.
//!
//! Each runtime implements [`Runner`] (one raw call, its state, its log); [`Supervised`] wraps a
//! runner with the policy both obey: a program sees only the event kinds it subscribed to; a
//! faulty call is recorded and the next event goes on; after `quarantine_after` faults in a row
//! the program is switched off. The pipeline holds every running program as a `dyn` [`Program`].

pub mod limits;

pub use limits::Limits;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::actions::PlannedAction;
use crate::event::{Event, KindSet};

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
}

/// A [`Runner`] under the containment policy: subscription filter, fault count, quarantine.
pub struct Supervised<R> {
    info: ProgramInfo,
    kind: &'static str,
    quarantine_after: u32,
    runner: R,
    last_log: Vec<LogLine>,
    faults_in_a_row: u32,
    quarantined: bool,
}

impl<R: Runner> Supervised<R> {
    /// Supervises `runner`, which runs the program `info` describes.
    pub fn new(info: ProgramInfo, kind: &'static str, limits: &Limits, runner: R) -> Self {
        Supervised {
            info,
            kind,
            quarantine_after: limits.quarantine_after,
            runner,
            last_log: Vec::new(),
            faults_in_a_row: 0,
            quarantined: false,
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
        if self.quarantined {
            return Err(Fault::Quarantined);
        }
        if !self.info.subscribes.contains(event.kind()) {
            return Ok(Vec::new());
        }
        let result = self.runner.call(event, now_ms);
        self.last_log = self.runner.take_log();
        match &result {
            Ok(_) => self.faults_in_a_row = 0,
            Err(fault) => {
                self.faults_in_a_row += 1;
                tracing::warn!(program = %self.info.name, kind = self.kind, "{fault}");
                if self.faults_in_a_row >= self.quarantine_after {
                    tracing::error!(program = %self.info.name, kind = self.kind, faults = self.faults_in_a_row, "switched off");
                    self.quarantined = true;
                    self.runner.shut_down();
                }
            }
        }
        result
    }

    fn is_quarantined(&self) -> bool {
        self.quarantined
    }

    fn state(&self) -> State {
        self.runner.state()
    }

    fn log(&self) -> &[LogLine] {
        &self.last_log
    }
}
