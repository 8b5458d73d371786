//! `vigilo alarms`: what the database holds.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Result;

use crate::event::Event;
use crate::store::AlarmFilter;

use super::{EXIT_INVALID, EXIT_OK, table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only alarms of this user (exact name).
    #[arg(long)]
    user: Option<String>,
    /// Only alarms from this computer (exact name): on a hub, one agent's.
    #[arg(long)]
    computer: Option<String>,
    /// Only alarms whose name contains this text (case-insensitive).
    #[arg(long)]
    alarm: Option<String>,
    /// Only alarms fired from this time: RFC 3339, a day (2026-11-02, today, yesterday: from
    /// its start, UTC), or a span back from now (24h, 7d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only alarms fired up to this time: RFC 3339, a day (through its end, so `--since D
    /// --until D` is day D), or a span back from now.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Every matching alarm (no limit).
    #[arg(long, conflicts_with = "limit")]
    all: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Show times in this computer's zone (with its offset) instead of UTC.
    #[arg(long)]
    local: bool,
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    use crate::event::Bound;
    let (since, until) = match (
        parse_time(args.since.as_deref(), Bound::Start),
        parse_time(args.until.as_deref(), Bound::End),
    ) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID);
        }
    };
    let store = super::existing_store(data_dir)?;
    let filter = AlarmFilter {
        id: None,
        user: args.user,
        computer: args.computer,
        alarm: args.alarm,
        since,
        until,
        limit: (!args.all).then_some(args.limit),
        ..AlarmFilter::default()
    };
    let alarms = store.alarms(&filter)?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        for a in &alarms {
            serde_json::to_writer(&mut out, a)?;
            writeln!(out)?;
        }
    } else {
        let zone = if args.local {
            table::Zone::Local
        } else {
            table::Zone::Utc
        };
        // A hub's alarms come from many computers: which one is a column of its own.
        let layout = table::Layout {
            zone,
            computer: alarms.iter().any(|a| a.origin.starts_with("fleet:")),
        };
        table::header(&mut out, layout)?;
        for a in &alarms {
            table::row(&mut out, &a.record, &a.outcomes, a.folded.as_ref(), layout)?;
        }
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// One end of the range (see [`Event::parse_bound`]), in the store's UTC form.
fn parse_time(text: Option<&str>, end: crate::event::Bound) -> Result<Option<String>, String> {
    text.map(|t| {
        Event::parse_bound(t, end, chrono::Utc::now())
            .map(|ts| Event::utc_string(ts.fixed_offset()))
    })
    .transpose()
}
