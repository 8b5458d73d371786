//! vigilo: an endpoint agent that watches activity, USB storage and its own setup, raises
//! alarms when a pack's conditions match, and plans the actions those alarms ask for.
//!
//! The crate follows the pipeline, one module per stage:
//!
//! ```text
//! sources ──► sessions ──► rules ──► alarms (stored) ──► actions
//! ```
//!
//! - [`sources`] turn the outside world (today: recorded JSONL) into [`event::Event`]s;
//! - [`sessions`] turn focus events into spans whose `duration` grows with the clock;
//! - [`rules`] decide which alarms an event triggers ([`packs`] supply them);
//! - [`alarms`] are the triggered alarms, written to the [`store`] before anything acts;
//! - [`actions`] are what alarms ask for.
//!
//! [`pipeline`] wires the stages together; [`agent`] runs them as a service with an admin API
//! that manages packs; the `vigilo` binary is a thin CLI over both.

#![warn(missing_docs)]

pub(crate) mod actions;
pub(crate) mod agent;
pub(crate) mod alarms;
pub mod cli;
pub(crate) mod console;
pub(crate) mod data_dir;
pub mod event;
pub(crate) mod hex;
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

/// Hand-written WAT test plugins, shared with the end-to-end tests and benches.
#[cfg(test)]
#[path = "../../tests/support/plugins.rs"]
pub(crate) mod test_plugins;

/// Chooses `ring` as rustls' process-wide crypto provider (HTTPS for webhooks and the admin
/// API's client); the first call wins, later ones change nothing. Call before building a client.
pub fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
