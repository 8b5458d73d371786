//! `vigilo replay`: recorded events through sessions and rules — a back-test.
//!
//! A replay changes nothing unless asked to: without `--store` no database is opened (let alone
//! written), so counting a million events against a draft pack leaves the alarms, risk scores
//! and programs' state of the data folder exactly as they were. `--store` keeps a replayed day
//! as history (origin `replay:FILE`, never acted on), programs' state carried from one replay
//! to the next.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::alarms::FiredAlarm;
use crate::event::Event;
use crate::model::targets::{Group, Groups, Place, Reach, Targets};
use crate::pipeline::{Counts, Keeper, Mode, Pipeline, parallel};
use crate::rule_set::RuleSet;
use crate::sources::jsonl::compressed;
use crate::sources::jsonl::{BadLine, JsonlReader};
use crate::store::Store;

use super::table;
use super::{EXIT_INVALID, EXIT_OK, EXIT_SKIPPED, load_rules};

/// Bad lines printed one by one before only counting the rest.
const SHOWN_BAD_LINES: u64 = 50;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A JSONL file of events, plain, gzip or zstd (`-` for standard input).
    file: PathBuf,
    /// Also load this pack (a folder with pack.toml); repeat for several.
    #[arg(long = "pack", value_name = "DIR")]
    packs: Vec<PathBuf>,
    /// Do not load the built-in standard pack.
    #[arg(long)]
    no_default_pack: bool,
    /// Evaluate every event on its own as recorded: no spans, no once-per-span, no cooldowns.
    #[arg(long)]
    every_match: bool,
    /// Write per-alarm counts (`NAME<TAB>COUNT`, sorted, zeros included) to FILE (`-`: stdout)
    /// instead of listing each alarm.
    #[arg(long, value_name = "FILE")]
    counts: Option<PathBuf>,
    /// Print fired alarms as JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Stop at the first malformed line (exit 2) instead of reporting and skipping it.
    #[arg(long)]
    strict: bool,
    /// Keep the fired alarms in the data folder's database (as history: never acted on), with
    /// the day's activity records and programs' state. Without it the store is not touched.
    #[arg(long, conflicts_with = "every_match")]
    store: bool,
    /// Threads for a counting back-test (`--counts` without `--store`; one thread with
    /// `--strict` or when a plugin or script is loaded); default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Judge pack `[targets]` and alarms' `applies_to` as the agent with this id would (by
    /// default, by the computer each event names).
    #[arg(long, value_name = "ID")]
    as_agent: Option<String>,
    /// One of that agent's tags, as in `[fleet] tags`; repeat for several.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// The fleet's groups, as `vigilo group list --json` prints them (a JSON list).
    #[arg(long, value_name = "FILE")]
    groups: Option<PathBuf>,
    /// No progress bar and no summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!(
            "{text:?}: a tag is KEY=VALUE, e.g. department=finance"
        )),
    }
}

/// Where targets are judged: `--as-agent`, `--tag`s and `--groups`.
fn place(args: &Args) -> Result<Place, String> {
    let groups = match &args.groups {
        None => Groups::default(),
        Some(path) => {
            let shown = path.display();
            let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
            let list: Vec<Group> = serde_json::from_str(&text).map_err(|e| {
                format!("{shown}: not a list of groups (as `vigilo group list --json` prints): {e}")
            })?;
            for (i, g) in list.iter().enumerate() {
                g.check()
                    .map_err(|e| format!("{shown}: group {} ({:?}): {e}", i + 1, g.name))?;
            }
            Groups::new(list)
        }
    };
    Ok(Place {
        agent: args.as_agent.clone(),
        tags: args.tags.iter().cloned().collect(),
        groups,
    })
}

