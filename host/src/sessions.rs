//! Activity spans: focus events become spans whose `duration` grows with the clock.
//!
//! A span is one user on one computer looking at one window: the same executable, title and URL.
//! An activity event opens a span (its `ts` is when focus was gained; a recorded `duration`, if
//! present, is how long the span lasted); a later activity event of the same user and computer for
//! a *different* window closes it. An event for the *same* window continues the span.
//!
//! While a span is open its `duration` grows with the clock, so that "duration > 1200" fires when
//! the span crosses 20 minutes. The live agent's clock ticks every second; re-evaluating every
//! span every second would be wasteful, so this stage re-evaluates a span only at the whole
//! seconds where some loaded alarm's verdict can change (the engine's *duration breakpoints*).
//! In replay the clock is the events' own timestamps, so a recorded day plays out exactly as it
//! would have live.
//!
//! Each span carries a [`SpanMemo`] in which later stages note what already fired for it, which
//! is how "once per span" is kept without a global table that would need cleaning.
//!
//! Memory is bounded however many people pass through: at most [`MAX_OPEN_SPANS`] spans are
//! open (past it, the people seen longest ago lose theirs), and a span with nothing left to
//! cross whose person has not been seen for [`STALE_AFTER`] is closed. Both are counted
//! ([`Sessions::take_evicted`]); a closed span's person starts a new one when seen again.
//! (A million events from distinct users once held 1.2 GB here, for good.)

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Duration, FixedOffset};

use crate::event::{Event, EventKind, Field};

/// Most spans open at once: one per person and computer in front of a window.
pub const MAX_OPEN_SPANS: usize = 10_000;
/// A span whose thresholds are all crossed is closed once its person has not been seen for
/// this long (by the events' clock).
pub const STALE_AFTER: Duration = Duration::hours(24);

/// What later stages remember about one span (or one non-activity event).
#[derive(Default, Debug)]
pub struct SpanMemo {
    /// Alarms (by index) that already fired for this span.
    pub fired: Vec<u32>,
}

struct Span {
    start: DateTime<FixedOffset>,
    /// The recorded length, when the event said; the span never grows past it.
    recorded: Option<f64>,
    /// The event being evaluated; its `duration` is updated as the span grows.
    event: Event,
    memo: SpanMemo,
    /// Stopped counting because the person went idle.
    paused: bool,
    /// Its key in `open` (user and computer).
    key: Box<str>,
    /// When its person's last event came.
    seen: DateTime<FixedOffset>,
    /// A threshold is still ahead of it (a wake-up is scheduled).
    waiting: bool,
}

/// The sessions stage. Feed it events in (roughly) time order with [`Sessions::observe`]; it calls
/// back with each event to evaluate, the time it is evaluated at, and the span's memo.
pub struct Sessions {
    breakpoints: Vec<u64>,
    /// The open span of each user and computer (`user \u{1f} computer`).
    open: HashMap<String, u64>,
    /// Reused to build `open`'s keys without allocating per event.
    key: String,
    spans: HashMap<u64, Span>,
    wakeups: BinaryHeap<Reverse<(DateTime<FixedOffset>, u64)>>,
    clock: Option<DateTime<FixedOffset>>,
    next_id: u64,
    /// Spans closed to bound memory since the last [`Sessions::take_evicted`].
    evicted: u64,
    /// When stale spans are looked for next.
    next_sweep: Option<DateTime<FixedOffset>>,
}

/// Receives each evaluation: the event (with its current `duration`), when, and the span's memo.
pub type Evaluate<'a> = dyn FnMut(&Event, DateTime<FixedOffset>, &mut SpanMemo) + 'a;

impl Sessions {
    /// A sessions stage that re-evaluates spans at these whole-second durations.
    pub fn new(breakpoints: &[u64]) -> Sessions {
        Sessions {
            breakpoints: breakpoints.to_vec(),
            open: HashMap::new(),
            key: String::new(),
            spans: HashMap::new(),
            wakeups: BinaryHeap::new(),
            clock: None,
            next_id: 1,
            evicted: 0,
            next_sweep: None,
        }
    }

    /// How many spans were closed to bound memory since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// Closes span `id`, forgetting its person's open span.
    fn evict(&mut self, id: u64) {
        if let Some(span) = self.spans.remove(&id) {
            if self.open.get(&*span.key) == Some(&id) {
                self.open.remove(&*span.key);
            }
            self.evicted += 1;
        }
    }

