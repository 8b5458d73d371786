//! Between Rhai values and the contract: configuration in, triggered alarms out, state both ways.
//!
//! A script's answer is read into the contract's own types and checked by the same code that
//! checks a WASM plugin's (`rules::wasm::convert`), so both obey one set of rules and errors
//! name fields the same way (`triggered[0].risk: …`).

use rhai::{Array, Dynamic, Map};

use crate::rules::program::State;
use crate::rules::wasm::bindings::vigilo::alarms::types as wit;

/// The pack's TOML configuration text as a Rhai map.
pub(super) fn config_to_map(text: &str) -> Result<Dynamic, String> {
    let map: Dynamic = toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            })
            .unwrap_or_default();
        format!("configuration: {place}{}", e.message().trim())
    })?;
    Ok(map)
}

/// What `on_event` returned: an array of alarm maps, one map, or `()` for none.
pub(super) fn triggered(value: Dynamic) -> Result<Vec<wit::Triggered>, String> {
    if value.is_unit() {
        return Ok(Vec::new());
    }
    if value.is_map() {
        return Ok(vec![alarm(value).map_err(|e| format!("triggered[0].{e}"))?]);
    }
    let Some(list) = value.clone().try_cast::<Array>() else {
        return Err(format!(
            "on_event must return an array of alarms (maps), one map, or (); found {}",
            value.type_name()
        ));
    };
    list.into_iter()
        .enumerate()
        .map(|(i, a)| alarm(a).map_err(|e| format!("triggered[{i}].{e}")))
        .collect()
}

/// A map's fields, refusing any the contract does not have.
struct Fields {
    map: Map,
}

impl Fields {
    fn of(value: Dynamic, what: &str, known: &[&str]) -> Result<Fields, String> {
        let type_name = value.type_name();
        let Some(map) = value.try_cast::<Map>() else {
            return Err(format!("{what}: expected a map, found {type_name}"));
        };
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "{what}.{k}: unknown field; expected one of {}",
                known.join(", ")
            ));
        }
        Ok(Fields { map })
    }

    fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    fn text(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => Err(format!("{key}: expected a string, found {}", v.type_name())),
        }
    }

    fn required_text(&mut self, key: &str) -> Result<String, String> {
        self.text(key)?
            .ok_or_else(|| format!("{key}: missing (a string)"))
    }

    fn int(&mut self, key: &str, default: i64, max: i64) -> Result<i64, String> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => match v.as_int() {
                Ok(n) if (0..=max).contains(&n) => Ok(n),
                Ok(n) => Err(format!("{key}: must be 0 to {max}, found {n}")),
                Err(t) => Err(format!("{key}: expected an integer, found {t}")),
            },
        }
    }

    /// Milliseconds, as the contract counts them.
    fn ms(&mut self, key: &str, default: u32) -> Result<u32, String> {
        // Capped at u32 by the contract; the action rules check the real bounds.
        self.int(key, i64::from(default), i64::from(u32::MAX))
            .map(|n| n as u32)
    }
}

fn alarm(value: Dynamic) -> Result<wit::Triggered, String> {
    let mut f = Fields::of(value, "alarm", &["alarm", "risk", "actions", "note"]).map_err(|e| {
        e.trim_start_matches("alarm")
            .trim_start_matches('.')
            .to_string()
    })?;
    let alarm = f.required_text("alarm")?;
    let risk = match f.take("risk") {
        None => return Err("risk: missing (1 to 10)".into()),
        Some(v) => match v.as_int() {
            // Out of range is reported by the shared check, with the value found.
            Ok(n) => n.clamp(0, 255) as u8,
            Err(t) => return Err(format!("risk: expected an integer, found {t}")),
        },
    };
    let actions = match f.take("actions") {
        None => Vec::new(),
        Some(v) => {
            let type_name = v.type_name();
            let list = v
                .try_cast::<Array>()
                .ok_or_else(|| format!("actions: expected an array, found {type_name}"))?;
            list.into_iter()
                .enumerate()
                .map(|(i, a)| action(a).map_err(|e| format!("actions[{i}].{e}")))
                .collect::<Result<_, _>>()?
        }
    };
    let note = f.text("note")?;
    Ok(wit::Triggered {
        alarm,
        risk,
        actions,
        note,
    })
}

