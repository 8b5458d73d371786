//! Wires sessions → rules → fired alarms for a stream of events, and keeps what fired.
//!
//! The [`Pipeline`] is synchronous and clock-agnostic: a back-test drives it with recorded events
//! (their timestamps are the clock), the running agent from its sources and the wall clock. It
//! returns fired alarms; the [`Keeper`] (one for both) commits them to the store before anything
//! acts on them.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};

mod escalation;
mod firings;
mod keeper;
pub mod parallel;
mod targeting;
use crate::event::Event;
use crate::model::program_state::PluginStates;
use crate::model::targets::Place;
use crate::rule_set::RuleSet;
use crate::rules::program::Program;
use crate::rules::{AlarmIndex, Repeat, Scratch};
use crate::sessions::{Sessions, SpanMemo};
use escalation::Escalations;
pub use firings::{Counts, Firings};
pub use keeper::{Keeper, REPLAY_BATCH};
use targeting::Targeting;

/// One plugin or script as [`Pipeline::programs`] reports it.
#[derive(Clone, Debug)]
pub struct ProgramReport {
    /// Its pack.
    pub pack: String,
    /// Its name.
    pub name: String,
    /// `plugin` or `script`.
    pub kind: &'static str,
    /// Why it is switched off, if it is.
    pub switched_off: Option<String>,
    /// Calls, faults, time per call.
    pub stats: crate::rules::program::ProgramStats,
}

/// What a pipeline passes to its successor when the rules change; alarms are named, not
/// numbered, since numbers change with the rules.
pub struct Handover {
    states: PluginStates,
    sessions: Sessions,
    last_fired: HashMap<(AlarmIndex, String, String), DateTime<FixedOffset>>,
    escalations: Escalations,
    place: std::sync::Arc<Place>,
    /// (pack, alarm) of each old alarm number.
    names: Vec<(String, String)>,
}

/// How events are turned into firings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// The agent's behaviour: spans, growing durations, once per span, cooldowns.
    #[default]
    Spans,
    /// Every event evaluated on its own, as recorded; every match fires. For rule authors who
    /// want raw match counts.
    EveryMatch,
}

/// Sessions, rules and firing policy for one stream of events.
pub struct Pipeline<'r> {
    mode: Mode,
    sessions: Sessions,
    decider: Decider<'r>,
    /// Account events the pipeline raised itself (a program switched off), for the caller's
    /// audit trail.
    notices: Vec<Event>,
}

/// Evaluates events and applies the firing policy.
struct Decider<'r> {
    /// One running copy of each loaded plugin and script that started: its number in the
    /// rule set, its pack and the pack's number, the running program.
    programs: Vec<(usize, &'r crate::packs::Pack, usize, Box<dyn Program + 'r>)>,
    rules: &'r RuleSet,
    scratch: Scratch,
    hits: Vec<AlarmIndex>,
    /// Last firing per (alarm, user, computer), for alarms with a cooldown.
    last_fired: HashMap<(AlarmIndex, String, String), DateTime<FixedOffset>>,
    /// Matches kept from firing by a cooldown, folded into the alarm that fired.
    folds: Vec<crate::model::alarm::Fold>,
    /// Which rules are for which events.
    targeting: Targeting,
    /// Recent firings of alarms that escalate.
    escalations: Escalations,
}

impl<'r> Pipeline<'r> {
    /// A pipeline over `rules`.
    pub fn new(rules: &'r RuleSet, mode: Mode) -> Pipeline<'r> {
        Pipeline::with_plugin_state(rules, mode, &PluginStates::new())
    }

    /// A pipeline whose plugins start with the state they had (as saved by
    /// [`Pipeline::plugin_states`]).
    pub fn with_plugin_state(
        rules: &'r RuleSet,
        mode: Mode,
        states: &PluginStates,
    ) -> Pipeline<'r> {
        let programs = rules
            .programs()
            .enumerate()
            .filter_map(|(i, (pack, program))| {
                let key = (pack.name.clone(), program.info().name.clone());
                let state = states.get(&key).cloned().unwrap_or_default();
                let p = rules
                    .packs()
                    .iter()
                    .position(|p| std::ptr::eq(p, pack))
                    .unwrap_or_default();
                match program.start(state) {
                    Ok(running) => Some((i, pack, p, running)),
                    Err(e) => {
                        tracing::error!(pack = %pack.name, program = %program.info().name, "cannot start: {e:#}");
                        None
                    }
                }
            })
            .collect();
        Pipeline {
            mode,
            notices: Vec::new(),
            sessions: Sessions::new(rules.engine().duration_breakpoints()),
            decider: Decider {
                programs,
                rules,
                scratch: Scratch::default(),
                hits: Vec::new(),
                last_fired: HashMap::new(),
                folds: Vec::new(),
                targeting: Targeting::new(rules, Default::default()),
                escalations: Escalations::default(),
            },
        }
    }

