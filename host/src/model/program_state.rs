//! What plugins and scripts keep between events and across restarts: each program's key-value
//! state, under its pack and its name.

use std::collections::{BTreeMap, HashMap};

/// Every program's state: `(pack, program)` → its keys and their values. The pipeline holds it
/// while programs run; the store keeps it so a restart (or the next back-test with `--store`)
/// starts where the last run stopped.
pub type PluginStates = HashMap<(String, String), BTreeMap<String, Vec<u8>>>;
