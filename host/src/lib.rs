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

pub mod actions;
pub mod agent;
pub mod alarms;
pub mod cli;
pub mod console;
pub mod data_dir;
pub mod event;
pub mod hex;
pub mod model;
pub mod os;
pub mod owner_only;
pub mod packs;
pub mod pipeline;
pub mod risk;
pub mod rule_set;
pub mod rules;
pub mod secret;
pub mod sessions;
pub mod sources;
pub mod store;
pub mod synth;
pub mod tabs;

/// Hand-written WAT test plugins, shared with the end-to-end tests and benches.
#[cfg(test)]
#[path = "../../tests/support/plugins.rs"]
pub(crate) mod test_plugins;

/// Chooses `ring` as rustls' process-wide crypto provider (HTTPS for webhooks and the admin
/// API's client); the first call wins, later ones change nothing. Call before building a client.
pub fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
