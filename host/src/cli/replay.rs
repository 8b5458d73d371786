//! `vigilo replay`: recorded events through sessions and rules — a back-test.
//!
//! A replay changes nothing unless asked to: without `--store` no database is opened (let alone
//! written), so counting a million events against a draft pack leaves the alarms, risk scores
//! and programs' state of the data folder exactly as they were. `--store` keeps a replayed day
//! as history (origin `replay:FILE`, never acted on), programs' state carried from one replay
//! to the next.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::alarms::{FiredAlarm, Source};
use crate::pipeline::{Keeper, Mode, Pipeline};
use crate::sources::jsonl::JsonlReader;
use crate::store::Store;

use super::table;
use super::{EXIT_INVALID, EXIT_OK, EXIT_SKIPPED, load_rules};

/// Bad lines printed one by one before only counting the rest.
const SHOWN_BAD_LINES: u64 = 50;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A JSONL file of events (`-` for standard input).
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
    /// No progress bar and no summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let rules = match load_rules(&args.packs, !args.no_default_pack, data_dir) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let name = args.file.display().to_string();
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if name == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(&args.file).with_context(|| format!("cannot open {name}"))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, f)), size)
    };
    let progress = progress_bar(size, args.quiet);
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
    let list = args.counts.is_none();
    if list && !args.json {
        table::header(&mut out, table::Zone::Utc)?;
    }
    let mode = if args.every_match {
        Mode::EveryMatch
    } else {
        Mode::Spans
    };
    let states = keeper.plugin_states()?;
    let mut pipeline = Pipeline::with_plugin_state(&rules, mode, &states);
    let mut counts = vec![0u64; rules.alarms().count()];
    // Plugin alarms are named by the plugin as it runs: counted as `pack:alarm` when they fire.
    let mut plugin_counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut events, mut bad, mut fired_total) = (0u64, 0u64, 0u64);
    // What fired, counted and listed (a listing error ends the run).
    let mut see = |fired: &[FiredAlarm], listed: &mut Result<()>| {
        for f in fired {
            tracing::debug!(alarm = %f.record.alarm, user = ?f.record.user, at = %f.record.fired_at, "alarm fired");
            match f.source {
                Source::Builtin(i) => counts[i as usize] += 1,
                Source::Program(_) => {
                    *plugin_counts
                        .entry(format!("{}:{}", f.record.pack, f.record.alarm))
                        .or_default() += 1
                }
            }
            fired_total += 1;
            if list && listed.is_ok() {
                *listed = print_alarm(&mut out, f, args.json);
            }
        }
    };

    let mut reader = JsonlReader::new(input, name.clone());
    let mut last_progress = 0;
    while let Some(item) = reader.next() {
        match item.with_context(|| format!("cannot read {name}"))? {
            Ok(event) => {
                events += 1;
                let mut listed = Ok(());
                keeper.event(&mut pipeline, event, |f| see(f, &mut listed))?;
                listed?;
            }
            Err(line) => {
                bad += 1;
                if args.strict {
                    out.flush()?;
                    eprintln!("error: {line}");
                    eprintln!("stopped at the first malformed line (--strict)");
                    return Ok(EXIT_INVALID);
                }
                if bad <= SHOWN_BAD_LINES {
                    progress.suspend(|| eprintln!("warning: skipped {line}"));
                }
            }
        }
        if reader.bytes_read() - last_progress > 1 << 20 {
            last_progress = reader.bytes_read();
            progress.set_position(last_progress);
        }
    }
    let mut listed = Ok(());
    keeper.step(
        &mut pipeline,
        |p, out| p.finish(out),
        |f| see(f, &mut listed),
    )?;
    listed?;
    keeper.close(&pipeline)?;
    out.flush()?;
    progress.finish_and_clear();

    if let Some(path) = &args.counts {
        write_counts(
            path,
            &rules,
            &counts,
            &plugin_counts,
            events,
            bad,
            fired_total,
        )?;
    }
    if !args.quiet {
        if bad > SHOWN_BAD_LINES {
            eprintln!(
                "warning: {} more malformed lines not shown",
                bad - SHOWN_BAD_LINES
            );
        }
        let store_note = match keeper.store_path() {
            Some(path) => format!(", {} new in {}", keeper.stored(), path.display()),
            None => "; not stored (--store keeps them)".to_string(),
        };
        let folded_note = match keeper.folded() {
            0 => String::new(),
            n => format!(" (and {n} more matches folded into them within their cooldowns)"),
        };
        eprintln!(
            "{events} events, {bad} malformed lines skipped, {fired_total} alarms fired\
             {folded_note}{store_note}"
        );
    }
    Ok(if bad > 0 { EXIT_SKIPPED } else { EXIT_OK })
}

fn progress_bar(size: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match size {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    // Draws only when stderr is a terminal, so logs and pipes stay clean.
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}

fn print_alarm(out: &mut impl Write, f: &FiredAlarm, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, f)?;
        writeln!(out)?;
        return Ok(());
    }
    table::row(out, &f.record, &[], None, table::Zone::Utc)?;
    Ok(())
}

fn write_counts(
    path: &Path,
    rules: &crate::rule_set::RuleSet,
    counts: &[u64],
    plugin_counts: &BTreeMap<String, u64>,
    events: u64,
    bad: u64,
    fired: u64,
) -> Result<()> {
    // An alarm is counted under its name, or `pack:name` when two loaded packs share the name.
    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    for ((pack, alarm), count) in rules.alarms().zip(counts) {
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
    all.extend(plugin_counts.iter().map(|(k, v)| (k.clone(), *v)));
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
