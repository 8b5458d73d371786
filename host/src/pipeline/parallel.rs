//! A counting back-test on every core: `vigilo replay --counts` (with or without
//! `--every-match`).
//!
//! One thread reads (and decompresses) the recording and cuts it into blocks of whole lines
//! (`Blocks`); workers parse the blocks and evaluate their events, counting ([`Counts`])
//! without building a record. Their counts are summed at the end.
//!
//! - **Every match** ([`count_every_match`]): each event is judged alone, so any worker may take
//!   any block, in any order; each worker evaluates what it parsed.
//! - **Spans** ([`count_by_person`]): a span, its once-per-span memory and an alarm's cooldown
//!   belong to one user on one computer, so events are sharded by (user, computer): a parsing
//!   worker sends each event to its person's shard, and each shard evaluates its people's events
//!   in file order (blocks are put back in order before they are evaluated). What holds across
//!   people does not carry across shards: the memory bounds (open spans, cooldowns kept) are per
//!   shard, and so is the clock a span's URL update is measured against — the same as one thread
//!   for a recording in time order, as recorded days are.
//!
//! Programs (plugins, scripts) keep state across every event and need one global order: with
//! any loaded, the caller runs the single-thread path instead.

use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use super::{Counts, Mode, Pipeline};
use crate::event::{Event, Field};
use crate::model::targets::Place;
use crate::rule_set::RuleSet;
use crate::sources::jsonl::BadLine;
use crate::sources::jsonl::blocks::{Block, Blocks};

/// What a counting back-test found.
#[derive(Debug, Default)]
pub struct Tally {
    /// How often each alarm fired.
    pub counts: Counts,
    /// Events evaluated.
    pub events: u64,
    /// Malformed lines.
    pub bad: u64,
    /// The first malformed lines, in line order (at most the `shown` asked for).
    pub first_bad: Vec<BadLine>,
}

impl Tally {
    fn of(rules: &RuleSet) -> Tally {
        Tally {
            counts: Counts::for_rules(rules),
            ..Tally::default()
        }
    }

    fn add(&mut self, other: Tally, shown: usize) {
        self.counts.add(&other.counts);
        self.events += other.events;
        self.bad += other.bad;
        self.first_bad.extend(other.first_bad);
        keep_first(&mut self.first_bad, shown);
    }
}

/// Keeps the `n` lowest-numbered bad lines.
fn keep_first(bad: &mut Vec<BadLine>, n: usize) {
    bad.sort_by_key(|b| b.line);
    bad.truncate(n);
}

/// Whether `rules` can be counted on several threads: no program is loaded.
pub fn can_run_in_parallel(rules: &RuleSet) -> bool {
    rules.programs().next().is_none()
}

/// Counts every match of `rules` in `input` (named `file` in errors) on `threads` workers,
/// keeping the first `shown` malformed lines; `progress` hears how many lines were read. An I/O error (a corrupt compressed stream) stops
/// the count and is returned.
pub fn count_every_match(
    rules: &RuleSet,
    place: &Arc<Place>,
    input: impl BufRead,
    file: &str,
    threads: usize,
    shown: usize,
    progress: impl FnMut(u64),
) -> std::io::Result<Tally> {
    // Two blocks waiting per worker: the reader stays ahead without holding the file in memory.
    let (tx, rx) = sync_channel::<(u64, Block)>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                scope.spawn(move || {
                    let mut pipeline = Pipeline::new(rules, Mode::EveryMatch);
                    pipeline.set_place(place.clone());
                    let mut tally = Tally::of(rules);
                    while let Some((_, block)) = next_block(&rx) {
                        for event in
                            parse(&block, file, (&mut tally.bad, &mut tally.first_bad), shown)
                        {
                            tally.events += 1;
                            pipeline.push(event, &mut tally.counts);
                        }
                    }
                    tally
                })
            })
            .collect();
        let read = read_blocks(input, &tx, progress);
        drop(tx);
        let tally = join(rules, workers, shown);
        read.map(|()| tally)
    })
}

