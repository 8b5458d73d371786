//! Events: what every source produces and every later stage reads.
//!
//! An [`Event`] has a timestamp, a [`EventKind`] and any subset of the [`Field`]s its kind
//! carries; every field may be absent. Text values live in one buffer per event and numbers in
//! fixed slots, so building, cloning and reading an event costs one allocation, not one per field.

mod field;
mod jsonl;

pub use field::{EventKind, FIELD_COUNT, Field, FieldSet, FieldType, KindSet, USB_ACTIONS};
pub use jsonl::{LineError, parse_line};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// The value of one field of an event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// A text field's value.
    Text(&'a str),
    /// A numeric field's value.
    Number(f64),
}

/// One field's value in 8 bytes: a text field's `start << 32 | end` in the event's text buffer,
/// or a numeric field's `f64` bits. Which one is known from the field's type; `ABSENT` (a NaN
/// pattern no validated number has) marks a missing field. Keeping slots this small halves the
/// size of an event, which is most of what evaluation reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot(u64);

impl Slot {
    const ABSENT: Slot = Slot(u64::MAX);

    fn text(start: u32, end: u32) -> Slot {
        Slot(u64::from(start) << 32 | u64::from(end))
    }

    fn number(n: f64) -> Slot {
        Slot(n.to_bits())
    }

    fn range(self) -> std::ops::Range<usize> {
        (self.0 >> 32) as usize..(self.0 & 0xffff_ffff) as usize
    }
}

/// One observation from a source: at `ts`, something of `kind` happened, described by fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    ts: DateTime<FixedOffset>,
    kind: EventKind,
    text: String,
    slots: [Slot; FIELD_COUNT],
}

impl Event {
    /// An event with no fields yet.
    pub fn new(kind: EventKind, ts: DateTime<FixedOffset>) -> Event {
        Event {
            ts,
            kind,
            text: String::new(),
            slots: [Slot::ABSENT; FIELD_COUNT],
        }
    }

    /// When it happened (for an activity event: when the window gained focus).
    pub fn ts(&self) -> DateTime<FixedOffset> {
        self.ts
    }

    /// Moves the event in time.
    pub fn set_ts(&mut self, ts: DateTime<FixedOffset>) {
        self.ts = ts;
    }

    /// What kind of event this is.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Sets a text field. Text given for a numeric field is ignored: callers validate first.
    pub fn set_text(&mut self, field: Field, value: &str) {
        if field.field_type() != FieldType::Text {
            debug_assert!(false, "{field} is not a text field");
            return;
        }
        // An event's text is capped at 4 GiB (slots hold 32-bit offsets); the JSONL reader caps
        // lines far below that. Past the cap the field stays unset rather than wrong.
        let start = self.text.len();
        let (Ok(start32), Ok(end32)) = (u32::try_from(start), u32::try_from(start + value.len()))
        else {
            return;
        };
        self.text.push_str(value);
        self.slots[field.index()] = Slot::text(start32, end32);
    }

    /// Sets a numeric field. A number given for a text field, or a value that is not finite
    /// (which JSON cannot carry), is ignored: callers validate first.
    pub fn set_number(&mut self, field: Field, value: f64) {
        if field.field_type() != FieldType::Number || !value.is_finite() {
            debug_assert!(false, "{field} = {value} is not a finite numeric field");
            return;
        }
        self.slots[field.index()] = Slot::number(value);
    }

    /// Removes a field (its text, if any, stays in the buffer until the event is dropped).
    pub fn remove(&mut self, field: Field) {
        self.slots[field.index()] = Slot::ABSENT;
    }

    /// Builder form of [`Event::set_text`].
    pub fn with_text(mut self, field: Field, value: &str) -> Event {
        self.set_text(field, value);
        self
    }

    /// Builder form of [`Event::set_number`].
    pub fn with_number(mut self, field: Field, value: f64) -> Event {
        self.set_number(field, value);
        self
    }

