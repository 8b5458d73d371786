//! The host side of the contract: what a plugin can call — a log, the clock, its state.

use std::collections::BTreeMap;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::rules::program::{CallLog, Limits, LogLine};

/// Everything a plugin's store holds besides the instance: its state, its clock, its log.
pub struct HostState {
    pub(super) plugin: String,
    pub(super) limits: Limits,
    pub(super) store_limits: StoreLimits,
    pub(super) state: BTreeMap<String, Vec<u8>>,
    pub(super) state_used: usize,
    pub(super) now_ms: i64,
    pub(super) log: CallLog,
    /// When the current call started: its deadline is in its own CPU time.
    pub(super) clock: crate::rules::program::clock::CallClock,
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
            log: CallLog::default(),
            clock: crate::rules::program::clock::CallClock::start(),
        }
    }

    /// Hands over the lines logged during a call and readies the log for the next.
    pub(super) fn take_log(&mut self) -> Vec<LogLine> {
        self.log.take(&self.limits)
    }

    /// The store's resource limiter: it refuses memory growth past the cap.
    pub(super) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.store_limits
    }
}

/// The host functions, once for every contract version (their signatures are the same; only the
/// generated types' paths differ).
macro_rules! host_functions {
    ($contract:path) => {
        const _: () = {
            use contract::vigilo::alarms::host;
            use $contract as contract;

            impl contract::vigilo::alarms::types::Host for HostState {}

            impl host::Host for HostState {
                fn log(&mut self, level: host::LogLevel, message: String) {
                    let level = match level {
                        host::LogLevel::Debug => "debug",
                        host::LogLevel::Info => "info",
                        host::LogLevel::Warn => "warn",
                        host::LogLevel::Error => "error",
                    };
                    self.log.push(&self.plugin, level, message, &self.limits);
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
        };
    };
}

host_functions!(super::bindings);
host_functions!(super::v0_1::bindings);
