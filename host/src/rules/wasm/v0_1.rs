//! Components built for contract 0.1.0 (`wit/0.1.0/vigilo-alarms.wit`), run unchanged.
//!
//! Integrators ship compiled plugins, not sources: an agent upgrade that stopped loading them
//! would lose them. 0.2.0 only added `plugin-info.reads`, so a 0.1.0 component is adapted at the
//! edges: its description reads every field, its events carry every field, and what it returns
//! is read into the current contract's types, to be checked by the same code as any plugin's.

use crate::event::{Event, EventKind, Field, FieldSet};

use super::bindings::vigilo::alarms::types as current;
use bindings::vigilo::alarms::types as old;

/// Code generated from the 0.1.0 contract.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "rule-plugin",
        path: "../wit/0.1.0/vigilo-alarms.wit",
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

fn kind(kind: old::EventKind) -> current::EventKind {
    match kind {
        old::EventKind::Activity => current::EventKind::Activity,
        old::EventKind::Usb => current::EventKind::Usb,
        old::EventKind::Account => current::EventKind::Account,
    }
}

fn kind_to_old(kind: EventKind) -> old::EventKind {
    match kind {
        EventKind::Activity => old::EventKind::Activity,
        EventKind::Usb => old::EventKind::Usb,
        EventKind::Account => old::EventKind::Account,
    }
}

/// What a 0.1.0 plugin said it is; it reads every field (0.1.0 could not say otherwise).
pub(super) fn info(info: old::PluginInfo) -> current::PluginInfo {
    current::PluginInfo {
        name: info.name,
        version: info.version,
        subscribes: info.subscribes.into_iter().map(kind).collect(),
        config_help: info.config_help,
        reads: FieldSet::ALL
            .iter()
            .map(super::convert::field_to_wit)
            .collect(),
    }
}

/// The event with every field, as 0.1.0 hands it over, borrowing its texts.
pub(super) fn event(e: &Event) -> old::Event<'_> {
    let t = |f| e.text(f);
    let n = |f| e.number(f);
    old::Event {
        ts_ms: e.ts().timestamp_millis(),
        kind: kind_to_old(e.kind()),
        username: t(Field::Username),
        logon_domain: t(Field::LogonDomain),
        computer: t(Field::Computer),
        private_ip: t(Field::PrivateIp),
        executable: t(Field::Executable),
        title: t(Field::Title),
        description: t(Field::Description),
        url: t(Field::Url),
        primary_domain: t(Field::PrimaryDomain),
        duration: n(Field::Duration),
        // Validated events hold finite non-negative numbers; `as` saturates the rest.
        pid: n(Field::Pid).map(|n| n as u32),
        action: t(Field::Action),
        vendor_id: t(Field::VendorId),
        product_id: t(Field::ProductId),
        vendor: t(Field::Vendor),
        product: t(Field::Product),
        serial: t(Field::Serial),
        device_class: t(Field::DeviceClass),
        mount_point: t(Field::MountPoint),
        path: t(Field::Path),
        bytes: n(Field::Bytes).map(|n| n as u64),
        actor: t(Field::Actor),
        event_name: t(Field::EventName),
        action_type: t(Field::ActionType),
        action_object: t(Field::ActionObject),
        detail: t(Field::Detail),
    }
}

/// What a 0.1.0 plugin returned, in the current contract's types (the same shapes).
pub(super) fn triggered(returned: Vec<old::Triggered>) -> Vec<current::Triggered> {
    returned
        .into_iter()
        .map(|t| current::Triggered {
            alarm: t.alarm,
            risk: t.risk,
            actions: t.actions.into_iter().map(action).collect(),
            note: t.note,
        })
        .collect()
}

fn action(a: old::Action) -> current::Action {
    match a {
        old::Action::Screenshot(s) => current::Action::Screenshot(current::Screenshot {
            count: s.count,
            interval_ms: s.interval_ms,
        }),
        old::Action::Video(v) => current::Action::Video(current::Video {
            before_ms: v.before_ms,
            after_ms: v.after_ms,
        }),
        old::Action::Popup(p) => current::Action::Popup(current::Popup {
            title: p.title,
            message: p.message,
        }),
        old::Action::Email(e) => current::Action::Email(current::Email {
            to: e.to,
            subject: e.subject,
            body: e.body,
        }),
        old::Action::Webhook(w) => current::Action::Webhook(current::Webhook { url: w.url }),
        old::Action::Terminate(t) => current::Action::Terminate(current::Terminate {
            after_ms: t.after_ms,
            warn: t.warn,
        }),
    }
}