    /// The rules it runs.
    pub fn rules(&self) -> &'r RuleSet {
        self.decider.rules
    }

    /// Judges targets at `place` from now on: the agent's id, tags and the groups it knows
    /// (by default, each event's own computer, without tags or groups).
    pub fn set_place(&mut self, place: std::sync::Arc<Place>) {
        self.decider.targeting = Targeting::new(self.decider.rules, place);
    }

    /// Counts earlier firings toward escalation, oldest first: `((pack, alarm), (user,
    /// computer), fired at)` as the store kept them, so that a restart goes on counting where
    /// the last run was.
    pub fn seed_escalations<'a>(
        &mut self,
        fired: impl IntoIterator<
            Item = (
                (&'a str, &'a str),
                (&'a str, &'a str),
                DateTime<FixedOffset>,
            ),
        >,
    ) {
        let rules = self.decider.rules;
        let index: HashMap<(&str, &str), AlarmIndex> = rules
            .alarms()
            .enumerate()
            .filter(|(_, (_, alarm))| !alarm.escalate.is_empty())
            .map(|(i, (pack, alarm))| ((pack.name.as_str(), alarm.name.as_str()), i as AlarmIndex))
            .collect();
        for (alarm, who, at) in fired {
            if let Some(&id) = index.get(&alarm) {
                self.decider
                    .escalations
                    .remember(id, rules.alarm(id).1, who, at);
            }
        }
    }

    /// Ends this pipeline so that another, over new rules, can take over where it stopped (see
    /// [`Pipeline::resume`]): open spans, what fired for them, cooldowns and program states.
    pub fn handover(self) -> Handover {
        let rules = self.decider.rules;
        let names = rules
            .alarms()
            .map(|(pack, alarm)| (pack.name.clone(), alarm.name.clone()))
            .collect();
        Handover {
            states: self.plugin_states(),
            sessions: self.sessions,
            last_fired: self.decider.last_fired,
            escalations: self.decider.escalations,
            place: self.decider.targeting.place().clone(),
            names,
        }
    }

    /// A pipeline over `rules` that continues from `handover`: an event in flight is processed
    /// once, by the old rules or the new, and a span open across the change keeps its history.
    pub fn resume(rules: &'r RuleSet, mode: Mode, handover: Handover) -> Pipeline<'r> {
        let mut pipeline = Pipeline::with_plugin_state(rules, mode, &handover.states);
        let now: HashMap<(&str, &str), AlarmIndex> = rules
            .alarms()
            .enumerate()
            .map(|(i, (pack, alarm))| ((pack.name.as_str(), alarm.name.as_str()), i as AlarmIndex))
            .collect();
        let names = &handover.names;
        let remap = |old: AlarmIndex| -> Option<AlarmIndex> {
            let (pack, alarm) = names.get(old as usize)?;
            now.get(&(pack.as_str(), alarm.as_str())).copied()
        };
        let mut sessions = handover.sessions;
        sessions.rebind(rules.engine().duration_breakpoints(), &remap);
        pipeline.sessions = sessions;
        pipeline.decider.last_fired = handover
            .last_fired
            .into_iter()
            .filter_map(|((id, user, computer), at)| Some(((remap(id)?, user, computer), at)))
            .collect();
        pipeline.decider.escalations = handover.escalations.rebind(&remap);
        pipeline.set_place(handover.place);
        pipeline
    }

    /// Every plugin and script: (pack, name, `plugin`/`script`, why it is switched off, how
    /// it has done).
    pub fn programs(&self) -> Vec<ProgramReport> {
        self.decider
            .programs
            .iter()
            .map(|(_, pack, _, running)| ProgramReport {
                pack: pack.name.clone(),
                name: running.info().name.clone(),
                kind: running.kind(),
                switched_off: running.switched_off().map(str::to_string),
                stats: running.stats(),
            })
            .collect()
    }

    /// Switches off the program `name` of `pack` (one an earlier run switched off, which stays
    /// off until an admin turns it back on).
    pub fn switch_off(&mut self, pack: &str, name: &str, reason: String) {
        for (_, p, _, running) in self.decider.programs.iter_mut() {
            if p.name == pack && running.info().name == name {
                running.switch_off(reason);
                return;
            }
        }
    }

    /// Each running plugin's and script's state, by (pack, program): what to persist.
    pub fn plugin_states(&self) -> PluginStates {
        self.decider
            .programs
            .iter()
            .map(|(_, pack, _, running)| {
                let key = (pack.name.clone(), running.info().name.clone());
                (key, running.state())
            })
            .collect()
    }

    /// Feeds one event; appends what fired (possibly for earlier spans whose duration crossed a
    /// threshold before this event's time) to `out`.
    pub fn push(&mut self, event: Event, out: &mut impl Firings) {
        // Plugins and scripts see each event once, as it arrives (not the span's later
        // re-evaluations): what happens over time is theirs to track, in their own state.
        let quarantined = self.decider.run_programs(&event, out);
        let decider = &mut self.decider;
        match self.mode {
            Mode::EveryMatch => decider.evaluate(&event, event.ts(), None, out),
            Mode::Spans => self.sessions.observe(event, &mut |e, at, memo| {
                decider.evaluate(e, at, Some(memo), out)
            }),
        }
        // A program switched off is a change to the monitoring setup: it goes through the rules
        // like any account event, so the standard pack's "Monitoring setup changed" fires.
        for notice in quarantined {
            self.notices.push(notice.clone());
            self.push(notice, out);
        }
    }

    /// Matches folded into alarms within their cooldowns since the last call: for the store to
    /// add to the alarms they were folded into.
    pub fn drain_folds(&mut self) -> Vec<crate::model::alarm::Fold> {
        std::mem::take(&mut self.decider.folds)
    }

    /// Open spans closed to bound memory since the last call (see `sessions`).
    pub fn take_evicted(&mut self) -> u64 {
        self.sessions.take_evicted()
    }

    /// The account events this pipeline raised since the last call (programs switched off).
    pub fn drain_notices(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.notices)
    }

    /// The clock moved to `now` without an event (the live agent's tick): open spans that
    /// crossed a duration threshold are evaluated.
    pub fn tick(&mut self, now: DateTime<FixedOffset>, out: &mut impl Firings) {
        if self.mode == Mode::EveryMatch {
            return;
        }
        let decider = &mut self.decider;
        self.sessions.advance(now, &mut |e, at, memo| {
            decider.evaluate(e, at, Some(memo), out)
        });
    }

    /// The person went idle at `at`: open spans stop counting.
    pub fn idle(&mut self, at: DateTime<FixedOffset>, out: &mut impl Firings) {
        let decider = &mut self.decider;
        self.sessions.pause(at, &mut |e, t, memo| {
            decider.evaluate(e, t, Some(memo), out)
        });
    }

    /// The person is back at `at`: the windows in front of them start new spans.
    pub fn back(&mut self, at: DateTime<FixedOffset>, out: &mut impl Firings) {
        let decider = &mut self.decider;
        self.sessions.resume(at, &mut |e, t, memo| {
            decider.evaluate(e, t, Some(memo), out)
        });
    }

    /// Ends the stream: spans with a recorded length are played out to their end.
    pub fn finish(&mut self, out: &mut impl Firings) {
        let decider = &mut self.decider;
        self.sessions
            .finish(&mut |e, at, memo| decider.evaluate(e, at, Some(memo), out));
    }
}

