//! Triggered alarms: what fired, for whom, when, on which event, and the actions it plans.
//!
//! An [`AlarmRecord`] is self-contained (names, not indices; the event as it was; the actions
//! with their templates filled) because it outlives the rules that produced it: it is stored,
//! shown in the console and acted on after a pack may have changed. A [`FiredAlarm`] is a record
//! fresh from the rules, still knowing which loaded alarm produced it.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::actions::{FiringContext, PlannedAction};
use crate::event::{Event, EventKind, Field};
use crate::packs::Pack;
use crate::rules::{AlarmDef, AlarmIndex};

/// An alarm that fired, as it is stored and shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// When it fired (for a duration alarm: when the span crossed the threshold).
    #[serde(with = "utc")]
    pub fired_at: DateTime<FixedOffset>,
    /// The alarm's name.
    pub alarm: String,
    /// The pack it belongs to.
    pub pack: String,
    /// That pack's version.
    pub pack_version: String,
    /// Risk level 1–10.
    pub risk: u8,
    /// Who: `username`, or the `actor` of an account event.
    pub user: Option<String>,
    /// Which computer.
    pub computer: Option<String>,
    /// A one-line description of the event, for tables and notifications.
    pub summary: String,
    /// What the alarm asks for, templates filled.
    pub actions: Vec<PlannedAction>,
    /// The event as it was when the alarm fired (its `duration` at that moment).
    pub event: Event,
    /// Why it fired, when a plugin said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Actions a plugin or script asked for beyond its pack's grants: recorded, not performed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedAction>,
}

/// An action refused by the pack's grants, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedAction {
    /// What was asked for.
    pub action: PlannedAction,
    /// Which grant it is outside.
    pub reason: String,
}

/// A match an alarm's cooldown kept from firing again, folded into the alarm that did fire: so
/// that "2 alarms" for 16 files copied to a stick still says 14 more were copied, and how much.
#[derive(Clone, Debug, PartialEq)]
pub struct Fold {
    /// The alarm's pack.
    pub pack: String,
    /// The alarm's name.
    pub alarm: String,
    /// Whose (as the alarm's record says).
    pub user: Option<String>,
    /// Which computer.
    pub computer: Option<String>,
    /// When the alarm folded into fired.
    pub into: DateTime<FixedOffset>,
    /// The folded event's `bytes`, for file writes.
    pub bytes: Option<u64>,
    /// The folded event's `path`, for file writes.
    pub path: Option<String>,
}

impl Fold {
    /// The match of `alarm` (of `pack`) on `event`, folded into its firing at `into`.
    pub fn of(pack: &Pack, alarm: &AlarmDef, event: &Event, into: DateTime<FixedOffset>) -> Fold {
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
}

/// What a stored alarm had folded into it: how many more matches, their bytes, their first
/// paths.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Folded {
    /// Matches folded in.
    pub count: u64,
    /// Their `bytes` together (file writes).
    pub bytes: u64,
    /// Their paths, the first [`Folded::PATHS_KEPT`].
    pub paths: Vec<String>,
}

impl Folded {
    /// Paths kept per alarm; the count and bytes cover every folded match.
    pub const PATHS_KEPT: usize = 20;

    /// `+14 more files, 640 MB` (or `+3 more` when no file was written).
    pub fn label(&self) -> String {
        if self.bytes > 0 || !self.paths.is_empty() {
            let files = if self.count == 1 { "file" } else { "files" };
            format!("+{} more {files}, {}", self.count, human_bytes(self.bytes))
        } else {
            format!("+{} more", self.count)
        }
    }
}

/// Bytes as people read them: `640 MB`, `1.5 GB`, `12 KB` (powers of 1000, as file managers
/// show sizes).
pub fn human_bytes(n: u64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if value < 10.0 {
        format!("{value:.1} {}", units[unit])
    } else {
        format!("{value:.0} {}", units[unit])
    }
}

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

