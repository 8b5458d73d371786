//! The screen recorder behind the video action: a thread that keeps the last seconds of the
//! screen in a [`Ring`], **only while some loaded alarm wants video** (or a clip is still being
//! recorded). Otherwise it holds no frames, no screen buffer and no X connection, and sleeps.
//!
//! Each tick (`fps` a second) asks the X server where the screen changed ([`ScreenChanges`]) and keeps
//! only that rectangle; when it changed, a whole frame is kept every [`KEY_EVERY`] so that old
//! frames can be forgotten. A screen where nothing moves is not read at all. A clip is *pinned* when an alarm fires: frames from its start stay until the
//! worker takes them at its end.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::screen::{Rect, Screen};
use super::video::{self, Clip, Frame, Ring};

/// How often a whole frame is kept: what a clip may start before its asked start, and what
/// forgetting old frames waits for.
pub const KEY_EVERY: Duration = Duration::from_secs(10);

/// Frames a second unless the agent's settings say otherwise.
pub const DEFAULT_FPS: u32 = 2;

/// Screen recording: the `[video]` section of the agent's settings (`agent.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoConfig {
    /// Frames a second (1–10).
    pub fps: u32,
}

/// The frame rates a site may choose: below one a clip shows little; above ten the recorder's
/// CPU cost grows with no gain for reading what was on screen.
const FPS: std::ops::RangeInclusive<u32> = 1..=10;

impl VideoConfig {
    /// Checks the frame rate is one a site may choose.
    pub fn check(&self) -> Result<(), String> {
        if FPS.contains(&self.fps) {
            Ok(())
        } else {
            Err(format!("fps: must be 1 to 10, found {}", self.fps))
        }
    }
}

/// Handle to the recorder thread; clones share it.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Told what the recorder is doing: (working, what), for the agent's status.
    report: Box<dyn Fn(bool, String) + Send + Sync>,
}

#[derive(Default)]
struct State {
    /// How much of the past loaded alarms want (zero: no pre-roll).
    preroll: Duration,
    /// Clips being recorded: action run → where the clip starts.
    pins: HashMap<i64, DateTime<Utc>>,
    ring: Ring,
    /// The screen's size for the frames in `ring`.
    size: (u32, u32),
    /// Why the screen cannot be recorded, when it cannot.
    fault: Option<String>,
    /// Set when the agent stops.
    stop: bool,
}

impl State {
    fn wanted(&self) -> bool {
        !self.preroll.is_zero() || !self.pins.is_empty()
    }
}

