//! The focused toplevel on a Wayland desktop, as activity events; idleness as presence.
//!
//! Wayland has no standard way to ask which window has focus, so each family of compositors is
//! its own way in. This one is the wlroots family's (sway, Hyprland, river, labwc, Wayfire…):
//! the compositor tells a client of every toplevel — its title, app id and whether it is
//! activated — through `wlr-foreign-toplevel-management`, as ActivityWatch's `awatcher` reads
//! it. The protocol says nothing of processes; on sway its IPC (`$SWAYSOCK`) names the
//! focused container's PID (see [`sway`]), from which the executable and user come as on X11.
//! Idleness is the compositor's to tell: `ext-idle-notify-v1` where it speaks it, else KDE's
//! idle protocol (what wlroots before 0.17, sway 1.7 among them, offers); the notification fires
//! after the agent's `--idle-after` without input and again when input resumes.
//!
//! Event-driven like the X11 source: the thread blocks on the compositor's socket and makes one
//! event per change of focused toplevel or of its title, stamped when it arrived; the clock
//! ([`super::desktop::clock`]) makes spans grow.

mod focus;
mod sway;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_registry, wl_seat};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, event_created_child};
use wayland_protocols::ext::idle_notify::v1::client::{
    ext_idle_notification_v1, ext_idle_notifier_v1,
};
use wayland_protocols_plasma::idle::client::{org_kde_kwin_idle, org_kde_kwin_idle_timeout};
use wayland_protocols_wlr::foreign_toplevel::v1::client::{
    zwlr_foreign_toplevel_handle_v1 as handle, zwlr_foreign_toplevel_manager_v1 as manager,
};

use self::focus::{Focused, Toplevels};
use super::desktop::{Machine, Presence, WindowFacts, activity, clock, watching};
use super::{Running, Sink};
use crate::event::Event;
use crate::os::apps::AppNames;

/// What the compositor's events change, between two dispatches.
struct State {
    toplevels: Toplevels,
    /// Changes of focus or title not yet reported, with when each arrived.
    news: Vec<(Focused, Instant)>,
    presence: Arc<Presence>,
    /// The compositor stopped telling of toplevels (it is going away).
    finished: bool,
}

/// A connection to a Wayland compositor, watching its toplevels.
pub(crate) struct FocusWatch {
    queue: EventQueue<State>,
    state: State,
    machine: Machine,
    apps: AppNames,
    sway: Option<sway::Tree>,
    /// The focused toplevel's process and program, read when it gained focus.
    facts: Option<(focus::ToplevelId, WindowFacts)>,
    /// How idleness is heard, for the status.
    idle: &'static str,
}

impl FocusWatch {
    /// Connects to the compositor at `$WAYLAND_DISPLAY` and asks for its toplevels, and for an
    /// idle notification after `idle_after`. The error says, for the admin, why there is no
    /// activity source.
    pub(crate) fn connect(
        idle_after: Duration,
        presence: Arc<Presence>,
    ) -> Result<FocusWatch, String> {
        let shown = std::env::var("WAYLAND_DISPLAY").unwrap_or_else(|_| "wayland-0".into());
        let conn = Connection::connect_to_env()
            .map_err(|e| format!("cannot connect to Wayland display {shown}: {e}"))?;
        let (globals, queue) = registry_queue_init::<State>(&conn)
            .map_err(|e| format!("Wayland display {shown}: {e}"))?;
        let qh = queue.handle();
        let _manager: manager::ZwlrForeignToplevelManagerV1 =
            globals.bind(&qh, 1..=3, ()).map_err(|e| {
                format!(
                    "the compositor on {shown} does not tell of its windows \
                     (no zwlr_foreign_toplevel_manager_v1: {e}); wlroots compositors do"
                )
            })?;
        let seat: Option<wl_seat::WlSeat> = globals.bind(&qh, 1..=1, ()).ok();
        let timeout = u32::try_from(idle_after.as_millis()).unwrap_or(u32::MAX);
        let idle = match seat {
            None => "no seat: idle time unknown",
            Some(seat) => {
                if let Ok(n) =
                    globals.bind::<ext_idle_notifier_v1::ExtIdleNotifierV1, _, _>(&qh, 1..=1, ())
                {
                    n.get_idle_notification(timeout, &seat, &qh, ());
                    "idle from ext-idle-notify-v1"
                } else if let Ok(n) =
                    globals.bind::<org_kde_kwin_idle::OrgKdeKwinIdle, _, _>(&qh, 1..=1, ())
                {
                    n.get_idle_timeout(&seat, timeout, &qh, ());
                    "idle from org_kde_kwin_idle"
                } else {
                    "the compositor tells no idle time"
                }
            }
        };
        if !idle.starts_with("idle from") {
            tracing::warn!("{idle}: spans count while idle");
        } else {
            // Here until the compositor says otherwise.
            presence.set(false);
        }
        Ok(FocusWatch {
            queue,
            state: State {
                toplevels: Toplevels::default(),
                news: Vec::new(),
                presence,
                finished: false,
            },
            machine: Machine::here(),
            apps: AppNames::from_env(),
            sway: sway::Tree::from_env(),
            facts: None,
            idle,
        })
    }

