//! The ground floor every stage after the sources shares: alarm records, the action vocabulary,
//! templates, programs' state.
//!
//! These types are the agent's vocabulary and, with the fleet, its wire format: what the store
//! writes, the API and the console show, and an agent sends its hub. Their serde forms are
//! therefore stable: a field is documented once, here; a new field comes with a default so an
//! older reader still reads a newer record; a change an older reader cannot read raises
//! [`FORM_VERSION`]. The tests beside each type pin its form.

pub mod action;
pub mod alarm;
pub mod program_state;
pub mod report;
pub mod targets;
pub mod template;

/// The version of the serde forms in this module. Readers of another version (a hub and an
/// agent of different releases) refuse what they cannot read rather than misread it.
pub const FORM_VERSION: u32 = 1;