/// Timestamps in records: UTC with milliseconds, the store's sortable form.
mod utc {
    use chrono::{DateTime, FixedOffset};
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(
        ts: &DateTime<FixedOffset>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::event::Event::utc_string(*ts))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<DateTime<FixedOffset>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

impl FiredAlarm {
    /// Builds the record of `alarm` (number `index` of its rule set) from `pack` firing on
    /// `event` at `at`.
    pub fn new(
        index: AlarmIndex,
        pack: &Pack,
        alarm: &AlarmDef,
        event: &Event,
        at: DateTime<FixedOffset>,
    ) -> Self {
        let ctx = FiringContext {
            alarm: &alarm.name,
            pack: &pack.name,
            risk: alarm.risk,
            event,
        };
        let actions = alarm.actions.iter().map(|a| a.plan(&ctx)).collect();
        FiredAlarm {
            source: Source::Builtin(index),
            record: AlarmRecord::of(
                pack,
                alarm.name.clone(),
                alarm.risk,
                actions,
                None,
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
        let mut record = AlarmRecord::of(pack, a.alarm, a.risk, actions, a.note, event, event.ts());
        record.refused = refused;
        FiredAlarm {
            source: Source::Program(program),
            record,
        }
    }
}

impl AlarmRecord {
    /// The record of alarm `alarm` of `pack` firing on `event` at `at`.
    fn of(
        pack: &Pack,
        alarm: String,
        risk: u8,
        actions: Vec<PlannedAction>,
        note: Option<String>,
        event: &Event,
        at: DateTime<FixedOffset>,
    ) -> AlarmRecord {
        AlarmRecord {
            fired_at: at,
            alarm,
            pack: pack.name.clone(),
            pack_version: pack.version.to_string(),
            risk,
            user: event.user().map(str::to_string),
            computer: event.text(Field::Computer).map(str::to_string),
            summary: summary(event),
            actions,
            event: event.clone(),
            note,
            refused: Vec::new(),
        }
    }
}

/// A one-line description of what happened, from the fields that matter for the event's kind.
pub fn summary(event: &Event) -> String {
    let t = |f| event.text(f).unwrap_or("");
    let parts: Vec<String> = match event.kind() {
        EventKind::Activity => {
            let exe = t(Field::Executable);
            let app = exe.rsplit(['/', '\\']).next().unwrap_or(exe);
            let place = match event.text(Field::PrimaryDomain) {
                Some(d) => d.to_string(),
                None => app.to_string(),
            };
            let minutes = event
                .number(Field::Duration)
                .filter(|d| *d > 0.0)
                .map(|d| format!("{}m{:02}s", (d / 60.0) as u64, (d % 60.0) as u64));
            vec![place, format!("\"{}\"", t(Field::Title))]
                .into_iter()
                .chain(minutes)
                .collect()
        }
        EventKind::Usb => {
            let mut v = vec![
                t(Field::Action).to_string(),
                format!("{} {}", t(Field::Vendor), t(Field::Product))
                    .trim()
                    .to_string(),
            ];
            if let Some(p) = event.text(Field::Path) {
                v.push(p.to_string());
            }
            if let Some(b) = event.number(Field::Bytes) {
                v.push(format!("{} bytes", b as u64));
            }
            v
        }
        EventKind::Account => vec![
            t(Field::EventName).to_string(),
            t(Field::ActionObject).to_string(),
        ],
    };
    parts
        .into_iter()
        .filter(|p| !p.is_empty() && p != "\"\"")
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_what_matters_per_kind() {
        let ts = DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        let a = Event::new(EventKind::Activity, ts)
            .with_text(Field::Executable, "/usr/lib/chromium/chromium")
            .with_text(Field::Title, "Cats - YouTube")
            .with_text(Field::PrimaryDomain, "youtube.com")
            .with_number(Field::Duration, 1261.0);
        assert_eq!(summary(&a), "youtube.com \"Cats - YouTube\" 21m01s");
        let u = Event::new(EventKind::Usb, ts)
            .with_text(Field::Action, "file_written")
            .with_text(Field::Vendor, "SanDisk")
            .with_text(Field::Path, "/media/x/a.pdf")
            .with_number(Field::Bytes, 10.0);
        assert_eq!(summary(&u), "file_written SanDisk /media/x/a.pdf 10 bytes");
        let c = Event::new(EventKind::Account, ts).with_text(Field::EventName, "pack_uploaded");
        assert_eq!(summary(&c), "pack_uploaded");
    }
}

#[cfg(test)]
mod folded_tests {
    use super::*;

    #[test]
    fn folded_matches_read_in_peoples_units() {
        let files = Folded {
            count: 14,
            bytes: 640_200_000,
            paths: vec!["/media/dave/S/payroll.xlsx".into()],
        };
        assert_eq!(files.label(), "+14 more files, 640 MB");
        let one = Folded {
            count: 1,
            bytes: 1_500,
            paths: vec!["/m/a".into()],
        };
        assert_eq!(one.label(), "+1 more file, 1.5 KB");
        let plain = Folded {
            count: 3,
            ..Folded::default()
        };
        assert_eq!(plain.label(), "+3 more");
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
    }
}
