//! The person's desktop, whichever kind runs: X11 or a Wayland compositor.
//!
//! `vigilo run` starts one [`Desktop`]; it looks at the session it was started in and picks the
//! source that can see the focused window there, saying in the status which one and why. The
//! kinds differ only in how they learn what has focus: both give the same activity events (the
//! fields are built by [`activity`]) and both drive the clock and presence the same way
//! ([`clock`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::{Running, Sink, Source};
use crate::event::{Event, EventKind, Field};
use crate::os::apps::AppNames;
use crate::os::process;
use crate::os::session::Session;

/// The desktop `vigilo run` watches (unless `--no-desktop`): the focused window and its title
/// as activity, idle time as presence, and the wall clock that makes spans grow.
pub struct Desktop {
    /// After this long without keyboard or mouse input, the person counts as away.
    pub idle_after: Duration,
}

impl Source for Desktop {
    fn start(self: Box<Self>, sink: Arc<dyn Sink>) -> std::io::Result<Running> {
        let (session, why) = Session::here();
        tracing::info!("desktop: {session:?} session ({why})");
        match session {
            Session::X11 => super::x11::start(sink, self.idle_after),
            Session::Wayland => super::wayland::start(sink, self.idle_after, &why),
        }
    }
}

/// What an activity event says of the machine: read once, the same for every window.
pub(crate) struct Machine {
    computer: String,
    logon_domain: Option<String>,
    private_ip: Option<String>,
}

impl Machine {
    /// This machine's name, domain and private address.
    pub(crate) fn here() -> Machine {
        Machine {
            computer: process::hostname(),
            logon_domain: process::logon_domain(),
            private_ip: process::private_ip(),
        }
    }
}

/// What does not change while a window keeps focus: its process and program.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowFacts {
    pub(crate) pid: Option<u32>,
    pub(crate) executable: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) description: Option<String>,
}

impl WindowFacts {
    /// The facts of a window whose process is `pid` and whose program says it is `class`
    /// (X11's `WM_CLASS` class and instance, or a Wayland app id for both): the executable and
    /// user from `/proc`, the name from the program's desktop entry, else the class.
    pub(crate) fn read(
        apps: &mut AppNames,
        pid: Option<u32>,
        class: &str,
        instance: &str,
    ) -> WindowFacts {
        let executable = pid.and_then(process::executable);
        let username = pid.and_then(process::owner);
        let description = apps
            .name(class, instance, executable.as_deref())
            .or_else(|| (!class.is_empty()).then(|| class.to_string()));
        WindowFacts {
            pid,
            executable,
            username,
            description,
        }
    }
}

/// The activity event for a focused window titled `title`, stamped now.
pub(crate) fn activity(machine: &Machine, title: &str, facts: Option<&WindowFacts>) -> Event {
    let mut event = Event::new(EventKind::Activity, chrono::Utc::now().fixed_offset())
        .with_text(Field::Computer, &machine.computer)
        .with_text(Field::Title, title);
    if let Some(domain) = &machine.logon_domain {
        event.set_text(Field::LogonDomain, domain);
    }
    if let Some(ip) = &machine.private_ip {
        event.set_text(Field::PrivateIp, ip);
    }
    if let Some(facts) = facts {
        if let Some(pid) = facts.pid {
            event.set_number(Field::Pid, f64::from(pid));
        }
        for (field, value) in [
            (Field::Executable, &facts.executable),
            (Field::Username, &facts.username),
            (Field::Description, &facts.description),
        ] {
            if let Some(v) = value {
                event.set_text(field, v);
            }
        }
    }
    event
}

/// Whether the person is at the keyboard, as a desktop heard it: set by whatever learns it
/// (a poll of X11's idle time, a compositor's idle notification), read by the [`clock`].
#[derive(Debug, Default)]
pub(crate) struct Presence(AtomicU8);

impl Presence {
    const UNKNOWN: u8 = 0;
    const HERE: u8 = 1;
    const AWAY: u8 = 2;

    /// The person went away (true) or came back (false).
    pub(crate) fn set(&self, away: bool) {
        let v = if away { Self::AWAY } else { Self::HERE };
        self.0.store(v, Ordering::Relaxed);
    }

    /// Away, here, or not known (no way to tell on this desktop).
    pub(crate) fn away(&self) -> Option<bool> {
        match self.0.load(Ordering::Relaxed) {
            Self::UNKNOWN => None,
            v => Some(v == Self::AWAY),
        }
    }
}

/// Starts the thread that drives spans with the wall clock — once a second, whether or not
/// anything happens (a live source stamps events with the wall clock) — and tells the pipeline
/// when the person goes idle or comes back. `poll` runs before each beat (X11 asks the server
/// for its idle time there); a desktop that is told instead sets `presence` as it hears.
pub(crate) fn clock(
    sink: Arc<dyn Sink>,
    presence: Arc<Presence>,
    mut poll: impl FnMut(&Presence) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("vigilo-clock".into())
        .spawn(move || {
            let mut away = false;
            loop {
                let now = chrono::Utc::now().fixed_offset();
                if !sink.tick(now) {
                    return;
                }
                poll(&presence);
                if let Some(idle_now) = presence.away()
                    && idle_now != away
                {
                    away = idle_now;
                    tracing::debug!(idle = away, "presence changed");
                    sink.idle(now, away);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })?;
    Ok(())
}

/// Runs a desktop's focus watch on its own thread (`vigilo-source-PART`), each event to the
/// pipeline, until the agent stops; a watch that ends with an error (the display gone) is said
/// in the status, the log and on stderr.
pub(crate) fn watching(
    part: &'static str,
    sink: Arc<dyn Sink>,
    watch: impl FnOnce(&mut dyn FnMut(Event, Instant) -> bool) -> Result<(), String> + Send + 'static,
) -> std::io::Result<Running> {
    std::thread::Builder::new()
        .name(format!("vigilo-source-{part}"))
        .spawn(move || {
            if let Err(why) = watch(&mut |event, seen| sink.observed(event, seen)) {
                sink.status(part, false, why.clone());
                tracing::error!("activity source stopped: {why}");
                eprintln!("vigilo: {why}; activity from windows is off");
            }
        })?;
    Ok(Running::threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_unknown_until_heard() {
        let p = Presence::default();
        assert_eq!(p.away(), None);
        p.set(true);
        assert_eq!(p.away(), Some(true));
        p.set(false);
        assert_eq!(p.away(), Some(false));
    }
}
