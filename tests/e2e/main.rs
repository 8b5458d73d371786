//! End-to-end tests: the real `vigilo` binary on real files and a real SQLite database (and,
//! for a hub, a real PostgreSQL).

mod admin;
mod alarms;
mod api;
mod backtest;
mod browser;
mod check;
mod console;
mod desktop;
mod email;
mod escalation;
mod examples;
mod fleet;
mod hardening;
mod outputs;
mod packs;
mod plugin;
mod popups;
mod replay;
mod risk;
mod rollout;
mod screenshots;
mod scripts;
mod terminate;
mod usb;
mod videos;
mod wayland;
mod webhooks;

// The harness: running the binary, a running agent, hand-written plugins.
#[path = "../support/agent.rs"]
mod agent;
#[path = "../support/certs.rs"]
mod certs;
#[path = "../support/nats.rs"]
mod nats;
#[path = "../support/postgres.rs"]
mod postgres;
#[path = "../support/receiver.rs"]
mod receiver;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/run.rs"]
mod run;
#[path = "../support/plugins.rs"]
mod support;
#[path = "../support/sway.rs"]
mod sway;

pub use run::*;
