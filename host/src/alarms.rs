//! Alarms fresh from the rules: which loaded alarm (or program) fired, and its record.
//!
//! The record itself ([`AlarmRecord`]) is the ground floor's ([`crate::model::alarm`]); this
//! module builds it from a pack's alarm or a program's answer, with the pack's grants applied.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::event::{Event, Field};
use crate::model::alarm::{AlarmRecord, Fold, RefusedAction};
use crate::model::template::FiringContext;
use crate::packs::Pack;
use crate::rules::{AlarmDef, AlarmIndex, Escalated};

/// Which rule fired an alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A built-in alarm, by its index in the rule set.
    Builtin(AlarmIndex),
    /// A plugin or script, by its position in the rule set's programs.
    Program(usize),
}

/// An alarm fresh from the rules.
#[derive(Clone, Debug, Serialize)]
pub struct FiredAlarm {
    /// Which rule fired it.
    #[serde(skip)]
    pub source: Source,
    /// What fired.
    #[serde(flatten)]
    pub record: AlarmRecord,
}

impl FiredAlarm {
    /// Builds the record of `alarm` (number `index` of its rule set) from `pack` firing on
    /// `event` at `at`; a firing that reached an escalation step takes that step's risk and
    /// actions, and says so.
    pub fn new(
        index: AlarmIndex,
        pack: &Pack,
        alarm: &AlarmDef,
        event: &Event,
        at: DateTime<FixedOffset>,
        escalated: Option<Escalated>,
    ) -> Self {
        let step = escalated.map(|e| &alarm.escalate[e.step]);
        let risk = step.and_then(|s| s.risk).unwrap_or(alarm.risk);
        let specs = step
            .and_then(|s| s.actions.as_deref())
            .unwrap_or(&alarm.actions);
        let ctx = FiringContext {
            alarm: &alarm.name,
            pack: &pack.name,
            risk,
            event,
        };
        let actions = specs.iter().map(|a| a.plan(&ctx)).collect();
        FiredAlarm {
            source: Source::Builtin(index),
            record: AlarmRecord::of(
                (&pack.name, &pack.version.to_string()),
                alarm.name.clone(),
                risk,
                actions,
                escalated.map(|e| e.note(alarm)),
                event,
                at,
            ),
        }
    }

    /// Builds the record of alarm `a`, which plugin number `plugin` of the rule set (from
    /// `pack`) returned for `event`.
    pub fn from_program(
        program: usize,
        pack: &Pack,
        a: crate::rules::program::PluginAlarm,
        event: &Event,
    ) -> Self {
        // A program's answer is only known at run time: what its pack was not granted is
        // kept with the alarm, for the admin to see, and never performed.
        let (mut actions, mut refused) = (Vec::new(), Vec::new());
        for action in a.actions {
            match pack.grants.check(&action) {
                Ok(()) => actions.push(action),
                Err(reason) => {
                    tracing::warn!(pack = %pack.name, alarm = %a.alarm, "action refused: {reason}");
                    refused.push(RefusedAction { action, reason });
                }
            }
        }
        let mut record = AlarmRecord::of(
            (&pack.name, &pack.version.to_string()),
            a.alarm,
            a.risk,
            actions,
            a.note,
            event,
            event.ts(),
        );
        record.refused = refused;
        FiredAlarm {
            source: Source::Program(program),
            record,
        }
    }
}

/// The match of `alarm` (of `pack`) on `event`, folded into its firing at `into`.
pub fn fold_of(pack: &Pack, alarm: &AlarmDef, event: &Event, into: DateTime<FixedOffset>) -> Fold {
    Fold {
        pack: pack.name.clone(),
        alarm: alarm.name.clone(),
        user: event.user().map(str::to_string),
        computer: event.text(Field::Computer).map(str::to_string),
        into,
        bytes: event.number(Field::Bytes).map(|b| b as u64),
        path: event.text(Field::Path).map(str::to_string),
    }
}
