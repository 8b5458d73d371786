//! The action workers: perform what the store's outbox holds, after the alarms are committed.
//!
//! Actions wait in **lanes** — one per kind, and one per webhook endpoint — and each lane has a
//! thread of its own with its own connection to the store, so they never wait for each other:
//! behind an endpoint that answers after 30 s, a pop-up, a screenshot or a terminate is still on
//! time, and so is another endpoint. (One worker for everything made pop-ups 15, 30, 45 s late.)
//! Lanes are bounded by the loaded packs: a webhook's origin must be one its pack was granted.
//! A dispatcher thread, woken by the pipeline after it stores alarms, starts a lane's thread
//! the first time the lane has work and wakes it after; a lane's thread otherwise sleeps until
//! its next retry is due. Each attempt is settled in the store before the next is made, so after
//! a crash the worst case is one delivery made twice with the same id (receivers drop it), never
//! one lost or sent under two ids: delivery is at least once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use chrono::Utc;

use super::presence::SharedPresence;
use super::recorder::Recorder;
use super::screen::Screen;
use super::webhook::{self, Signer};
use crate::model::action::Action;
use crate::model::alarm::StoredAlarm;
use crate::store::{ActionRun, FORWARD, FORWARD_CAPTURE, OUTPUT, Retention, Settle, Store};

/// How the worker retries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts before an action is given up (dead).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each next one.
    pub first: Duration,
    /// Longest wait between attempts.
    pub longest: Duration,
}

impl Default for Retry {
    /// 8 attempts over about 20 minutes: 5 s, 10 s, 20 s … capped at one hour.
    fn default() -> Retry {
        Retry {
            attempts: 8,
            first: Duration::from_secs(5),
            longest: Duration::from_secs(3600),
        }
    }
}

impl Retry {
    /// The wait after the `failed`-th failure (1-based).
    pub fn wait(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.longest)
    }
}

/// The longest wait between two attempts at forwarding an alarm to the hub.
const FORWARD_LONGEST_WAIT: Duration = Duration::from_secs(30);

/// How often the forwarding lane looks whether the bus is back.
const BUS_AWAY_PAUSE: Duration = Duration::from_millis(500);

/// What the workers need.
pub struct Worker {
    /// A connection to the store (each lane opens its own).
    pub store: Store,
    /// Signs webhooks.
    pub signer: Arc<Signer>,
    /// How failures are retried.
    pub retry: Retry,
    /// Where the data folder is (captures go in `captures/` there).
    pub data_dir: PathBuf,
    /// How long captures are kept.
    pub retention: Retention,
    /// The window in front now (series of screenshots stop when it changes).
    pub presence: SharedPresence,
    /// The screen, once a screenshot was asked for.
    pub screen: Option<Screen>,
    /// The mail server, when the agent's settings name one.
    pub mailer: Option<Arc<super::email::Mailer>>,
    /// The screen recorder videos are cut from.
    pub recorder: Recorder,
    /// The fleet's bus, when alarms are forwarded to a hub.
    pub fleet: Option<Arc<super::forward::Forwarder>>,
    /// Where every stored alarm also goes, by name (the `output:<name>` lanes).
    pub outputs: Arc<HashMap<String, super::output::Output>>,
    /// The lanes started so far, each with what wakes it: shared, so a lane can wake another
    /// (a screenshot kept wakes the forwarding lane that sends it to the hub).
    pub lanes: Lanes,
}

/// The lanes started, by name, and what wakes each.
pub type Lanes = Arc<std::sync::Mutex<HashMap<String, SyncSender<()>>>>;

