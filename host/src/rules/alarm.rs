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
}

impl AlarmDef {
    /// The reference meaning of an alarm: kind, conditions, exceptions, then its schedule.
    pub fn matches(&self, event: &Event) -> bool {
        self.kinds.contains(event.kind())
            && self.when.matches(event)
            && !self.unless.iter().any(|c| c.matches(event))
            && self.on_schedule(event)
    }

    /// Whether the event's time is in the alarm's schedule (always, without one).
    pub fn on_schedule(&self, event: &Event) -> bool {
        self.schedule.as_ref().is_none_or(|s| s.admits(event.ts()))
    }
}
