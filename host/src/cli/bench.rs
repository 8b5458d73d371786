//! `vigilo bench`: throughput, latency and memory of the rules stage, on one core, and the
//! back-test command as users run it, whole process.
//!
//! The input is generated (seeded), so the numbers are comparable between machines and
//! commits: the standard pack plus N generated alarms over a stream of mixed events.

use std::io::Cursor;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::event::{Event, parse_line};
use crate::packs::Pack;
use crate::pipeline::{Mode, Pipeline};
use crate::rule_set::RuleSet;
use crate::rules::Scratch;
use crate::sources::jsonl::JsonlReader;
use crate::synth;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Events to generate and evaluate.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Generated alarms added to the standard pack.
    #[arg(long, default_value_t = 200)]
    alarms: usize,
    /// Random seed for events and alarms.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Repetitions of each throughput measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Events the naive reference loop evaluates (it is slow).
    #[arg(long, default_value_t = 100_000)]
    reference_events: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Instead of the rules: take this many screenshots of the session's screen (X11 or
    /// wlroots Wayland) and report what one costs (capture, PNG encoding, file size, memory).
    #[arg(long, value_name = "N")]
    screenshots: Option<usize>,
}

/// Events per second of `f` over `n` events, the median of `runs` runs.
fn throughput(n: usize, runs: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut rates = Vec::new();
    let mut hits = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        hits = f();
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], hits)
}

