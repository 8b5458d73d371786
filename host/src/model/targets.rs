//! Whom a pack, or one of its alarms, is for: groups, users, computers and agent tags, with
//! exclusions — the audiences admins give rules in fleet products (ActivTrak's group alarms,
//! Teramind's policy audiences).
//!
//! Matching is by name, case-insensitively (Windows user and computer names are; a Linux admin
//! writing `Dave` for `dave` means dave). An empty audience is everyone. A non-empty one matches
//! when *any* of its lists does: the user is listed, the computer is, the user or the computer
//! is a member of a listed group, or the computer has every listed tag. An exclusion that
//! matches wins over every inclusion.
//!
//! Two questions are asked of targets. Before a pack is taken at all, of the computer alone
//! ([`Targets::reach`]): an agent left out by its computer's name, tags or groups refuses the
//! pack as not targeted; a pack for users or groups of users runs wherever one of them may
//! log in. Then, of each event ([`Targets::includes`]), with the person at the keyboard.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Whom something is for: who is included, and who is left out of that.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Who is included (empty: everyone).
    #[serde(default, skip_serializing_if = "Audience::is_empty")]
    pub include: Audience,
    /// Who is left out, even when included.
    #[serde(default, skip_serializing_if = "Audience::is_empty")]
    pub exclude: Audience,
}

/// A set of people and computers, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// Groups (defined on the hub): their member users and computers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Users, by login name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Computers, by agent id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub computers: Vec<String>,
    /// Agent tags: a computer with every one of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// What is known about a computer: its agent id, tags and the groups it is a member of.
#[derive(Clone, Copy, Debug)]
pub struct Computer<'a> {
    /// The agent's id.
    pub id: &'a str,
    /// Its tags.
    pub tags: &'a BTreeMap<String, String>,
    /// The groups it is a member of (folded, as [`fold`] makes them).
    pub groups: &'a BTreeSet<String>,
}

/// Whether a pack may be for a computer at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Yes, whoever uses it.
    Computer,
    /// For some of the people who may use it: each event decides.
    SomeUsers,
    /// No: why, in words.
    No(String),
}

/// A name as targets compare it.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

fn listed(list: &[String], name: &str) -> bool {
    list.iter().any(|n| n.to_lowercase() == name.to_lowercase())
}

fn any_listed(list: &[String], folded: &BTreeSet<String>) -> bool {
    list.iter().any(|n| folded.contains(&fold(n)))
}

impl Audience {
    /// Whether it names no one (and so, as an inclusion, everyone).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
            && self.users.is_empty()
            && self.computers.is_empty()
            && self.tags.is_empty()
    }

    /// Whether the computer itself is in it (by name, tags or groups).
    fn has_computer(&self, c: &Computer<'_>) -> bool {
        listed(&self.computers, c.id)
            || any_listed(&self.groups, c.groups)
            || (!self.tags.is_empty()
                && self.tags.iter().all(|(k, v)| {
                    c.tags
                        .iter()
                        .any(|(ck, cv)| fold(ck) == fold(k) && fold(cv) == fold(v))
                }))
    }

    /// Whether `user` (a member of `user_groups`, folded) on `c` is in it.
    fn has(&self, c: &Computer<'_>, user: Option<&str>, user_groups: &BTreeSet<String>) -> bool {
        self.has_computer(c)
            || user.is_some_and(|u| listed(&self.users, u))
            || any_listed(&self.groups, user_groups)
    }

    /// In words, for the console and logs: `groups finance, tag department=finance`.
    pub fn words(&self) -> String {
        let mut parts = Vec::new();
        for (what, list) in [
            ("groups", &self.groups),
            ("users", &self.users),
            ("computers", &self.computers),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what} {}", list.join(", ")));
            }
        }
        for (k, v) in &self.tags {
            parts.push(format!("tag {k}={v}"));
        }
        parts.join("; ")
    }
}

