//! `vigilo status`: how a running agent is doing.

use std::path::Path;

use anyhow::Result;

use super::client::{ApiArgs, Client};
use crate::model::report::StatusReport;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let client = Client::new(&args.api, data_dir)?;
    client.send_as(client.get("/api/v1/status"), |s: &StatusReport, raw| {
        if args.json {
            println!("{raw}");
            return;
        }
        println!("SOURCES");
        for (name, source) in &s.sources {
            let state = if source.up { "up" } else { "DOWN" };
            println!("  {name:<8} {state:<5} {}", source.detail);
        }
        println!(
            "EVENTS   {} evaluated, {:.1}/s over the last minute",
            s.events, s.events_per_second
        );
        println!(
            "ALARMS   {} today, {} since start",
            s.alarms_today, s.alarms
        );
        if s.shed.is_empty() {
            println!("SHED     nothing");
        } else {
            let parts: Vec<String> = s.shed.iter().map(|(k, v)| format!("{v} {k}")).collect();
            println!("SHED     {}", parts.join(", "));
        }
        println!(
            "PROGRAMS{}",
            if s.programs.is_empty() { " none" } else { "" }
        );
        for p in &s.programs {
            let state = if p.quarantined {
                let why = p.switched_off.as_deref().unwrap_or("repeated faults");
                format!("QUARANTINED: {why}")
            } else {
                "running".into()
            };
            println!(
                "  {}/{} ({}) {state}; {} calls, {} faults, {} µs a call",
                p.pack, p.name, p.kind, p.calls, p.faults, p.us_per_call
            );
        }
    })
}