/// `#{ screenshot: #{ count: 3, interval_ms: 30000 } }` and the like: one key, the action's kind.
fn action(value: Dynamic) -> Result<wit::Action, String> {
    use crate::model::action::ACTION_NAMES as KINDS;
    let type_name = value.type_name();
    let map = value
        .try_cast::<Map>()
        .ok_or_else(|| format!("expected a map like #{{ popup: #{{...}} }}, found {type_name}"))?;
    let mut entries = map.into_iter();
    let (Some((kind, params)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "an action is a map with one key, its kind: one of {}",
            KINDS.join(", ")
        ));
    };
    let kind = kind.as_str();
    let known: &[&str] = match kind {
        "screenshot" => &["count", "interval_ms"],
        "video" => &["before_ms", "after_ms"],
        "popup" => &["title", "message"],
        "email" => &["to", "subject", "body"],
        "webhook" => &["url"],
        "terminate" => &["after_ms", "warn"],
        other => {
            return Err(format!(
                "{other}: unknown action; expected one of {}",
                KINDS.join(", ")
            ));
        }
    };
    let params = if params.is_unit() {
        Dynamic::from_map(Map::new())
    } else {
        params
    };
    let mut f = Fields::of(params, kind, known)?;
    let at = |e: String| format!("{kind}.{e}");
    Ok(match kind {
        "screenshot" => wit::Action::Screenshot(wit::Screenshot {
            count: f.int("count", 1, 1000).map_err(at)? as u32,
            interval_ms: f.ms("interval_ms", 10_000).map_err(at)?,
        }),
        "video" => wit::Action::Video(wit::Video {
            before_ms: f.ms("before_ms", 15_000).map_err(at)?,
            after_ms: f.ms("after_ms", 15_000).map_err(at)?,
        }),
        "popup" => wit::Action::Popup(wit::Popup {
            title: f.text("title").map_err(at)?.unwrap_or_default(),
            message: f.required_text("message").map_err(at)?,
        }),
        "email" => {
            let to = match f.take("to") {
                Some(v) if v.is_string() => vec![v.to_string()],
                Some(v) => {
                    let type_name = v.type_name();
                    v.try_cast::<Array>()
                        .filter(|a| a.iter().all(Dynamic::is_string))
                        .ok_or_else(|| at(format!("to: expected strings, found {type_name}")))?
                        .into_iter()
                        .map(|a| a.to_string())
                        .collect()
                }
                None => return Err(at("to: missing (recipients)".into())),
            };
            wit::Action::Email(wit::Email {
                to,
                subject: f.required_text("subject").map_err(at)?,
                body: f.text("body").map_err(at)?.unwrap_or_default(),
            })
        }
        "webhook" => wit::Action::Webhook(wit::Webhook {
            url: f.required_text("url").map_err(at)?,
        }),
        _ => wit::Action::Terminate(wit::Terminate {
            after_ms: f.ms("after_ms", 0).map_err(at)?,
            warn: f.text("warn").map_err(at)?,
        }),
    })
}

/// A script's `this` as the store keeps it: one JSON value per top-level key.
pub(super) fn state_to_store(this: &Dynamic) -> Result<State, String> {
    let Some(map) = this.read_lock::<Map>() else {
        return Err(format!(
            "`this` must stay a map, found {}",
            this.type_name()
        ));
    };
    map.iter()
        .map(|(k, v)| {
            serde_json::to_vec(v)
                .map(|bytes| (k.to_string(), bytes))
                .map_err(|e| format!("this.{k} cannot be kept: {e}"))
        })
        .collect()
}

/// A script's `this`, back from the store. Values that no longer parse are dropped with a
/// warning rather than stopping the script.
pub(super) fn state_from_store(state: &State, script: &str) -> Dynamic {
    let mut map = Map::new();
    for (k, v) in state {
        match serde_json::from_slice::<Dynamic>(v) {
            Ok(value) => {
                map.insert(k.as_str().into(), value);
            }
            Err(e) => tracing::warn!(script, key = %k, "stored state unreadable, dropped: {e}"),
        }
    }
    Dynamic::from_map(map)
}
