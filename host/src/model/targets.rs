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

/// A list of names for people to read: `-` for none, the first `at_most`, and how many in all
/// when there are more (`ann, bob, … (4)`).
pub fn some_names(names: &[String], at_most: usize) -> String {
    match names.len() {
        0 => "-".into(),
        n if n <= at_most => names.join(", "),
        n => format!("{}, … ({n})", names[..at_most.min(n)].join(", ")),
    }
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

/// Longest group name: it is also the group's key on the bus, so it keeps to the letters a
/// key may have.
pub const MAX_GROUP_NAME: usize = 64;

/// Most members (users and computers together) one group has.
pub const MAX_GROUP_MEMBERS: usize = 10_000;

/// A group as the hub defines it: users and computers under one name, which targets list
/// (`groups = ["finance"]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The form version ([`crate::model::FORM_VERSION`]) it was written in.
    #[serde(default)]
    pub form: u32,
    /// Its name: 1 to [`MAX_GROUP_NAME`] letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// What it is for, in the admin's words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Its member users, by login name.
    #[serde(default)]
    pub users: Vec<String>,
    /// Its member computers, by agent id.
    #[serde(default)]
    pub computers: Vec<String>,
    /// Who changed it last.
    #[serde(default)]
    pub updated_by: String,
    /// When (UTC, RFC 3339).
    #[serde(default)]
    pub updated_at: String,
}

/// Why a group cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadGroup {
    /// The field at fault.
    pub field: &'static str,
    /// What was expected.
    pub message: String,
}

impl Group {
    /// Checks what an admin (or the bus) says a group is: its name, and its members' names
    /// and number.
    pub fn check(&self) -> Result<(), BadGroup> {
        check_group_name(&self.name)?;
        let bad = |field, message: String| Err(BadGroup { field, message });
        if self.users.len() + self.computers.len() > MAX_GROUP_MEMBERS {
            return bad(
                "users",
                format!("a group has at most {MAX_GROUP_MEMBERS} members"),
            );
        }
        for (field, list) in [("users", &self.users), ("computers", &self.computers)] {
            if let Some(n) = list.iter().find(|n| {
                !(1..=256).contains(&n.chars().count()) || n.chars().any(char::is_control)
            }) {
                return bad(
                    field,
                    format!("{n:?}: a name is 1 to 256 characters, no control characters"),
                );
            }
        }
        if self.description.chars().count() > 1024 {
            return bad("description", "at most 1024 characters".into());
        }
        Ok(())
    }
}

/// Checks a group's name: 1 to [`MAX_GROUP_NAME`] ASCII letters, digits, `-`, `_` or `.`,
/// not starting or ending with `.`.
pub fn check_group_name(name: &str) -> Result<(), BadGroup> {
    let ok = (1..=MAX_GROUP_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(BadGroup {
            field: "name",
            message: format!(
                "{name:?}: a group's name is 1 to {MAX_GROUP_NAME} letters, digits, `-`, `_` or \
                 `.` (not first or last)"
            ),
        })
    }
}

/// The groups an agent knows, by name: whose member a user or a computer is.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    /// By folded name.
    groups: BTreeMap<String, Group>,
}

impl Groups {
    /// These groups (a later one of the same name wins).
    pub fn new(groups: impl IntoIterator<Item = Group>) -> Groups {
        let mut out = Groups::default();
        for g in groups {
            out.set(g);
        }
        out
    }

    /// Adds or replaces a group.
    pub fn set(&mut self, group: Group) {
        self.groups.insert(fold(&group.name), group);
    }

    /// Whether a group of this name is known.
    pub fn has(&self, name: &str) -> bool {
        self.groups.contains_key(&fold(name))
    }

    /// Removes the group `name`, if known.
    pub fn remove(&mut self, name: &str) {
        self.groups.remove(&fold(name));
    }

    /// Every group, by name.
    pub fn list(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The groups (folded names) computer `id` is a member of.
    pub fn of_computer(&self, id: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, g)| listed(&g.computers, id))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The groups (folded names) user `user` is a member of.
    pub fn of_user(&self, user: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, g)| listed(&g.users, user))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Where rules run: the computer as the fleet knows it, and the groups the hub defines — what
/// targets are judged against.
#[derive(Clone, Debug, Default)]
pub struct Place {
    /// The agent's id. `None`: the computer each event names (a back-test of a recording
    /// from many computers, or an agent outside a fleet).
    pub agent: Option<String>,
    /// The agent's tags.
    pub tags: BTreeMap<String, String>,
    /// The groups known.
    pub groups: Groups,
}

/// Someone at a computer, as targets judge them (see [`Place::person`]).
pub struct Person<'p> {
    id: &'p str,
    user: Option<&'p str>,
    tags: &'p BTreeMap<String, String>,
    computer_groups: BTreeSet<String>,
    user_groups: BTreeSet<String>,
}

