//! Write vigilo rule plugins in ordinary Rust.
//!
//! A plugin is a struct that implements [`Plugin`]; [`export!`] turns it into the exports of the
//! `vigilo:alarms` contract (`wit/vigilo-alarms.wit`). The agent keeps one instance alive, so
//! plain fields carry state from one event to the next; [`state`] is the host-kept state that
//! also survives restarts.
//!
//! ```ignore
//! use vigilo_sdk::{Event, EventKind, Field, Plugin, PluginInfo, Triggered, action};
//!
//! #[derive(Default)]
//! struct BigCopies { limit: u64 }
//!
//! impl Plugin for BigCopies {
//!     fn describe() -> PluginInfo {
//!         vigilo_sdk::info("big-copies", "1.0.0", &[EventKind::Usb], &[Field::Bytes],
//!             "limit: bytes (default 1e8)")
//!     }
//!     fn configure(&mut self, config: &str) -> Result<(), String> {
//!         self.limit = vigilo_sdk::config::number(config, "limit")?.unwrap_or(1e8) as u64;
//!         Ok(())
//!     }
//!     fn on_event(&mut self, e: &Event) -> Vec<Triggered> {
//!         match e.bytes {
//!             Some(b) if b > self.limit => vec![vigilo_sdk::alarm("Big copy", 6)
//!                 .with_action(action::screenshot(1, 10))],
//!             _ => vec![],
//!         }
//!     }
//! }
//!
//! vigilo_sdk::export!(BigCopies);
//! ```
//!
//! `describe` names the fields of [`Event`] that `on_event` reads: the agent copies only those
//! into the plugin for each event (the others are `None`), so a plugin pays for what it reads,
//! not for every text of every event. [`EVERY_FIELD`] reads them all.
//!
//! Build it for `wasm32-unknown-unknown` (`rustup target add wasm32-unknown-unknown`, then
//! `vigilo plugin build DIR`, which also turns the module into a component).

/// Code generated from the contract. Most plugins only need the re-exports below.
pub mod bindings {
    wit_bindgen::generate!({
        world: "rule-plugin",
        path: "../wit/vigilo-alarms.wit",
        default_bindings_module: "vigilo_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "export_rule_plugin",
    });
}

pub use bindings::vigilo::alarms::host::LogLevel;
pub use bindings::vigilo::alarms::types::{Action, EventKind, Field, PluginInfo, Triggered};

/// One event, with a field for each of the contract's: `None` when the event does not have it
/// or the plugin did not name it in `reads`. (The contract hands over a list of the fields read;
/// this is that list laid out.)
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it happened, in milliseconds since 1970-01-01 UTC (activity: when focus came).
    pub ts_ms: i64,
    /// What kind of event it is.
    pub kind: EventKind,
    /// activity, usb: the user's login name.
    pub username: Option<String>,
    /// activity: the Windows domain or Kerberos realm of the logon.
    pub logon_domain: Option<String>,
    /// activity, usb, account: the computer's host name.
    pub computer: Option<String>,
    /// activity: the computer's primary private IP address.
    pub private_ip: Option<String>,
    /// activity: the focused application's executable; usb `file_written`: the writer's.
    pub executable: Option<String>,
    /// activity: the window title.
    pub title: Option<String>,
    /// activity: the application's human name.
    pub description: Option<String>,
    /// activity: the browser's URL, when a browser extension reported it.
    pub url: Option<String>,
    /// activity: the URL's registrable domain (`youtube.com`).
    pub primary_domain: Option<String>,
    /// activity: seconds the window has had focus so far.
    pub duration: Option<f64>,
    /// activity: process id of the focused application; usb `file_written`: of the writer.
    pub pid: Option<u32>,
    /// usb: `inserted`, `removed` or `file_written`.
    pub action: Option<String>,
    /// usb: vendor id, four hex digits.
    pub vendor_id: Option<String>,
    /// usb: product id, four hex digits.
    pub product_id: Option<String>,
    /// usb: vendor name.
    pub vendor: Option<String>,
    /// usb: product name.
    pub product: Option<String>,
    /// usb: the device's serial number.
    pub serial: Option<String>,
    /// usb: device class, e.g. `mass_storage`, `hid`.
    pub device_class: Option<String>,
    /// usb: where the device's file system is mounted.
    pub mount_point: Option<String>,
    /// usb `file_written`: the file's path.
    pub path: Option<String>,
    /// usb `file_written`: the file's size in bytes.
    pub bytes: Option<u64>,
    /// account: who made the change.
    pub actor: Option<String>,
    /// account: what happened, e.g. `pack_uploaded`.
    pub event_name: Option<String>,
    /// account: the category of the change.
    pub action_type: Option<String>,
    /// account: what was changed.
    pub action_object: Option<String>,
    /// account: free-form detail.
    pub detail: Option<String>,
}

