//! Sources turn the outside world into [`Event`](crate::event::Event)s.
//!
//! [`jsonl`] reads recorded events back with their own timestamps as the clock (replay, tests,
//! benchmarks, or a stream fed to `vigilo run`); [`x11`] watches the focused window of an X11
//! desktop; [`browser`] hears from vigilo's browser extension which page is in front; [`usb`]
//! follows USB devices and the files written to removable storage. Every later stage is the
//! same for all of them.

pub mod browser;
pub mod jsonl;
pub mod usb;
pub mod x11;
