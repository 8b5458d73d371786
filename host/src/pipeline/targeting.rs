//! Which loaded rules are for an event: a pack's `[targets]` and an alarm's `applies_to` name
//! people and computers, and a rule outside them is not evaluated for that event at all — its
//! plugin is not called, its alarm not matched (a match kept from firing would still be work,
//! and a cooldown or an escalation must not count it).
//!
//! What decides is the person at the keyboard (the event's user, and the groups the hub says
//! they are in) and the computer ([`Place`]: the agent's id, tags and groups). The answer for
//! one (computer, user) is the same for every event of theirs, so it is worked out once and
//! kept; a rule set where every rule is for everyone asks nothing at all.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{Event, Field};
use crate::model::targets::{Place, Targets};
use crate::rule_set::RuleSet;
use crate::rules::AlarmIndex;

/// Answers kept before they are all forgotten (one per computer and user seen).
const KEPT: usize = 4096;

/// For one (computer, user): which alarms and which packs' programs are for them.
struct Verdicts {
    alarms: Vec<bool>,
    packs: Vec<bool>,
}

/// The targets of a rule set, judged at one [`Place`].
pub(super) struct Targeting {
    place: Arc<Place>,
    /// Per alarm, the targets it must be in: its pack's, then its own.
    alarms: Vec<Vec<Targets>>,
    /// Per pack (in rule-set order), its targets.
    packs: Vec<Targets>,
    /// Whether any rule has targets; if none, nothing is asked.
    any: bool,
    /// Answers by `computer \0 user`.
    kept: HashMap<String, Verdicts>,
    key: String,
}

impl Targeting {
    /// The targets of `rules`, judged at `place`.
    pub fn new(rules: &RuleSet, place: Arc<Place>) -> Targeting {
        let packs: Vec<Targets> = rules.packs().iter().map(|p| p.targets.clone()).collect();
        let alarms: Vec<Vec<Targets>> = rules
            .alarms()
            .map(|(pack, alarm)| {
                [Some(&pack.targets), alarm.applies_to.as_ref()]
                    .into_iter()
                    .flatten()
                    .filter(|t| !t.is_everyone())
                    .cloned()
                    .collect()
            })
            .collect();
        let any = packs.iter().any(|t| !t.is_everyone()) || alarms.iter().any(|t| !t.is_empty());
        Targeting {
            place,
            alarms,
            packs,
            any,
            kept: HashMap::new(),
            key: String::new(),
        }
    }

    /// Where the rules are judged.
    pub fn place(&self) -> &Arc<Place> {
        &self.place
    }

    /// The answers for `event`'s computer and user; `None`: every rule is for everyone.
    fn verdicts(&mut self, event: &Event) -> Option<&Verdicts> {
        if !self.any {
            return None;
        }
        let computer = event.text(Field::Computer).unwrap_or_default();
        let user = event.user();
        self.key.clear();
        self.key.push_str(computer);
        self.key.push('\0');
        self.key.push_str(user.unwrap_or_default());
        if !self.kept.contains_key(self.key.as_str()) {
            if self.kept.len() >= KEPT {
                self.kept.clear();
            }
            // The groups of this person and computer, looked up once for all the rules.
            let person = self.place.person(computer, user);
            let verdicts = Verdicts {
                alarms: self
                    .alarms
                    .iter()
                    .map(|t| t.is_empty() || person.admits(t))
                    .collect(),
                packs: self
                    .packs
                    .iter()
                    .map(|t| t.is_everyone() || person.admits([t]))
                    .collect(),
            };
            self.kept.insert(self.key.clone(), verdicts);
        }
        self.kept.get(self.key.as_str())
    }

    /// Keeps in `hits` only the alarms that are for `event`.
    pub fn keep_for(&mut self, event: &Event, hits: &mut Vec<AlarmIndex>) {
        if hits.is_empty() {
            return;
        }
        if let Some(v) = self.verdicts(event) {
            hits.retain(|&id| v.alarms[id as usize]);
        }
    }

    /// Whether the programs of pack number `pack` are for `event`.
    pub fn pack_is_for(&mut self, pack: usize, event: &Event) -> bool {
        self.verdicts(event).is_none_or(|v| v.packs[pack])
    }
}