/// The account event that says a program was switched off: it goes through the rules like any
/// other, so "Monitoring setup changed" fires, and the agent keeps the program off across
/// restarts until an admin turns it back on.
fn quarantine_notice(
    pack: &str,
    kind: &str,
    name: &str,
    why: &str,
    at: DateTime<FixedOffset>,
) -> Event {
    use crate::event::Field;
    Event::new(crate::event::EventKind::Account, at)
        .with_text(Field::Actor, "vigilo")
        .with_text(Field::EventName, &format!("{kind}_quarantined"))
        .with_text(Field::ActionType, kind)
        .with_text(Field::ActionObject, &format!("{pack}/{name}"))
        .with_text(
            Field::Detail,
            &format!("the {kind} was switched off: {why}"),
        )
}

impl Decider<'_> {
    /// Hands `event` to every plugin and script; returns an account event for each one that
    /// this event got switched off.
    fn run_programs(&mut self, event: &Event, out: &mut impl Firings) -> Vec<Event> {
        let mut notices = Vec::new();
        for (i, pack, p, running) in self.programs.iter_mut() {
            let (i, pack) = (*i, *pack);
            if running.is_quarantined() || !self.targeting.pack_is_for(*p, event) {
                continue;
            }
            // A fault is logged by the supervisor, and the next event goes on.
            if let Ok(alarms) = running.on_event(event, event.ts().timestamp_millis()) {
                for a in alarms {
                    out.program(i, pack, a, event);
                }
            }
            if let Some(why) = running.switched_off() {
                notices.push(quarantine_notice(
                    &pack.name,
                    running.kind(),
                    &running.info().name,
                    why,
                    event.ts(),
                ));
            }
        }
        notices
    }

    /// Evaluates `event` at `at`; without a memo (every-match mode) every match fires.
    fn evaluate(
        &mut self,
        event: &Event,
        at: DateTime<FixedOffset>,
        memo: Option<&mut SpanMemo>,
        out: &mut impl Firings,
    ) {
        self.hits.clear();
        self.rules
            .engine()
            .evaluate(event, &mut self.scratch, &mut self.hits);
        self.targeting.keep_for(event, &mut self.hits);
        let mut memo = memo;
        for &id in &self.hits {
            let fire = match memo.as_deref_mut() {
                None => true,
                Some(memo) => {
                    let verdict = may_fire(self.rules, id, event, at, memo, &mut self.last_fired);
                    if self.last_fired.len() > COOLDOWNS_KEPT {
                        forget_past_cooldowns(self.rules, &mut self.last_fired, at);
                    }
                    match verdict {
                        Verdict::Fire => true,
                        Verdict::Folded(into) => {
                            let (pack, alarm) = self.rules.alarm(id);
                            self.folds
                                .push(crate::alarms::fold_of(pack, alarm, event, into));
                            false
                        }
                        Verdict::AlreadyFired => false,
                    }
                }
            };
            if fire {
                let alarm = self.rules.alarm(id).1;
                let who = (
                    event.user().unwrap_or_default(),
                    event
                        .text(crate::event::Field::Computer)
                        .unwrap_or_default(),
                );
                let escalated = self.escalations.fire(id, alarm, who, at);
                out.builtin(self.rules, id, event, at, escalated);
            }
        }
    }
}

