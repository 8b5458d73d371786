//! What a script sees: the event as a typed object, and a few host functions.
//!
//! The event is a registered type with one read-only property per field (`event.title`,
//! `event.bytes`…, named as in the JSONL form), not a map built per call: a script pays only
//! for the fields it reads. An absent field reads as `()`, so `event.url ?? ""` works.

use std::sync::Arc;

use chrono::{Datelike, Timelike};
use rhai::{Dynamic, Engine, ImmutableString, Map};

use crate::event::{Event, Field, FieldValue};

/// An event handed to a script.
#[derive(Clone)]
pub(super) struct ScriptEvent(pub(super) Arc<Event>);

impl ScriptEvent {
    fn field(&self, field: Field) -> Dynamic {
        match self.0.value(field) {
            None => Dynamic::UNIT,
            Some(FieldValue::Text(t)) => Dynamic::from(ImmutableString::from(t)),
            // Counts are integers to a script; a duration keeps its fraction.
            Some(FieldValue::Number(n)) if matches!(field, Field::Pid | Field::Bytes) => {
                Dynamic::from_int(n as i64)
            }
            Some(FieldValue::Number(n)) => Dynamic::from_float(n),
        }
    }
}

/// Registers the `Event` type and the helpers every script may call.
pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptEvent>("Event");
    engine.register_get("ts_ms", |e: &mut ScriptEvent| e.0.ts().timestamp_millis());
    engine.register_get("kind", |e: &mut ScriptEvent| e.0.kind().name());
    for &field in Field::ALL {
        engine.register_get(field.name(), move |e: &mut ScriptEvent| e.field(field));
    }
    engine.register_fn("to_string", |e: &mut ScriptEvent| {
        format!("{} event at {}", e.0.kind().name(), e.0.ts().to_rfc3339())
    });
    engine.register_fn("local_time", local_time);
}

/// `local_time(ts_ms, utc_offset_minutes)`: the calendar fields of a moment at a site, which
/// rules about working hours and days need. `weekday` is 0 for Monday.
fn local_time(ts_ms: i64, utc_offset_minutes: i64) -> Map {
    let shifted = ts_ms.saturating_add(utc_offset_minutes.saturating_mul(60_000));
    let t = chrono::DateTime::from_timestamp_millis(shifted).unwrap_or_default();
    let mut m = Map::new();
    let int = |v: u32| Dynamic::from_int(i64::from(v));
    m.insert("year".into(), Dynamic::from_int(i64::from(t.year())));
    m.insert("month".into(), int(t.month()));
    m.insert("day".into(), int(t.day()));
    m.insert("hour".into(), int(t.hour()));
    m.insert("minute".into(), int(t.minute()));
    m.insert("weekday".into(), int(t.weekday().num_days_from_monday()));
    m.insert(
        "date".into(),
        Dynamic::from(t.format("%Y-%m-%d").to_string()),
    );
    m
}