impl From<bindings::vigilo::alarms::types::Event> for Event {
    fn from(raw: bindings::vigilo::alarms::types::Event) -> Event {
        use bindings::vigilo::alarms::types::Value;
        let mut e = Event {
            ts_ms: raw.ts_ms,
            kind: raw.kind,
            username: None,
            logon_domain: None,
            computer: None,
            private_ip: None,
            executable: None,
            title: None,
            description: None,
            url: None,
            primary_domain: None,
            duration: None,
            pid: None,
            action: None,
            vendor_id: None,
            product_id: None,
            vendor: None,
            product: None,
            serial: None,
            device_class: None,
            mount_point: None,
            path: None,
            bytes: None,
            actor: None,
            event_name: None,
            action_type: None,
            action_object: None,
            detail: None,
        };
        for fv in raw.fields {
            match (fv.field, fv.value) {
                (Field::Duration, Value::Number(n)) => e.duration = Some(n),
                (Field::Pid, Value::Number(n)) => e.pid = Some(n as u32),
                (Field::Bytes, Value::Number(n)) => e.bytes = Some(n as u64),
                (field, Value::Text(t)) => {
                    let slot = match field {
                        Field::Username => &mut e.username,
                        Field::LogonDomain => &mut e.logon_domain,
                        Field::Computer => &mut e.computer,
                        Field::PrivateIp => &mut e.private_ip,
                        Field::Executable => &mut e.executable,
                        Field::Title => &mut e.title,
                        Field::Description => &mut e.description,
                        Field::Url => &mut e.url,
                        Field::PrimaryDomain => &mut e.primary_domain,
                        Field::Action => &mut e.action,
                        Field::VendorId => &mut e.vendor_id,
                        Field::ProductId => &mut e.product_id,
                        Field::Vendor => &mut e.vendor,
                        Field::Product => &mut e.product,
                        Field::Serial => &mut e.serial,
                        Field::DeviceClass => &mut e.device_class,
                        Field::MountPoint => &mut e.mount_point,
                        Field::Path => &mut e.path,
                        Field::Actor => &mut e.actor,
                        Field::EventName => &mut e.event_name,
                        Field::ActionType => &mut e.action_type,
                        Field::ActionObject => &mut e.action_object,
                        Field::Detail => &mut e.detail,
                        // Numbers come as numbers; the agent sends nothing else.
                        Field::Duration | Field::Pid | Field::Bytes => continue,
                    };
                    *slot = Some(t);
                }
                // A text field with a number: not what the contract says; left out.
                (_, Value::Number(_)) => {}
            }
        }
        e
    }
}

/// Every field of [`Event`], for a plugin that reads them all (or has not narrowed it down yet).
pub const EVERY_FIELD: &[Field] = &[
    Field::Username,
    Field::LogonDomain,
    Field::Computer,
    Field::PrivateIp,
    Field::Executable,
    Field::Title,
    Field::Description,
    Field::Url,
    Field::PrimaryDomain,
    Field::Duration,
    Field::Pid,
    Field::Action,
    Field::VendorId,
    Field::ProductId,
    Field::Vendor,
    Field::Product,
    Field::Serial,
    Field::DeviceClass,
    Field::MountPoint,
    Field::Path,
    Field::Bytes,
    Field::Actor,
    Field::EventName,
    Field::ActionType,
    Field::ActionObject,
    Field::Detail,
];

