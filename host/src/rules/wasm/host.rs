//! The host side of the contract: what a plugin can call — a log, the clock, its state.

use std::collections::BTreeMap;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use super::Limits;
use super::bindings::vigilo::alarms::{host, types};

/// One line a plugin logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// What it said.
    pub message: String,
}

/// Everything a plugin's store holds besides the instance: its state, its clock, its log.
pub struct HostState {
    pub(super) plugin: String,
    pub(super) limits: Limits,
    pub(super) store_limits: StoreLimits,
    pub(super) state: BTreeMap<String, Vec<u8>>,
    pub(super) state_used: usize,
    pub(super) now_ms: i64,
    pub(super) log: Vec<LogLine>,
    pub(super) log_dropped: usize,
}

impl HostState {
    pub(super) fn new(plugin: &str, limits: &Limits, state: BTreeMap<String, Vec<u8>>) -> Self {
        let state_used = state.iter().map(|(k, v)| k.len() + v.len()).sum();
        HostState {
            plugin: plugin.to_string(),
            store_limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(16)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            limits: limits.clone(),
            state,
            state_used,
            now_ms: 0,
            log: Vec::new(),
            log_dropped: 0,
        }
    }

    /// Hands over the lines logged during a call and readies the log for the next; lines over
    /// the per-call cap are summed up in one closing warning rather than vanishing unnoticed.
    pub(super) fn take_log(&mut self) -> Vec<LogLine> {
        let mut log = std::mem::take(&mut self.log);
        if self.log_dropped > 0 {
            log.push(LogLine {
                level: "warn",
                message: format!(
                    "{} more lines dropped: at most {} per event",
                    self.log_dropped, self.limits.max_log_lines
                ),
            });
            self.log_dropped = 0;
        }
        log
    }

    /// The store's resource limiter: it refuses memory growth past the cap.
    pub(super) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.store_limits
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let level = match level {
            host::LogLevel::Debug => "debug",
            host::LogLevel::Info => "info",
            host::LogLevel::Warn => "warn",
            host::LogLevel::Error => "error",
        };
        if self.log.len() >= self.limits.max_log_lines {
            self.log_dropped += 1;
            return;
        }
        let mut message = message;
        if message.len() > self.limits.max_text_bytes {
            let mut cut = self.limits.max_text_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        tracing::debug!(plugin = %self.plugin, level, "{message}");
        self.log.push(LogLine { level, message });
    }

    fn now(&mut self) -> i64 {
        self.now_ms
    }

    fn state_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.state.get(&key).cloned()
    }

    fn state_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let old = self.state.get(&key).map_or(0, |v| key.len() + v.len());
        let used = self.state_used - old + key.len() + value.len();
        if used > self.limits.state_bytes {
            return Err(format!(
                "state would hold {used} bytes, over this plugin's limit of {}",
                self.limits.state_bytes
            ));
        }
        self.state_used = used;
        self.state.insert(key, value);
        Ok(())
    }

    fn state_delete(&mut self, key: String) {
        if let Some(v) = self.state.remove(&key) {
            self.state_used -= key.len() + v.len();
        }
    }
}
