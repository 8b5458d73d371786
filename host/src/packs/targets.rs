//! A pack's `[targets]`: whom its alarms are for (see [`crate::model::targets`] for what they
//! mean), read with every problem at its line and column.
//!
//! ```toml
//! [targets]
//! groups = ["finance"]
//! tags = { site = "paris" }
//! exclude = { users = ["ceo"] }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::model::targets::{Audience, Targets};

use super::diagnostic::Reporter;

/// `[targets]` as written (and the `exclude` table inside it, which has the same lists).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTargets {
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
    #[serde(default)]
    pub computers: Vec<Spanned<String>>,
    #[serde(default)]
    pub tags: BTreeMap<Spanned<String>, Spanned<String>>,
    pub exclude: Option<Spanned<Box<RawTargets>>>,
}

/// Longest name a target list takes (a user, a computer, a group).
const MAX_NAME: usize = 256;

/// Longest tag name or value (as `[fleet] tags` allows).
const MAX_TAG: usize = 64;

fn name_ok(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

fn audience(raw: &RawTargets, r: &mut Reporter<'_>) -> Audience {
    let mut names = |list: &[Spanned<String>], what: &str| -> Vec<String> {
        list.iter()
            .filter(|n| {
                let ok = name_ok(n.get_ref(), MAX_NAME);
                if !ok {
                    r.error(
                        n.span(),
                        format!(
                            "a {what} name is 1 to {MAX_NAME} characters, no control characters"
                        ),
                    );
                }
                ok
            })
            .map(|n| n.get_ref().clone())
            .collect()
    };
    let groups = names(&raw.groups, "group");
    let users = names(&raw.users, "user");
    let computers = names(&raw.computers, "computer");
    let mut tags = BTreeMap::new();
    for (k, v) in &raw.tags {
        for s in [k, v] {
            if !name_ok(s.get_ref(), MAX_TAG) {
                r.error(
                    s.span(),
                    format!("a tag's name and value are 1 to {MAX_TAG} characters, no control characters"),
                );
            }
        }
        tags.insert(k.get_ref().clone(), v.get_ref().clone());
    }
    Audience {
        groups,
        users,
        computers,
        tags,
    }
}

/// Reads `[targets]` (or, for an alarm, `applies_to`).
pub(super) fn targets(raw: &RawTargets, r: &mut Reporter<'_>) -> Targets {
    let include = audience(raw, r);
    let exclude = match &raw.exclude {
        Some(ex) => {
            if let Some(nested) = &ex.get_ref().exclude {
                r.error(
                    nested.span(),
                    "an exclusion has no exclusions of its own; list everyone left out in one \
                     `exclude`",
                );
            }
            audience(ex.get_ref(), r)
        }
        None => Audience::default(),
    };
    Targets { include, exclude }
}