impl Worker {
    /// The dispatcher: runs until every sender of `wake` is gone, starting and waking the lanes
    /// that have work.
    pub fn run(self, wake: Receiver<()>) {
        loop {
            match self.store.pending_lanes() {
                Ok(pending) => {
                    for lane in pending {
                        if !self.wake_lane(&lane) {
                            match self.start_lane(&lane) {
                                Ok(tx) => {
                                    if let Ok(mut lanes) = self.lanes.lock() {
                                        lanes.insert(lane, tx);
                                    }
                                }
                                Err(e) => tracing::error!("cannot start the {lane} lane: {e:#}"),
                            }
                        }
                    }
                }
                Err(e) => tracing::error!("cannot read the outbox: {e:#}"),
            }
            if wake.recv().is_err() {
                // The lanes end with the dispatcher: their wakers go.
                if let Ok(mut lanes) = self.lanes.lock() {
                    lanes.clear();
                }
                return;
            }
        }
    }

    /// Wakes `lane` if it runs; `false` if it does not (not started yet, or ended).
    fn wake_lane(&self, lane: &str) -> bool {
        let Ok(lanes) = self.lanes.lock() else {
            return false;
        };
        match lanes.get(lane) {
            Some(tx) => !matches!(tx.try_send(()), Err(TrySendError::Disconnected(_))),
            None => false,
        }
    }