impl Targets {
    /// Whether it is for everyone.
    pub fn is_everyone(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether something with these targets may be for computer `c` (before any user is
    /// known).
    pub fn reach(&self, c: &Computer<'_>) -> Reach {
        if self.exclude.has_computer(c) {
            return Reach::No(format!("{} is excluded ({})", c.id, self.exclude.words()));
        }
        if self.include.is_empty() || self.include.has_computer(c) {
            return Reach::Computer;
        }
        if !self.include.users.is_empty() || !self.include.groups.is_empty() {
            return Reach::SomeUsers;
        }
        Reach::No(format!(
            "{} is not in its targets ({})",
            c.id,
            self.include.words()
        ))
    }

    /// Whether an event of `user` (a member of `user_groups`, folded) on `c` is in these
    /// targets.
    pub fn includes(
        &self,
        c: &Computer<'_>,
        user: Option<&str>,
        user_groups: &BTreeSet<String>,
    ) -> bool {
        (self.include.is_empty() || self.include.has(c, user, user_groups))
            && !self.exclude.has(c, user, user_groups)
    }

    /// In words: `everyone`, `groups finance`, `tag department=finance, except users ann`.
    pub fn words(&self) -> String {
        let mut out = if self.include.is_empty() {
            "everyone".to_string()
        } else {
            self.include.words()
        };
        if !self.exclude.is_empty() {
            out.push_str(&format!(", except {}", self.exclude.words()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn computer<'a>(
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
        groups: &'a BTreeSet<String>,
    ) -> Computer<'a> {
        Computer { id, tags, groups }
    }

    #[test]
    fn targets_include_by_any_list_and_an_exclusion_wins() {
        let finance_tags: BTreeMap<String, String> =
            [("department".to_string(), "Finance".to_string())].into();
        let none = BTreeMap::new();
        let no_groups = BTreeSet::new();
        let targets = Targets {
            include: Audience {
                tags: [("Department".to_string(), "finance".to_string())].into(),
                groups: vec!["Auditors".into()],
                ..Default::default()
            },
            exclude: Audience {
                users: vec!["Ann".into()],
                computers: vec!["ws-kiosk".into()],
                ..Default::default()
            },
        };
        let ws_fin = computer("ws-fin", &finance_tags, &no_groups);
        let ws_dev = computer("ws-dev", &none, &no_groups);
        assert_eq!(targets.reach(&ws_fin), Reach::Computer);
        // Auditors may log in anywhere: each event decides.
        assert_eq!(targets.reach(&ws_dev), Reach::SomeUsers);
        let kiosk = computer("WS-KIOSK", &finance_tags, &no_groups);
        assert!(matches!(targets.reach(&kiosk), Reach::No(why) if why.contains("excluded")));

        let auditors: BTreeSet<String> = [fold("auditors")].into();
        assert!(targets.includes(&ws_fin, Some("bob"), &no_groups));
        assert!(
            !targets.includes(&ws_fin, Some("ann"), &no_groups),
            "excluded"
        );
        assert!(!targets.includes(&ws_dev, Some("bob"), &no_groups));
        assert!(targets.includes(&ws_dev, Some("cat"), &auditors));
        // A computer in a listed group is included, whoever uses it.
        let dev_in_group = computer("ws-dev", &none, &auditors);
        assert_eq!(targets.reach(&dev_in_group), Reach::Computer);

        // Computers only: a computer not listed is not targeted at all.
        let only = Targets {
            include: Audience {
                computers: vec!["ws-fin".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(only.reach(&ws_dev), Reach::No(why) if why.contains("computers ws-fin")));
        assert_eq!(Targets::default().reach(&ws_dev), Reach::Computer);
        assert!(Targets::default().includes(&ws_dev, None, &no_groups));
        assert_eq!(
            targets.words(),
            "groups Auditors; tag Department=finance, except users Ann; computers ws-kiosk"
        );
    }
}