/// Counts the matches of `rules` in `input` in spans mode (spans, once-per-span, cooldowns), the
/// events sharded by user and computer over `threads` workers. Every worker reads every block;
/// it finds each line's person with a scan for three keys (`PersonFinder`), and parses and
/// evaluates in full, in file order, only its own people's lines — so no event crosses threads. Returns the
/// tally and how many matches cooldowns folded. Otherwise as [`count_every_match`].
pub fn count_by_person(
    rules: &RuleSet,
    place: &Arc<Place>,
    input: impl BufRead,
    file: &str,
    threads: usize,
    shown: usize,
    mut progress: impl FnMut(u64),
) -> std::io::Result<(Tally, u64)> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| sync_channel::<Arc<Block>>(4)).unzip();
    std::thread::scope(|scope| {
        let workers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(me, blocks)| {
                scope.spawn(move || person_worker(rules, place, me, threads, blocks, file, shown))
            })
            .collect();
        let mut read = Ok(());
        for block in Blocks::new(input) {
            let block = match block {
                Ok(b) => Arc::new(b),
                Err(e) => {
                    read = Err(e);
                    break;
                }
            };
            let lines = block.last_line();
            if senders.iter().any(|to| to.send(block.clone()).is_err()) {
                break;
            }
            progress(lines);
        }
        drop(senders);
        let mut tally = Tally::of(rules);
        let mut folded = 0;
        for worker in workers {
            match worker.join() {
                Ok((part, folds)) => {
                    tally.add(part, shown);
                    folded += folds;
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        read.map(|()| (tally, folded))
    })
}

/// Which of `shards` a person's events go to: by the user (`username`, or an account event's
/// `actor`) and the computer, the keys of spans and cooldowns.
fn shard_of(user: &str, computer: &str, shards: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    user.hash(&mut hasher);
    computer.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// Finds a line's person without parsing it: the values of its `username`, `actor` and
/// `computer` keys, found as `"key"` followed by `:` (in JSON text that byte sequence is a key:
/// inside a string a quote is escaped). A value that is not a plain string (escapes, `null`, a
/// number) or a line that is not an object gives no answer: then the line is parsed in full to
/// know.
struct PersonFinder {
    keys: [memchr::memmem::Finder<'static>; 3],
}

impl PersonFinder {
    fn new() -> PersonFinder {
        PersonFinder {
            keys: [
                memchr::memmem::Finder::new(b"\"username\""),
                memchr::memmem::Finder::new(b"\"actor\""),
                memchr::memmem::Finder::new(b"\"computer\""),
            ],
        }
    }

    /// The shard of the line's person, if the scan can tell.
    fn shard(&self, line: &[u8], shards: usize) -> Option<usize> {
        if line.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let [username, actor, computer] = &self.keys;
        let username = string_after(line, username)?;
        // As `Event::user`: the username, else an account event's actor.
        let user = match username {
            Some(u) => Some(u),
            None => string_after(line, actor)?,
        };
        let computer = string_after(line, computer)?;
        Some(shard_of(
            user.unwrap_or_default(),
            computer.unwrap_or_default(),
            shards,
        ))
    }
}

/// The plain string value of the key `finder` finds in `line`: `Some(None)` when the key is
/// absent, `None` when its value is not a plain string.
fn string_after<'a>(
    line: &'a [u8],
    finder: &memchr::memmem::Finder<'_>,
) -> Option<Option<&'a str>> {
    let mut from = 0;
    while let Some(at) = finder.find(&line[from..]) {
        let after = from + at + finder.needle().len();
        let rest = line[after..].trim_ascii_start();
        let Some(value) = rest.strip_prefix(b":") else {
            // A value that happens to read "username", not a key: look further.
            from = after;
            continue;
        };
        let value = value.trim_ascii_start().strip_prefix(b"\"")?;
        let end = memchr::memchr2(b'"', b'\\', value)?;
        if value[end] != b'"' {
            return None;
        }
        return std::str::from_utf8(&value[..end]).ok().map(Some);
    }
    Some(None)
}

/// Worker `me` of `shards` in [`count_by_person`]: its people's events, in file order, through a
/// spans-mode pipeline. A malformed line is counted by one worker: its person's, or when the
/// person cannot be read, worker `line % shards`.
fn person_worker(
    rules: &RuleSet,
    place: &Arc<Place>,
    me: usize,
    shards: usize,
    blocks: Receiver<Arc<Block>>,
    file: &str,
    shown: usize,
) -> (Tally, u64) {
    let mut pipeline = Pipeline::new(rules, Mode::Spans);
    pipeline.set_place(place.clone());
    let mut tally = Tally::of(rules);
    let mut folded = 0;
    let mut bad = Vec::new();
    let finder = PersonFinder::new();
    for block in blocks {
        for (line, text) in block.lines() {
            let owner = finder.shard(text, shards);
            if owner.is_some_and(|o| o != me) {
                continue;
            }
            match block.event_of(line, text, file) {
                None => {}
                Some(Ok(event)) => {
                    let mine = owner.is_some()
                        || shard_of(
                            event.user().unwrap_or_default(),
                            event.text(Field::Computer).unwrap_or_default(),
                            shards,
                        ) == me;
                    if mine {
                        tally.events += 1;
                        pipeline.push(event, &mut tally.counts);
                    }
                }
                Some(Err(line_error)) if owner.is_some() || line % shards as u64 == me as u64 => {
                    bad.push(line_error);
                }
                Some(Err(_)) => {}
            }
        }
        folded += pipeline.drain_folds().len() as u64;
        tally.bad += bad.len() as u64;
        tally.first_bad.append(&mut bad);
        keep_first(&mut tally.first_bad, shown);
    }
    pipeline.finish(&mut tally.counts);
    folded += pipeline.drain_folds().len() as u64;
    (tally, folded)
}

/// Cuts `input` into blocks, numbered in file order, for the workers; `progress` hears how many
/// lines were read.
fn read_blocks(
    input: impl BufRead,
    tx: &SyncSender<(u64, Block)>,
    mut progress: impl FnMut(u64),
) -> std::io::Result<()> {
    for (seq, block) in (0..).zip(Blocks::new(input)) {
        let block = block?;
        let lines = block.last_line();
        if tx.send((seq, block)).is_err() {
            break;
        }
        progress(lines);
    }
    Ok(())
}

/// The next block for a worker; none once the reader is done. The lock is held only to take a
/// block, not while it is worked on.
fn next_block(blocks: &Mutex<Receiver<(u64, Block)>>) -> Option<(u64, Block)> {
    match blocks.lock() {
        Ok(rx) => rx.recv(),
        Err(poisoned) => poisoned.into_inner().recv(),
    }
    .ok()
}

/// The events of `block`; its malformed lines counted in `bad`, the first `shown` kept in
/// `first_bad`.
fn parse<'a>(
    block: &'a Block,
    file: &'a str,
    (bad, first_bad): (&'a mut u64, &'a mut Vec<BadLine>),
    shown: usize,
) -> impl Iterator<Item = Event> + 'a {
    block.events(file).filter_map(move |item| match item {
        Ok(event) => Some(event),
        Err(line) => {
            *bad += 1;
            if first_bad.len() < shown {
                first_bad.push(line);
            } else if first_bad.last().is_some_and(|l| l.line > line.line) {
                first_bad.push(line);
                keep_first(first_bad, shown);
            }
            None
        }
    })
}

