//! vigilo: an endpoint agent that watches activity, USB storage and its own setup, raises
//! alarms when a pack's conditions match, and performs the actions those alarms ask for.
//!
//! The crate follows the pipeline, one module per stage, in floors: a module imports only from
//! floors below its own.
//!
//! ```text
//! sources ──► sessions ──► rules ──► alarms (stored) ──► actions
//! ```
//!
//! | floor | modules | what they are |
//! |---|---|---|
//! | ground | [`event`], [`model`], `data_dir`, `os`, `owner_only`, `secret`, `hex`, `tls` | events; alarm records, actions, templates, reports (the wire format); the data folder's layout; OS lookups; owner-only files; whom TLS trusts |
//! | 1 | `sources`, `sessions`, `tabs`, `risk`, `store` | the OS turned into events; focus spans; which tab is in front; risk scores; SQLite or PostgreSQL |
//! | 2 | `actions`, `fleet`, [`rules`] | what performs actions (the outbox's worker); the bus to the fleet's hub (forwarding, ingest); the engine, plugins and scripts |
//! | 3 | [`packs`], [`rule_set`] | packs read, checked and signed; the loaded packs assembled into one rule set |
//! | 4 | `alarms`, [`pipeline`] | fired alarms built from the rules; sessions → rules → store, one assembly for live and replay |
//! | 5 | `agent`, `console`, [`cli`] | `vigilo run` (sources, pipeline thread, worker, admin API); the web pages; one file per subcommand |
//!
//! The `vigilo` binary is a thin `main` over [`cli`].

#![warn(missing_docs)]

pub(crate) mod actions;
pub(crate) mod agent;
pub(crate) mod alarms;
pub mod cli;
pub(crate) mod console;
pub(crate) mod data_dir;
pub mod event;
pub(crate) mod fleet;
pub(crate) mod hex;
pub(crate) mod latency;
pub mod model;
pub(crate) mod os;
pub(crate) mod owner_only;
pub mod packs;
pub mod pipeline;
pub(crate) mod risk;
pub mod rule_set;
pub mod rules;
pub(crate) mod secret;
pub(crate) mod sessions;
pub(crate) mod sources;
pub(crate) mod store;
pub mod synth;
pub(crate) mod tabs;
pub(crate) mod tls;

/// Hand-written WAT test plugins, shared with the end-to-end tests and benches.
#[cfg(test)]
#[path = "../../tests/support/plugins.rs"]
pub(crate) mod test_plugins;

/// Chooses `ring` as rustls' process-wide crypto provider (HTTPS for webhooks and the admin
/// API's client); the first call wins, later ones change nothing. Call before building a client.
pub fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
