//! Sources turn the outside world into [`Event`]s, each in one shape: a [`Source`] is started
//! once with a [`Sink`] (the pipeline's queue and the agent's status) and runs on threads of its
//! own until the sink says the agent is stopping.
//!
//! [`jsonl`] reads recorded or streamed events (replay, tests, benchmarks, or a stream fed to
//! `vigilo run`); [`desktop`] watches the focused window and idle time of the person's
//! desktop, through [`x11`] on an X server or [`wayland`] under a Wayland compositor;
//! [`browser`] hears from vigilo's browser extension which page is in front; [`usb`] follows
//! USB devices and the files written to removable storage. Every later stage is the same for
//! all of them. Adding a source is a file here and one line where `vigilo run` lists them.

pub mod browser;
pub mod desktop;
pub mod jsonl;
pub mod usb;
pub(crate) mod wayland;
pub(crate) mod x11;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, FixedOffset};

use crate::event::Event;
use crate::tabs::TabReport;

/// Where a source's output goes. Every call but [`Sink::status`] and [`Sink::lost`] answers
/// false once the agent is stopping: the source then returns from its threads.
pub trait Sink: Send + Sync {
    /// Queues an event the source saw at `seen` (the status's latency counts from then),
    /// waiting while the queue is full.
    fn observed(&self, event: Event, seen: Instant) -> bool;

    /// Queues an event seen now.
    fn event(&self, event: Event) -> bool {
        self.observed(event, Instant::now())
    }

    /// The wall clock, for a live source whose events carry wall-clock times: spans grow with
    /// it whether or not anything happens.
    fn tick(&self, now: DateTime<FixedOffset>) -> bool;

    /// The person went idle (true) or came back (false) at `at`.
    fn idle(&self, at: DateTime<FixedOffset>, idle: bool) -> bool;

    /// A browser's report of the tab in front.
    fn tab(&self, report: TabReport) -> bool;

    /// Counts what was lost before it could be read (`what` names it).
    fn lost(&self, what: &str, n: u64);

    /// Says in the agent's status whether `part` (a source, or one half of one) runs, and what
    /// it does or why it does not.
    fn status(&self, part: &str, up: bool, detail: String);

    /// `part` cannot run: said in the status, the log and on stderr with what that turns off
    /// (`"activity from windows is off"`); the agent runs on with its other sources.
    fn off(&self, part: &str, why: String, consequence: &str) {
        tracing::warn!("{part} source off: {why}");
        eprintln!("vigilo: {why}; {consequence}, other sources keep running");
        self.status(part, false, why);
    }
}

/// A source of events: what `vigilo run` starts, whatever it reads.
pub trait Source: Send {
    /// Starts reading on threads of its own. What cannot run here (no X display, no netlink
    /// rights) is said through [`Sink::off`] and is no error: the agent runs without it. An
    /// error is what should stop the agent (a thread that cannot be started).
    fn start(self: Box<Self>, sink: Arc<dyn Sink>) -> std::io::Result<Running>;
}

/// A started source. Dropping it undoes what it made outside the process (the browser
/// source's socket file); its threads end when the sink says the agent stops.
#[derive(Default)]
pub struct Running {
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Running {
    /// A source with nothing to undo.
    pub fn threads() -> Running {
        Running::default()
    }

    /// A source that runs `cleanup` when the agent stops.
    pub fn with_cleanup(cleanup: impl FnOnce() + Send + 'static) -> Running {
        Running {
            cleanup: Some(Box::new(cleanup)),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}
