//! Pop-ups: a desktop notification on the user's session bus (the freedesktop Notifications
//! interface, through notify-rust's pure-Rust zbus backend), shown by whatever notification
//! daemon the desktop runs.

use notify_rust::{Notification, Timeout, Urgency};

/// How a pop-up asks for attention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flavour {
    /// Information: goes away after a while.
    Notice,
    /// A warning before something happens (a terminate): stays until dismissed.
    Warning,
}

/// Shows a notification; says which one the desktop made of it, or why there was none.
pub fn show(title: &str, message: &str, flavour: Flavour) -> Result<String, String> {
    let mut notification = Notification::new();
    notification
        .appname("vigilo")
        .summary(title)
        .body(message)
        .icon("dialog-warning");
    match flavour {
        Flavour::Notice => notification
            .urgency(Urgency::Normal)
            .timeout(Timeout::Milliseconds(15_000)),
        Flavour::Warning => notification
            .urgency(Urgency::Critical)
            .timeout(Timeout::Never),
    };
    let handle = notification
        .show()
        .map_err(|e| format!("no desktop notification: {e}"))?;
    Ok(format!("shown as notification {}", handle.id()))
}
