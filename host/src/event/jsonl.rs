//! JSONL, the interchange form of events: one JSON object a line.
//!
//! The parser is a hand-written serde visitor rather than a derived struct for two reasons: it
//! writes text straight into the event's single buffer (no allocation per field), and it can say
//! *which* field was wrong and what was expected, which is what a person fixing a recording needs.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{Event, EventKind, Field, FieldType, Slot, USB_ACTIONS};

/// Why one line of JSONL is not a valid event. The reader adds the file and line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// The 1-based column where the JSON parser stopped, when it knows.
    pub column: Option<usize>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(column) = self.column {
            write!(f, "column {column}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LineError {}

/// Parses one line of JSONL into an event.
///
/// Only `ts` (RFC 3339) and `kind` are required; every other field may be absent or `null`.
/// Unknown fields, fields of another kind, wrong types, duplicates and unknown usb actions are
/// errors: a recording with a typo should be fixed, not half-read.
pub fn parse_line(line: &str) -> Result<Event, LineError> {
    let mut failed_field = None;
    let mut de = serde_json::Deserializer::from_str(line);
    let seed = EventSeed {
        failed_field: &mut failed_field,
        capacity: line.len(),
    };
    let parsed = seed.deserialize(&mut de).and_then(|event| {
        de.end()?;
        Ok(event)
    });
    match parsed {
        Ok(Ok(event)) => Ok(event),
        Ok(Err(semantic)) => Err(semantic),
        Err(e) => {
            let column = (e.column() > 0).then_some(e.column());
            // serde_json appends " at line L column C"; the column is reported separately.
            let text = e.to_string();
            let message = match text.rfind(" at line ") {
                Some(cut) => text[..cut].to_string(),
                None => text,
            };
            Err(LineError {
                field: failed_field.map(str::to_string),
                column,
                message,
            })
        }
    }
}

/// Events read as part of a larger document (a stored alarm) obey the same rules as JSONL lines.
impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        let mut failed_field = None;
        let seed = EventSeed {
            failed_field: &mut failed_field,
            capacity: 256,
        };
        seed.deserialize(d)?
            .map_err(|e| de::Error::custom(e.to_string()))
    }
}

fn semantic(field: Option<&str>, message: String) -> LineError {
    LineError {
        field: field.map(str::to_string),
        column: None,
        message,
    }
}

/// Deserialises one event. Errors the JSON parser can locate come out as `serde_json::Error`;
/// errors only visible once the whole object is read (missing `kind`, a field of another kind)
/// come out as the inner `LineError`.
struct EventSeed<'a> {
    failed_field: &'a mut Option<&'static str>,
    capacity: usize,
}

enum Key {
    Ts,
    Kind,
    Field(Field),
    Unknown(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "ts" => Key::Ts,
            "kind" => Key::Kind,
            _ => match Field::from_name(v) {
                Some(f) => Key::Field(f),
                None => Key::Unknown(v.to_string()),
            },
        })
    }
}

/// Reads a string value into the event's text buffer; `null` means absent.
struct TextSeed<'a> {
    buf: &'a mut String,
    field: &'static str,
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = Option<(u32, u32)>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // `any` rather than `option` + `str`: JSON says which it is by its first byte, and one
        // dispatch per value is measurably cheaper on the per-line path.
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = Option<(u32, u32)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "text (a JSON string) for `{}`", self.field)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let start = self.buf.len();
        self.buf.push_str(v);
        let end = self.buf.len();
        match (u32::try_from(start), u32::try_from(end)) {
            (Ok(s), Ok(e)) => Ok(Some((s, e))),
            _ => Err(E::custom("event text larger than 4 GiB")),
        }
    }
}