/// The firing policy: once per span unless the alarm repeats, and never within its cooldown for
/// the same user and computer.
/// Cooldowns remembered before those that have run out are forgotten (one per alarm, user and
/// computer: a million people passing through must not stay in memory for good).
const COOLDOWNS_KEPT: usize = 10_000;

/// Forgets the cooldowns over by `now`; if every one still runs, the oldest half, so that
/// memory stays bounded (a person forgotten early may be alarmed once more).
fn forget_past_cooldowns(
    rules: &RuleSet,
    last_fired: &mut HashMap<(AlarmIndex, String, String), DateTime<FixedOffset>>,
    now: DateTime<FixedOffset>,
) {
    last_fired.retain(|(id, _, _), at| {
        let cooldown = rules.alarm(*id).1.cooldown.unwrap_or_default();
        now.signed_duration_since(*at).to_std().unwrap_or_default() < cooldown
    });
    if last_fired.len() > COOLDOWNS_KEPT / 2 {
        let mut times: Vec<DateTime<FixedOffset>> = last_fired.values().copied().collect();
        let half = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(half);
        let median = *median;
        last_fired.retain(|_, at| *at > median);
    }
}

/// What the firing policy says of a match.
enum Verdict {
    /// It fires.
    Fire,
    /// It fired already for this span.
    AlreadyFired,
    /// Within the cooldown of its firing at this time: folded into that alarm.
    Folded(DateTime<FixedOffset>),
}