pub fn run(args: Args) -> Result<u8> {
    if let Some(n) = args.screenshots {
        return screenshots(n.max(1), args.json);
    }
    let compile_start = Instant::now();
    let standard = Pack::standard()?;
    let generated = synth::generated_pack(args.alarms, args.seed);
    let rules = RuleSet::new(vec![standard, generated]).map_err(anyhow::Error::msg)?;
    let compile_ms = compile_start.elapsed().as_secs_f64() * 1e3;
    let alarm_count = rules.alarms().count();

    let events = synth::mixed_events(args.events, args.seed);
    let mut jsonl = String::new();
    for e in &events {
        jsonl.push_str(&e.to_json());
        jsonl.push('\n');
    }
    let engine = rules.engine();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();

    let (eval_rate, eval_hits) = throughput(events.len(), args.runs, || {
        let mut hits = 0;
        for e in &events {
            out.clear();
            engine.evaluate(e, &mut scratch, &mut out);
            hits += out.len();
        }
        hits
    });
    let (parse_rate, parse_hits) = throughput(events.len(), args.runs, || {
        let mut hits = 0;
        for line in jsonl.lines() {
            if let Ok(e) = parse_line(line) {
                out.clear();
                engine.evaluate(&e, &mut scratch, &mut out);
                hits += out.len();
            }
        }
        hits
    });
    anyhow::ensure!(
        eval_hits == parse_hits,
        "parsed events evaluated differently"
    );
    let (replay_rate, fired) = throughput(events.len(), 1, || {
        let mut pipeline = Pipeline::new(&rules, Mode::Spans);
        let mut fired = Vec::new();
        let mut count = 0;
        for item in JsonlReader::new(Cursor::new(jsonl.as_bytes()), "bench")
            .flatten()
            .flatten()
        {
            pipeline.push(item, &mut fired);
            count += fired.len();
            fired.clear();
        }
        pipeline.finish(&mut fired);
        count + fired.len()
    });
    let reference: Vec<&Event> = events.iter().take(args.reference_events).collect();
    let defs: Vec<_> = rules.alarms().map(|(_, a)| a).collect();
    let (reference_rate, _) = throughput(reference.len(), 1, || {
        reference
            .iter()
            .map(|e| defs.iter().filter(|a| a.matches(e)).count())
            .sum()
    });

    let sample = events.len().min(200_000);
    let mut nanos: Vec<u64> = Vec::with_capacity(sample);
    for e in &events[..sample] {
        let start = Instant::now();
        out.clear();
        engine.evaluate(e, &mut scratch, &mut out);
        nanos.push(start.elapsed().as_nanos() as u64);
    }
    nanos.sort_unstable();
    let q = |p: f64| {
        nanos
            .get(((nanos.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    let (rss_peak, rss_now) = crate::os::process::memory_kib("self");
    let whole = whole_process(&jsonl, args.alarms, args.seed, args.runs, events.len())?;

    let report = json!({
        "events": events.len(),
        "alarms": alarm_count,
        "seed": args.seed,
        "cpu": cpu_model(),
        "compile_ms": compile_ms,
        "jsonl_bytes": jsonl.len(),
        "eval_events_per_s": eval_rate,
        "parse_eval_events_per_s": parse_rate,
        "replay_events_per_s": replay_rate,
        "reference_events_per_s": reference_rate,
        "speedup_vs_reference": eval_rate / reference_rate,
        "matches": eval_hits,
        "replay_fired": fired,
        "latency_ns": { "p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": q(1.0) },
        "rss_peak_kib": rss_peak,
        "rss_kib": rss_now,
        "whole_process": whole
            .iter()
            .map(|w| json!({ "command": w.command, "events_per_s": w.rate }))
            .collect::<Vec<_>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(EXIT_OK);
    }
    let per_sec = |r: f64| {
        format!(
            "{:>12} events/s  ({:.2} µs/event)",
            group(r as u64),
            1e6 / r
        )
    };
    println!(
        "vigilo bench: {} events ({} MB of JSONL), {alarm_count} alarms (standard + {} generated), seed {}, one thread",
        group(events.len() as u64),
        jsonl.len() / 1_000_000,
        args.alarms,
        args.seed
    );
    println!("  cpu                        {}", cpu_model());
    println!("  compile packs              {compile_ms:.1} ms");
    println!("  evaluation only            {}", per_sec(eval_rate));
    println!("  JSONL parse + evaluation   {}", per_sec(parse_rate));
    println!("  replay pipeline (sessions) {}", per_sec(replay_rate));
    println!(
        "  naive reference loop       {}  -> engine {:.1}x faster",
        per_sec(reference_rate),
        eval_rate / reference_rate
    );
    println!(
        "  evaluation latency         p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
    println!(
        "  matches                    {} (replay fired {fired})",
        group(eval_hits as u64)
    );
    println!(
        "  memory (RSS)               peak {} MiB, now {} MiB (includes the generated input)",
        rss_peak / 1024,
        rss_now / 1024
    );
    println!("whole process, the same events and alarms from a file (EVENTS.jsonl, pack P):");
    for w in &whole {
        println!("  {}  {}", per_sec(w.rate), w.command);
    }
    Ok(EXIT_OK)
}

/// A back-test command timed as a whole process.
struct WholeProcess {
    /// The command, as a user would type it.
    command: String,
    /// Events per second, the median of the runs.
    rate: f64,
}

/// The back-test as users run it: this `vigilo` started as `vigilo replay … EVENTS.jsonl` on the
/// generated events written to a file, timed from start to exit, the median of `runs`.
fn whole_process(
    jsonl: &str,
    alarms: usize,
    seed: u64,
    runs: usize,
    events: usize,
) -> Result<Vec<WholeProcess>> {
    let dir = std::env::temp_dir().join(format!("vigilo-bench-{}", std::process::id()));
    let measured = time_commands(&dir, jsonl, alarms, seed, runs, events);
    // Removed whatever happened: the events file is hundreds of MB.
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

/// [`whole_process`]'s work, in `dir`.
fn time_commands(
    dir: &std::path::Path,
    jsonl: &str,
    alarms: usize,
    seed: u64,
    runs: usize,
    events: usize,
) -> Result<Vec<WholeProcess>> {
    std::fs::create_dir_all(dir.join("pack"))?;
    let file = dir.join("EVENTS.jsonl");
    std::fs::write(&file, jsonl)?;
    std::fs::write(
        dir.join("pack/pack.toml"),
        synth::generated_pack_text(alarms, seed),
    )?;
    let exe = std::env::current_exe()?;
    let commands: [&[&str]; 3] = [
        &["--every-match"],
        &["--every-match", "--threads", "1"],
        &[],
    ];
    let mut measured = Vec::new();
    for extra in commands {
        let mut args = vec!["replay", "--pack", "P", "--counts", "/dev/null", "-q"];
        args.extend_from_slice(extra);
        let (rate, succeeded) = throughput(events, runs, || {
            let status = std::process::Command::new(&exe)
                .args(args.iter().map(|a| match *a {
                    "P" => dir.join("pack").into_os_string(),
                    other => other.into(),
                }))
                .arg(&file)
                .env("VIGILO_DATA_DIR", dir)
                .status();
            usize::from(status.is_ok_and(|s| s.success()))
        });
        let command = format!("vigilo {} EVENTS.jsonl", args.join(" "));
        anyhow::ensure!(succeeded == 1, "`{command}` failed");
        measured.push(WholeProcess { command, rate });
    }
    Ok(measured)
}

/// What one screenshot costs: medians over `n`.
fn screenshots(n: usize, json: bool) -> Result<u8> {
    use crate::actions::screen::Screen;
    let mut screen = Screen::open().map_err(anyhow::Error::msg)?;
    let (mut took, mut sizes) = (Vec::new(), Vec::new());
    let mut size = (0, 0);
    for _ in 0..n {
        let t = Instant::now();
        let shot = screen.capture().map_err(anyhow::Error::msg)?;
        took.push(t.elapsed().as_secs_f64() * 1e3);
        sizes.push(shot.png.len() as f64 / 1024.0);
        size = (shot.width, shot.height);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ms, kib) = (median(&mut took), median(&mut sizes));
    let (peak, _) = crate::os::process::memory_kib("self");
    if json {
        println!(
            "{}",
            json!({ "width": size.0, "height": size.1, "screenshots": n, "ms": ms,
                    "png_kib": kib, "peak_rss_kib": peak })
        );
    } else {
        println!(
            "{n} screenshots of {}×{} on {}",
            size.0,
            size.1,
            cpu_model()
        );
        println!("  capture and PNG encoding:     {ms:.1} ms median");
        println!("  file:                         {kib:.0} KiB median");
        println!("  peak memory of this process:  {} MiB", peak / 1024);
    }
    Ok(EXIT_OK)
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown cpu");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model} ({cores} cores available)")
}
