//! Which toplevel has focus, from what a compositor says of its toplevels.
//!
//! Wayland has no "active window" property to read: a compositor that speaks
//! `wlr-foreign-toplevel-management` tells a client of every toplevel (its title, app id and
//! state: activated, maximized…) as each changes, and closes each batch of changes with `done`.
//! [`Toplevels`] keeps what was said and answers, at each `done`, whether the focused toplevel
//! or its title changed — the same "one event per change of focus or title" the X11 source
//! gives. It knows nothing of the protocol's objects, so it is tested without a compositor.

use std::collections::HashMap;

/// A toplevel's identity for as long as it lives (the protocol object's id).
pub(crate) type ToplevelId = u32;

/// The most toplevels followed at once: far more than a person opens, and a bound on what a
/// compositor that announces without end can make the agent keep. Past it, new ones are not
/// followed (and never reported) until others close.
pub(crate) const MAX_TOPLEVELS: usize = 4096;

/// What one toplevel said, as of its last `done`, and what it is saying now.
#[derive(Debug, Default, Clone)]
struct Toplevel {
    title: String,
    app_id: String,
    activated: bool,
    pending: Pending,
}

/// Changes said since the last `done`: applied together, as the protocol asks.
#[derive(Debug, Default, Clone)]
struct Pending {
    title: Option<String>,
    app_id: Option<String>,
    activated: Option<bool>,
}

/// The toplevel in front, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Focused {
    /// Which toplevel.
    pub(crate) id: ToplevelId,
    /// Its title.
    pub(crate) title: String,
    /// Its app id (the Wayland counterpart of X11's `WM_CLASS`), empty when it set none.
    pub(crate) app_id: String,
}

/// Every toplevel a compositor told of, and which one has focus.
#[derive(Debug, Default)]
pub(crate) struct Toplevels {
    all: HashMap<ToplevelId, Toplevel>,
    focused: Option<ToplevelId>,
    /// What was reported last, so that repeats are not.
    last: Option<(ToplevelId, String)>,
}

impl Toplevels {
    /// A toplevel the compositor just announced.
    pub(crate) fn opened(&mut self, id: ToplevelId) {
        if self.all.len() < MAX_TOPLEVELS {
            self.all.insert(id, Toplevel::default());
        }
    }

    /// Its title, from the next `done` on.
    pub(crate) fn title(&mut self, id: ToplevelId, title: String) {
        if let Some(t) = self.all.get_mut(&id) {
            t.pending.title = Some(title);
        }
    }

    /// Its app id, from the next `done` on.
    pub(crate) fn app_id(&mut self, id: ToplevelId, app_id: String) {
        if let Some(t) = self.all.get_mut(&id) {
            t.pending.app_id = Some(app_id);
        }
    }

    /// Whether it is activated (has focus), from the next `done` on.
    pub(crate) fn activated(&mut self, id: ToplevelId, activated: bool) {
        if let Some(t) = self.all.get_mut(&id) {
            t.pending.activated = Some(activated);
        }
    }

    /// The end of a batch of changes to `id`: what is in front now, if that differs from what
    /// was reported last (another toplevel, or the same one retitled).
    pub(crate) fn done(&mut self, id: ToplevelId) -> Option<Focused> {
        let t = self.all.get_mut(&id)?;
        let pending = std::mem::take(&mut t.pending);
        if let Some(title) = pending.title {
            t.title = title;
        }
        if let Some(app_id) = pending.app_id {
            t.app_id = app_id;
        }
        if let Some(activated) = pending.activated {
            t.activated = activated;
        }
        if t.activated {
            self.focused = Some(id);
        } else if self.focused == Some(id) {
            self.focused = None;
        }
        self.report()
    }

    /// A toplevel that is gone.
    pub(crate) fn closed(&mut self, id: ToplevelId) {
        self.all.remove(&id);
        if self.focused == Some(id) {
            self.focused = None;
        }
    }

    /// The focused toplevel, unless it is what was reported last.
    fn report(&mut self) -> Option<Focused> {
        let id = self.focused?;
        let t = self.all.get(&id)?;
        let now = (id, t.title.clone());
        if self.last.as_ref() == Some(&now) {
            return None;
        }
        self.last = Some(now);
        Some(Focused {
            id,
            title: t.title.clone(),
            app_id: t.app_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(t: &mut Toplevels, id: ToplevelId, title: &str, activated: bool) -> Option<Focused> {
        t.opened(id);
        t.title(id, title.into());
        t.app_id(id, "foot".into());
        t.activated(id, activated);
        t.done(id)
    }

    #[test]
    fn focus_moving_between_toplevels_is_reported_once_per_move() {
        let mut t = Toplevels::default();
        assert_eq!(open(&mut t, 1, "one", false), None, "not in front");
        let two = open(&mut t, 2, "two", true).expect("focused");
        assert_eq!(
            (two.id, two.title.as_str(), two.app_id.as_str()),
            (2, "two", "foot")
        );
        // Focus moves: the compositor deactivates one and activates the other, each in its
        // own batch; only the activation is news.
        t.activated(2, false);
        assert_eq!(t.done(2), None);
        t.activated(1, true);
        assert_eq!(t.done(1).map(|f| f.title), Some("one".into()));
        // A state change that is not about focus (maximized) repeats nothing.
        t.activated(1, true);
        assert_eq!(t.done(1), None);
    }

    #[test]
    fn a_retitled_focused_toplevel_is_news_and_a_retitled_background_one_is_not() {
        let mut t = Toplevels::default();
        open(&mut t, 1, "back", false);
        open(&mut t, 2, "front", true);
        t.title(1, "back, retitled".into());
        assert_eq!(t.done(1), None);
        t.title(2, "front, retitled".into());
        assert_eq!(t.done(2).map(|f| f.title), Some("front, retitled".into()));
    }

    #[test]
    fn changes_apply_at_done_and_a_closed_toplevel_leaves_nothing_in_front() {
        let mut t = Toplevels::default();
        open(&mut t, 1, "a", true);
        t.title(1, "b".into());
        t.closed(1);
        assert_eq!(t.done(1), None, "gone before its done");
        assert_eq!(open(&mut t, 3, "c", true).map(|f| f.id), Some(3));
        // Unknown toplevels (never announced) are ignored, not a panic.
        t.title(9, "x".into());
        assert_eq!(t.done(9), None);
    }

    #[test]
    fn a_compositor_announcing_without_end_is_followed_only_up_to_the_bound() {
        let mut t = Toplevels::default();
        for id in 0..(MAX_TOPLEVELS as u32 + 1000) {
            t.opened(id);
        }
        assert_eq!(t.all.len(), MAX_TOPLEVELS);
        let past = MAX_TOPLEVELS as u32 + 10;
        assert_eq!(open(&mut t, past, "over", true), None, "not followed");
        t.closed(0);
        assert_eq!(open(&mut t, past, "room", true).map(|f| f.id), Some(past));
    }
}
