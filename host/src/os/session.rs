//! Which kind of desktop this process was started in: an X server or a Wayland compositor.
//!
//! Asked by the activity source (which window has focus) and by the screenshot and video actions
//! (which screen to read): both must agree, because a Wayland session usually runs Xwayland too,
//! and its `DISPLAY` shows none of the Wayland windows.

/// Which kind of desktop a session runs, and what said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// An X server (`DISPLAY`).
    X11,
    /// A Wayland compositor (`WAYLAND_DISPLAY`, or `XDG_SESSION_TYPE=wayland`).
    Wayland,
}

impl Session {
    /// The session described by these variables (`XDG_SESSION_TYPE`, `WAYLAND_DISPLAY`,
    /// `DISPLAY`), with the reason shown in the status. A Wayland session wins over the
    /// `DISPLAY` its Xwayland sets: on Wayland, X11 sees only Xwayland's windows.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> (Session, String) {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        if let Some(socket) = set("WAYLAND_DISPLAY") {
            return (Session::Wayland, format!("WAYLAND_DISPLAY={socket}"));
        }
        if set("XDG_SESSION_TYPE").as_deref() == Some("wayland") {
            return (Session::Wayland, "XDG_SESSION_TYPE=wayland".into());
        }
        match set("DISPLAY") {
            Some(display) => (Session::X11, format!("DISPLAY={display}")),
            None => (Session::X11, "no WAYLAND_DISPLAY".into()),
        }
    }

    /// The session this process runs in, from its environment, with the reason.
    pub fn here() -> (Session, String) {
        Session::from_vars(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(vars: &[(&str, &str)]) -> (Session, String) {
        Session::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn a_wayland_session_is_watched_through_the_compositor_even_with_xwayland_display_set() {
        assert_eq!(
            session(&[("WAYLAND_DISPLAY", "wayland-1"), ("DISPLAY", ":0")]),
            (Session::Wayland, "WAYLAND_DISPLAY=wayland-1".into())
        );
        assert_eq!(
            session(&[("XDG_SESSION_TYPE", "wayland"), ("DISPLAY", ":0")]).0,
            Session::Wayland
        );
        assert_eq!(
            session(&[("DISPLAY", ":0"), ("WAYLAND_DISPLAY", "")]),
            (Session::X11, "DISPLAY=:0".into())
        );
        assert_eq!(
            session(&[]).0,
            Session::X11,
            "X11 says why it has no display"
        );
    }
}