/// The workers' tallies summed.
fn join(
    rules: &RuleSet,
    workers: Vec<std::thread::ScopedJoinHandle<'_, Tally>>,
    shown: usize,
) -> Tally {
    let mut tally = Tally::of(rules);
    for worker in workers {
        match worker.join() {
            Ok(part) => tally.add(part, shown),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packs::Pack;

    /// Spans mode on one thread, in file order: counts, events, folded matches.
    fn spans_one_thread(rules: &RuleSet, text: &str) -> (Counts, u64, u64) {
        let mut pipeline = Pipeline::new(rules, Mode::Spans);
        let mut counts = Counts::for_rules(rules);
        let mut events = 0;
        for item in crate::sources::jsonl::JsonlReader::new(text.as_bytes(), "f") {
            if let Ok(Ok(e)) = item {
                events += 1;
                pipeline.push(e, &mut counts);
            }
        }
        pipeline.finish(&mut counts);
        (counts, events, pipeline.drain_folds().len() as u64)
    }

    #[test]
    fn a_line_s_person_is_found_without_parsing_it_or_not_at_all() {
        let finder = PersonFinder::new();
        let of = |line: &str| finder.shard(line.as_bytes(), 1_000_003);
        let alice = Some(shard_of("alice", "pc1", 1_000_003));
        assert_eq!(
            of(r#"{"username":"alice","computer":"pc1","kind":"usb"}"#),
            alice
        );
        assert_eq!(
            of(r#" { "computer" : "pc1", "username" :  "alice" }"#),
            alice
        );
        assert_eq!(
            of(r#"{"title":"\"username\": bob","username":"alice","computer":"pc1"}"#),
            alice
        );
        assert_eq!(
            of(r#"{"actor":"alice","computer":"pc1","kind":"account"}"#),
            alice
        );
        assert_eq!(of(r#"{"kind":"usb"}"#), Some(shard_of("", "", 1_000_003)));
        // Escapes, nulls, numbers and non-objects: parsed in full instead.
        assert_eq!(of(r#"{"username":"al\u0069ce","computer":"pc1"}"#), None);
        assert_eq!(of(r#"{"username":null}"#), None);
        assert_eq!(of(r#"{"username":5}"#), None);
        assert_eq!(of("not json"), None);
    }

    #[test]
    fn people_sharded_over_threads_count_what_one_thread_counts() {
        let day = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/events/workday.jsonl"
        ))
        .expect("the example day");
        let standard = RuleSet::new(vec![Pack::standard().expect("standard")]).expect("rules");
        let generated = RuleSet::new(vec![
            Pack::standard().expect("standard"),
            crate::synth::generated_pack(120, 3),
        ])
        .expect("rules");
        let mut synthetic = String::new();
        for event in crate::synth::mixed_events(30_000, 13) {
            synthetic.push_str(&event.to_json());
            synthetic.push('\n');
        }
        for (rules, text) in [(&standard, &day), (&generated, &synthetic)] {
            let (counts, events, folded) = spans_one_thread(rules, text);
            assert!(counts.total > 10, "the rules fire: {}", counts.total);
            for threads in [1, 2, 3] {
                let (tally, folds) = count_by_person(
                    rules,
                    &Default::default(),
                    text.as_bytes(),
                    "f",
                    threads,
                    5,
                    |_| {},
                )
                .expect("count");
                assert_eq!(tally.counts, counts, "{threads} shards");
                assert_eq!((tally.events, folds), (events, folded));
            }
        }
        // Every standard alarm an agent raises fires on the example day, spans and cooldowns
        // included (the last, "Computer not reporting", only a fleet's hub raises).
        let (tally, _) = count_by_person(
            &standard,
            &Default::default(),
            day.as_bytes(),
            "f",
            2,
            5,
            |_| {},
        )
        .expect("n");
        let (agents, hub) = tally
            .counts
            .builtin
            .split_at(tally.counts.builtin.len() - 1);
        assert!(
            agents.iter().all(|&n| n > 0) && hub == [0],
            "{:?}",
            tally.counts
        );
    }

    /// The single-thread path's counts for the same input: the reference.
    fn one_thread(rules: &RuleSet, text: &str) -> (Counts, u64, Vec<u64>) {
        let mut pipeline = Pipeline::new(rules, Mode::EveryMatch);
        let mut counts = Counts::for_rules(rules);
        let (mut events, mut bad) = (0, Vec::new());
        for item in crate::sources::jsonl::JsonlReader::new(text.as_bytes(), "f") {
            match item.expect("read") {
                Ok(e) => {
                    events += 1;
                    pipeline.push(e, &mut counts);
                }
                Err(line) => bad.push(line.line),
            }
        }
        (counts, events, bad)
    }

    #[test]
    fn every_core_counts_what_one_thread_counts() {
        let pack = crate::synth::generated_pack(120, 3);
        let rules = RuleSet::new(vec![Pack::standard().expect("standard"), pack]).expect("rules");
        let mut text = String::new();
        for (i, event) in crate::synth::mixed_events(40_000, 11)
            .into_iter()
            .enumerate()
        {
            text.push_str(&event.to_json());
            text.push('\n');
            if i % 997 == 0 {
                text.push_str("{\"kind\": \"nope\"}\n");
            }
        }
        let (counts, events, bad) = one_thread(&rules, &text);
        assert!(counts.total > 1000, "the rules fire: {}", counts.total);
        // And the reference evaluation, alarm by alarm, agrees with both.
        let mut reference = Counts::for_rules(&rules);
        for event in crate::sources::jsonl::JsonlReader::new(text.as_bytes(), "f") {
            let Ok(Ok(event)) = event else { continue };
            for (i, (_, alarm)) in rules.alarms().enumerate() {
                if alarm.matches(&event) {
                    reference.builtin[i] += 1;
                    reference.total += 1;
                }
            }
        }
        assert_eq!(reference, counts, "the reference evaluation");
        for threads in [1, 2, 3] {
            let tally = count_every_match(
                &rules,
                &Default::default(),
                text.as_bytes(),
                "f",
                threads,
                5,
                |_| {},
            )
            .expect("count");
            assert_eq!(tally.counts, counts, "{threads} threads");
            assert_eq!((tally.events, tally.bad), (events, bad.len() as u64));
            let lines: Vec<u64> = tally.first_bad.iter().map(|b| b.line).collect();
            assert_eq!(lines, bad[..5], "the first bad lines, in order");
        }
    }
}