/// What applies where, for the packs and alarms that say whom they are for: a line each.
fn targets_said(rules: &RuleSet, place: &Place) -> Vec<String> {
    let here = place
        .agent
        .as_deref()
        .map_or("each event's computer".to_string(), |a| {
            format!("agent {a}")
        });
    let reach = |t: &Targets| match place.reach(t) {
        Reach::Computer => "applies".to_string(),
        Reach::SomeUsers if place.agent.is_none() => "judged per event".to_string(),
        Reach::SomeUsers => "applies to some users".to_string(),
        Reach::No(why) => format!("does not apply ({why})"),
    };
    let mut out = Vec::new();
    for pack in rules.packs() {
        if !pack.targets.is_everyone() {
            out.push(format!(
                "pack {} (for {}): {} on {here}",
                pack.name,
                pack.targets.words(),
                reach(&pack.targets)
            ));
        }
        for alarm in &pack.alarms {
            if let Some(t) = &alarm.applies_to {
                out.push(format!(
                    "alarm {:?} of {} (for {}): {} on {here}",
                    alarm.name,
                    pack.name,
                    t.words(),
                    reach(t)
                ));
            }
        }
    }
    out
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let rules = match load_rules(&args.packs, !args.no_default_pack, data_dir) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let place = match place(&args) {
        Ok(p) => Arc::new(p),
        Err(why) => {
            eprintln!("error: {why}");
            return Ok(EXIT_INVALID);
        }
    };
    if !args.quiet {
        for line in targets_said(&rules, &place) {
            eprintln!("{line}");
        }
    }
    let name = args.file.display().to_string();
    let input = compressed::open(&args.file).with_context(|| format!("cannot open {name}"))?;
    let progress = Progress::start(input.size, input.read.clone(), args.quiet);
    let ran = if args.counts.is_some() && !args.store {
        count(&args, (&rules, &place), input.reader, &name, &progress)?
    } else {
        list(
            &args,
            (&rules, &place),
            input.reader,
            &name,
            &progress,
            data_dir,
        )?
    };
    progress.bar.finish_and_clear();
    let ran = match ran {
        Ran::Done(ran) => ran,
        Ran::Stopped(line) => {
            eprintln!("error: {line}");
            eprintln!("stopped at the first malformed line (--strict)");
            return Ok(EXIT_INVALID);
        }
    };
    if let Some(path) = &args.counts {
        write_counts(path, &rules, &ran.counts, ran.events, ran.bad)?;
    }
    if !args.quiet {
        if ran.bad > SHOWN_BAD_LINES {
            eprintln!(
                "warning: {} more malformed lines not shown",
                ran.bad - SHOWN_BAD_LINES
            );
        }
        let store_note = match &ran.stored {
            Some((n, location)) => format!(", {n} new in {location}"),
            None => "; not stored (--store keeps them)".to_string(),
        };
        let folded_note = match ran.folded {
            0 => String::new(),
            n => format!(" (and {n} more matches folded into them within their cooldowns)"),
        };
        eprintln!(
            "{} events, {} malformed lines skipped, {} alarms fired{folded_note}{store_note}",
            ran.events, ran.bad, ran.counts.total
        );
    }
    Ok(if ran.bad > 0 { EXIT_SKIPPED } else { EXIT_OK })
}

/// How a back-test ended.
enum Ran {
    /// Through the whole recording.
    Done(Summary),
    /// At this malformed line (`--strict`).
    Stopped(BadLine),
}

/// What a back-test found.
struct Summary {
    counts: Counts,
    events: u64,
    bad: u64,
    /// Matches folded into alarms within their cooldowns.
    folded: u64,
    /// New alarms stored, and where (`--store`).
    stored: Option<(usize, String)>,
}

