//! Rules decide which alarms an event triggers. They never act: they return triggered alarms
//! with their planned actions, and later stages store and perform them.
//!
//! Built-in conditions (`Condition`) are compiled into one `Engine`; WASM plugins
//! ([`wasm`]) and Rhai scripts ([`script`]) run under one supervisor as [`program`]s. Packs
//! (a floor up) supply them; `rule_set`, above both, assembles the loaded packs into one set.

mod alarm;
mod condition;
mod engine;
mod literals;
pub mod program;
mod scan;
pub mod schedule;
pub mod script;
pub mod wasm;

pub(crate) use alarm::{AlarmDef, Escalated, Escalation, Repeat, ordinal};
pub(crate) use condition::{Condition, Leaf, Op, Operand, Subject, fold_case};
pub use engine::Scratch;
pub(crate) use engine::{AlarmIndex, Engine};
