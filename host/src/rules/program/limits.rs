//! What one plugin or script may spend: time per call, memory or operations, output, state.

use std::time::Duration;

/// Longest deadline a pack may give a program's call, in milliseconds.
pub const MAX_DEADLINE_MS: u64 = 1000;
/// Most memory a pack may give a plugin, in MiB.
pub const MAX_MEMORY_MIB: u64 = 1024;

/// Limits on one plugin or script. A pack may set them per program; the defaults suit rules that
/// look at one event and a little state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of one call (epoch interruption, 1 ms resolution).
    pub deadline: Duration,
    /// Most linear memory a plugin may grow to, in bytes.
    pub memory_bytes: usize,
    /// Most operations a script may run per call (Rhai's own count: a deterministic budget,
    /// where the deadline is the wall-clock backstop).
    pub max_operations: u64,
    /// Most alarms one call may return.
    pub max_alarms: usize,
    /// Most actions one alarm may ask for.
    pub max_actions: usize,
    /// Longest text (alarm name, note, pop-up message…) returned, in bytes.
    pub max_text_bytes: usize,
    /// Most bytes of keys and values the plugin's state may hold.
    pub state_bytes: usize,
    /// Log lines kept per call; more are counted and dropped.
    pub max_log_lines: usize,
    /// Consecutive faulty calls after which the plugin is switched off.
    pub quarantine_after: u32,
    /// Faulty calls among the last [`super::WINDOW`] after which it is switched off, in a row
    /// or not.
    pub faults_per_window: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            deadline: Duration::from_millis(50),
            memory_bytes: 64 << 20,
            max_operations: 200_000,
            max_alarms: 16,
            max_actions: 8,
            max_text_bytes: 4096,
            state_bytes: 1 << 20,
            max_log_lines: 32,
            quarantine_after: 3,
            faults_per_window: 10,
        }
    }
}
