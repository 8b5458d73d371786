//! `vigilo synth`: deterministic example data on stdout.

use std::io::{BufWriter, Write};

use anyhow::Result;
use chrono::NaiveDate;

use crate::synth;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// A recorded workday (JSONL) that exercises every standard alarm.
    Workday {
        /// The day (UTC).
        #[arg(long, default_value = "2026-11-02")]
        date: NaiveDate,
        /// How many people (at most 20).
        #[arg(long, default_value_t = 12)]
        users: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A mixed stream of events (JSONL), the benchmark's input.
    Events {
        /// How many events.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// A pack.toml of generated alarms, the benchmark's rules.
    Pack {
        /// How many alarms.
        #[arg(long, default_value_t = 200)]
        alarms: usize,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

pub fn run(args: Args) -> Result<u8> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.what {
        What::Workday { date, users, seed } => {
            for e in synth::workday(date, users, seed) {
                writeln!(out, "{}", e.to_json())?;
            }
        }
        What::Events { count, seed } => {
            for e in synth::mixed_events(count, seed) {
                writeln!(out, "{}", e.to_json())?;
            }
        }
        What::Pack { alarms, seed } => {
            out.write_all(synth::generated_pack_text(alarms, seed).as_bytes())?
        }
    }
    out.flush()?;
    Ok(EXIT_OK)
}