impl Person<'_> {
    /// Whether they are in every one of `targets`.
    pub fn admits<'t>(&self, targets: impl IntoIterator<Item = &'t Targets>) -> bool {
        let c = Computer {
            id: self.id,
            tags: self.tags,
            groups: &self.computer_groups,
        };
        targets
            .into_iter()
            .all(|t| t.includes(&c, self.user, &self.user_groups))
    }
}

impl Place {
    /// Whether an event of `user` on `computer` (what the event names; the agent's id when
    /// known wins) is in every one of `targets`.
    pub fn admits<'t>(
        &self,
        targets: impl IntoIterator<Item = &'t Targets>,
        computer: &str,
        user: Option<&str>,
    ) -> bool {
        self.person(computer, user).admits(targets)
    }

    /// The person at the keyboard of `computer` (the agent's id when known wins), with the
    /// groups they and the computer are in, looked up once for every target asked of them.
    pub fn person<'p>(&'p self, computer: &'p str, user: Option<&'p str>) -> Person<'p> {
        let id = self.agent.as_deref().unwrap_or(computer);
        Person {
            id,
            user,
            tags: &self.tags,
            computer_groups: self.groups.of_computer(id),
            user_groups: user.map(|u| self.groups.of_user(u)).unwrap_or_default(),
        }
    }

    /// Whether something with `targets` may be for this agent at all (see [`Targets::reach`]);
    /// without an agent id, every computer may be.
    pub fn reach(&self, targets: &Targets) -> Reach {
        let Some(id) = self.agent.as_deref() else {
            return if targets.is_everyone() {
                Reach::Computer
            } else {
                Reach::SomeUsers
            };
        };
        let groups = self.groups.of_computer(id);
        targets.reach(&Computer {
            id,
            tags: &self.tags,
            groups: &groups,
        })
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

    #[test]
    fn a_place_judges_by_the_groups_of_the_user_and_the_computer() {
        let groups = Groups::new([
            Group {
                name: "Finance".into(),
                users: vec!["Ann".into()],
                computers: vec!["ws-fin".into()],
                ..Default::default()
            },
            Group {
                name: "kiosks".into(),
                computers: vec!["ws-kiosk".into()],
                ..Default::default()
            },
        ]);
        let finance = Targets {
            include: Audience {
                groups: vec!["finance".into()],
                ..Default::default()
            },
            exclude: Audience {
                groups: vec!["KIOSKS".into()],
                ..Default::default()
            },
        };
        let anywhere = Place {
            groups: groups.clone(),
            ..Default::default()
        };
        // Without an agent id, each event's computer is judged.
        assert!(anywhere.admits([&finance], "ws-dev", Some("ann")));
        assert!(anywhere.admits([&finance], "ws-fin", Some("bob")));
        assert!(!anywhere.admits([&finance], "ws-dev", Some("bob")));
        assert!(!anywhere.admits([&finance], "ws-kiosk", Some("ann")));
        // An agent's own id wins over what the event names.
        let kiosk = Place {
            agent: Some("ws-kiosk".into()),
            groups,
            ..Default::default()
        };
        assert!(!kiosk.admits([&finance], "ws-fin", Some("ann")));
        assert!(matches!(kiosk.reach(&finance), Reach::No(_)));
        assert_eq!(anywhere.reach(&finance), Reach::SomeUsers);
        // Every target must admit: a pack's and its alarm's.
        let only_ann = Targets {
            include: Audience {
                users: vec!["ann".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(anywhere.admits([&finance, &only_ann], "ws-dev", Some("ann")));
        assert!(!anywhere.admits([&finance, &only_ann], "ws-fin", Some("bob")));
    }

    #[test]
    fn a_group_s_name_is_a_bus_key_and_its_members_are_bounded() {
        assert!(check_group_name("finance-eu_2.paris").is_ok());
        for bad in [
            "",
            ".x",
            "x.",
            "fin ance",
            "fïnance",
            &"x".repeat(65),
            "a>b",
            "a*",
        ] {
            assert_eq!(
                check_group_name(bad).map_err(|e| e.field),
                Err("name"),
                "{bad:?}"
            );
        }
        let mut g = Group {
            name: "finance".into(),
            users: vec!["ann".into(), "bad\nname".into()],
            ..Default::default()
        };
        assert_eq!(g.check().map_err(|e| e.field), Err("users"));
        g.users = vec!["u".into(); MAX_GROUP_MEMBERS + 1];
        assert!(g.check().unwrap_err().message.contains("at most"));
        g.users.truncate(2);
        assert!(g.check().is_ok());
    }
}
