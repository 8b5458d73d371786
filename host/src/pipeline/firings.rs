//! Where a pipeline's firings go: records built for what is stored, shown or acted on
//! (`Vec<FiredAlarm>`), or only counted ([`Counts`]), for a back-test that prints how often each
//! alarm would fire and has no use for a million records it would throw away.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::alarms::FiredAlarm;
use crate::event::Event;
use crate::packs::Pack;
use crate::rule_set::RuleSet;
use crate::rules::program::PluginAlarm;
use crate::rules::{AlarmIndex, Escalated};

/// Receives each firing the pipeline decides on.
pub trait Firings {
    /// Built-in alarm `id` of `rules` fired on `event` at `at`, at a step of its escalation
    /// or not.
    fn builtin(
        &mut self,
        rules: &RuleSet,
        id: AlarmIndex,
        event: &Event,
        at: DateTime<FixedOffset>,
        escalated: Option<Escalated>,
    );

    /// Program number `program` (of `pack`) returned `alarm` for `event`.
    fn program(&mut self, program: usize, pack: &Pack, alarm: PluginAlarm, event: &Event);
}

/// Every firing as its record, grants applied.
impl Firings for Vec<FiredAlarm> {
    fn builtin(
        &mut self,
        rules: &RuleSet,
        id: AlarmIndex,
        event: &Event,
        at: DateTime<FixedOffset>,
        escalated: Option<Escalated>,
    ) {
        let (pack, alarm) = rules.alarm(id);
        self.push(FiredAlarm::new(id, pack, alarm, event, at, escalated));
    }

    fn program(&mut self, program: usize, pack: &Pack, alarm: PluginAlarm, event: &Event) {
        self.push(FiredAlarm::from_program(program, pack, alarm, event));
    }
}

/// How often each alarm fired, and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Per built-in alarm, by its index in the rule set.
    pub builtin: Vec<u64>,
    /// Per program alarm, by `pack:alarm` (programs name their alarms as they run).
    pub programs: BTreeMap<String, u64>,
    /// Every firing.
    pub total: u64,
}

impl Counts {
    /// Zero for each alarm of `rules`.
    pub fn for_rules(rules: &RuleSet) -> Counts {
        Counts {
            builtin: vec![0; rules.alarms().count()],
            ..Counts::default()
        }
    }

    /// Adds `other`'s counts (of the same rules) to these: shards' counts summed.
    pub fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.builtin.iter_mut().zip(&other.builtin) {
            *mine += theirs;
        }
        for (name, n) in &other.programs {
            *self.programs.entry(name.clone()).or_default() += n;
        }
        self.total += other.total;
    }

    /// Counts one fired alarm, as [`Firings`] would have.
    pub fn count(&mut self, fired: &FiredAlarm) {
        match fired.source {
            crate::alarms::Source::Builtin(id) => self.add_builtin(id),
            crate::alarms::Source::Program(_) => {
                self.add_program(&fired.record.pack, &fired.record.alarm)
            }
        }
    }

    fn add_builtin(&mut self, id: AlarmIndex) {
        self.builtin[id as usize] += 1;
        self.total += 1;
    }

    /// Programs name their alarms as they run: counted as `pack:alarm`.
    fn add_program(&mut self, pack: &str, alarm: &str) {
        *self.programs.entry(format!("{pack}:{alarm}")).or_default() += 1;
        self.total += 1;
    }
}

impl Firings for Counts {
    fn builtin(
        &mut self,
        _: &RuleSet,
        id: AlarmIndex,
        _: &Event,
        _: DateTime<FixedOffset>,
        _: Option<Escalated>,
    ) {
        self.add_builtin(id);
    }

    fn program(&mut self, _: usize, pack: &Pack, alarm: PluginAlarm, _: &Event) {
        // Counted as a record would be: actions outside the grants are refused, the alarm is not.
        self.add_program(&pack.name, &alarm.alarm);
    }
}
