//! Alarms as every stage after the rules sees them: the record of what fired, what its cooldown
//! folded into it, and what became of its actions.
//!
//! An [`AlarmRecord`] is self-contained (names, not indices; the event as it was; the actions
//! with their templates filled) because it outlives the rules that produced it: it is stored,
//! shown in the console, acted on after a pack may have changed, and (with the fleet) sent to a
//! hub that never loaded the pack at all.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::action::PlannedAction;
use crate::event::{Event, EventKind, Field};

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

/// An alarm as stored: the record, and where and when it was written.
#[derive(Debug, Serialize)]
pub struct StoredAlarm {
    /// Row id.
    pub id: i64,
    /// What fired.
    #[serde(flatten)]
    pub record: AlarmRecord,
    /// Where it came from: `live` or `replay:<file>`.
    pub origin: String,
    /// When it was written (UTC).
    pub recorded_at: String,
    /// What became of the actions vigilo performs (in the alarm's order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<ActionOutcome>,
    /// Matches its cooldown folded into it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<Folded>,
}

/// What an action came to, as `vigilo alarms` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome {
    /// Its place in the alarm's list of actions.
    pub position: usize,
    /// The action's name.
    pub kind: String,
    /// Where it stands.
    pub state: ActionState,
    /// Attempts made.
    pub attempts: u32,
    /// The last outcome, for people.
    pub detail: Option<String>,
}

/// Where an action stands, as the outbox's `state` column and the API spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Waiting for its first attempt, its next retry, or the next step of a series.
    Pending,
    /// Performed.
    Done,
    /// Performed in part: a series of screenshots stopped early (the person moved on).
    Partial,
    /// Given up: failed for good, or as often as the retries allow.
    Dead,
    /// Not performed: over the rate limit of this action for this alarm and user.
    Limited,
    /// Not performed: not for this desktop (a setup change made elsewhere).
    Skipped,
    /// A state this release does not know (written by a newer one).
    #[serde(other)]
    Unknown,
}

impl ActionState {
    /// Its name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Pending => "pending",
            ActionState::Done => "done",
            ActionState::Partial => "partial",
            ActionState::Dead => "dead",
            ActionState::Limited => "limited",
            ActionState::Skipped => "skipped",
            ActionState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ActionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `screenshot×3, popup, webhook✓` from a list of planned actions and what became of those
/// performed.
pub fn action_labels(actions: &[PlannedAction], outcomes: &[ActionOutcome]) -> String {
    let labels: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let label = match a {
                PlannedAction::Screenshot { count, .. } if *count > 1 => {
                    format!("{}×{count}", a.name())
                }
                _ => a.name().to_string(),
            };
            let mark = match outcomes.iter().find(|o| o.position == i).map(|o| o.state) {
                Some(ActionState::Done) => "✓",
                Some(ActionState::Pending) => "…",
                Some(ActionState::Dead) => "✗",
                Some(ActionState::Limited) => "⊘",
                Some(ActionState::Skipped) => " skipped",
                Some(ActionState::Partial) => "◐",
                Some(ActionState::Unknown) | None => "",
            };
            format!("{label}{mark}")
        })
        .collect();
    if labels.is_empty() {
        "-".into()
    } else {
        labels.join(", ")
    }
}

impl AlarmRecord {
    /// The record of alarm `alarm` of `pack` (at `pack_version`) firing on `event` at `at`,
    /// with the actions it plans and, from a plugin or script, why it fired.
    pub fn of(
        (pack, pack_version): (&str, &str),
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
            pack: pack.to_string(),
            pack_version: pack_version.to_string(),
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

    /// The record's form is what the store keeps and (with the fleet) what a hub reads: a
    /// change here is a change of [`super::super::FORM_VERSION`] or a field with a default.
    #[test]
    fn a_record_has_a_pinned_serde_form_that_reads_back() {
        let ts = DateTime::parse_from_rfc3339("2026-11-02T10:00:00+01:00").expect("ts");
        let event = Event::new(EventKind::Usb, ts)
            .with_text(Field::Username, "dave")
            .with_text(Field::Action, "inserted");
        let mut record = AlarmRecord::of(
            ("std", "1.0.0"),
            "USB storage".into(),
            6,
            vec![PlannedAction::Webhook {
                url: "https://siem.example/h".into(),
            }],
            Some("new device".into()),
            &event,
            ts,
        );
        record.refused = vec![RefusedAction {
            action: PlannedAction::Popup {
                title: "t".into(),
                message: "m".into(),
            },
            reason: "popup is not granted".into(),
        }];
        let json = serde_json::to_string(&record).expect("json");
        assert_eq!(
            json,
            r#"{"fired_at":"2026-11-02T09:00:00.000Z","alarm":"USB storage","pack":"std","pack_version":"1.0.0","risk":6,"user":"dave","computer":null,"summary":"inserted","actions":[{"webhook":{"url":"https://siem.example/h"}}],"event":{"ts":"2026-11-02T10:00:00+01:00","kind":"usb","username":"dave","action":"inserted"},"note":"new device","refused":[{"action":{"popup":{"title":"t","message":"m"}},"reason":"popup is not granted"}]}"#
        );
        let back: AlarmRecord = serde_json::from_str(&json).expect("reads back");
        assert_eq!(serde_json::to_string(&back).expect("json"), json);
    }

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