    /// Whether the event carries `field`.
    pub fn has(&self, field: Field) -> bool {
        self.slots[field.index()] != Slot::ABSENT
    }

    /// The value of a text field, if present.
    pub fn text(&self, field: Field) -> Option<&str> {
        let slot = self.slots[field.index()];
        if slot == Slot::ABSENT || field.field_type() != FieldType::Text {
            return None;
        }
        self.text.get(slot.range())
    }

    /// The value of a numeric field, if present.
    pub fn number(&self, field: Field) -> Option<f64> {
        let slot = self.slots[field.index()];
        if slot == Slot::ABSENT || field.field_type() != FieldType::Number {
            return None;
        }
        Some(f64::from_bits(slot.0))
    }

    /// The value of any field, if present.
    pub fn value(&self, field: Field) -> Option<FieldValue<'_>> {
        match field.field_type() {
            FieldType::Text => self.text(field).map(FieldValue::Text),
            FieldType::Number => self.number(field).map(FieldValue::Number),
        }
    }

    /// The fields present, in canonical order, with their values.
    pub fn fields(&self) -> impl Iterator<Item = (Field, FieldValue<'_>)> {
        Field::ALL
            .iter()
            .filter_map(|f| self.value(*f).map(|v| (*f, v)))
    }

    /// The person the event is about: `username`, or the `actor` of an account event.
    pub fn user(&self) -> Option<&str> {
        self.text(Field::Username)
            .or_else(|| self.text(Field::Actor))
    }

    /// One end of a time range as people type it, the same rule for every command, the API and
    /// the console: an RFC 3339 time is that instant; a day (`2026-11-02`, `today`,
    /// `yesterday`, in UTC) is included whole — from its start, through its end (so
    /// `--since D --until D` is that day); a span back from `now` (`24h`, `7d`, `90m`, `2w`) or
    /// `now` itself is that instant for either end. The error lists the forms.
    pub fn parse_bound(
        text: &str,
        end: Bound,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, String> {
        let text = text.trim();
        if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
            check_range(ts).map_err(|e| format!("{text:?}: {e}"))?;
            return Ok(ts.with_timezone(&Utc));
        }
        let today = now.date_naive();
        let day = match text {
            "today" => Some(today),
            "yesterday" => today.pred_opt(),
            _ => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
        };
        if let Some(day) = day {
            let day = match end {
                Bound::Start => Some(day),
                Bound::End => day.succ_opt(),
            };
            let start = day
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc());
            let start = start.ok_or_else(|| format!("{text:?}: no such day"))?;
            check_range(start.fixed_offset()).map_err(|e| format!("{text:?}: {e}"))?;
            return Ok(start);
        }
        if text == "now" {
            return Ok(now);
        }
        if let Ok(back) = humantime::parse_duration(text)
            && let Ok(back) = chrono::Duration::from_std(back)
            && let Some(at) = now.checked_sub_signed(back)
        {
            check_range(at.fixed_offset()).map_err(|e| format!("{text:?}: {e}"))?;
            return Ok(at);
        }
        Err(format!(
            "{text:?} is not a time: use RFC 3339 (2026-11-02T09:00:00Z), a day (2026-11-02, \
             today, yesterday: included whole), or a span back from now (24h, 7d, 90m)"
        ))
    }

    /// `ts` normalised to UTC with millisecond precision: sorts as text in time order, which is
    /// why the store keeps timestamps in this form.
    pub fn utc_string(ts: DateTime<FixedOffset>) -> String {
        ts.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The event as one line of JSON (no trailing newline), fields in canonical order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Which end of a range a time typed by a person is for: a day starts a range at its start and
/// ends one at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// `--since`, `from`.
    Start,
    /// `--until`, `through`.
    End,
}

/// The earliest time an event may have: the Unix epoch. Nothing earlier was recorded by a
/// computer of today, and far-off years break what reads the times back.
pub const EARLIEST_YEAR: i32 = 1970;
/// The last year an event may have (UTC). `9999-12-31T23:59:59-23:59` is year 10000 in UTC, which
/// RFC 3339 text cannot hold: a stored alarm with it could not be read back.
pub const LATEST_YEAR: i32 = 2999;