    /// Makes room under [`MAX_OPEN_SPANS`]: the spans of the people seen longest ago go, down to
    /// nine tenths of the cap, so that this runs once per thousand new people, not per event.
    fn make_room(&mut self) {
        if self.spans.len() < MAX_OPEN_SPANS {
            return;
        }
        let mut by_age: Vec<(DateTime<FixedOffset>, u64)> =
            self.spans.iter().map(|(id, s)| (s.seen, *id)).collect();
        let excess = self.spans.len() + 1 - MAX_OPEN_SPANS * 9 / 10;
        by_age.select_nth_unstable(excess - 1);
        for (_, id) in by_age.into_iter().take(excess) {
            self.evict(id);
        }
        // Wake-ups of closed spans would otherwise wait in the heap until their time.
        let spans = &self.spans;
        self.wakeups
            .retain(|Reverse((_, id))| spans.contains_key(id));
    }

    /// Once an hour of the clock: closes spans with no threshold ahead whose person has not been
    /// seen for [`STALE_AFTER`].
    fn sweep(&mut self, now: DateTime<FixedOffset>) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + Duration::hours(1));
        let stale: Vec<u64> = self
            .spans
            .iter()
            .filter(|(_, s)| !s.waiting && now - s.seen > STALE_AFTER)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.evict(id);
        }
    }

    /// Carries the open spans over to a new set of rules: the spans keep their start and what
    /// fired for them (alarm numbers translated by `remap`; an alarm that is gone is dropped),
    /// and are re-scheduled at the new rules' breakpoints. This is how a pack update reaches a
    /// running agent without restarting anyone's "once per span" or "over 20 minutes".
    pub fn rebind(&mut self, breakpoints: &[u64], remap: &dyn Fn(u32) -> Option<u32>) {
        self.breakpoints = breakpoints.to_vec();
        self.wakeups.clear();
        let ids: Vec<u64> = self.spans.keys().copied().collect();
        for id in ids {
            let Some(mut span) = self.spans.remove(&id) else {
                continue;
            };
            span.memo.fired = span.memo.fired.iter().filter_map(|&a| remap(a)).collect();
            let elapsed = span.event.number(Field::Duration).unwrap_or(0.0);
            self.schedule(id, &mut span, elapsed);
            self.spans.insert(id, span);
        }
    }

    /// The person went idle at `at`: open spans stop counting there (their length is fixed,
    /// and no threshold beyond it will be crossed).
    pub fn pause(&mut self, at: DateTime<FixedOffset>, evaluate: &mut Evaluate<'_>) {
        self.advance(at, evaluate);
        self.wakeups.clear();
        let ids: Vec<u64> = self.spans.keys().copied().collect();
        for id in ids {
            let Some(mut span) = self.spans.remove(&id) else {
                continue;
            };
            let elapsed = ((at - span.start).num_milliseconds().max(0) / 1000) as f64;
            span.recorded = Some(span.recorded.map_or(elapsed, |r| r.min(elapsed)));
            span.paused = true;
            span.waiting = false;
            self.spans.insert(id, span);
        }
    }

    /// The person is back at `at`: each paused span's window, still in front of them, starts a
    /// new span there (counted from zero, its alarms free to fire again).
    pub fn resume(&mut self, at: DateTime<FixedOffset>, evaluate: &mut Evaluate<'_>) {
        let paused: Vec<u64> = self
            .spans
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(id, _)| *id)
            .collect();
        for id in paused {
            let Some(span) = self.spans.remove(&id) else {
                continue;
            };
            self.open.retain(|_, open| *open != id);
            let mut event = span.event;
            event.set_ts(at);
            event.remove(Field::Duration);
            self.observe(event, evaluate);
        }
    }

    /// How many spans are open.
    #[cfg(test)]
    fn open_spans(&self) -> usize {
        self.spans.len()
    }

    /// Takes one event: first moves the clock to its time (evaluating spans that cross a
    /// breakpoint before then), then evaluates the event itself unless it continues a span.
    pub fn observe(&mut self, mut event: Event, evaluate: &mut Evaluate<'_>) {
        let ts = event.ts();
        self.advance(ts, evaluate);
        if event.kind() != EventKind::Activity {
            evaluate(&event, ts, &mut SpanMemo::default());
            return;
        }
        self.key.clear();
        self.key
            .push_str(event.text(Field::Username).unwrap_or_default());
        self.key.push('\u{1f}');
        self.key
            .push_str(event.text(Field::Computer).unwrap_or_default());
        if let Some(id) = self.open.get(self.key.as_str())
            && let Some(span) = self.spans.get_mut(id)
        {
            span.seen = ts;
            if same_window(&span.event, &event) {
                // The same window reported again: the span goes on, perhaps longer than known.
                if let (Some(old), Some(new)) = (span.recorded, event.number(Field::Duration)) {
                    let grown = new + (ts - span.start).num_milliseconds() as f64 / 1000.0;
                    span.recorded = Some(old.max(grown));
                }
                return;
            }
            if learns_url(&span.event, &event) {
                // The browser has told which page the window in front shows: the same span,
                // now with its URL, evaluated again for the alarms that look at URLs (what
                // already fired for the span stays fired).
                for field in [Field::Url, Field::PrimaryDomain] {
                    if let Some(value) = event.text(field) {
                        span.event.set_text(field, value);
                    }
                }
                let at = self.clock.map_or(ts, |c| c.max(ts));
                if !span.paused {
                    let mut elapsed = ((at - span.start).num_milliseconds().max(0) / 1000) as f64;
                    if let Some(r) = span.recorded {
                        elapsed = elapsed.min(r);
                    }
                    span.event.set_number(Field::Duration, elapsed);
                }
                evaluate(&span.event, at, &mut span.memo);
                return;
            }
            let id = *id;
            self.spans.remove(&id);
        }
        let recorded = event.number(Field::Duration);
        let now = self.clock.unwrap_or(ts);
        let mut elapsed = ((now - ts).num_milliseconds().max(0) / 1000) as f64;
        if let Some(r) = recorded {
            elapsed = elapsed.min(r);
        }
        event.set_number(Field::Duration, elapsed);
        self.make_room();
        let id = self.next_id;
        self.next_id += 1;
        let mut span = Span {
            start: ts,
            recorded,
            event,
            memo: SpanMemo::default(),
            paused: false,
            key: self.key.as_str().into(),
            seen: ts,
            waiting: false,
        };
        evaluate(&span.event, ts + secs(elapsed), &mut span.memo);
        self.schedule(id, &mut span, elapsed);
        self.spans.insert(id, span);
        match self.open.get_mut(self.key.as_str()) {
            Some(open) => *open = id,
            None => {
                self.open.insert(self.key.clone(), id);
            }
        }
    }

    /// Ends the input: spans whose recorded length runs past the last event are played out to
    /// their end; open-ended spans stop at the last event's time.
    pub fn finish(&mut self, evaluate: &mut Evaluate<'_>) {
        let clock = self.clock;
        while let Some(Reverse((at, id))) = self.wakeups.pop() {
            let bounded = self.spans.get(&id).is_some_and(|s| s.recorded.is_some());
            if bounded || clock.is_some_and(|c| at <= c) {
                self.wake(id, at, evaluate);
            }
        }
    }

    /// Moves the clock to `to` with no event: spans crossing a breakpoint by then are evaluated.
    /// The live agent calls this every second, so "over 20 minutes" fires at 20 minutes even
    /// when nothing else happens; a recorded stream needs none (its events are the clock).
    pub fn advance(&mut self, to: DateTime<FixedOffset>, evaluate: &mut Evaluate<'_>) {
        if self.clock.is_some_and(|c| c >= to) {
            return;
        }
        self.clock = Some(to);
        while let Some(Reverse((at, id))) = self.wakeups.peek().copied() {
            if at > to {
                break;
            }
            self.wakeups.pop();
            self.wake(id, at, evaluate);
        }
        self.sweep(to);
    }

    fn wake(&mut self, id: u64, at: DateTime<FixedOffset>, evaluate: &mut Evaluate<'_>) {
        let Some(mut span) = self.spans.remove(&id) else {
            return; // closed since it was scheduled
        };
        let elapsed = ((at - span.start).num_milliseconds() / 1000) as f64;
        span.event.set_number(Field::Duration, elapsed);
        evaluate(&span.event, at, &mut span.memo);
        self.schedule(id, &mut span, elapsed);
        self.spans.insert(id, span);
    }

    fn schedule(&mut self, id: u64, span: &mut Span, elapsed: f64) {
        let next = self
            .breakpoints
            .iter()
            .map(|&b| b as f64)
            .find(|&b| b > elapsed && span.recorded.is_none_or(|r| b <= r));
        span.waiting = next.is_some();
        if let Some(b) = next {
            self.wakeups.push(Reverse((span.start + secs(b), id)));
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0) as i64)
}

