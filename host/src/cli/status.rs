//! `vigilo status`: how a running agent is doing.

use std::path::Path;

use anyhow::Result;

use super::client::{ApiArgs, Client};

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
    client.send(client.get("/api/v1/status"), |s| {
        if args.json {
            println!("{s}");
            return;
        }
        println!("SOURCES");
        for (name, source) in s["sources"].as_object().into_iter().flatten() {
            let state = if source["up"] == true { "up" } else { "DOWN" };
            println!(
                "  {name:<8} {state:<5} {}",
                source["detail"].as_str().unwrap_or_default()
            );
        }
        println!(
            "EVENTS   {} evaluated, {}/s over the last minute",
            s["events"], s["events_per_second"]
        );
        println!(
            "ALARMS   {} today, {} since start",
            s["alarms_today"], s["alarms"]
        );
        let shed = s["shed"].as_object().filter(|m| !m.is_empty());
        match shed {
            None => println!("SHED     nothing"),
            Some(shed) => {
                let parts: Vec<String> = shed.iter().map(|(k, v)| format!("{v} {k}")).collect();
                println!("SHED     {}", parts.join(", "));
            }
        }
        let programs = s["programs"].as_array().cloned().unwrap_or_default();
        println!("PROGRAMS{}", if programs.is_empty() { " none" } else { "" });
        for p in &programs {
            let state = if p["quarantined"] == true {
                format!(
                    "QUARANTINED: {}",
                    p["switched_off"].as_str().unwrap_or("repeated faults")
                )
            } else {
                "running".into()
            };
            println!(
                "  {}/{} ({}) {state}; {} calls, {} faults, {} µs a call",
                p["pack"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default(),
                p["kind"].as_str().unwrap_or_default(),
                p["calls"],
                p["faults"],
                p["us_per_call"]
            );
        }
    })
}
