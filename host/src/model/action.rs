//! The action vocabulary: what an alarm may ask for, each action's parameters and limits, and
//! the lane it waits in.
//!
//! One type, generic over its text, serves every stage: a pack's alarm holds [`ActionSpec`]s
//! (templates as written), a fired alarm [`PlannedAction`]s (templates filled from the event),
//! and the same serde form is what the store keeps and the API shows. Limits are checked here,
//! once, whoever asks: a pack's TOML (read in `packs`) or a plugin's answer at run time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::template::{FiringContext, Template};

/// Actions about the person at this desktop: its screen, its windows. A setup change (an
/// account event: a pack uploaded through the console, a plugin switched off) is the admin's,
/// made elsewhere, so these are recorded as skipped for it, never performed on whoever sits here.
pub const ON_THIS_DESKTOP: &[&str] = &["screenshot", "video", "popup", "terminate"];

/// The actions the running agent performs, each queued in the store's outbox with its alarm.
pub const PERFORMED: &[&str] = &[
    "webhook",
    "screenshot",
    "video",
    "terminate",
    "popup",
    "email",
];

/// The action names a pack may use.
pub const ACTION_NAMES: [&str; 6] = [
    "screenshot",
    "video",
    "popup",
    "email",
    "webhook",
    "terminate",
];

/// Most screenshots one alarm may ask for in one span.
pub const MAX_SCREENSHOTS: u32 = 100;
/// Shortest interval between screenshots of a series.
pub const MIN_SCREENSHOT_INTERVAL: Duration = Duration::from_secs(10);
/// Pre- and post-roll of a video unless the alarm says otherwise.
pub const DEFAULT_VIDEO_SIDE: Duration = Duration::from_secs(15);
/// Longest pre- or post-roll of a video.
pub const MAX_VIDEO_SIDE: Duration = Duration::from_secs(300);
/// Longest delay before terminating an application.
pub const MAX_TERMINATE_DELAY: Duration = Duration::from_secs(3600);

/// One action, generic over its text: [`Template`] in a loaded alarm, `String` once planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action<T> {
    /// Capture the screen `count` times, `interval` apart (stops early when the user switches
    /// window or goes idle).
    Screenshot {
        /// How many screenshots (1–100).
        count: u32,
        /// Time between them (≥ 10 s).
        #[serde(with = "humantime_serde_str")]
        interval: Duration,
    },
    /// Save a screen video from `before` the trigger to `after` it.
    Video {
        /// Pre-roll (default 15 s).
        #[serde(with = "humantime_serde_str")]
        before: Duration,
        /// Post-roll (default 15 s).
        #[serde(with = "humantime_serde_str")]
        after: Duration,
    },
    /// Show a desktop notification to the user.
    Popup {
        /// Notification title.
        title: T,
        /// Notification body.
        message: T,
    },
    /// Send an e-mail.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// Subject line.
        subject: T,
        /// Body text.
        body: T,
    },
    /// POST the alarm as signed JSON to a URL.
    Webhook {
        /// Destination (http or https).
        url: String,
    },
    /// End the application, after `after` if it still has focus, warning first if asked.
    Terminate {
        /// Grace period (0 = now).
        #[serde(with = "humantime_serde_str")]
        after: Duration,
        /// Warning shown to the user before terminating.
        warn: Option<T>,
    },
}

/// An action as it will be performed: placeholders filled from the event.
pub type PlannedAction = Action<String>;

/// An action as a pack declares it.
pub type ActionSpec = Action<Template>;

/// Durations in planned actions: `"1m 30s"`, readable in JSON and in the store.
mod humantime_serde_str {
    use std::time::Duration;

    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl<T> Action<T> {
    /// The action's name as written in packs.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Screenshot { .. } => "screenshot",
            Action::Video { .. } => "video",
            Action::Popup { .. } => "popup",
            Action::Email { .. } => "email",
            Action::Webhook { .. } => "webhook",
            Action::Terminate { .. } => "terminate",
        }
    }
}