/// A rule plugin: say what you are, accept a configuration, judge events.
pub trait Plugin: Default {
    /// Name, version, the event kinds wanted, the fields read, and help for the configuration.
    fn describe() -> PluginInfo;

    /// Applies the pack's configuration (TOML text, possibly empty); an `Err` explains what is
    /// wrong and the plugin is not loaded.
    fn configure(&mut self, _config: &str) -> Result<(), String> {
        Ok(())
    }

    /// Judges one event; returns the alarms it triggers (usually none).
    fn on_event(&mut self, event: &Event) -> Vec<Triggered>;
}

/// A [`PluginInfo`] in one line: `reads` names every field of [`Event`] that `on_event` looks
/// at (the others arrive as `None`).
pub fn info(
    name: &str,
    version: &str,
    subscribes: &[EventKind],
    reads: &[Field],
    config_help: &str,
) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: version.into(),
        subscribes: subscribes.to_vec(),
        config_help: config_help.into(),
        reads: reads.to_vec(),
    }
}

/// A triggered alarm with no actions yet; add them with [`Triggered::with_action`].
pub fn alarm(name: &str, risk: u8) -> Triggered {
    Triggered {
        alarm: name.into(),
        risk,
        actions: Vec::new(),
        note: None,
    }
}

impl Triggered {
    /// Adds an action.
    pub fn with_action(mut self, action: Action) -> Triggered {
        self.actions.push(action);
        self
    }

    /// Sets the note shown with the alarm.
    pub fn with_note(mut self, note: impl Into<String>) -> Triggered {
        self.note = Some(note.into());
        self
    }
}

/// Builders for the actions an alarm can ask for (same limits as a pack's built-in alarms).
pub mod action {
    use super::Action;
    use super::bindings::vigilo::alarms::types as t;

    /// `count` screenshots, `interval_secs` apart (at least 10).
    pub fn screenshot(count: u32, interval_secs: u32) -> Action {
        Action::Screenshot(t::Screenshot {
            count,
            interval_ms: interval_secs * 1000,
        })
    }

    /// A screen video from `before_secs` before to `after_secs` after the trigger.
    pub fn video(before_secs: u32, after_secs: u32) -> Action {
        Action::Video(t::Video {
            before_ms: before_secs * 1000,
            after_ms: after_secs * 1000,
        })
    }

    /// A desktop notification.
    pub fn popup(title: &str, message: &str) -> Action {
        Action::Popup(t::Popup {
            title: title.into(),
            message: message.into(),
        })
    }

    /// An e-mail (recipients must be granted to the pack).
    pub fn email(to: &[&str], subject: &str, body: &str) -> Action {
        Action::Email(t::Email {
            to: to.iter().map(|s| s.to_string()).collect(),
            subject: subject.into(),
            body: body.into(),
        })
    }

    /// A signed JSON POST (the URL must be granted to the pack).
    pub fn webhook(url: &str) -> Action {
        Action::Webhook(t::Webhook { url: url.into() })
    }

    /// End the focused application after `after_secs`, warning first when given.
    pub fn terminate(after_secs: u32, warn: Option<&str>) -> Action {
        Action::Terminate(t::Terminate {
            after_ms: after_secs * 1000,
            warn: warn.map(Into::into),
        })
    }
}

/// Sends a panic's message and place to the agent's log before the abort that ends the call
/// (as Zellij's SDK does): otherwise the fault reads as the trap it ends in, `unreachable`.
/// [`export!`] installs it on the first call.
#[doc(hidden)]
pub fn __install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic without a message".to_string()
            };
            let place = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "an unknown place".into());
            host::log(LogLevel::Error, &format!("panicked at {place}: {message}"));
        }));
    });
}

