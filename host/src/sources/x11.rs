//! The focused window on an X11 desktop, as activity events.
//!
//! Event-driven, not polled: the source listens for `PropertyNotify` on the root window (the
//! window manager changes `_NET_ACTIVE_WINDOW` when focus moves) *and* on the focused window
//! (a browser's tab switch changes only its title, `_NET_WM_NAME` or `WM_NAME`). Each change of
//! focused window or title is one activity event, stamped when it happened: the sessions stage
//! turns these into spans whose duration grows with the clock.
//!
//! Fields: `title`, `pid` (`_NET_WM_PID`), `executable` and `username` (the process's, from
//! `/proc`), `description` (the application's name from its desktop entry, e.g. "Chromium Web
//! Browser", else the class from `WM_CLASS`; see [`crate::os::apps`]), `computer`,
//! `logon_domain` and `private_ip` (the machine's, when it has them; see [`process`]).

use x11rb::connection::Connection;
use x11rb::protocol::Event as XEvent;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt, EventMask, GetPropertyReply, Window,
};
use x11rb::rust_connection::RustConnection;

use std::sync::Arc;

use super::desktop::{Machine, Presence, WindowFacts, activity, clock, watching};
use super::{Running, Sink};
use crate::event::{Event, Field};

use crate::os::apps::AppNames;

/// The atoms the source reads.
struct Atoms {
    active_window: Atom,
    net_wm_name: Atom,
    net_wm_pid: Atom,
    utf8_string: Atom,
}

/// A connection to an X display, watching focus.
pub struct FocusWatch {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    machine: Machine,
    /// Applications' names from their desktop entries.
    apps: AppNames,
    /// The focused window, whose property changes are selected.
    focused: Option<Window>,
    /// The last (window, title) reported, so that repeats are not.
    last: Option<(Window, String)>,
    /// The focused window's process and program, read when it gained focus.
    facts: Option<(Window, WindowFacts)>,
}

impl FocusWatch {
    /// Connects to `display` (or `$DISPLAY`). The error says, for the admin, why there is no
    /// activity source.
    pub fn connect(display: Option<&str>) -> Result<FocusWatch, String> {
        let shown = display
            .map(str::to_string)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_else(|| "(none: $DISPLAY is not set)".into());
        let (conn, screen) = x11rb::connect(display)
            .map_err(|e| format!("cannot connect to X display {shown}: {e}"))?;
        let root = conn.setup().roots[screen].root;
        let intern = |name: &[u8]| -> Result<Atom, String> {
            let cookie = conn
                .intern_atom(false, name)
                .map_err(|e| format!("X display {shown}: {e}"))?;
            cookie
                .reply()
                .map(|r| r.atom)
                .map_err(|e| format!("X display {shown}: {e}"))
        };
        let atoms = Atoms {
            active_window: intern(b"_NET_ACTIVE_WINDOW")?,
            net_wm_name: intern(b"_NET_WM_NAME")?,
            net_wm_pid: intern(b"_NET_WM_PID")?,
            utf8_string: intern(b"UTF8_STRING")?,
        };
        let watch = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        let cannot_watch = |e: &dyn std::fmt::Display| {
            format!("X display {shown}: cannot watch the root window: {e}")
        };
        conn.change_window_attributes(root, &watch)
            .map_err(|e| cannot_watch(&e))?
            .check()
            .map_err(|e| cannot_watch(&e))?;
        Ok(FocusWatch {
            conn,
            root,
            atoms,
            machine: Machine::here(),
            focused: None,
            last: None,
            facts: None,
            apps: AppNames::from_env(),
        })
    }

    /// Reports the focused window now, then every change, to `emit` (with when the change was
    /// seen), until `emit` returns false
    /// or the display goes away (the error says why).
    pub fn run(
        mut self,
        mut emit: impl FnMut(Event, std::time::Instant) -> bool,
    ) -> Result<(), String> {
        if let Some(e) = self.refocus()?
            && !emit(e, std::time::Instant::now())
        {
            return Ok(());
        }
        loop {
            let event = self
                .conn
                .wait_for_event()
                .map_err(|e| format!("the X display went away: {e}"))?;
            // When the change reached us: reading the window's properties is part of the cost.
            let seen = std::time::Instant::now();
            let XEvent::PropertyNotify(change) = event else {
                continue;
            };
            let next = if change.window == self.root && change.atom == self.atoms.active_window {
                self.refocus()?
            } else if Some(change.window) == self.focused
                && (change.atom == self.atoms.net_wm_name
                    || change.atom == u32::from(AtomEnum::WM_NAME))
            {
                self.report(false)?
            } else {
                None
            };
            if let Some(e) = next
                && !emit(e, seen)
            {
                return Ok(());
            }
        }
    }

