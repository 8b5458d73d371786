//! Sources turn the outside world into [`Event`](crate::event::Event)s.
//!
//! Today there is one: [`jsonl`], recorded events read back with their own timestamps as the
//! clock (replay, tests, benchmarks). Live desktop sources (X11 focus, USB, file writes) join
//! here as later work lands; every later stage is the same for both.

pub mod jsonl;
