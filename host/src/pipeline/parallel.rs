//! A counting back-test on every core: `vigilo replay --every-match --counts`.
//!
//! In every-match mode each event is evaluated on its own — no spans, no once-per-span, no
//! cooldowns — so the built-in alarms' counts do not depend on which thread sees an event or in
//! which order: one thread reads (and decompresses) the recording and cuts it into blocks of
//! whole lines ([`Blocks`]), and each worker parses a block and evaluates its events in a
//! [`Pipeline`] of its own, counting ([`Counts`]) without building a record. Their counts are
//! summed at the end. Programs (plugins, scripts) keep state across events and need one global
//! order: with any loaded, the caller runs the single-thread path instead.

use std::io::BufRead;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use super::{Counts, Mode, Pipeline};
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
    input: impl BufRead,
    file: &str,
    threads: usize,
    shown: usize,
    mut progress: impl FnMut(u64),
) -> std::io::Result<Tally> {
    // Two blocks waiting per worker: the reader stays ahead without holding the file in memory.
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                scope.spawn(move || work(rules, &rx, file, shown))
            })
            .collect();
        let mut read = Ok(());
        for block in Blocks::new(input) {
            match block {
                Ok(block) => {
                    let lines = block.last_line();
                    if tx.send(block).is_err() {
                        break;
                    }
                    progress(lines);
                }
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        drop(tx);
        let mut tally = Tally {
            counts: Counts::for_rules(rules),
            ..Tally::default()
        };
        for worker in workers {
            match worker.join() {
                Ok(part) => tally.add(part, shown),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        read.map(|()| tally)
    })
}

/// One worker: blocks until the reader is done, each parsed and evaluated.
fn work(rules: &RuleSet, blocks: &Mutex<Receiver<Block>>, file: &str, shown: usize) -> Tally {
    let mut pipeline = Pipeline::new(rules, Mode::EveryMatch);
    let mut tally = Tally {
        counts: Counts::for_rules(rules),
        ..Tally::default()
    };
    loop {
        // The lock is held only to take a block, not while it is worked on.
        let block = match blocks.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(block) = block else {
            return tally;
        };
        for item in block.events(file) {
            match item {
                Ok(event) => {
                    tally.events += 1;
                    pipeline.push(event, &mut tally.counts);
                }
                Err(bad) => {
                    tally.bad += 1;
                    if tally.first_bad.len() < shown {
                        tally.first_bad.push(bad);
                    } else if tally.first_bad.last().is_some_and(|l| l.line > bad.line) {
                        tally.first_bad.push(bad);
                        keep_first(&mut tally.first_bad, shown);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packs::Pack;

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
            let tally =
                count_every_match(&rules, text.as_bytes(), "f", threads, 5, |_| {}).expect("count");
            assert_eq!(tally.counts, counts, "{threads} threads");
            assert_eq!((tally.events, tally.bad), (events, bad.len() as u64));
            let lines: Vec<u64> = tally.first_bad.iter().map(|b| b.line).collect();
            assert_eq!(lines, bad[..5], "the first bad lines, in order");
        }
    }
}
