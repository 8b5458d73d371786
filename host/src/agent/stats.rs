//! What the running agent tells about itself: counters, sources, programs, what was shed.
//!
//! Written by the sources and the pipeline thread, read by the admin API's status endpoint.
//! Counters on the hot path are atomics; the rest changes rarely and sits behind mutexes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::model::report::{Latency, ProgramStatus, SourceStatus};

/// How long the events-per-second figure looks back.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// The agent's counters and states.
#[derive(Default)]
pub struct Stats {
    /// Events evaluated, with what they caused stored (account events included).
    pub events: AtomicU64,
    /// Alarms stored.
    pub alarms: AtomicU64,
    /// Rule sets installed since start (1 = the one it started with).
    pub generation: AtomicU64,
    shed: Mutex<BTreeMap<String, u64>>,
    sources: Mutex<BTreeMap<String, SourceStatus>>,
    programs: Mutex<Vec<ProgramStatus>>,
    samples: Mutex<VecDeque<(Instant, u64)>>,
    /// From seen to stored, for events that stored alarms.
    latency: crate::latency::Recorder,
    /// A hub's ingest of what agents forward (set once, when this process is a hub).
    pub ingest: std::sync::OnceLock<std::sync::Arc<crate::fleet::ingest::IngestStats>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding a counter's lock leaves a usable counter.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stats {
    /// Counts `n` things of kind `what` dropped before the pipeline saw them.
    pub fn shed(&self, what: &str, n: u64) {
        *lock(&self.shed).entry(what.to_string()).or_default() += n;
    }

    /// What was shed so far, by kind.
    pub fn shed_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.shed).clone()
    }

    /// Sets a source's state.
    pub fn source(&self, name: &str, up: bool, detail: impl Into<String>) {
        lock(&self.sources).insert(
            name.to_string(),
            SourceStatus {
                up,
                detail: detail.into(),
            },
        );
    }

    /// Every source's state, by name.
    pub fn sources(&self) -> BTreeMap<String, SourceStatus> {
        lock(&self.sources).clone()
    }

    /// Replaces the list of programs (after a rule swap or a quarantine).
    pub fn set_programs(&self, programs: Vec<ProgramStatus>) {
        *lock(&self.programs) = programs;
    }

    /// The programs and their states.
    pub fn programs(&self) -> Vec<ProgramStatus> {
        lock(&self.programs).clone()
    }

    /// Takes a sample of the event count; the rate is computed over the samples of the last
    /// minute. Called every few seconds.
    pub fn sample(&self, now: Instant) {
        let mut samples = lock(&self.samples);
        samples.push_back((now, self.events.load(Ordering::Relaxed)));
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Records how long an event took from its source to its alarms being stored.
    pub fn record_latency(&self, took: std::time::Duration) {
        self.latency.record(took);
    }

    /// The latency so far (`None` before the first alarm).
    pub fn latency(&self) -> Option<Latency> {
        self.latency.summary()
    }

    /// Events per second over the last minute (0 until two samples exist).
    pub fn events_per_second(&self) -> f64 {
        let samples = lock(&self.samples);
        match (samples.front(), samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_rate_covers_the_last_minute_only() {
        let stats = Stats::default();
        let t0 = Instant::now();
        stats.sample(t0);
        stats.events.store(1000, Ordering::Relaxed);
        stats.sample(t0 + Duration::from_secs(10));
        assert_eq!(stats.events_per_second(), 100.0);
        // Much later, with nothing new: the old burst has left the window.
        stats.sample(t0 + Duration::from_secs(100));
        stats.sample(t0 + Duration::from_secs(110));
        assert_eq!(stats.events_per_second(), 0.0);
    }

    #[test]
    fn latency_percentiles_come_from_what_was_recorded() {
        let stats = Stats::default();
        assert_eq!(stats.latency(), None);
        for micros in 1..=100u64 {
            stats.record_latency(Duration::from_micros(micros * 10));
        }
        let l = stats.latency().expect("recorded");
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 0.5).abs() < 0.01, "{l:?}");
        assert!((l.p99_ms - 0.99).abs() < 0.01, "{l:?}");
        assert!((l.max_ms - 1.0).abs() < 0.01, "{l:?}");
    }

    #[test]
    fn shed_things_are_counted_by_kind() {
        let stats = Stats::default();
        stats.shed("tick", 2);
        stats.shed("file_written", 1);
        stats.shed("tick", 1);
        assert_eq!(
            stats.shed_counts().into_iter().collect::<Vec<_>>(),
            [("file_written".to_string(), 1), ("tick".to_string(), 3)]
        );
    }
}