    /// What the status says this source does.
    fn describe(&self) -> String {
        let display = std::env::var("WAYLAND_DISPLAY").unwrap_or_default();
        let pids = if self.sway.is_some() {
            "PIDs from sway's IPC"
        } else {
            "no PIDs (not sway)"
        };
        format!(
            "focused window on Wayland display {display} (wlr-foreign-toplevel); {}; {pids}",
            self.idle
        )
    }

    /// Reports the focused toplevel as soon as the compositor names it, then every change, to
    /// `emit` (with when the change arrived), until `emit` returns false or the compositor goes
    /// away (the error says why).
    pub(crate) fn run(
        mut self,
        mut emit: impl FnMut(Event, Instant) -> bool,
    ) -> Result<(), String> {
        loop {
            self.queue
                .blocking_dispatch(&mut self.state)
                .map_err(|e| format!("the Wayland display went away: {e}"))?;
            for (focused, seen) in std::mem::take(&mut self.state.news) {
                let event = self.event(&focused);
                if !emit(event, seen) {
                    return Ok(());
                }
            }
            if self.state.finished {
                return Err("the compositor stopped telling of its windows".into());
            }
        }
    }

    /// The event for `focused`: its process and program are read once per focus.
    fn event(&mut self, focused: &Focused) -> Event {
        if self.facts.as_ref().is_none_or(|(id, _)| *id != focused.id) {
            let pid = self
                .sway
                .as_mut()
                .and_then(|s| s.pid_of(&focused.app_id, &focused.title));
            let facts = WindowFacts::read(&mut self.apps, pid, &focused.app_id, &focused.app_id);
            self.facts = Some((focused.id, facts));
        }
        let facts = self.facts.as_ref().map(|(_, f)| f);
        tracing::debug!(title = %focused.title, app_id = %focused.app_id,
            pid = ?facts.and_then(|f| f.pid), "focused toplevel");
        activity(&self.machine, &focused.title, facts)
    }
}

/// Starts watching the Wayland compositor: the focused toplevel and its title as activity,
/// idleness as the compositor tells it, and the clock. `why` says what made this a Wayland
/// session. Without a compositor that tells of its windows, the agent says so and runs on.
pub(crate) fn start(
    sink: Arc<dyn Sink>,
    idle_after: Duration,
    why: &str,
) -> std::io::Result<Running> {
    let presence = Arc::new(Presence::default());
    let watch = match FocusWatch::connect(idle_after, presence.clone()) {
        Ok(w) => w,
        Err(e) => {
            sink.off(
                "wayland",
                format!("{e} ({why})"),
                "activity from windows is off",
            );
            return Ok(Running::threads());
        }
    };
    sink.status("wayland", true, watch.describe());
    clock(sink.clone(), presence, |_| {})?;
    watching("wayland", sink, move |emit| watch.run(emit))
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Globals that come and go later (outputs, seats plugged in) change nothing here.
    }
}