/// `--counts` without `--store`: how often each alarm fires, no record built. Without programs,
/// on every core (`--threads`; spans mode sharded by user and computer); with any, or with
/// `--strict`, on one thread in file order.
fn count(
    args: &Args,
    (rules, place): (&RuleSet, &Arc<Place>),
    input: Box<dyn BufRead + Send>,
    name: &str,
    progress: &Progress,
) -> Result<Ran> {
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    if !args.strict && threads > 1 && parallel::can_run_in_parallel(rules) {
        let shown = SHOWN_BAD_LINES as usize;
        let progress_to = |lines| progress.update(lines);
        let counted = if args.every_match {
            parallel::count_every_match(rules, place, input, name, threads, shown, progress_to)
                .map(|tally| (tally, 0))
        } else {
            parallel::count_by_person(rules, place, input, name, threads, shown, progress_to)
        };
        let (tally, folded) = counted.with_context(|| format!("cannot read {name}"))?;
        for line in &tally.first_bad {
            progress
                .bar
                .suspend(|| eprintln!("warning: skipped {line}"));
        }
        return Ok(Ran::Done(Summary {
            counts: tally.counts,
            events: tally.events,
            bad: tally.bad,
            folded,
            stored: None,
        }));
    }
    let mode = if args.every_match {
        Mode::EveryMatch
    } else {
        Mode::Spans
    };
    let mut pipeline = Pipeline::new(rules, mode);
    pipeline.set_place(place.clone());
    let mut counts = Counts::for_rules(rules);
    let mut folded = 0u64;
    let read = read_events(input, name, args.strict, progress, |event| {
        pipeline.push(event, &mut counts);
        folded += pipeline.drain_folds().len() as u64;
        Ok(())
    })?;
    let (events, bad) = match read {
        Read::Done { events, bad } => (events, bad),
        Read::Stopped(line) => return Ok(Ran::Stopped(line)),
    };
    pipeline.finish(&mut counts);
    folded += pipeline.drain_folds().len() as u64;
    Ok(Ran::Done(Summary {
        counts,
        events,
        bad,
        folded,
        stored: None,
    }))
}

/// Every fired alarm listed (a table, or JSON lines) and, with `--store`, kept as history;
/// counted too, for `--counts`.
fn list(
    args: &Args,
    (rules, place): (&RuleSet, &Arc<Place>),
    input: Box<dyn BufRead + Send>,
    name: &str,
    progress: &Progress,
    data_dir: &Path,
) -> Result<Ran> {
    let store = if args.store {
        Some(Store::open(data_dir)?)
    } else {
        None
    };
    // Alarms kept as history (in batches), the file's activity records, programs' state: the
    // same assembly the running agent uses, with a back-test's policy.
    let mut keeper = Keeper::replay(store, format!("replay:{name}"));
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let listing = args.counts.is_none();
    if listing && !args.json {
        table::header(&mut out, table::Layout::default())?;
    }
    let mode = if args.every_match {
        Mode::EveryMatch
    } else {
        Mode::Spans
    };
    let states = keeper.plugin_states()?;
    let mut pipeline = Pipeline::with_plugin_state(rules, mode, &states);
    pipeline.set_place(place.clone());
    let mut counts = Counts::for_rules(rules);
    // What fired, counted and listed (a listing error ends the run).
    let mut see = |fired: &[FiredAlarm], listed: &mut Result<()>| {
        for f in fired {
            tracing::debug!(alarm = %f.record.alarm, user = ?f.record.user, at = %f.record.fired_at, "alarm fired");
            counts.count(f);
            if listing && listed.is_ok() {
                *listed = print_alarm(&mut out, f, args.json);
            }
        }
    };
    let read = read_events(input, name, args.strict, progress, |event| {
        let mut listed = Ok(());
        keeper.event(&mut pipeline, event, |f| see(f, &mut listed))?;
        listed
    })?;
    let (events, bad) = match read {
        Read::Done { events, bad } => (events, bad),
        Read::Stopped(line) => {
            out.flush()?;
            return Ok(Ran::Stopped(line));
        }
    };
    let mut listed = Ok(());
    keeper.step(
        &mut pipeline,
        |p, out| p.finish(out),
        |f| see(f, &mut listed),
    )?;
    listed?;
    keeper.close(&pipeline)?;
    out.flush()?;
    let stored = keeper
        .store_location()
        .map(|location| (keeper.stored(), location.to_string()));
    Ok(Ran::Done(Summary {
        counts,
        events,
        bad,
        folded: keeper.folded(),
        stored,
    }))
}