    /// Follows focus to the window `_NET_ACTIVE_WINDOW` names, watching its properties.
    fn refocus(&mut self) -> Result<Option<Event>, String> {
        let active = self
            .property32(self.root, self.atoms.active_window, AtomEnum::WINDOW.into())?
            .filter(|&w| w != x11rb::NONE);
        if active != self.focused
            && let Some(old) = self.focused
        {
            // The old window may be gone already; that is fine.
            let _ = self.conn.change_window_attributes(
                old,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT),
            );
        }
        // Selected again even when the ID is the one already focused: the X server reuses the
        // IDs of windows that are gone, so "the same" ID may be a new window (seen with a
        // browser started where a destroyed window's ID was still the active one).
        if let Some(new) = active {
            let _ = self.conn.change_window_attributes(
                new,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
            );
        }
        self.conn.flush().map_err(|e| e.to_string())?;
        self.focused = active;
        self.report(true)
    }

    /// An event for the focused window, unless it is what was reported last. The window's
    /// process, program and name are read once per focus (they do not change with its title);
    /// a title change costs one round trip to the X server.
    fn report(&mut self, refocused: bool) -> Result<Option<Event>, String> {
        let Some(window) = self.focused else {
            return Ok(None);
        };
        // Every request goes out before the first answer is awaited: one round trip, not four.
        let wants_facts = refocused || self.facts.as_ref().is_none_or(|(w, _)| *w != window);
        let (title, facts) = {
            let titles = self.request_titles(window)?;
            let facts = if wants_facts {
                let class = self.request(
                    window,
                    AtomEnum::WM_CLASS.into(),
                    AtomEnum::STRING.into(),
                    4096,
                )?;
                let pid =
                    self.request(window, self.atoms.net_wm_pid, AtomEnum::CARDINAL.into(), 1)?;
                Some((class, pid))
            } else {
                None
            };
            let title = read_titles(titles)?.unwrap_or_default();
            let facts = match facts {
                Some((class, pid)) => Some((
                    answer(class)?.and_then(|r| text_of(&r)),
                    answer(pid)?.and_then(|r| r.value32().and_then(|mut v| v.next())),
                )),
                None => None,
            };
            (title, facts)
        };
        if let Some((class, pid)) = facts {
            self.facts = Some((window, self.window_facts(class, pid)));
        }
        if self.last.as_ref() == Some(&(window, title.clone())) {
            return Ok(None);
        }
        self.last = Some((window, title.clone()));
        let event = activity(&self.machine, &title, self.facts.as_ref().map(|(_, f)| f));
        tracing::debug!(window, title = %title, pid = ?event.number(Field::Pid), "focused window");
        Ok(Some(event))
    }

    /// What the window's process and program are: `WM_CLASS` (`instance\0Class\0`) names the
    /// program, `_NET_WM_PID` its process.
    fn window_facts(&mut self, class: Option<String>, pid: Option<u32>) -> WindowFacts {
        let raw = class.unwrap_or_default();
        let mut parts = raw.split('\0');
        let instance = parts.next().unwrap_or_default();
        let class = parts.next().unwrap_or_default();
        WindowFacts::read(&mut self.apps, pid, class, instance)
    }

    /// Asks for `_NET_WM_NAME` (UTF-8) and `WM_NAME` at once.
    fn request_titles(
        &self,
        window: Window,
    ) -> Result<(PropertyCookie<'_>, PropertyCookie<'_>), String> {
        Ok((
            self.request(window, self.atoms.net_wm_name, self.atoms.utf8_string, 4096)?,
            self.request(window, AtomEnum::WM_NAME.into(), AtomEnum::ANY.into(), 4096)?,
        ))
    }

    fn property32(&self, window: Window, atom: Atom, kind: Atom) -> Result<Option<u32>, String> {
        let reply = answer(self.request(window, atom, kind, 1)?)?;
        Ok(reply.and_then(|r| r.value32().and_then(|mut v| v.next())))
    }

    fn request(
        &self,
        window: Window,
        atom: Atom,
        kind: Atom,
        words: u32,
    ) -> Result<PropertyCookie<'_>, String> {
        self.conn
            .get_property(false, window, atom, kind, 0, words)
            .map_err(|e| format!("the X display went away: {e}"))
    }
}