/// `b` is `a`'s window with the URL now known (it was not before).
fn learns_url(a: &Event, b: &Event) -> bool {
    a.text(Field::Url).is_none()
        && b.text(Field::Url).is_some()
        && [Field::Executable, Field::Title]
            .iter()
            .all(|f| a.text(*f) == b.text(*f))
}

fn same_window(a: &Event, b: &Event) -> bool {
    [Field::Executable, Field::Title, Field::Url]
        .iter()
        .all(|f| a.text(*f) == b.text(*f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hms: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("2026-11-02T{hms}Z")).expect("ts")
    }

    fn focus(hms: &str, user: &str, title: &str, duration: Option<f64>) -> Event {
        let mut e = Event::new(EventKind::Activity, at(hms))
            .with_text(Field::Username, user)
            .with_text(Field::Title, title);
        if let Some(d) = duration {
            e.set_number(Field::Duration, d);
        }
        e
    }

    /// Runs events through a sessions stage; returns (title, duration, at) per evaluation.
    fn run(events: Vec<Event>, bps: &[u64]) -> Vec<(String, f64, String)> {
        let mut s = Sessions::new(bps);
        let mut seen = Vec::new();
        let mut record = |e: &Event, at: DateTime<FixedOffset>, _: &mut SpanMemo| {
            seen.push((
                e.text(Field::Title).unwrap_or("-").to_string(),
                e.number(Field::Duration).unwrap_or(-1.0),
                at.format("%H:%M:%S").to_string(),
            ))
        };
        for e in events {
            s.observe(e, &mut record);
        }
        s.finish(&mut record);
        seen
    }

    #[test]
    fn an_idle_person_stops_the_span_and_coming_back_starts_a_new_one() {
        let mut s = Sessions::new(&[60, 120]);
        let mut seen = Vec::new();
        let mut record = |e: &Event, at: DateTime<FixedOffset>, _: &mut SpanMemo| {
            seen.push((
                e.number(Field::Duration).unwrap_or(-1.0),
                at.format("%H:%M:%S").to_string(),
            ))
        };
        s.observe(focus("09:00:00", "a", "Docs", None), &mut record);
        s.advance(at("09:01:30"), &mut record); // crosses 60 s
        s.pause(at("09:01:40"), &mut record); // idle: stops at 100 s
        s.advance(at("09:10:00"), &mut record); // 120 s is never reached
        s.resume(at("09:10:00"), &mut record); // back: a new span, from zero
        s.advance(at("09:11:00"), &mut record);
        assert_eq!(
            seen,
            [
                (0.0, "09:00:00".into()),
                (60.0, "09:01:00".into()),
                (0.0, "09:10:00".into()),
                (60.0, "09:11:00".into()),
            ]
        );
    }

    #[test]
    fn an_open_span_is_re_evaluated_when_it_crosses_a_breakpoint() {
        let seen = run(
            vec![
                focus("09:00:00", "alice", "YouTube", None),
                focus("09:30:00", "alice", "Mail", None),
            ],
            &[1201],
        );
        assert_eq!(
            seen,
            vec![
                ("YouTube".into(), 0.0, "09:00:00".into()),
                ("YouTube".into(), 1201.0, "09:20:01".into()),
                ("Mail".into(), 0.0, "09:30:00".into()),
            ]
        );
    }

    #[test]
    fn a_span_closed_early_never_reaches_the_breakpoint() {
        let seen = run(
            vec![
                focus("09:00:00", "alice", "YouTube", None),
                focus("09:10:00", "alice", "Mail", None),
                focus("09:40:00", "bob", "Mail", None),
            ],
            &[1201],
        );
        assert!(
            !seen.iter().any(|(t, d, _)| t == "YouTube" && *d > 0.0),
            "YouTube lasted 10 minutes: {seen:?}"
        );
        assert!(
            seen.contains(&("Mail".into(), 1201.0, "09:30:01".into())),
            "Mail was still open when bob's event moved the clock on: {seen:?}"
        );
    }

    #[test]
    fn a_recorded_duration_bounds_the_span_even_after_the_last_event() {
        let seen = run(
            vec![
                focus("09:00:00", "alice", "YouTube", Some(1500.0)),
                focus("09:05:00", "bob", "Short", Some(60.0)),
            ],
            &[30, 1201, 3601],
        );
        assert_eq!(
            seen,
            vec![
                ("YouTube".into(), 0.0, "09:00:00".into()),
                ("YouTube".into(), 30.0, "09:00:30".into()),
                ("Short".into(), 0.0, "09:05:00".into()),
                ("Short".into(), 30.0, "09:05:30".into()),
                ("YouTube".into(), 1201.0, "09:20:01".into()),
            ],
            "no evaluation at 3601 s: the span lasted 1500 s"
        );
    }

    #[test]
    fn the_same_window_again_continues_the_span() {
        let seen = run(
            vec![
                focus("09:00:00", "alice", "YouTube", None),
                focus("09:10:00", "alice", "YouTube", None),
                focus("09:30:00", "alice", "Mail", None),
            ],
            &[1201],
        );
        assert_eq!(
            seen.len(),
            3,
            "opened once, crossed once, then Mail: {seen:?}"
        );
    }

    #[test]
    fn a_url_learned_later_joins_the_open_span_without_restarting_it() {
        let mut s = Sessions::new(&[600]);
        let mut seen = Vec::new();
        let mut record = |e: &Event, at: DateTime<FixedOffset>, memo: &mut SpanMemo| {
            seen.push((
                e.text(Field::Url).unwrap_or("-").to_string(),
                e.number(Field::Duration).unwrap_or(-1.0),
                at.format("%H:%M:%S").to_string(),
                memo.fired.clone(),
            ));
            memo.fired.push(seen.len() as u32);
        };
        s.observe(focus("09:00:00", "a", "News", None), &mut record);
        let with_url = focus("09:00:02", "a", "News", None)
            .with_text(Field::Url, "https://news.example.com/")
            .with_text(Field::PrimaryDomain, "example.com");
        s.observe(with_url.clone(), &mut record);
        // Told again: nothing new.
        s.observe(with_url, &mut record);
        s.advance(at("09:10:00"), &mut record);
        let urls: Vec<_> = seen.iter().map(|(u, ..)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "-",
                "https://news.example.com/",
                "https://news.example.com/"
            ]
        );
        assert_eq!(
            seen[1].1, 2.0,
            "the span counts from when focus came: {seen:?}"
        );
        assert_eq!(
            seen[1].3,
            [1],
            "what fired for the span is remembered: {seen:?}"
        );
        assert_eq!(
            seen[2].1, 600.0,
            "and it goes on to cross 10 minutes: {seen:?}"
        );
    }

    #[test]
    fn users_have_separate_spans_and_other_kinds_pass_straight_through() {
        let usb = Event::new(EventKind::Usb, at("09:00:05")).with_text(Field::Action, "inserted");
        let seen = run(
            vec![
                focus("09:00:00", "alice", "A", None),
                usb,
                focus("09:00:10", "bob", "B", None),
                focus("09:00:20", "carol", "C", None),
            ],
            &[15],
        );
        let titles: Vec<&str> = seen.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(titles, ["A", "-", "B", "A", "C"], "{seen:?}");
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    fn person(n: usize, at: DateTime<FixedOffset>) -> Event {
        Event::new(EventKind::Activity, at)
            .with_text(Field::Username, &format!("user{n}"))
            .with_text(Field::Computer, "ws")
            .with_text(Field::Title, "work")
    }

    #[test]
    fn distinct_people_cannot_grow_the_open_spans_past_the_cap() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        let mut s = Sessions::new(&[1200]);
        let evaluated = std::cell::Cell::new(0);
        let mut count = |_: &Event, _: DateTime<FixedOffset>, _: &mut SpanMemo| {
            evaluated.set(evaluated.get() + 1)
        };
        for n in 0..3 * MAX_OPEN_SPANS {
            s.observe(person(n, t0 + Duration::milliseconds(n as i64)), &mut count);
            assert!(s.open_spans() <= MAX_OPEN_SPANS);
        }
        let evicted = s.take_evicted();
        assert_eq!(evicted as usize + s.open_spans(), 3 * MAX_OPEN_SPANS);
        assert!(s.wakeups.len() <= 2 * MAX_OPEN_SPANS, "{}", s.wakeups.len());
        // The newest people kept their spans: the latest one continues, not restarts.
        let before = evaluated.get();
        s.observe(
            person(3 * MAX_OPEN_SPANS - 1, t0 + Duration::seconds(60)),
            &mut count,
        );
        assert_eq!(
            evaluated.get(),
            before,
            "the same window continues its span"
        );
    }

    #[test]
    fn a_span_with_nothing_ahead_closes_once_its_person_is_gone_a_day() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        let mut s = Sessions::new(&[1200]);
        let mut ignore = |_: &Event, _: DateTime<FixedOffset>, _: &mut SpanMemo| {};
        s.observe(person(1, t0), &mut ignore);
        s.observe(person(2, t0), &mut ignore);
        // Person 2 is seen again half a day later; a day after person 1 was last seen (their 20
        // minutes long past), person 1's span is closed, person 2's kept.
        s.observe(person(2, t0 + Duration::hours(12)), &mut ignore);
        s.advance(t0 + STALE_AFTER + Duration::hours(2), &mut ignore);
        assert_eq!(s.open_spans(), 1);
        assert_eq!(s.take_evicted(), 1);
    }
}
