//! Actions as packs write them: a table with one key naming the action,
//! `{ screenshot = { count = 3, interval = "10s" } }`, read into the shared vocabulary
//! ([`crate::model::action`]) with defaults filled and every limit checked.

use std::time::Duration;

use serde::Deserialize;

use crate::model::action::{
    ACTION_NAMES, Action, ActionSpec, DEFAULT_VIDEO_SIDE, MIN_SCREENSHOT_INTERVAL,
};
use crate::model::template::Template;

/// Reads one action from its pack form, a table with one key naming the action:
/// `{ screenshot = { count = 3, interval = "10s" } }`. The error says what was expected.
pub(crate) fn parse_action(value: &toml::Value) -> Result<ActionSpec, String> {
    let table = value.as_table().ok_or_else(|| {
        format!(
            "an action is a table with one key, e.g. {{ popup = {{ message = \"…\" }} }}; \
             found {}",
            value.type_str()
        )
    })?;
    let mut entries = table.iter();
    let (Some((name, params)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "an action is a table with exactly one key (one of {}), found {} keys",
            ACTION_NAMES.join(", "),
            table.len()
        ));
    };
    let params = params.clone();
    let decode_err = |e: toml::de::Error| format!("{name}: {}", e.message().trim());
    let action = match name.as_str() {
        "screenshot" => {
            let p: ScreenshotParams = params.try_into().map_err(decode_err)?;
            Action::Screenshot {
                count: p.count.unwrap_or(1),
                interval: parse_duration("screenshot", "interval", p.interval.as_ref())?
                    .unwrap_or(MIN_SCREENSHOT_INTERVAL),
            }
        }
        "video" => {
            let p: VideoParams = params.try_into().map_err(decode_err)?;
            let side = |key, v: Option<&DurationValue>| {
                parse_duration("video", key, v).map(|d| d.unwrap_or(DEFAULT_VIDEO_SIDE))
            };
            Action::Video {
                before: side("before", p.before.as_ref())?,
                after: side("after", p.after.as_ref())?,
            }
        }
        "popup" => {
            let p: PopupParams = params.try_into().map_err(decode_err)?;
            Action::Popup {
                title: template("popup", "title", p.title.as_deref().unwrap_or("{{alarm}}"))?,
                message: template("popup", "message", &p.message)?,
            }
        }
        "email" => {
            let p: EmailParams = params.try_into().map_err(decode_err)?;
            Action::Email {
                to: p.to,
                subject: template(
                    "email",
                    "subject",
                    p.subject
                        .as_deref()
                        .unwrap_or("vigilo: {{alarm}} ({{user}})"),
                )?,
                body: template(
                    "email",
                    "body",
                    p.body
                        .as_deref()
                        .unwrap_or("{{alarm}} fired for {{user}} on {{computer}} at {{ts}}."),
                )?,
            }
        }
        "webhook" => {
            let p: WebhookParams = params.try_into().map_err(decode_err)?;
            Action::Webhook { url: p.url }
        }
        "terminate" => {
            let p: TerminateParams = params.try_into().map_err(decode_err)?;
            Action::Terminate {
                after: parse_duration("terminate", "after", p.after.as_ref())?.unwrap_or_default(),
                warn: p
                    .warn
                    .map(|w| template("terminate", "warn", &w))
                    .transpose()?,
            }
        }
        other => {
            return Err(format!(
                "unknown action `{other}`; expected one of {}",
                ACTION_NAMES.join(", ")
            ));
        }
    };
    action.check()?;
    Ok(action)
}

fn template(action: &str, key: &str, text: &str) -> Result<Template, String> {
    Template::parse(text).map_err(|e| format!("{action}: {key}: {e}"))
}

/// A duration as packs write it: `"10s"`, `"1m30s"`, or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Text(String),
    Seconds(u64),
}

/// Parses a duration, `humantime` syntax (`10s`, `5m`, `1h30m`) or whole seconds.
pub fn parse_duration_text(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like \"10s\", \"5m\" or \"1h30m\" ({e})"))
}

fn parse_duration(
    action: &str,
    key: &str,
    v: Option<&DurationValue>,
) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(DurationValue::Seconds(s)) => Ok(Some(Duration::from_secs(*s))),
        Some(DurationValue::Text(t)) => parse_duration_text(t)
            .map(Some)
            .map_err(|e| format!("{action}: {key}: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenshotParams {
    count: Option<u32>,
    interval: Option<DurationValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoParams {
    before: Option<DurationValue>,
    after: Option<DurationValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PopupParams {
    title: Option<String>,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailParams {
    to: Vec<String>,
    subject: Option<String>,
    body: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookParams {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminateParams {
    after: Option<DurationValue>,
    warn: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<ActionSpec, String> {
        let v: toml::Value = toml::from_str(&format!("a = {text}")).expect("toml");
        parse_action(&v["a"])
    }

    #[test]
    fn reads_every_action_with_defaults() {
        assert_eq!(
            spec("{ screenshot = {} }").expect("ok"),
            Action::Screenshot {
                count: 1,
                interval: Duration::from_secs(10)
            }
        );
        assert_eq!(
            spec(r#"{ screenshot = { count = 3, interval = "1m" } }"#).expect("ok"),
            Action::Screenshot {
                count: 3,
                interval: Duration::from_secs(60)
            }
        );
        assert!(matches!(
            spec("{ video = { before = 5 } }").expect("ok"),
            Action::Video { before, after } if before.as_secs() == 5 && after.as_secs() == 15
        ));
        assert!(matches!(
            spec(r#"{ popup = { message = "hi {{user}}" } }"#),
            Ok(Action::Popup { .. })
        ));
        assert!(matches!(
            spec(r#"{ email = { to = ["sec@example.com"] } }"#),
            Ok(Action::Email { .. })
        ));
        assert!(matches!(
            spec(r#"{ webhook = { url = "https://siem.example/hook" } }"#),
            Ok(Action::Webhook { .. })
        ));
        assert!(matches!(
            spec(r#"{ terminate = { after = "30s", warn = "closing {{executable}}" } }"#),
            Ok(Action::Terminate { warn: Some(_), .. })
        ));
    }

    #[test]
    fn rejects_out_of_range_and_unknown_parameters() {
        let cases = [
            ("{ screenshot = { count = 101 } }", "1 to 100"),
            (r#"{ screenshot = { interval = "5s" } }"#, "at least 10s"),
            (
                r#"{ screenshot = { interval = "soon" } }"#,
                "not a duration",
            ),
            ("{ screenshot = { cnt = 1 } }", "unknown field `cnt`"),
            ("{ video = { before = 600 } }", "at most 5m"),
            ("{ popup = {} }", "missing field `message`"),
            (
                r#"{ popup = { message = "{{nope}}" } }"#,
                "unknown placeholder",
            ),
            (r#"{ email = { to = [] } }"#, "at least one"),
            (r#"{ email = { to = ["bob"] } }"#, "not an e-mail address"),
            (r#"{ webhook = { url = "ftp://x" } }"#, "https://"),
            (r#"{ terminate = { after = "2h" } }"#, "at most 1h"),
            (r#"{ explode = {} }"#, "unknown action `explode`"),
            (
                r#"{ popup = { message = "a" }, video = {} }"#,
                "exactly one key",
            ),
            (r#""screenshot""#, "table with one key"),
        ];
        for (text, expected) in cases {
            let err = spec(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
