//! Between the agent's types and the contract's: events out, triggered alarms back in.
//!
//! What a plugin returns is untrusted: every alarm, action and text is checked against the
//! plugin's [`Limits`] and the same action rules a pack's built-in alarms obey, and an error
//! names the WIT field at fault.

use std::time::Duration;

use crate::event::{Event, EventKind, Field, FieldSet, FieldType};
use crate::model::action::{Action, PlannedAction};

use super::bindings::vigilo::alarms::types;
use crate::rules::program::{Limits, PluginAlarm};

pub(super) fn kind_to_wit(kind: EventKind) -> types::EventKind {
    match kind {
        EventKind::Activity => types::EventKind::Activity,
        EventKind::Usb => types::EventKind::Usb,
        EventKind::Account => types::EventKind::Account,
    }
}

pub(super) fn kind_from_wit(kind: types::EventKind) -> EventKind {
    match kind {
        types::EventKind::Activity => EventKind::Activity,
        types::EventKind::Usb => EventKind::Usb,
        types::EventKind::Account => EventKind::Account,
    }
}

/// The fields of `e` that are in `reads`, as the contract lists them, borrowing the texts.
pub(super) fn fields_to_wit(e: &Event, reads: FieldSet) -> Vec<types::FieldValue<'_>> {
    reads
        .iter()
        .filter_map(|f| {
            let value = match f.field_type() {
                FieldType::Text => types::Value::Text(e.text(f)?),
                FieldType::Number => types::Value::Number(e.number(f)?),
            };
            Some(types::FieldValue {
                field: field_to_wit(f),
                value,
            })
        })
        .collect()
}

/// The agent's fields and the contract's `field` enum: the same names, in the same order.
macro_rules! fields {
    ($($name:ident),+ $(,)?) => {
        pub(super) fn field_to_wit(f: Field) -> types::Field {
            match f { $(Field::$name => types::Field::$name,)+ }
        }

        pub(super) fn field_from_wit(f: types::Field) -> Field {
            match f { $(types::Field::$name => Field::$name,)+ }
        }
    };
}

fields! {
    Username, LogonDomain, Computer, PrivateIp, Executable, Title, Description, Url,
    PrimaryDomain, Duration, Pid, Action, VendorId, ProductId, Vendor, Product, Serial,
    DeviceClass, MountPoint, Path, Bytes, Actor, EventName, ActionType, ActionObject, Detail,
}

/// Checks what a plugin returned from `on-event`.
pub(crate) fn alarms_from_wit(
    returned: Vec<types::Triggered>,
    limits: &Limits,
) -> Result<Vec<PluginAlarm>, String> {
    if returned.len() > limits.max_alarms {
        return Err(format!(
            "on-event returned {} alarms; the limit is {}",
            returned.len(),
            limits.max_alarms
        ));
    }
    returned
        .into_iter()
        .enumerate()
        .map(|(i, t)| alarm_from_wit(t, limits).map_err(|e| format!("triggered[{i}].{e}")))
        .collect()
}

fn text(field: &str, value: String, limits: &Limits) -> Result<String, String> {
    if value.len() > limits.max_text_bytes {
        return Err(format!(
            "{field}: {} bytes; the limit is {}",
            value.len(),
            limits.max_text_bytes
        ));
    }
    Ok(value)
}

fn alarm_from_wit(t: types::Triggered, limits: &Limits) -> Result<PluginAlarm, String> {
    let alarm = text("alarm", t.alarm, limits)?;
    let chars = alarm.trim().chars().count();
    if !(1..=200).contains(&chars) {
        return Err(format!(
            "alarm: the name must be 1 to 200 characters, found {chars}"
        ));
    }
    if !(1..=10).contains(&t.risk) {
        return Err(format!("risk: must be 1 to 10, found {}", t.risk));
    }
    if t.actions.len() > limits.max_actions {
        return Err(format!(
            "actions: {} actions; the limit is {}",
            t.actions.len(),
            limits.max_actions
        ));
    }
    let actions = t
        .actions
        .into_iter()
        .enumerate()
        .map(|(i, a)| action_from_wit(a, limits).map_err(|e| format!("actions[{i}].{e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let note = t.note.map(|n| text("note", n, limits)).transpose()?;
    Ok(PluginAlarm {
        alarm: alarm.trim().to_string(),
        risk: t.risk,
        actions,
        note,
    })
}

fn action_from_wit(a: types::Action, limits: &Limits) -> Result<PlannedAction, String> {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    let action = match a {
        types::Action::Screenshot(s) => Action::Screenshot {
            count: s.count,
            interval: ms(s.interval_ms),
        },
        types::Action::Video(v) => Action::Video {
            before: ms(v.before_ms),
            after: ms(v.after_ms),
        },
        types::Action::Popup(p) => Action::Popup {
            title: text("popup.title", p.title, limits)?,
            message: text("popup.message", p.message, limits)?,
        },
        types::Action::Email(e) => Action::Email {
            to: e
                .to
                .into_iter()
                .map(|a| text("email.to", a, limits))
                .collect::<Result<_, _>>()?,
            subject: text("email.subject", e.subject, limits)?,
            body: text("email.body", e.body, limits)?,
        },
        types::Action::Webhook(w) => Action::Webhook {
            url: text("webhook.url", w.url, limits)?,
        },
        types::Action::Terminate(t) => Action::Terminate {
            after: ms(t.after_ms),
            warn: t
                .warn
                .map(|w| text("terminate.warn", w, limits))
                .transpose()?,
        },
    };
    action.check()?;
    Ok(action)
}