impl Dispatch<manager::ZwlrForeignToplevelManagerV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &manager::ZwlrForeignToplevelManagerV1,
        event: manager::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            manager::Event::Toplevel { toplevel } => {
                state.toplevels.opened(toplevel.id().protocol_id());
            }
            manager::Event::Finished => state.finished = true,
            _ => {}
        }
    }

    event_created_child!(State, manager::ZwlrForeignToplevelManagerV1, [
        manager::EVT_TOPLEVEL_OPCODE => (handle::ZwlrForeignToplevelHandleV1, ()),
    ]);
}

impl Dispatch<handle::ZwlrForeignToplevelHandleV1, ()> for State {
    fn event(
        state: &mut Self,
        toplevel: &handle::ZwlrForeignToplevelHandleV1,
        event: handle::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let id = toplevel.id().protocol_id();
        match event {
            handle::Event::Title { title } => state.toplevels.title(id, title),
            handle::Event::AppId { app_id } => state.toplevels.app_id(id, app_id),
            handle::Event::State { state: states } => {
                state.toplevels.activated(id, is_activated(&states));
            }
            handle::Event::Done => {
                if let Some(focused) = state.toplevels.done(id) {
                    state.news.push((focused, Instant::now()));
                }
            }
            handle::Event::Closed => {
                state.toplevels.closed(id);
                // The protocol asks the client to destroy a closed handle: its id is reused.
                toplevel.destroy();
            }
            _ => {}
        }
    }
}

/// Whether a toplevel's state array (32-bit values in the host's order) says "activated".
fn is_activated(states: &[u8]) -> bool {
    let activated = handle::State::Activated as u32;
    states
        .chunks_exact(4)
        .any(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) == activated)
}

impl Dispatch<wl_seat::WlSeat, ()> for State {
    fn event(
        _: &mut Self,
        _: &wl_seat::WlSeat,
        _: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Its capabilities and name: the idle notifications need the seat, not what it says.
    }
}

impl Dispatch<ext_idle_notifier_v1::ExtIdleNotifierV1, ()> for State {
    fn event(
        _: &mut Self,
        _: &ext_idle_notifier_v1::ExtIdleNotifierV1,
        _: ext_idle_notifier_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // It has no events.
    }
}

impl Dispatch<ext_idle_notification_v1::ExtIdleNotificationV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ext_idle_notification_v1::ExtIdleNotificationV1,
        event: ext_idle_notification_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            ext_idle_notification_v1::Event::Idled => state.presence.set(true),
            ext_idle_notification_v1::Event::Resumed => state.presence.set(false),
            _ => {}
        }
    }
}

impl Dispatch<org_kde_kwin_idle::OrgKdeKwinIdle, ()> for State {
    fn event(
        _: &mut Self,
        _: &org_kde_kwin_idle::OrgKdeKwinIdle,
        _: org_kde_kwin_idle::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // It has no events.
    }
}

impl Dispatch<org_kde_kwin_idle_timeout::OrgKdeKwinIdleTimeout, ()> for State {
    fn event(
        state: &mut Self,
        _: &org_kde_kwin_idle_timeout::OrgKdeKwinIdleTimeout,
        event: org_kde_kwin_idle_timeout::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            org_kde_kwin_idle_timeout::Event::Idle => state.presence.set(true),
            org_kde_kwin_idle_timeout::Event::Resumed => state.presence.set(false),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_activated_state_is_found_among_the_others() {
        let states = |s: &[u32]| s.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>();
        assert!(is_activated(&states(&[0, 2])), "maximized, activated");
        assert!(!is_activated(&states(&[0, 1, 3])));
        assert!(!is_activated(&[2, 0, 0]), "a torn value is not a state");
    }
}
