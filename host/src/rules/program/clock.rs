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

/// When a call started, on both clocks. Read on the thread that makes the call.
#[derive(Clone, Copy, Debug)]
pub struct CallClock {
    wall: Instant,
    cpu: Duration,
}

impl CallClock {
    /// Starts timing a call now.
    pub fn start() -> CallClock {
        CallClock {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// CPU time the call has used.
    pub fn cpu(&self) -> Duration {
        thread_cpu().saturating_sub(self.cpu)
    }

    /// Whether the call is past `deadline`: that much CPU time, or [`WALL_SLACK`] times it on
    /// the wall clock.
    pub fn past(&self, deadline: Duration) -> bool {
        self.cpu() > deadline || self.wall.elapsed() > deadline.saturating_mul(WALL_SLACK)
    }
}

impl Default for CallClock {
    fn default() -> CallClock {
        CallClock::start()
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
        while spin.cpu() < Duration::from_millis(15) {}
        assert!(spin.past(Duration::from_millis(10)));
    }
}
