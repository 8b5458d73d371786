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
//! Browser", else the class from `WM_CLASS`; see [`super::apps`]), `computer`,
//! `logon_domain` and `private_ip` (the machine's, when it has them; see [`process`]).

use x11rb::connection::Connection;
use x11rb::protocol::Event as XEvent;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt, EventMask, Window,
};
use x11rb::rust_connection::RustConnection;

use crate::event::{Event, EventKind, Field};

use super::apps::AppNames;
use super::process;

/// The atoms the source reads.
struct Atoms {
    active_window: Atom,
    net_wm_name: Atom,
    net_wm_pid: Atom,
    utf8_string: Atom,
}

/// A connection to an X display, watching focus.
pub struct X11Source {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    computer: String,
    /// Applications' names from their desktop entries.
    apps: AppNames,
    logon_domain: Option<String>,
    private_ip: Option<String>,
    /// The focused window, whose property changes are selected.
    focused: Option<Window>,
    /// The last (window, title) reported, so that repeats are not.
    last: Option<(Window, String)>,
}

impl X11Source {
    /// Connects to `display` (or `$DISPLAY`). The error says, for the admin, why there is no
    /// activity source.
    pub fn connect(display: Option<&str>) -> Result<X11Source, String> {
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
        Ok(X11Source {
            conn,
            root,
            atoms,
            computer: process::hostname(),
            logon_domain: process::logon_domain(),
            private_ip: process::private_ip(),
            focused: None,
            last: None,
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
                self.report()?
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
        self.report()
    }

    /// An event for the focused window, unless it is what was reported last.
    fn report(&mut self) -> Result<Option<Event>, String> {
        let Some(window) = self.focused else {
            return Ok(None);
        };
        let title = self.title(window)?.unwrap_or_default();
        if self.last.as_ref() == Some(&(window, title.clone())) {
            return Ok(None);
        }
        self.last = Some((window, title.clone()));
        let mut event = Event::new(EventKind::Activity, chrono::Utc::now().fixed_offset())
            .with_text(Field::Computer, &self.computer)
            .with_text(Field::Title, &title);
        if let Some(domain) = &self.logon_domain {
            event.set_text(Field::LogonDomain, domain);
        }
        if let Some(ip) = &self.private_ip {
            event.set_text(Field::PrivateIp, ip);
        }
        if let Some(pid) =
            self.property32(window, self.atoms.net_wm_pid, AtomEnum::CARDINAL.into())?
        {
            event.set_number(Field::Pid, f64::from(pid));
            if let Some(exe) = process::executable(pid) {
                event.set_text(Field::Executable, &exe);
            }
            if let Some(user) = process::owner(pid) {
                event.set_text(Field::Username, &user);
            }
        }
        if let Some((class, instance)) = self.class(window)? {
            let named = self
                .apps
                .name(&class, &instance, event.text(Field::Executable));
            match named {
                Some(name) => event.set_text(Field::Description, &name),
                None if !class.is_empty() => event.set_text(Field::Description, &class),
                None => {}
            }
        }
        tracing::debug!(window, title = %title, pid = ?event.number(Field::Pid), "focused window");
        Ok(Some(event))
    }

    /// `_NET_WM_NAME` (UTF-8), else `WM_NAME`.
    fn title(&self, window: Window) -> Result<Option<String>, String> {
        if let Some(t) = self.text(window, self.atoms.net_wm_name, self.atoms.utf8_string)? {
            return Ok(Some(t));
        }
        self.text(window, AtomEnum::WM_NAME.into(), AtomEnum::ANY.into())
    }

    /// `WM_CLASS` (`instance\0Class\0`) as (class, instance); either may be empty.
    fn class(&self, window: Window) -> Result<Option<(String, String)>, String> {
        let raw = self.bytes(window, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?;
        Ok(raw.map(|b| {
            let mut parts = b
                .split(|&c| c == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let instance = parts.next().unwrap_or_default();
            (parts.next().unwrap_or_default(), instance)
        }))
    }

    fn text(&self, window: Window, atom: Atom, kind: Atom) -> Result<Option<String>, String> {
        Ok(self
            .bytes(window, atom, kind)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// A property's bytes; `None` when the window or the property is missing.
    fn bytes(&self, window: Window, atom: Atom, kind: Atom) -> Result<Option<Vec<u8>>, String> {
        let cookie = self
            .conn
            .get_property(false, window, atom, kind, 0, 4096)
            .map_err(|e| format!("the X display went away: {e}"))?;
        match cookie.reply() {
            Ok(r) if r.format == 8 && !r.value.is_empty() => Ok(Some(r.value)),
            Ok(_) => Ok(None),
            // A window closed between the event and this read: nothing to report.
            Err(x11rb::errors::ReplyError::X11Error(_)) => Ok(None),
            Err(e) => Err(format!("the X display went away: {e}")),
        }
    }

    fn property32(&self, window: Window, atom: Atom, kind: Atom) -> Result<Option<u32>, String> {
        let cookie = self
            .conn
            .get_property(false, window, atom, kind, 0, 1)
            .map_err(|e| format!("the X display went away: {e}"))?;
        match cookie.reply() {
            Ok(r) => Ok(r.value32().and_then(|mut v| v.next())),
            Err(x11rb::errors::ReplyError::X11Error(_)) => Ok(None),
            Err(e) => Err(format!("the X display went away: {e}")),
        }
    }
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