/// How reading ended.
enum Read {
    /// At the end of the recording.
    Done { events: u64, bad: u64 },
    /// At this malformed line (`--strict`).
    Stopped(BadLine),
}

/// Reads every event of `input` (named `name`) in order, handing each to `take`; malformed lines
/// are warned about (the first [`SHOWN_BAD_LINES`]) and counted, or end the read with `strict`.
fn read_events(
    input: impl BufRead,
    name: &str,
    strict: bool,
    progress: &Progress,
    mut take: impl FnMut(Event) -> Result<()>,
) -> Result<Read> {
    let (mut events, mut bad) = (0u64, 0u64);
    for item in JsonlReader::new(input, name) {
        match item.with_context(|| format!("cannot read {name}"))? {
            Ok(event) => {
                events += 1;
                take(event)?;
                if events % Progress::EVERY == 0 {
                    progress.update(events);
                }
            }
            Err(line) if strict => return Ok(Read::Stopped(line)),
            Err(line) => {
                bad += 1;
                if bad <= SHOWN_BAD_LINES {
                    progress
                        .bar
                        .suspend(|| eprintln!("warning: skipped {line}"));
                }
            }
        }
    }
    Ok(Read::Done { events, bad })
}

/// The progress bar on a terminal: how far through the file (compressed bytes, for a
/// compressed one), events a second, the time left.
struct Progress {
    bar: ProgressBar,
    read: Arc<AtomicU64>,
    started: Instant,
}

impl Progress {
    /// Events between two updates.
    const EVERY: u64 = 1 << 16;

    fn start(size: Option<u64>, read: Arc<AtomicU64>, quiet: bool) -> Progress {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let bar = match size {
                Some(len) => ProgressBar::new(len).with_style(
                    ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::new_spinner(),
            };
            // Draws only when stderr is a terminal, so logs and pipes stay clean.
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar
        };
        Progress {
            bar,
            read,
            started: Instant::now(),
        }
    }

    /// `events` read so far.
    fn update(&self, events: u64) {
        self.bar.set_position(self.read.load(Ordering::Relaxed));
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{events} events, {:.0} events/s",
            events as f64 / secs
        ));
    }
}

fn print_alarm(out: &mut impl Write, f: &FiredAlarm, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, f)?;
        writeln!(out)?;
        return Ok(());
    }
    table::row(out, &f.record, &[], None, table::Layout::default())?;
    Ok(())
}

fn write_counts(
    path: &Path,
    rules: &RuleSet,
    counts: &Counts,
    events: u64,
    bad: u64,
) -> Result<()> {
    // An alarm is counted under its name, or `pack:name` when two loaded packs share the name.
    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    for ((pack, alarm), count) in rules.alarms().zip(&counts.builtin) {
        let shared = rules
            .alarms()
            .filter(|(_, a)| a.name == alarm.name)
            .nth(1)
            .is_some();
        let key = if shared {
            format!("{}:{}", pack.name, alarm.name)
        } else {
            alarm.name.clone()
        };
        all.insert(key, *count);
    }
    all.extend(counts.programs.iter().map(|(k, v)| (k.clone(), *v)));
    let fired = counts.total;
    let mut text = String::new();
    for (name, count) in &all {
        text.push_str(&format!("{name}\t{count}\n"));
    }
    text.push_str(&format!(
        "# events\t{events}\n# malformed\t{bad}\n# fired\t{fired}\n"
    ));
    if path.as_os_str() == "-" {
        io::stdout().lock().write_all(text.as_bytes())?;
    } else {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