/// The host's log and clock.
pub mod host {
    use super::LogLevel;
    use super::bindings::vigilo::alarms::host;

    /// Writes a line to the agent's log.
    pub fn log(level: LogLevel, message: &str) {
        host::log(level, message)
    }

    /// Milliseconds since 1970-01-01 UTC: the recording's clock in replay.
    pub fn now_ms() -> i64 {
        host::now()
    }
}

/// The key-value state the agent keeps for the plugin, across restarts.
pub mod state {
    use super::bindings::vigilo::alarms::host;

    /// The bytes under `key`.
    pub fn get(key: &str) -> Option<Vec<u8>> {
        host::state_get(key)
    }

    /// Stores bytes under `key`; fails when the plugin's state cap would be exceeded.
    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        host::state_set(key, value)
    }

    /// Removes `key`.
    pub fn delete(key: &str) {
        host::state_delete(key)
    }

    /// A number stored with [`set_u64`].
    pub fn get_u64(key: &str) -> Option<u64> {
        get(key).and_then(|b| Some(u64::from_le_bytes(b.try_into().ok()?)))
    }

    /// Stores a number.
    pub fn set_u64(key: &str, value: u64) -> Result<(), String> {
        set(key, &value.to_le_bytes())
    }
}

/// Reading the simple `key = value` configurations plugins usually take (a TOML subset:
/// numbers, "strings" and ["lists", "of", "strings"], one per line, `#` comments).
pub mod config {
    fn value<'a>(config: &'a str, key: &str) -> Option<(usize, &'a str)> {
        config.lines().enumerate().find_map(|(i, line)| {
            let line = line.split('#').next()?.trim();
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| (i + 1, v.trim()))
        })
    }

    /// The number under `key`, if present.
    pub fn number(config: &str, key: &str) -> Result<Option<f64>, String> {
        match value(config, key) {
            None => Ok(None),
            Some((line, v)) => v
                .replace('_', "")
                .parse()
                .map(Some)
                .map_err(|_| format!("line {line}: `{key}` must be a number, found {v}")),
        }
    }

    /// The list of strings under `key` (empty if absent).
    pub fn strings(config: &str, key: &str) -> Result<Vec<String>, String> {
        let Some((line, v)) = value(config, key) else {
            return Ok(Vec::new());
        };
        let inner = v
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .ok_or_else(|| format!("line {line}: `{key}` must be a list like [\"a\", \"b\"]"))?;
        inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .map(str::to_string)
                    .ok_or_else(|| format!("line {line}: `{key}` items must be \"quoted\""))
            })
            .collect()
    }
}

#[doc(hidden)]
pub mod __private {
    pub use std::cell::RefCell;
}

/// Exports a [`Plugin`] type as the component's `describe`, `configure` and `on-event`.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: $crate::__private::RefCell<$plugin> =
                    $crate::__private::RefCell::new(<$plugin as ::core::default::Default>::default());
            }
            struct Exports;
            impl $crate::bindings::Guest for Exports {
                fn describe() -> $crate::PluginInfo {
                    $crate::__install_panic_hook();
                    <$plugin as $crate::Plugin>::describe()
                }
                fn configure(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__install_panic_hook();
                    PLUGIN.with(|p| $crate::Plugin::configure(&mut *p.borrow_mut(), &config))
                }
                fn on_event(
                    event: $crate::bindings::vigilo::alarms::types::Event,
                ) -> ::std::vec::Vec<$crate::Triggered> {
                    $crate::__install_panic_hook();
                    let event = $crate::Event::from(event);
                    PLUGIN.with(|p| $crate::Plugin::on_event(&mut *p.borrow_mut(), &event))
                }
            }
            $crate::bindings::export_rule_plugin!(Exports with_types_in $crate::bindings);
        };
    };
}