    /// A thread for `lane`, with its own store connection; the sender wakes it.
    fn start_lane(&self, lane: &str) -> anyhow::Result<SyncSender<()>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let mut worker = Worker {
            store: Store::open(&self.data_dir)?,
            signer: self.signer.clone(),
            retry: self.retry,
            data_dir: self.data_dir.clone(),
            retention: self.retention,
            presence: self.presence.clone(),
            screen: None,
            mailer: self.mailer.clone(),
            recorder: self.recorder.clone(),
            fleet: self.fleet.clone(),
            outputs: self.outputs.clone(),
            lanes: self.lanes.clone(),
        };
        let name = lane.to_string();
        std::thread::Builder::new()
            .name(format!(
                "vigilo-action-{}",
                lane.split(' ').next().unwrap_or(lane)
            ))
            .spawn(move || worker.run_lane(&name, rx))?;
        Ok(tx)
    }

    /// One lane: performs its due actions, then sleeps until its next retry or a wake-up.
    fn run_lane(&mut self, lane: &str, wake: Receiver<()>) {
        let client = match webhook::client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("actions are not performed: {e:#}");
                return;
            }
        };
        loop {
            // While the bus is away the forwarding lane waits, not failing each alarm in turn.
            if lane == FORWARD && self.fleet.as_ref().is_some_and(|f| !f.connected()) {
                match wake.recv_timeout(BUS_AWAY_PAUSE) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            self.perform_due(lane, &client);
            let next = self.store.next_due_in_lane(Some(lane)).ok().flatten();
            let sleep = next
                .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(3600))
                .clamp(Duration::from_millis(10), Duration::from_secs(3600));
            match wake.recv_timeout(sleep) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn perform_due(&mut self, lane: &str, client: &reqwest::blocking::Client) {
        loop {
            let due = match self.store.take_due(Some(lane), Utc::now(), 32) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("cannot read the outbox: {e:#}");
                    return;
                }
            };
            if due.is_empty() {
                return;
            }
            for run in due {
                let outcome = self.attempt(client, &run);
                match &outcome {
                    Settle::Done(d) | Settle::Partial(d) | Settle::Next(_, d) => {
                        tracing::info!(action = %run.kind, alarm = run.alarm_id, "{d}")
                    }
                    Settle::Retry(at, d) => {
                        tracing::warn!(action = %run.kind, alarm = run.alarm_id, retry_at = %at, "{d}")
                    }
                    Settle::Dead(d) => {
                        tracing::error!(action = %run.kind, alarm = run.alarm_id, "given up: {d}")
                    }
                    Settle::Wait(_, d) => {
                        tracing::debug!(action = %run.kind, alarm = run.alarm_id, "{d}")
                    }
                }
                if let Err(e) = self.store.settle_action(run.id, &outcome) {
                    tracing::error!("cannot record an action's outcome: {e:#}");
                    return;
                }
            }
        }
    }

    /// One attempt at one action.
    fn attempt(&mut self, client: &reqwest::blocking::Client, run: &ActionRun) -> Settle {
        let alarm = match self.store.alarm(run.alarm_id) {
            Ok(Some(a)) => a,
            Ok(None) => return Settle::Dead(format!("alarm {} is gone", run.alarm_id)),
            Err(e) => return Settle::Dead(format!("alarm {} unreadable: {e:#}", run.alarm_id)),
        };
        if run.kind == FORWARD {
            return self.forward(run, |fleet| fleet.publish(&alarm));
        }
        if run.kind == OUTPUT {
            let name = run
                .lane
                .strip_prefix(OUTPUT)
                .and_then(|l| l.strip_prefix(':'));
            let name = name.unwrap_or_default();
            let Some(output) = self.outputs.get(name) else {
                // Queued under settings that named it; it waits for them to come back.
                return Settle::Wait(
                    Utc::now() + chrono::Duration::minutes(10),
                    format!("no output {name:?} in agent.toml now"),
                );
            };
            let agent = alarm.origin.strip_prefix("fleet:");
            return self.keep_trying(run, output.send(client, &alarm, agent));
        }
        if run.kind == FORWARD_CAPTURE {
            let capture = match self.store.forwarded_capture(run) {
                Ok(Some(c)) => c,
                Ok(None) => return Settle::Dead("the capture is gone (expired)".into()),
                Err(e) => return Settle::Dead(format!("the capture is unreadable: {e:#}")),
            };
            return self.forward(run, |fleet| fleet.publish_capture(run.alarm_id, &capture));
        }
        let result = match alarm.record.actions.get(run.position) {
            Some(Action::Screenshot { count, interval }) => {
                return self.screenshot(run, &alarm, *count, *interval);
            }
            Some(Action::Terminate { after, warn }) => {
                return self.terminate(run, &alarm, *after, warn.as_deref());
            }
            Some(Action::Video { before, after }) => {
                return self.video(run, &alarm, *before, *after);
            }
            Some(Action::Popup { title, message }) => {
                // A pop-up shown late says the wrong thing: no retries.
                return match super::popup::show(title, message, super::popup::Flavour::Notice) {
                    Ok(shown) => Settle::Done(shown),
                    Err(why) => Settle::Dead(why),
                };
            }
            Some(Action::Email { to, subject, body }) => match &self.mailer {
                Some(mailer) => {
                    // Screenshots are taken in their own lane: the mail that attaches them
                    // waits for the first (at most half a minute after the alarm).
                    let fired = alarm.record.fired_at.with_timezone(&Utc);
                    let patience = fired + chrono::Duration::seconds(30);
                    if mailer.attach
                        && Utc::now() < patience
                        && self.store.screenshot_awaited(run.alarm_id).unwrap_or(false)
                    {
                        return Settle::Wait(
                            Utc::now() + chrono::Duration::milliseconds(250),
                            "waiting for the alarm's screenshot".into(),
                        );
                    }
                    let attachments = if mailer.attach {
                        self.screenshots_of(run.alarm_id)
                    } else {
                        Vec::new()
                    };
                    mailer.send(to, subject, body, &attachments)
                }
                None => {
                    return Settle::Dead(
                        "no mail server: set [email] in the agent's agent.toml".into(),
                    );
                }
            },
            Some(Action::Webhook { url }) => {
                let body = webhook::payload(&alarm);
                webhook::deliver(client, &self.signer, url, &run.message_id, &body)
            }
            other => {
                return Settle::Dead(format!(
                    "action {} of alarm {} is {:?}, not {}",
                    run.position,
                    run.alarm_id,
                    other.map(|a| a.name()),
                    run.kind
                ));
            }
        };
        match result {
            Ok(detail) => Settle::Done(detail),
            Err(why) if !why.is_transient() => {
                Settle::Dead(format!("{why} (not retried: the answer would be the same)"))
            }
            Err(why) => {
                let failed = run.attempts + 1;
                if failed >= self.retry.attempts {
                    Settle::Dead(format!("{why} (after {failed} attempts)"))
                } else {
                    let wait = self.retry.wait(failed);
                    let at = Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
                    Settle::Retry(
                        at,
                        format!("{why} (attempt {failed}; next in {}s)", wait.as_secs()),
                    )
                }
            }
        }
    }
}