type PropertyCookie<'c> = x11rb::cookie::Cookie<'c, RustConnection, GetPropertyReply>;

/// `_NET_WM_NAME`, else `WM_NAME`.
fn read_titles(
    (net, legacy): (PropertyCookie<'_>, PropertyCookie<'_>),
) -> Result<Option<String>, String> {
    let net = answer(net)?.and_then(|r| text_of(&r));
    let legacy = answer(legacy)?.and_then(|r| text_of(&r));
    Ok(net.or(legacy))
}

/// A property's answer; `None` when the window is gone (closed between the event and the read).
fn answer(cookie: PropertyCookie<'_>) -> Result<Option<GetPropertyReply>, String> {
    match cookie.reply() {
        Ok(r) => Ok(Some(r)),
        Err(x11rb::errors::ReplyError::X11Error(_)) => Ok(None),
        Err(e) => Err(format!("the X display went away: {e}")),
    }
}

/// An 8-bit property as text (`None` when absent or empty).
fn text_of(reply: &GetPropertyReply) -> Option<String> {
    (reply.format == 8 && !reply.value.is_empty())
        .then(|| String::from_utf8_lossy(&reply.value).into_owned())
}

/// How long the person at an X display has not touched keyboard or mouse, from the
/// XScreenSaver extension (on its own connection, so the focus watcher never waits on it).
pub struct IdleWatch {
    conn: RustConnection,
    root: Window,
}

impl IdleWatch {
    /// Connects to `display` (or `$DISPLAY`); the error says why idle time cannot be known.
    pub fn connect(display: Option<&str>) -> Result<IdleWatch, String> {
        use x11rb::protocol::screensaver::ConnectionExt as _;
        let (conn, screen) =
            x11rb::connect(display).map_err(|e| format!("cannot connect to X display: {e}"))?;
        let root = conn.setup().roots[screen].root;
        conn.screensaver_query_version(1, 1)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("the X server has no XScreenSaver extension: {e}"))?;
        Ok(IdleWatch { conn, root })
    }

    /// Time since the last keyboard or mouse input.
    pub fn idle(&self) -> Result<std::time::Duration, String> {
        use x11rb::protocol::screensaver::ConnectionExt as _;
        let info = self
            .conn
            .screensaver_query_info(self.root)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        Ok(std::time::Duration::from_millis(u64::from(
            info.ms_since_user_input,
        )))
    }
}

/// Starts watching the X display `$DISPLAY`: the focused window and its title as activity, idle
/// time (polled once a second) as presence, and the clock. Without a display the agent says so
/// and runs on with its other sources.
pub(crate) fn start(
    sink: Arc<dyn Sink>,
    idle_after: std::time::Duration,
) -> std::io::Result<Running> {
    let watch = match FocusWatch::connect(None) {
        Ok(w) => w,
        Err(why) => {
            sink.off("x11", why, "activity from windows is off");
            return Ok(Running::threads());
        }
    };
    let display = std::env::var("DISPLAY").unwrap_or_default();
    sink.status("x11", true, format!("focused window on display {display}"));
    let idle = match IdleWatch::connect(None) {
        Ok(w) => Some(w),
        Err(why) => {
            tracing::warn!("idle time unknown, spans count while idle: {why}");
            None
        }
    };
    clock(
        sink.clone(),
        Arc::new(Presence::default()),
        move |presence| {
            if let Some(quiet) = idle.as_ref().and_then(|w| w.idle().ok()) {
                presence.set(quiet >= idle_after);
            }
        },
    )?;
    watching("x11", sink, move |emit| watch.run(emit))
}