fn may_fire(
    rules: &RuleSet,
    id: AlarmIndex,
    event: &Event,
    at: DateTime<FixedOffset>,
    memo: &mut SpanMemo,
    last_fired: &mut HashMap<(AlarmIndex, String, String), DateTime<FixedOffset>>,
) -> Verdict {
    let (_, alarm) = rules.alarm(id);
    if alarm.repeat == Repeat::OncePerSpan && memo.fired.contains(&id) {
        return Verdict::AlreadyFired;
    }
    if let Some(cooldown) = alarm.cooldown {
        let key = (
            id,
            event.user().unwrap_or_default().to_string(),
            event
                .text(crate::event::Field::Computer)
                .unwrap_or_default()
                .to_string(),
        );
        if let Some(last) = last_fired.get(&key)
            && at.signed_duration_since(*last).to_std().unwrap_or_default() < cooldown
        {
            return Verdict::Folded(*last);
        }
        last_fired.insert(key, at);
    }
    memo.fired.push(id);
    Verdict::Fire
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Field};
    use crate::packs::Pack;

    fn rules(alarms: &str) -> RuleSet {
        let text = format!("[pack]\nname = \"t\"\nversion = \"1.0.0\"\n{alarms}");
        RuleSet::new(vec![
            Pack::from_manifest_text("t", &text, "test").expect("pack"),
        ])
        .expect("rules")
    }

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("2026-11-02T{s}Z")).expect("ts")
    }

    fn run(rules: &RuleSet, mode: Mode, events: Vec<Event>) -> Vec<(String, String, String)> {
        let mut p = Pipeline::new(rules, mode);
        let mut out = Vec::new();
        for e in events {
            p.push(e, &mut out);
        }
        p.finish(&mut out);
        out.into_iter()
            .map(|f| {
                let r = f.record;
                (
                    r.alarm,
                    r.user.unwrap_or_default(),
                    r.fired_at.format("%H:%M:%S").to_string(),
                )
            })
            .collect()
    }

    fn usb(time: &str, user: &str) -> Event {
        Event::new(EventKind::Usb, at(time))
            .with_text(Field::Username, user)
            .with_text(Field::Action, "file_written")
    }

    fn window(time: &str, title: &str, duration: f64) -> Event {
        Event::new(EventKind::Activity, at(time))
            .with_text(Field::Username, "alice")
            .with_text(Field::Title, title)
            .with_number(Field::Duration, duration)
    }

    #[test]
    fn an_alarm_outside_its_targets_is_not_evaluated_for_that_person() {
        let r = rules(
            "[targets]\ngroups = [\"finance\"]\nexclude = { computers = [\"ws-kiosk\"] }\n\
             [[alarm]]\nname = \"copy\"\nrepeat = \"every_match\"\n\
             conditions = [{ field = \"action\", op = \"eq\", value = \"file_written\" }]\n\
             [[alarm]]\nname = \"copy by b\"\nrepeat = \"every_match\"\n\
             applies_to = { users = [\"B\"] }\n\
             conditions = [{ field = \"action\", op = \"eq\", value = \"file_written\" }]\n",
        );
        let groups = crate::model::targets::Groups::new([crate::model::targets::Group {
            name: "Finance".into(),
            users: vec!["a".into(), "b".into()],
            ..Default::default()
        }]);
        let on =
            |computer: &str, user: &str| usb("09:00:00", user).with_text(Field::Computer, computer);
        let fired = |place: Place| {
            let mut p = Pipeline::new(&r, Mode::Spans);
            p.set_place(std::sync::Arc::new(place));
            let mut out = Vec::new();
            for e in [
                on("ws-1", "a"),
                on("ws-1", "b"),
                on("ws-1", "c"),
                on("ws-kiosk", "a"),
            ] {
                p.push(e, &mut out);
            }
            out.into_iter()
                .map(|f| format!("{}/{}", f.record.alarm, f.record.user.unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        // No groups known: finance is no one.
        assert!(fired(Place::default()).is_empty());
        let anywhere = Place {
            groups: groups.clone(),
            ..Default::default()
        };
        assert_eq!(fired(anywhere), ["copy/a", "copy/b", "copy by b/b"]);
        // On the kiosk agent every event is the kiosk's, whatever it names.
        let kiosk = Place {
            agent: Some("ws-kiosk".into()),
            groups,
            ..Default::default()
        };
        assert!(fired(kiosk).is_empty());
    }

    #[test]
    fn an_escalating_alarm_changes_its_risk_and_actions_and_keeps_counting_across_a_swap() {
        let text = "[grants]\nactions = [\"popup\", \"terminate\"]\n\
             [[alarm]]\nname = \"w\"\nrisk = 2\nrepeat = \"every_match\"\n\
             actions = [{ popup = { message = \"careful\" } }]\n\
             escalate = [{ after = 3, within = \"10m\", risk = 9, actions = [{ terminate = {} }] }]\n\
             conditions = [{ field = \"action\", op = \"eq\", value = \"file_written\" }]\n";
        let (old, new) = (rules(text), rules(text));
        let mut out = Vec::new();
        let mut p = Pipeline::new(&old, Mode::Spans);
        p.push(usb("09:00:00", "a"), &mut out);
        p.push(usb("09:01:00", "a"), &mut out);
        let mut p = Pipeline::resume(&new, Mode::Spans, p.handover());
        p.push(usb("09:02:00", "a"), &mut out);
        p.push(usb("09:02:30", "b"), &mut out);
        p.push(usb("09:20:00", "a"), &mut out);
        let seen: Vec<(u8, String, Option<String>)> = out
            .iter()
            .map(|f| {
                let r = &f.record;
                let names: Vec<&str> = r.actions.iter().map(|a| a.name()).collect();
                (r.risk, names.join(","), r.note.clone())
            })
            .collect();
        assert_eq!(
            seen,
            [
                (2, "popup".into(), None),
                (2, "popup".into(), None),
                (
                    9,
                    "terminate".into(),
                    Some("3rd time in 10m: escalated".into())
                ),
                (2, "popup".into(), None),
                (2, "popup".into(), None),
            ]
        );
        // Seeded from what a store kept, a new pipeline goes on counting.
        let mut p = Pipeline::new(&new, Mode::Spans);
        p.seed_escalations([
            (("t", "w"), ("a", ""), at("09:20:00")),
            (("t", "w"), ("a", ""), at("09:21:00")),
        ]);
        let mut out = Vec::new();
        p.push(usb("09:22:00", "a"), &mut out);
        assert_eq!(out[0].record.risk, 9);
    }

    #[test]
    fn a_cooldown_holds_per_user() {
        let r = rules(
            "[[alarm]]\nname = \"w\"\nrepeat = \"every_match\"\ncooldown = \"1m\"\n\
             conditions = [{ field = \"action\", op = \"eq\", value = \"file_written\" }]\n",
        );
        let fired = run(
            &r,
            Mode::Spans,
            vec![
                usb("09:00:00", "a"),
                usb("09:00:30", "a"),
                usb("09:00:30", "b"),
                usb("09:00:59", "a"),
                usb("09:01:00", "a"),
            ],
        );
        let users: Vec<(&str, &str)> = fired
            .iter()
            .map(|(_, u, t)| (u.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            users,
            [("a", "09:00:00"), ("b", "09:00:30"), ("a", "09:01:00")]
        );
        let raw = run(
            &r,
            Mode::EveryMatch,
            vec![usb("09:00:00", "a"), usb("09:00:01", "a")],
        );
        assert_eq!(raw.len(), 2, "every-match mode ignores cooldowns");
    }

    #[test]
    fn new_rules_take_over_open_spans_without_refiring() {
        let old = rules(
            "[[alarm]]\nname = \"long\"\nconditions = [{ field = \"duration\", op = \"gte\", value = 60 }]\n",
        );
        let new = rules(
            "[[alarm]]\nname = \"longer\"\nconditions = [{ field = \"duration\", op = \"gte\", value = 120 }]\n\
             [[alarm]]\nname = \"long\"\nconditions = [{ field = \"duration\", op = \"gte\", value = 60 }]\n",
        );
        let mut out = Vec::new();
        let mut p = Pipeline::new(&old, Mode::Spans);
        p.push(window("09:00:00", "Mail", 600.0), &mut out);
        p.push(window("09:01:30", "Mail", 600.0), &mut out); // the clock moves on; same span
        let handover = p.handover();
        let mut p = Pipeline::resume(&new, Mode::Spans, handover);
        p.push(window("09:03:00", "Mail", 600.0), &mut out);
        p.push(window("09:04:00", "Docs", 5.0), &mut out);
        p.finish(&mut out);
        let fired: Vec<(String, String)> = out
            .into_iter()
            .map(|f| {
                (
                    f.record.alarm,
                    f.record.fired_at.format("%H:%M:%S").to_string(),
                )
            })
            .collect();
        assert_eq!(
            fired,
            [
                ("long".to_string(), "09:01:00".to_string()),
                ("longer".to_string(), "09:02:00".to_string()),
            ],
            "\"long\" fired before the change is not fired again after it"
        );
    }

    #[test]
    fn once_per_span_unless_the_alarm_repeats() {
        let r = rules(
            "[[alarm]]\nname = \"long\"\nconditions = [{ field = \"duration\", op = \"gte\", value = 60 }]\n\
             [[alarm]]\nname = \"every\"\nrepeat = \"every_match\"\n\
             conditions = [{ field = \"title\", op = \"contains\", value = \"mail\" }]\n",
        );
        let fired = run(
            &r,
            Mode::Spans,
            vec![
                window("09:00:00", "Mail", 300.0),
                window("09:10:00", "Docs", 30.0),
            ],
        );
        let names: Vec<(&str, &str)> = fired
            .iter()
            .map(|(a, _, t)| (a.as_str(), t.as_str()))
            .collect();
        // "every" fires on each evaluation of the Mail span: when it opens and at each
        // threshold (60 and 61 s); "long" once, when the span reaches 60 s.
        assert_eq!(
            names,
            [
                ("every", "09:00:00"),
                ("long", "09:01:00"),
                ("every", "09:01:00"),
                ("every", "09:01:01")
            ]
        );
    }
}

#[cfg(test)]
mod plugin_state {
    use super::*;
    use crate::packs::{Pack, PluginSpec};
    use crate::rules::wasm::Limits;

    use crate::test_plugins as support;

    #[test]
    fn plugin_state_is_handed_back_for_saving_and_restored() {
        // Stores "hello" => "1.0.0" on every event.
        let body = "(call $state_set (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 5) (i32.const 3000)) (i32.const 2048)";
        let mut pack =
            Pack::from_manifest_text("p", "[pack]\nname = \"p\"\nversion = \"1.0.0\"\n", "test")
                .expect("pack");
        pack.plugins.push(PluginSpec {
            file: "p.wasm".into(),
            bytes: support::component(&support::plugin_wat("\\00\\01\\02", body, "")),
            config: String::new(),
            limits: Limits::default(),
        });
        let rules = RuleSet::new(vec![pack]).expect("rules");
        let mut pipeline = Pipeline::new(&rules, Mode::Spans);
        assert_eq!(
            pipeline.plugin_states()[&("p".into(), "hello".into())],
            Default::default()
        );
        let event = crate::event::parse_line(r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb"}"#)
            .expect("event");
        let mut out = Vec::new();
        pipeline.push(event, &mut out);
        assert_eq!(out.len(), 1, "the plugin's alarm");
        let states = pipeline.plugin_states();
        let expected = std::collections::BTreeMap::from([("hello".to_string(), b"1.0.0".to_vec())]);
        assert_eq!(states[&("p".into(), "hello".into())], expected);
        let restored = Pipeline::with_plugin_state(&rules, Mode::Spans, &states);
        assert_eq!(
            restored.plugin_states(),
            states,
            "a restarted agent starts where it stopped"
        );
    }
}

#[cfg(test)]
mod extremes {
    use super::*;
    use crate::event::parse_line;
    use crate::packs::Pack;

    /// Untrusted recordings can carry any timestamp and any duration; nothing may panic.
    #[test]
    fn extreme_times_and_durations_do_not_panic() {
        let text = "[pack]\nname = \"t\"\nversion = \"1.0.0\"\n[[alarm]]\nname = \"far\"\n\
                    conditions = [{ field = \"duration\", op = \"gt\", value = 999999999999 }]\n";
        let pack = Pack::from_manifest_text("t", text, "test").expect("pack");
        let rules = RuleSet::new(vec![pack, Pack::standard().expect("standard")]).expect("rules");
        for mode in [Mode::Spans, Mode::EveryMatch] {
            let mut p = Pipeline::new(&rules, mode);
            let mut out = Vec::new();
            // Times outside 1970–2999 are refused by the reader; the extremes inside it run.
            for line in [
                r#"{"ts":"9999-12-31T23:59:59Z","kind":"activity","username":"a","duration":1e300}"#,
                r#"{"ts":"0001-01-01T00:00:00+23:59","kind":"activity","username":"a","title":"x"}"#,
                r#"{"ts":"9999-12-31T23:59:59-23:59","kind":"activity","username":"b","duration":0}"#,
            ] {
                assert!(parse_line(line).is_err(), "{line}");
            }
            for line in [
                r#"{"ts":"2999-12-31T23:59:59Z","kind":"activity","username":"a","duration":1e300}"#,
                r#"{"ts":"1970-01-01T00:00:00+00:00","kind":"activity","username":"a","title":"x"}"#,
                r#"{"ts":"2999-12-31T23:59:59Z","kind":"activity","username":"b","duration":0}"#,
                r#"{"ts":"2026-11-02T09:00:00Z","kind":"activity","username":"a","url":"https://youtube.com/","duration":1e15}"#,
                r#"{"ts":"2999-12-31T23:59:59Z","kind":"usb","username":"a","action":"file_written","bytes":1.7e308}"#,
            ] {
                p.push(parse_line(line).expect(line), &mut out);
            }
            p.finish(&mut out);
        }
    }
}

#[cfg(test)]
mod bounds {
    use super::*;
    use crate::packs::Pack;

    #[test]
    fn cooldowns_of_people_passing_through_are_forgotten() {
        let text = "[pack]\nname = \"t\"\nversion = \"1.0.0\"\n[[alarm]]\nname = \"copy\"\n\
                    repeat = \"every_match\"\ncooldown = \"1m\"\n\
                    conditions = [{ field = \"action\", op = \"eq\", value = \"file_written\" }]\n";
        let pack = Pack::from_manifest_text("t", text, "test").expect("pack");
        let rules = RuleSet::new(vec![pack]).expect("rules");
        let mut p = Pipeline::new(&rules, Mode::Spans);
        let t0 = DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        let mut out = Vec::new();
        for n in 0..5 * COOLDOWNS_KEPT {
            let event = Event::new(crate::event::EventKind::Usb, t0)
                .with_text(crate::event::Field::Username, &format!("u{n}"))
                .with_text(crate::event::Field::Action, "file_written");
            p.push(event, &mut out);
            assert!(p.decider.last_fired.len() <= COOLDOWNS_KEPT + 1);
        }
        assert_eq!(
            out.len(),
            5 * COOLDOWNS_KEPT,
            "each person's first copy fires"
        );
        // A cooldown still running is kept: the last person's second copy is folded.
        let again = Event::new(crate::event::EventKind::Usb, t0)
            .with_text(
                crate::event::Field::Username,
                &format!("u{}", 5 * COOLDOWNS_KEPT - 1),
            )
            .with_text(crate::event::Field::Action, "file_written");
        p.push(again, &mut out);
        assert_eq!(out.len(), 5 * COOLDOWNS_KEPT);
    }
}