impl Worker {
    /// Forwards an alarm, or a capture of one, to the fleet's hub with `publish`. Never given
    /// up while it may succeed: a hub's record is only complete with every alarm, and the bus
    /// may be away for hours; the wait between attempts stops growing at
    /// [`FORWARD_LONGEST_WAIT`].
    fn forward(
        &self,
        run: &ActionRun,
        publish: impl FnOnce(&super::forward::Forwarder) -> Result<String, super::failure::Failure>,
    ) -> Settle {
        let Some(fleet) = &self.fleet else {
            // Queued while this agent was in a fleet: it waits for the fleet to come back.
            return Settle::Wait(
                Utc::now() + chrono::Duration::minutes(10),
                "not forwarded: this agent runs without --fleet now".into(),
            );
        };
        self.keep_trying(run, publish(fleet))
    }

    /// Settles an attempt that is never given up while it may succeed (forwarding, outputs):
    /// a transient failure is tried again, the wait growing to [`FORWARD_LONGEST_WAIT`].
    fn keep_trying(
        &self,
        run: &ActionRun,
        result: Result<String, super::failure::Failure>,
    ) -> Settle {
        match result {
            Ok(done) => Settle::Done(done),
            Err(why) if !why.is_transient() => Settle::Dead(why.to_string()),
            Err(why) => {
                let failed = run.attempts + 1;
                let wait = self.retry.wait(failed).min(FORWARD_LONGEST_WAIT);
                let at = Utc::now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
                Settle::Retry(
                    at,
                    format!("{why} (attempt {failed}; next in {}s)", wait.as_secs()),
                )
            }
        }
    }

    /// One screenshot of a series: each attempt takes the next, `interval` after the last,
    /// until `count` are taken or the person moved on from the window that fired the alarm.
    fn screenshot(
        &mut self,
        run: &ActionRun,
        alarm: &StoredAlarm,
        count: u32,
        interval: Duration,
    ) -> Settle {
        let taken = run.attempts;
        if taken > 0
            && let Some(why) = self.presence.moved_on_from(&alarm.record.event)
        {
            return Settle::Partial(format!("{taken} of {count} screenshots; stopped: {why}"));
        }
        if self.screen.is_none() {
            match Screen::open() {
                Ok(s) => self.screen = Some(s),
                Err(e) => return Settle::Dead(e),
            }
        }
        let Some(screen) = self.screen.as_mut() else {
            return Settle::Dead("no screen".into());
        };
        let png = match screen.capture() {
            Ok(shot) => shot.png,
            Err(e) => {
                // The display may have gone; connect again next time.
                self.screen = None;
                return Settle::Dead(e);
            }
        };
        let n = taken + 1;
        let name = format!("{}-{}-{n}.png", run.alarm_id, run.position);
        let path = match self.keep_capture(run.alarm_id, "screenshot", &name, &png) {
            Ok(p) => p,
            Err(e) => return Settle::Dead(e),
        };
        let shown = path.display();
        if n >= count {
            Settle::Done(format!("{n} of {count} screenshots; last {shown}"))
        } else {
            let at = Utc::now() + chrono::Duration::from_std(interval).unwrap_or_default();
            Settle::Next(at, format!("{n} of {count} screenshots; last {shown}"))
        }
    }

