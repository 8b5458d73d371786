//! How long a program's call has run, in its own CPU time.
//!
//! A deadline measured on the wall clock switches a well-behaved plugin off only because the
//! machine was busy (the thread waited for a core, not the plugin for its loop). So a call's
//! deadline and the budget of a program are measured in the CPU time of the thread that runs
//! it (`CLOCK_THREAD_CPUTIME_ID`), as Extism's fuel is deterministic for the same reason; the
//! wall clock is only a backstop, [`WALL_SLACK`] times the deadline, for a thread the kernel
//! never schedules.

use std::time::{Duration, Instant};

/// How many deadlines of wall-clock time a call may take while it has not used its deadline
/// of CPU time.
pub const WALL_SLACK: u32 = 20;

/// CPU time used by the calling thread so far.
pub fn thread_cpu() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// How stale the thread's CPU reading may be when a call starts: reading it costs a system call
/// (it is not in the vDSO), a call's start should not.
const RESYNC: Duration = Duration::from_millis(10);

std::thread_local! {
    /// The last reading of this thread's CPU time, and when it was taken.
    static LAST: std::cell::Cell<Option<(Instant, Duration)>> = const { std::cell::Cell::new(None) };
}

/// When a call started, on both clocks. Read on the thread that makes the call.
///
/// Starting one costs a wall-clock read: the CPU time at the start is estimated from the last
/// reading (at most `RESYNC` old) as if the thread had run all the time since, which can only
/// make the call's own CPU time look smaller — by at most `RESYNC` — never larger. The CPU clock
/// is read for real only once a call has run its deadline on the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct CallClock {
    wall: Instant,
    cpu: Duration,
}

impl CallClock {
    /// Starts timing a call now.
    pub fn start() -> CallClock {
        let now = Instant::now();
        let (at, cpu) = match LAST.with(std::cell::Cell::get) {
            Some((at, cpu)) if now.duration_since(at) < RESYNC => (at, cpu),
            _ => {
                let cpu = thread_cpu();
                LAST.with(|l| l.set(Some((now, cpu))));
                (now, cpu)
            }
        };
        CallClock {
            wall: now,
            cpu: cpu + now.duration_since(at),
        }
    }

    /// CPU time the call has used (at most `RESYNC` too little).
    pub fn cpu(&self) -> Duration {
        thread_cpu().saturating_sub(self.cpu)
    }

    /// Wall-clock time since the call started.
    pub fn elapsed(&self) -> Duration {
        self.wall.elapsed()
    }

    /// Whether the call is past `deadline`: that much CPU time, or [`WALL_SLACK`] times it on
    /// the wall clock. A call cannot have used more CPU than wall time, so before its deadline
    /// on the wall clock this reads no CPU clock at all.
    pub fn past(&self, deadline: Duration) -> bool {
        let wall = self.wall.elapsed();
        wall > deadline && (wall > deadline.saturating_mul(WALL_SLACK) || self.cpu() > deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeping_is_not_running() {
        let clock = CallClock::start();
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.cpu() < Duration::from_millis(10), "{:?}", clock.cpu());
        assert!(
            !clock.past(Duration::from_millis(10)),
            "30 ms asleep is not 10 ms of work"
        );
        let spin = CallClock::start();
        while spin.cpu() < Duration::from_millis(25) {}
        assert!(spin.past(Duration::from_millis(10)));
    }
}
