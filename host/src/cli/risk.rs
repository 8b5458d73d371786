//! `vigilo risk`: users ranked by risk score over a window, with the trend from the window
//! before it (the formula is in [`crate::risk`]).

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Result;
use chrono::Utc;

use crate::risk::UserRisk;

use super::{EXIT_INVALID, EXIT_OK};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The window's length in days.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    days: u32,
    /// The window's end: RFC 3339, a day (2026-11-02, yesterday: through its end, UTC), or a
    /// span back from now (24h); default now.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this user, with every alarm that made the score.
    #[arg(long)]
    user: Option<String>,
    /// JSON lines (one user each, with `by_alarm`) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let until = match args
        .until
        .as_deref()
        .map(|t| crate::event::Event::parse_bound(t, crate::event::Bound::End, Utc::now()))
    {
        None => Utc::now(),
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID);
        }
    };
    let store = super::existing_store(data_dir)?;
    // Ranks are among every user, then the list is filtered: carol second of all is #2 when
    // she is shown alone.
    let mut ranked: Vec<(usize, UserRisk)> =
        crate::agent::query::ranking(&store, args.days, until)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect();
    if let Some(user) = &args.user {
        ranked.retain(|(_, r)| &r.user == user);
    }
    if ranked.is_empty() {
        let since = until - chrono::Duration::days(i64::from(args.days));
        eprintln!(
            "{} between {} and {}: nothing to rank (a longer window with --days N, or another \
             end with --until DATE, may hold some)",
            match &args.user {
                Some(u) => format!("no alarms or activity records for {u}"),
                None => "no alarms or activity records".to_string(),
            },
            since.format("%Y-%m-%d %H:%M UTC"),
            until.format("%Y-%m-%d %H:%M UTC"),
        );
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        for (rank, r) in &ranked {
            let mut line = serde_json::to_value(r)?;
            line["rank"] = (*rank).into();
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        }
    } else {
        writeln!(
            out,
            "risk over {} day(s) to {} (score = 100 × points / max(activity records, 100); \
             trend: change from the {} day(s) before)",
            args.days,
            until.format("%Y-%m-%d %H:%M UTC"),
            args.days
        )?;
        table(&mut out, &ranked, args.user.is_some())?;
    }
    out.flush()?;
    Ok(EXIT_OK)
}

fn table(out: &mut impl Write, ranked: &[(usize, UserRisk)], every_alarm: bool) -> io::Result<()> {
    writeln!(
        out,
        "{:>3}  {:<16} {:>6}  {:<9} {:>6} {:>6} {:>8}  most points from",
        "#", "user", "score", "trend", "points", "alarms", "activity"
    )?;
    for (rank, r) in ranked {
        let trend = if r.trend > 0.0 {
            format!("▲ +{:.1}", r.trend)
        } else if r.trend < 0.0 {
            format!("▼ {:.1}", r.trend)
        } else {
            "=".to_string()
        };
        let shown = if every_alarm { r.by_alarm.len() } else { 2 };
        let mut from: Vec<String> = r
            .by_alarm
            .iter()
            .take(shown)
            .map(|a| format!("{} ({}×{})", a.alarm, a.risk, a.fired))
            .collect();
        if r.by_alarm.len() > shown {
            from.push(format!("+{} more", r.by_alarm.len() - shown));
        }
        writeln!(
            out,
            "{:>3}  {:<16} {:>6.1}  {:<9} {:>6} {:>6} {:>8}  {}",
            rank,
            r.user,
            r.score,
            trend,
            r.points,
            r.alarms,
            r.records,
            from.join(", ")
        )?;
    }
    Ok(())
}