impl Action<String> {
    /// The queue this action waits in: its kind, and for a webhook its endpoint's origin too.
    /// Actions of different lanes never wait for each other, so a slow SIEM cannot make a
    /// screenshot, a pop-up or a terminate late, nor hold back another endpoint.
    pub fn lane(&self) -> String {
        match self {
            Action::Webhook { url } => match url::Url::parse(url) {
                Ok(u) => format!(
                    "webhook {}://{}:{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or_default()
                ),
                Err(_) => "webhook".into(),
            },
            other => other.name().into(),
        }
    }
}

impl<T> Action<T> {
    /// The same action with each text turned into another form by `f`.
    pub fn map_text<U>(&self, f: impl Fn(&T) -> U) -> Action<U> {
        match self {
            Action::Screenshot { count, interval } => Action::Screenshot {
                count: *count,
                interval: *interval,
            },
            Action::Video { before, after } => Action::Video {
                before: *before,
                after: *after,
            },
            Action::Popup { title, message } => Action::Popup {
                title: f(title),
                message: f(message),
            },
            Action::Email { to, subject, body } => Action::Email {
                to: to.clone(),
                subject: f(subject),
                body: f(body),
            },
            Action::Webhook { url } => Action::Webhook { url: url.clone() },
            Action::Terminate { after, warn } => Action::Terminate {
                after: *after,
                warn: warn.as_ref().map(f),
            },
        }
    }
}

impl ActionSpec {
    /// Fills the templates for one firing.
    pub fn plan(&self, ctx: &FiringContext<'_>) -> PlannedAction {
        self.map_text(|t| t.render(ctx))
    }

    /// The action with its templates as written, for display.
    pub fn as_written(&self) -> PlannedAction {
        self.map_text(|t| t.source().to_string())
    }
}

impl<T> Action<T> {
    /// Checks the limits every action must respect, wherever it comes from (a pack's TOML or a
    /// plugin's answer): screenshot count and interval, video length, e-mail addresses, webhook
    /// URL, terminate delay.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Action::Screenshot { count, interval } => {
                if !(1..=MAX_SCREENSHOTS).contains(count) {
                    return Err(format!(
                        "screenshot: count must be 1 to {MAX_SCREENSHOTS}, found {count}"
                    ));
                }
                if *interval < MIN_SCREENSHOT_INTERVAL {
                    return Err(format!(
                        "screenshot: interval must be at least 10s, found {}",
                        humantime::format_duration(*interval)
                    ));
                }
            }
            Action::Video { before, after } => {
                for (key, d) in [("before", before), ("after", after)] {
                    if *d > MAX_VIDEO_SIDE {
                        return Err(format!("video: {key} must be at most 5m"));
                    }
                }
            }
            Action::Email { to, .. } => {
                if to.is_empty() {
                    return Err("email: `to` needs at least one address".into());
                }
                if let Some(bad) = to.iter().find(|a| !looks_like_address(a)) {
                    return Err(format!("email: {bad:?} is not an e-mail address"));
                }
            }
            Action::Webhook { url } => {
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if !rest.is_some_and(|host| !host.is_empty() && !host.starts_with('/')) {
                    return Err(format!(
                        "webhook: url must start with https:// or http:// and name a host, \
                         found {url:?}"
                    ));
                }
            }
            Action::Terminate { after, .. } => {
                if *after > MAX_TERMINATE_DELAY {
                    return Err("terminate: after must be at most 1h".into());
                }
            }
            Action::Popup { .. } => {}
        }
        Ok(())
    }
}

fn looks_like_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !a.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_actions_serialise_with_readable_durations() {
        let a: PlannedAction = Action::Screenshot {
            count: 3,
            interval: Duration::from_secs(90),
        };
        assert_eq!(
            serde_json::to_string(&a).expect("json"),
            r#"{"screenshot":{"count":3,"interval":"1m 30s"}}"#
        );
    }
}