/// Reads a non-negative finite number; `null` means absent.
struct NumberSeed(&'static str);

impl<'de> DeserializeSeed<'de> for NumberSeed {
    type Value = Option<f64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NumberSeed {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a non-negative number for `{}`", self.0)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_f64(self)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if v < 0 {
            return Err(E::invalid_value(de::Unexpected::Signed(v), &self));
        }
        Ok(Some(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if !(v.is_finite() && v >= 0.0) {
            return Err(E::invalid_value(de::Unexpected::Float(v), &self));
        }
        Ok(Some(v))
    }
}

/// Reads `ts` or `kind`: a string checked by `parse`.
struct CheckedStr<F>(F);

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> DeserializeSeed<'de> for CheckedStr<F> {
    type Value = T;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for CheckedStr<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

fn parse_ts(v: &str) -> Result<DateTime<FixedOffset>, String> {
    let ts = match parse_common_rfc3339(v.as_bytes()) {
        Some(ts) => ts,
        None => DateTime::parse_from_rfc3339(v).map_err(|e| {
            format!(
                "expected an RFC 3339 timestamp such as 2026-11-02T09:15:00Z, found {v:?} ({e})"
            )
        })?,
    };
    super::check_range(ts).map_err(|e| format!("{v:?}: {e}"))?;
    Ok(ts)
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, parsed without the general
/// parser's overhead (every event has a timestamp). Anything else, valid or not, returns `None`
/// and goes to chrono's full RFC 3339 parser, which also words the errors.
fn parse_common_rfc3339(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let punct = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || punct.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &b[start..i];
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = digits(start..i)? * 10u32.pow(9 - frac.len() as u32);
    }
    let offset = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid_day = (1..=12).contains(&month) && day >= 1 && day <= month_days[month as usize - 1];
    if !valid_day || hour > 23 || minute > 59 || second > 59 {
        return None; // leap seconds, 24:00 and the like: let chrono decide
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    let (y, m) = (i64::from(year) - i64::from(month <= 2), i64::from(month));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - i64::from(offset);
    let offset = FixedOffset::east_opt(offset)?;
    Some(DateTime::from_timestamp(secs, nanos)?.with_timezone(&offset))
}

fn parse_kind(v: &str) -> Result<EventKind, String> {
    EventKind::from_name(v)
        .ok_or_else(|| format!("expected one of activity, usb, account, found {v:?}"))
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Result<Event, LineError>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = Result<Event, LineError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one event)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Kind and time are unknown until their keys come by; fill a placeholder and fix it up.
        let mut event = Event::new(EventKind::Activity, DateTime::UNIX_EPOCH.fixed_offset());
        // Field text is a fraction of the line: reserving it up front saves the regrowth.
        event.text.reserve(self.capacity);
        let (mut ts, mut kind) = (None, None);
        let mut unknown: Option<String> = None;
        let mut duplicate: Option<&'static str> = None;
        let mut seen = 0u32;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let (bit, name) = match &key {
                Key::Ts => (1 << 31, "ts"),
                Key::Kind => (1 << 30, "kind"),
                Key::Field(f) => (1 << f.index(), f.name()),
                Key::Unknown(_) => (0, ""),
            };
            if seen & bit != 0 {
                map.next_value::<IgnoredAny>()?;
                duplicate.get_or_insert(name);
                continue;
            }
            seen |= bit;
            *self.failed_field = (bit != 0).then_some(name);
            match key {
                Key::Ts => ts = Some(map.next_value_seed(CheckedStr(parse_ts))?),
                Key::Kind => kind = Some(map.next_value_seed(CheckedStr(parse_kind))?),
                Key::Field(f) => match f.field_type() {
                    FieldType::Text => {
                        let seed = TextSeed {
                            buf: &mut event.text,
                            field: f.name(),
                        };
                        if let Some((start, end)) = map.next_value_seed(seed)? {
                            event.slots[f.index()] = Slot::text(start, end);
                        }
                    }
                    FieldType::Number => {
                        if let Some(n) = map.next_value_seed(NumberSeed(f.name()))? {
                            event.slots[f.index()] = Slot::number(n);
                        }
                    }
                },
                Key::Unknown(name) => {
                    map.next_value::<IgnoredAny>()?;
                    unknown.get_or_insert(name);
                }
            }
        }
        *self.failed_field = None;
        if let Some(name) = duplicate {
            return Ok(Err(semantic(Some(name), "appears twice".into())));
        }
        Ok(finish(event, ts, kind, unknown))
    }
}