/// `Err` for a time outside [`EARLIEST_YEAR`]..=[`LATEST_YEAR`] once in UTC.
pub fn check_range(ts: DateTime<FixedOffset>) -> Result<(), String> {
    use chrono::Datelike;
    let year = ts.with_timezone(&Utc).year();
    if (EARLIEST_YEAR..=LATEST_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(format!(
            "year {year} in UTC; times must fall in {EARLIEST_YEAR}–{LATEST_YEAR}"
        ))
    }
}

/// Formats a number the way it was most likely written: integers without a fractional part.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("ts", &self.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true))?;
        map.serialize_entry("kind", self.kind.name())?;
        for (field, value) in self.fields() {
            match value {
                FieldValue::Text(t) => map.serialize_entry(field.name(), t)?,
                FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                    map.serialize_entry(field.name(), &(n as i64))?
                }
                FieldValue::Number(n) => map.serialize_entry(field.name(), &n)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).expect("test timestamp")
    }

    #[test]
    fn fields_are_absent_until_set() {
        let e = Event::new(EventKind::Activity, ts("2026-11-02T09:00:00Z"))
            .with_text(Field::Url, "https://youtube.com/watch")
            .with_number(Field::Duration, 1201.0);
        assert_eq!(e.text(Field::Url), Some("https://youtube.com/watch"));
        assert_eq!(e.number(Field::Duration), Some(1201.0));
        assert!(!e.has(Field::Title));
        assert_eq!(e.text(Field::Duration), None, "a number is not text");
    }

    #[test]
    fn overwriting_a_field_keeps_the_last_value() {
        let mut e = Event::new(EventKind::Usb, ts("2026-11-02T09:00:00+01:00"));
        e.set_text(Field::Action, "inserted");
        e.set_text(Field::Action, "removed");
        assert_eq!(e.text(Field::Action), Some("removed"));
    }

    #[test]
    fn serialises_in_canonical_order_with_integers_kept_integral() {
        let e = Event::new(EventKind::Activity, ts("2026-11-02T09:00:00+01:00"))
            .with_number(Field::Duration, 30.0)
            .with_text(Field::Username, "alice");
        assert_eq!(
            e.to_json(),
            r#"{"ts":"2026-11-02T09:00:00+01:00","kind":"activity","username":"alice","duration":30}"#
        );
        assert_eq!(
            Event::utc_string(e.ts()),
            "2026-11-02T08:00:00.000Z",
            "UTC form sorts in time order"
        );
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn a_day_is_included_whole_and_spans_count_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-05T15:30:00Z")
            .expect("ts")
            .with_timezone(&Utc);
        let at = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .expect("ts")
                .with_timezone(&Utc)
        };
        let bound = |t: &str, end| Event::parse_bound(t, end, now).expect(t);
        assert_eq!(
            bound("2026-11-02", Bound::Start),
            at("2026-11-02T00:00:00Z")
        );
        assert_eq!(bound("2026-11-02", Bound::End), at("2026-11-03T00:00:00Z"));
        assert_eq!(bound("yesterday", Bound::Start), at("2026-11-04T00:00:00Z"));
        assert_eq!(bound("today", Bound::End), at("2026-11-06T00:00:00Z"));
        assert_eq!(bound("24h", Bound::Start), at("2026-11-04T15:30:00Z"));
        assert_eq!(bound("7d", Bound::End), at("2026-10-29T15:30:00Z"));
        assert_eq!(bound("now", Bound::End), now);
        assert_eq!(
            bound("2026-11-02T09:00:00+01:00", Bound::End),
            at("2026-11-02T08:00:00Z")
        );
        let err = Event::parse_bound("soon", Bound::Start, now).expect_err("not a time");
        assert!(err.contains("24h, 7d"), "{err}");
    }
}
