//! What performs the actions alarms ask for.
//!
//! Rules only *plan* actions (the vocabulary is [`crate::model::action`]): a triggered alarm is
//! stored with its planned actions queued in the store's outbox, and only then does the
//! [`worker`] take due rows and perform them, one file per kind: [`webhook`], [`email`],
//! screenshots (of the [`screen`]), [`video`] (from the [`recorder`]), [`popup`] and
//! [`terminate`] — and, in a fleet, [`forward`] to the hub.

pub mod email;
pub mod failure;
pub mod forward;
pub mod otlp;
pub mod output;
pub mod popup;
pub mod presence;
pub mod recorder;
pub mod screen;
pub mod syslog;
pub mod terminate;
pub mod video;
pub mod webhook;
pub mod worker;
