//! `GET /metrics`: the agent's state for Prometheus (and anything reading OpenMetrics text),
//! encoded by `prometheus-client` so names, labels and escaping follow the format exactly.
//!
//! The values are read when scraped — the pipeline keeps its own counters ([`Stats`]) and is
//! not slowed by a metrics library on its hot path.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::stats::Stats;

/// What `/metrics` needs besides the counters: read from the store when scraped.
pub struct StoreFigures {
    /// Alarms fired since local midnight.
    pub alarms_today: u64,
    /// Actions waiting in the outbox.
    pub outbox_pending: u64,
    /// Actions given up.
    pub outbox_dead: u64,
    /// The database's size, its log included.
    pub store_bytes: u64,
}

impl StoreFigures {
    /// Reads them now ("today" is the agent's local day).
    pub fn read(store: &crate::store::Store) -> anyhow::Result<StoreFigures> {
        let midnight = chrono::Local::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
            .map(|t| t.fixed_offset());
        let (outbox_pending, outbox_dead) = store.outbox_counts()?;
        Ok(StoreFigures {
            alarms_today: match midnight {
                Some(m) => store.count_alarms_since(m)?,
                None => 0,
            },
            outbox_pending,
            outbox_dead,
            store_bytes: store.size_bytes(),
        })
    }
}

type Labels = Vec<(String, String)>;

/// The exposition text.
pub fn render(stats: &Stats, store: &StoreFigures) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("vigilo");
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: f64| {
        let g = Gauge::<f64, AtomicU64>::default();
        g.set(value);
        registry.register(name, help, g);
    };
    counter(
        &mut registry,
        "events",
        "Events taken by the pipeline since the agent started",
        stats.events.load(Ordering::Relaxed),
    );
    counter(
        &mut registry,
        "alarms",
        "Alarms stored since the agent started",
        stats.alarms.load(Ordering::Relaxed),
    );
    gauge(
        &mut registry,
        "events_per_second",
        "Events per second over the last minute",
        stats.events_per_second(),
    );
    gauge(
        &mut registry,
        "alarms_today",
        "Alarms fired since local midnight",
        store.alarms_today as f64,
    );
    gauge(
        &mut registry,
        "rules_generation",
        "Rule sets loaded since the agent started",
        stats.generation.load(Ordering::Relaxed) as f64,
    );
    gauge(
        &mut registry,
        "outbox_pending",
        "Actions waiting to be performed or retried",
        store.outbox_pending as f64,
    );
    gauge(
        &mut registry,
        "outbox_dead",
        "Actions given up after their attempts",
        store.outbox_dead as f64,
    );
    gauge(
        &mut registry,
        "store_bytes",
        "Size of the SQLite store, write-ahead log included",
        store.store_bytes as f64,
    );

    let sources = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (name, s) in stats.sources() {
        sources
            .get_or_create(&vec![("source".into(), name)])
            .set(if s.up { 1.0 } else { 0.0 });
    }
    registry.register(
        "source_up",
        "Whether each source is working (1) or not (0)",
        sources,
    );

    let programs = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for p in stats.programs() {
        programs
            .get_or_create(&vec![
                ("pack".into(), p.pack),
                ("program".into(), p.name),
                ("kind".into(), p.kind),
            ])
            .set(if p.quarantined { 1.0 } else { 0.0 });
    }
    registry.register(
        "program_quarantined",
        "Plugins and scripts switched off after faults or for their time (1)",
        programs,
    );
    let calls = Family::<Labels, Counter<u64>>::default();
    let faults = Family::<Labels, Counter<u64>>::default();
    let cpu = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for p in stats.programs() {
        let labels = vec![
            ("pack".into(), p.pack),
            ("program".into(), p.name),
            ("kind".into(), p.kind),
        ];
        calls.get_or_create(&labels).inc_by(p.calls);
        faults.get_or_create(&labels).inc_by(p.faults);
        cpu.get_or_create(&labels).set(p.us_per_call as f64 / 1e6);
    }
    registry.register(
        "program_calls",
        "Calls made to each plugin and script",
        calls,
    );
    registry.register(
        "program_faults",
        "Calls of each plugin and script that faulted",
        faults,
    );
    registry.register(
        "program_seconds_per_call",
        "Mean time of a call to each plugin and script",
        cpu,
    );

    let shed = Family::<Labels, Counter<u64>>::default();
    for (what, n) in stats.shed_counts() {
        shed.get_or_create(&vec![("what".into(), what)]).inc_by(n);
    }
    registry.register("shed", "Inputs dropped under load, by kind", shed);

    if let Some(l) = stats.latency() {
        let latency = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (q, ms) in [("0.5", l.p50_ms), ("0.99", l.p99_ms), ("1", l.max_ms)] {
            latency
                .get_or_create(&vec![("quantile".into(), q.into())])
                .set(ms / 1000.0);
        }
        registry.register(
            "alarm_latency_seconds",
            "From a source seeing a change to its alarm being stored, by quantile",
            latency,
        );
    }
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_figure_with_escaped_labels() {
        let stats = Stats::default();
        stats.events.store(42, Ordering::Relaxed);
        stats.source("x11", true, "focused window");
        stats.source("usb \"kernel\"", false, "no netlink");
        let text = render(
            &stats,
            &StoreFigures {
                alarms_today: 3,
                outbox_pending: 1,
                outbox_dead: 2,
                store_bytes: 4096,
            },
        )
        .expect("text");
        for line in [
            "# TYPE vigilo_events counter",
            "vigilo_events_total 42",
            "vigilo_alarms_today 3.0",
            "vigilo_outbox_dead 2.0",
            "vigilo_store_bytes 4096.0",
            "vigilo_source_up{source=\"x11\"} 1.0",
            "vigilo_source_up{source=\"usb \\\"kernel\\\"\"} 0.0",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
    }
}
