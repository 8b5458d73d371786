//! A built-in alarm as loaded from a pack: when it matches, how often it may fire, what it asks
//! for.

use std::time::Duration;

use crate::event::{Event, KindSet};
use crate::model::action::ActionSpec;

use super::Condition;

/// How often an alarm may fire for one activity span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Repeat {
    /// Once per span (the same window, title and URL for the same user): the default, so that
    /// "duration > 1200" fires when the span crosses 20 minutes and not on every tick after.
    #[default]
    OncePerSpan,
    /// Every time the conditions hold on an evaluation (each event and each duration threshold).
    EveryMatch,
}

impl Repeat {
    /// The names packs use.
    pub const NAMES: [&'static str; 2] = ["once_per_span", "every_match"];

    /// Parses a pack's `repeat` value.
    pub fn from_name(name: &str) -> Option<Repeat> {
        match name {
            "once_per_span" => Some(Repeat::OncePerSpan),
            "every_match" => Some(Repeat::EveryMatch),
            _ => None,
        }
    }
}

/// One alarm of a pack, validated.
#[derive(Clone, Debug)]
pub struct AlarmDef {
    /// Unique within its pack; what users see.
    pub name: String,
    /// Optional longer explanation.
    pub description: Option<String>,
    /// The kinds of event the alarm can match: its declared `kind` narrowed by what its
    /// conditions can see.
    pub kinds: KindSet,
    /// The conditions, as one group.
    pub when: Condition,
    /// Exceptions: when any of these holds, the alarm does not fire.
    pub unless: Vec<Condition>,
    /// Risk level 1–10.
    pub risk: u8,
    /// What to do when it fires.
    pub actions: Vec<ActionSpec>,
    /// Once per span, or on every match.
    pub repeat: Repeat,
    /// Minimum time between two firings for the same user, if set.
    pub cooldown: Option<Duration>,
    /// When it may fire (`active` or `outside`), on the event's time; always when `None`.
    pub schedule: Option<super::schedule::Schedule>,
    /// Whom it is for (`applies_to`), within its pack's `[targets]`; everyone when `None`.
    pub applies_to: Option<crate::model::targets::Targets>,
    /// What happens when it keeps firing for one user (`escalate`), by `after`, ascending.
    pub escalate: Vec<Escalation>,
}

/// One step of an alarm's escalation: from its `after`-th firing for one user within `within`,
/// the alarm fires with this risk and these actions instead of its own (warn first, end the
/// application later).
#[derive(Clone, Debug)]
pub struct Escalation {
    /// The firing (counting this one) from which the step applies: 2 or more.
    pub after: u32,
    /// The window the firings are counted in, back from this one.
    pub within: Duration,
    /// The risk from this step on (the alarm's when `None`).
    pub risk: Option<u8>,
    /// The actions from this step on (the alarm's when `None`).
    pub actions: Option<Vec<ActionSpec>>,
}

/// A firing that reached a step of its alarm's escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escalated {
    /// The step, by its place in the alarm's `escalate`.
    pub step: usize,
    /// How many times it fired within the step's window, this time included.
    pub count: u32,
    /// Whether it may have fired more often: only the last [`Escalated::REMEMBERED`] firings
    /// per person are remembered.
    pub at_least: bool,
}

impl Escalated {
    /// Firings remembered per alarm and person, at most (more than any step's `after`).
    pub const REMEMBERED: usize = 1000;

    /// What the alarm says of it: `3rd time in 1h: escalated`.
    pub fn note(&self, alarm: &AlarmDef) -> String {
        let within = humantime::format_duration(alarm.escalate[self.step].within);
        if self.at_least {
            format!("{} times or more in {within}: escalated", self.count)
        } else {
            format!("{} time in {within}: escalated", ordinal(self.count))
        }
    }
}

/// A count as an ordinal: `1st`, `2nd`, `3rd`, `11th`.
pub fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl AlarmDef {
    /// The reference meaning of an alarm: kind, conditions, exceptions, then its schedule.
    pub fn matches(&self, event: &Event) -> bool {
        self.kinds.contains(event.kind())
            && self.when.matches(event)
            && !self.unless.iter().any(|c| c.matches(event))
            && self.on_schedule(event)
    }

    /// Every action it may ask for: its own and its escalation steps'.
    pub fn all_actions(&self) -> impl Iterator<Item = &ActionSpec> {
        self.actions.iter().chain(
            self.escalate
                .iter()
                .flat_map(|s| s.actions.iter().flatten()),
        )
    }

    /// Whether the event's time is in the alarm's schedule (always, without one).
    pub fn on_schedule(&self, event: &Event) -> bool {
        self.schedule.as_ref().is_none_or(|s| s.admits(event.ts()))
    }
}
