//! Latencies recorded as they happen and read as percentiles: from a source seeing an event to
//! its alarm stored (an agent), from an agent committing an alarm to the hub committing it (a
//! hub). One histogram, 1 µs to 1 minute at 3 significant digits (~30 KB, made on the first
//! record), so a figure costs the same after a million records as after ten.

use std::sync::Mutex;
use std::time::Duration;

use crate::model::report::Latency;

/// A latency histogram shared between the threads that record and the one that reports.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Option<hdrhistogram::Histogram<u64>>>);

impl Recorder {
    /// Records one latency (longer than a minute counts as a minute).
    pub fn record(&self, took: Duration) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_none() {
            *h = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).ok();
        }
        if let Some(h) = h.as_mut() {
            let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            h.saturating_record(micros.max(1));
        }
    }

    /// The percentiles so far (`None` before the first record).
    pub fn summary(&self) -> Option<Latency> {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let h = h.as_ref().filter(|h| !h.is_empty())?;
        let ms = |micros: u64| (micros as f64 / 1000.0 * 1000.0).round() / 1000.0;
        Some(Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        })
    }
}