impl Recorder {
    /// Starts the recorder thread, idle until [`Recorder::want`] or [`Recorder::pin`].
    /// It records the screen of the session the agent runs in ([`Screen::watch`]); `report` is
    /// told each change of what it does (working or not, and what).
    pub fn start(
        fps: u32,
        report: impl Fn(bool, String) + Send + Sync + 'static,
    ) -> std::io::Result<Recorder> {
        let recorder = Recorder {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                report: Box::new(report),
            }),
        };
        let fps = fps.clamp(1, 30);
        let shared = recorder.shared.clone();
        std::thread::Builder::new()
            .name("vigilo-recorder".into())
            .spawn(move || record(&shared, fps))?;
        Ok(recorder)
    }

    /// A recorder that never records (the agent runs without a desktop): every clip asked for
    /// fails with `why`.
    pub fn off(why: &str) -> Recorder {
        Recorder {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    fault: Some(why.to_string()),
                    ..State::default()
                }),
                changed: Condvar::new(),
                report: Box::new(|_, _| {}),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How much of the past to keep from now on (zero: none — then frames are only recorded
    /// for clips already pinned).
    pub fn want(&self, preroll: Duration) {
        let mut state = self.state();
        if state.preroll != preroll {
            tracing::info!(seconds = preroll.as_secs(), "screen pre-roll");
            state.preroll = preroll;
            self.shared.changed.notify_all();
        }
    }

    /// Starts keeping frames for clip `id` from `from` (frames already kept stay). Fails when
    /// the screen cannot be recorded.
    pub fn pin(&self, id: i64, from: DateTime<Utc>) -> Result<(), String> {
        let mut state = self.state();
        if let Some(why) = &state.fault {
            return Err(why.clone());
        }
        state.pins.insert(id, from);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Saves clip `id` from `from` to `until` and stops keeping frames for it. The clip starts
    /// later than `from` when the recording had not been running that long.
    pub fn take(&self, id: i64, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Clip, String> {
        let (frames, (width, height)) = {
            let mut state = self.state();
            state.pins.remove(&id);
            let frames = state.ring.clip(from, until);
            if frames.is_empty() {
                return Err(match &state.fault {
                    Some(why) => why.clone(),
                    None => "no frames were kept (was the agent restarted meanwhile?)".into(),
                });
            }
            (frames, state.size)
        };
        // Encoded outside the lock: the recorder goes on meanwhile.
        video::encode_clip(width, height, &frames, from, until)
    }

    /// Ends the thread.
    pub fn stop(&self) {
        self.state().stop = true;
        self.shared.changed.notify_all();
    }
}

/// The recorder thread.
fn record(shared: &Shared, fps: u32) {
    let period = Duration::from_secs(1) / fps;
    let lock = || shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // Idle: nothing kept, nothing held, until someone wants video.
        {
            let mut state = lock();
            state.ring.clear();
            if !state.wanted() && state.fault.is_none() {
                (shared.report)(true, "idle: no loaded alarm wants video".into());
            }
            while !state.wanted() && !state.stop {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if state.stop {
                return;
            }
        }
        let mut screen = match Screen::watch() {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!("video cannot be recorded: {why}");
                (shared.report)(false, why.clone());
                let mut state = lock();
                state.fault = Some(why);
                // Clips asked for meanwhile cannot be recorded; try again later.
                state.pins.clear();
                let _ = shared.changed.wait_timeout(state, Duration::from_secs(10));
                continue;
            }
        };
        let whole = screen.whole();
        let size = (u32::from(whole.width), u32::from(whole.height));
        {
            let mut state = lock();
            state.fault = None;
            state.size = size;
        }
        let mut take = Takes {
            last_key: None,
            last_small: None,
        };
        let mut next = Instant::now();
        // What was last reported, and when: the report follows the pre-roll at once and the
        // buffer's size every few seconds.
        let mut reported: Option<(Duration, Instant)> = None;
        loop {
            let frame = take.next(&mut screen);
            let mut state = lock();
            match frame {
                Ok(Some(frame)) => {
                    state.ring.push(frame);
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!("video recording stopped: {why}");
                    (shared.report)(false, why.clone());
                    state.fault = Some(why);
                    break;
                }
            }
            let stale = reported.is_none_or(|(preroll, at)| {
                preroll != state.preroll || at.elapsed() >= Duration::from_secs(5)
            });
            if stale {
                reported = Some((state.preroll, Instant::now()));
                (shared.report)(
                    true,
                    format!(
                        "recording {}×{} at {fps} fps, keeping the last {} s ({} frames, {} KiB)",
                        size.0,
                        size.1,
                        state.preroll.as_secs(),
                        state.ring.len(),
                        state.ring.bytes().div_ceil(1024)
                    ),
                );
            }
            // Keep what the pre-roll and every pinned clip may still need.
            let now = Utc::now();
            let horizon = chrono::Duration::from_std(state.preroll).unwrap_or_default();
            let oldest = state.pins.values().min().copied();
            let since = oldest.map_or(now - horizon, |o| o.min(now - horizon));
            state.ring.forget_before(since);
            if !state.wanted() || state.stop {
                break;
            }
            next += period;
            let now = Instant::now();
            if next < now {
                // Fell behind (a slow screen read): skip, don't catch up in a burst.
                next = now + period;
            }
            drop(shared.changed.wait_timeout(state, next - now));
        }
    }
}

/// Turns the screen's changes into frames: a whole one first and, when the screen changed,
/// every [`KEY_EVERY`]; otherwise only the rectangle that changed. An unchanged screen is not
/// read at all.
struct Takes {
    last_key: Option<Instant>,
    /// The last small rectangle read, and its pixels.
    last_small: Option<(Rect, Vec<u8>)>,
}

/// Changes up to this many pixels are compared with the last one read: a software cursor
/// (Xvfb, Xvnc) reports every read under it as a change, which would otherwise be a frame,
/// and a key frame every ten seconds, forever.
const SMALL: u32 = 128 * 128;

impl Takes {
    /// The next frame, or `None` when nothing changed.
    fn next(&mut self, screen: &mut Screen) -> Result<Option<Frame>, String> {
        let at = Utc::now();
        let changed = screen.changed()?;
        let frame = |rect: Rect, png, key| Frame {
            at,
            x: u32::from(rect.x),
            y: u32::from(rect.y),
            png,
            key,
        };
        let key_due = match (self.last_key, changed) {
            (None, _) => true,
            (Some(_), None) => return Ok(None),
            (Some(k), Some(_)) => k.elapsed() >= KEY_EVERY,
        };
        if let Some(rect) = changed
            && u32::from(rect.width) * u32::from(rect.height) <= SMALL
        {
            let rgb = screen.read_rect(rect)?;
            if self
                .last_small
                .as_ref()
                .is_some_and(|(r, p)| *r == rect && *p == rgb)
            {
                return Ok(None);
            }
            let (w, h) = (u32::from(rect.width), u32::from(rect.height));
            let png = video::encode_rect(w, h, &rgb)?;
            self.last_small = Some((rect, rgb));
            if !key_due {
                return Ok(Some(frame(rect, png, false)));
            }
        }
        let rect = match changed {
            Some(rect) if !key_due => rect,
            _ => {
                self.last_key = Some(Instant::now());
                screen.whole()
            }
        };
        Ok(Some(frame(rect, screen.capture_rect(rect)?, key_due)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_that_is_off_refuses_clips_with_its_reason() {
        let off =
            Recorder::off("no screen recording: the agent runs without its desktop (--no-desktop)");
        off.want(Duration::from_secs(15));
        let now = Utc::now();
        let err = off.pin(1, now).expect_err("refused");
        assert!(err.contains("--no-desktop"), "{err}");
        assert!(
            off.take(1, now, now)
                .is_err_and(|e| e.contains("--no-desktop"))
        );
    }
}