fn finish(
    mut event: Event,
    ts: Option<DateTime<FixedOffset>>,
    kind: Option<EventKind>,
    unknown: Option<String>,
) -> Result<Event, LineError> {
    let Some(kind) = kind else {
        return Err(semantic(
            Some("kind"),
            "missing; expected one of activity, usb, account".into(),
        ));
    };
    let Some(ts) = ts else {
        return Err(semantic(
            Some("ts"),
            "missing; expected an RFC 3339 timestamp such as 2026-11-02T09:15:00Z".into(),
        ));
    };
    if let Some(name) = unknown {
        return Err(semantic(
            Some(&name),
            format!(
                "unknown field; {kind} events have: {}",
                Field::names_for(kind.bit())
            ),
        ));
    }
    event.kind = kind;
    event.ts = ts;
    let foreign = Field::ALL
        .iter()
        .find(|f| event.slots[f.index()] != Slot::ABSENT && !f.kinds().contains(kind));
    if let Some(field) = foreign {
        return Err(semantic(
            Some(field.name()),
            format!(
                "not a field of {kind} events; {kind} events have: {}",
                Field::names_for(kind.bit())
            ),
        ));
    }
    if let Some(action) = event.text(Field::Action)
        && !USB_ACTIONS.contains(&action)
    {
        return Err(semantic(
            Some("action"),
            format!(
                "expected one of {}, found {action:?}",
                USB_ACTIONS.join(", ")
            ),
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> LineError {
        parse_line(line).expect_err("line should be rejected")
    }

    #[test]
    fn reads_a_full_activity_event() {
        let e = parse_line(
            r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","username":"alice","url":"https://www.youtube.com/watch?v=1","duration":12.5,"pid":null}"#,
        )
        .expect("valid line");
        assert_eq!(e.kind(), EventKind::Activity);
        assert_eq!(e.text(Field::Username), Some("alice"));
        assert_eq!(e.number(Field::Duration), Some(12.5));
        assert!(!e.has(Field::Pid), "null means absent");
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        for ts in [
            "2026-11-02T09:00:00Z",
            "2026-11-02T09:00:00.5Z",
            "2026-11-02T09:00:00.123456789+05:30",
            "2026-11-02T23:59:59-08:00",
            "2024-02-29T00:00:00Z",
            "2000-02-29T12:00:00+14:00",
            "1900-03-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999-00:30",
            "9999-12-31T23:59:59Z",
        ] {
            let fast = parse_common_rfc3339(ts.as_bytes()).expect(ts);
            assert_eq!(fast, DateTime::parse_from_rfc3339(ts).expect(ts), "{ts}");
            assert_eq!(
                fast.offset(),
                DateTime::parse_from_rfc3339(ts).expect(ts).offset()
            );
        }
        // Not the common shape: left to chrono, which accepts or rejects it.
        for ts in [
            "2026-11-02t09:00:00z",
            "2026-11-02 09:00:00Z",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-02T24:00:00Z",
            "2026-11-02T09:00:60Z",
            "2026-11-02T09:00:00.Z",
        ] {
            assert!(parse_common_rfc3339(ts.as_bytes()).is_none(), "{ts}");
        }
        assert!(
            parse_ts("2026-11-02 09:00:00Z").is_ok(),
            "chrono accepts a space"
        );
        assert!(parse_ts("2025-02-29T00:00:00Z").is_err());
    }

    #[test]
    fn only_ts_and_kind_are_required_and_order_does_not_matter() {
        let e = parse_line(r#"{"kind":"account","ts":"2026-11-02T09:00:00+02:00"}"#)
            .expect("minimal event");
        assert_eq!(e.kind(), EventKind::Account);
        assert_eq!(e.fields().count(), 0);
    }

    #[test]
    fn escaped_text_is_decoded() {
        let e = parse_line(
            r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","title":"caf\u00e9 \"menu\""}"#,
        )
        .expect("valid");
        assert_eq!(e.text(Field::Title), Some("café \"menu\""));
    }

    #[test]
    fn round_trips_through_json() {
        let line = r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","username":"bob","action":"file_written","path":"/media/x/a.pdf","bytes":1048576}"#;
        let e = parse_line(line).expect("valid");
        assert_eq!(parse_line(&e.to_json()).expect("round trip"), e);
    }

    #[test]
    fn names_the_field_with_a_wrong_type() {
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","username":5}"#);
        assert_eq!(e.field.as_deref(), Some("username"));
        assert!(e.message.contains("expected text"), "{e}");
        assert!(e.column.is_some());
    }

    #[test]
    fn rejects_negative_numbers() {
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","duration":-3}"#);
        assert_eq!(e.field.as_deref(), Some("duration"));
        assert!(e.message.contains("non-negative"), "{e}");
    }

    #[test]
    fn rejects_bad_timestamps_and_kinds() {
        let e = err(r#"{"ts":"yesterday","kind":"activity"}"#);
        assert_eq!(e.field.as_deref(), Some("ts"));
        assert!(e.message.contains("RFC 3339"), "{e}");
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"keyboard"}"#);
        assert!(e.message.contains("activity, usb, account"), "{e}");
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z"}"#);
        assert_eq!(e.field.as_deref(), Some("kind"));
        let e = err(r#"{"kind":"usb"}"#);
        assert_eq!(e.field.as_deref(), Some("ts"));
    }

    #[test]
    fn refuses_times_the_store_could_not_read_back() {
        // Year 10000 and year -1 once in UTC, though each is valid RFC 3339 text.
        for ts in [
            "9999-12-31T23:59:59-23:59",
            "0000-01-01T00:00:00+23:59",
            "1969-12-31T23:59:59Z",
        ] {
            let e = err(&format!(r#"{{"ts":"{ts}","kind":"activity"}}"#));
            assert_eq!(e.field.as_deref(), Some("ts"));
            assert!(e.message.contains("times must fall in 1970–2999"), "{e}");
        }
        assert!(parse_line(r#"{"ts":"2999-12-31T23:59:59Z","kind":"activity"}"#).is_ok());
    }

    #[test]
    fn rejects_unknown_and_foreign_fields() {
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","usrname":"a"}"#);
        assert_eq!(e.field.as_deref(), Some("usrname"));
        assert!(e.message.contains("username"), "lists valid fields: {e}");
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","url":"x"}"#);
        assert_eq!(e.field.as_deref(), Some("url"));
        assert!(e.message.contains("not a field of usb events"), "{e}");
    }

    #[test]
    fn rejects_unknown_usb_actions_and_duplicates() {
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","action":"plugged"}"#);
        assert!(e.message.contains("inserted, removed, file_written"), "{e}");
        let e = err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","serial":"a","serial":"b"}"#);
        assert_eq!(e.field.as_deref(), Some("serial"));
        assert!(e.message.contains("twice"));
    }

    #[test]
    fn rejects_non_objects_and_trailing_garbage() {
        assert!(err("[1,2]").message.contains("JSON object"));
        assert!(
            err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb"} x"#)
                .message
                .contains("trailing")
        );
        assert!(
            err(r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb""#)
                .column
                .is_some()
        );
    }
}
