//! What is in front of the person now, as the pipeline last saw it: actions that go on over
//! time (a series of screenshots) stop when the window changes or the person goes idle.

use std::sync::{Arc, Mutex};

use crate::event::{Event, EventKind, Field};

/// The window in front and whether anyone is there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presence {
    /// The focused window's title.
    pub title: Option<String>,
    /// Its program.
    pub executable: Option<String>,
    /// No keyboard or mouse input for the idle time.
    pub idle: bool,
}

/// Shared between the pipeline (writer) and the action worker (reader).
#[derive(Debug, Clone, Default)]
pub struct SharedPresence(Arc<Mutex<Presence>>);

impl SharedPresence {
    /// Notes an activity event's window (other kinds change nothing).
    pub fn saw(&self, event: &Event) {
        if event.kind() != EventKind::Activity {
            return;
        }
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.title = event.text(Field::Title).map(str::to_string);
        p.executable = event.text(Field::Executable).map(str::to_string);
    }

    /// Notes that the person went idle (true) or came back (false).
    pub fn idle(&self, idle: bool) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).idle = idle;
    }

    /// Now.
    pub fn now(&self) -> Presence {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Why a series started for `event` should stop now, if it should.
    pub fn moved_on_from(&self, event: &Event) -> Option<&'static str> {
        let now = self.now();
        if now.idle {
            return Some("the person went idle");
        }
        let activity = event.kind() == EventKind::Activity;
        if activity
            && (now.title.as_deref() != event.text(Field::Title)
                || now.executable.as_deref() != event.text(Field::Executable))
        {
            return Some("the window changed");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_stops_when_the_window_changes_or_the_person_leaves() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        let window = |t: &str| Event::new(EventKind::Activity, at).with_text(Field::Title, t);
        let presence = SharedPresence::default();
        let youtube = window("YouTube");
        presence.saw(&youtube);
        assert_eq!(presence.moved_on_from(&youtube), None);
        presence.saw(&Event::new(EventKind::Usb, at));
        assert_eq!(
            presence.moved_on_from(&youtube),
            None,
            "a USB event moves no window"
        );
        presence.saw(&window("Mail"));
        assert_eq!(presence.moved_on_from(&youtube), Some("the window changed"));
        presence.saw(&youtube);
        presence.idle(true);
        assert_eq!(
            presence.moved_on_from(&youtube),
            Some("the person went idle")
        );
    }
}