    /// A video around the alarm: the first attempt pins the recorder's frames from `before`
    /// the alarm and comes back `after` it to save the clip.
    fn video(
        &mut self,
        run: &ActionRun,
        alarm: &StoredAlarm,
        before: Duration,
        after: Duration,
    ) -> Settle {
        let fired = alarm.record.fired_at.with_timezone(&Utc);
        let from = fired - chrono::Duration::from_std(before).unwrap_or_default();
        let until = fired + chrono::Duration::from_std(after).unwrap_or_default();
        if run.attempts == 0 {
            if let Err(why) = self.recorder.pin(run.id, from) {
                return Settle::Dead(format!("no video: {why}"));
            }
            return Settle::Next(
                until,
                format!("recording until {}", until.format("%H:%M:%S")),
            );
        }
        let clip = match self.recorder.take(run.id, from, until) {
            Ok(c) => c,
            Err(why) => return Settle::Dead(format!("no video: {why}")),
        };
        let name = format!("{}-{}.apng", run.alarm_id, run.position);
        let path = match self.keep_capture(run.alarm_id, "video", &name, &clip.apng) {
            Ok(p) => p,
            Err(e) => return Settle::Dead(e),
        };
        let secs = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
        Settle::Done(format!(
            "{:.0} s video ({:.0} s before, {:.0} s after), {} frames, {}",
            secs(clip.until - clip.from),
            secs(fired - clip.from).max(0.0),
            secs(clip.until - fired),
            clip.frames,
            path.display()
        ))
    }

    /// Saves a capture for an alarm as an owner-only file in `captures/`, records it, and
    /// applies the retention policy.
    fn keep_capture(
        &mut self,
        alarm_id: i64,
        kind: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, String> {
        let path = crate::owner_only::save_in(
            &self.data_dir.join(crate::data_dir::CAPTURES),
            name,
            bytes,
        )?;
        match self
            .store
            .add_capture(alarm_id, kind, &path, bytes.len() as u64)
        {
            // Its forwarding (if the alarm is forwarded) waits in the forwarding lane.
            Ok(_) => {
                self.wake_lane(FORWARD);
            }
            Err(e) => tracing::error!("cannot record {}: {e:#}", path.display()),
        }
        self.store.expire_capture_files(&self.retention);
        Ok(path)
    }

    /// Ends the alarm's application: now, or after `after` if its window is still in front
    /// then (the first attempt only waits).
    fn terminate(
        &mut self,
        run: &ActionRun,
        alarm: &StoredAlarm,
        after: Duration,
        warn: Option<&str>,
    ) -> Settle {
        let event = &alarm.record.event;
        if run.attempts == 0 && !after.is_zero() {
            let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
            let warned = match warn {
                Some(text) => {
                    let flavour = super::popup::Flavour::Warning;
                    match super::popup::show(&alarm.record.alarm, text, flavour) {
                        Ok(shown) => format!("; warning {shown}"),
                        Err(why) => format!("; warning not shown: {why}"),
                    }
                }
                None => String::new(),
            };
            return Settle::Next(
                at,
                format!("ends in {}s if still in front{warned}", after.as_secs()),
            );
        }
        if !after.is_zero()
            && let Some(why) = self.presence.moved_on_from(event)
        {
            return Settle::Done(format!("not ended: {why}"));
        }
        match super::terminate::end(event, super::terminate::GRACE) {
            Ok(done) => Settle::Done(done),
            Err(why) => Settle::Dead(why),
        }
    }

    /// The alarm's screenshots taken so far, as (file name, bytes).
    fn screenshots_of(&self, alarm_id: i64) -> Vec<(String, Vec<u8>)> {
        let captures = self.store.captures_of(alarm_id).unwrap_or_default();
        captures
            .into_iter()
            .filter(|c| c.kind == "screenshot")
            .filter_map(|c| {
                let name = c.path.file_name()?.to_string_lossy().into_owned();
                Some((name, std::fs::read(&c.path).ok()?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let r = Retry::default();
        let waits: Vec<u64> = (1..=12).map(|n| r.wait(n).as_secs()).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
    }
}
