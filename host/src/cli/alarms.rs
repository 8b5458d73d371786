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
    /// Only alarms whose name contains this text (case-insensitive).
    #[arg(long)]
    alarm: Option<String>,
    /// Only alarms fired at or after this time (RFC 3339, or a date: 2026-11-02).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only alarms fired before this time (RFC 3339, or a date: the day before it ends).
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
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let (since, until) = match (
        parse_time(args.since.as_deref()),
        parse_time(args.until.as_deref()),
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
        table::header(&mut out)?;
        for a in &alarms {
            table::row(&mut out, &a.record, &a.outcomes, a.folded.as_ref())?;
        }
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// An RFC 3339 time or a plain date (midnight UTC), normalised to the store's UTC form.
fn parse_time(text: Option<&str>) -> Result<Option<String>, String> {
    text.map(|t| Event::parse_instant(t).map(|ts| Event::utc_string(ts.fixed_offset())))
        .transpose()
}
