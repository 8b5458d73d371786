//! `vigilo check`: validate a pack and say what it holds.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::packs::Pack;
use crate::rules::{AlarmDef, Repeat};

use super::{EXIT_INVALID, EXIT_OK};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pack: a folder with pack.toml, or the pack.toml itself. Without it: the built-in
    /// standard pack.
    pack: Option<PathBuf>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<u8> {
    let loaded = match &args.pack {
        Some(path) => Pack::load(path),
        None => Pack::standard(),
    };
    let mut out = std::io::stdout().lock();
    let pack = match loaded {
        Ok(p) => p,
        Err(e) => {
            if args.json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &json!({ "ok": false, "errors": e.diagnostics }),
                )?;
                writeln!(out)?;
            } else {
                eprintln!("{e}");
                eprintln!(
                    "error: {} problem{} found; the pack was not loaded",
                    e.diagnostics.len(),
                    if e.diagnostics.len() == 1 { "" } else { "s" }
                );
            }
            return Ok(EXIT_INVALID);
        }
    };
    if args.json {
        let alarms: Vec<_> = pack.alarms.iter().map(alarm_json).collect();
        let doc = json!({
            "ok": true,
            "pack": {
                "name": pack.name,
                "version": pack.version.to_string(),
                "publisher": pack.publisher,
                "description": pack.description,
                "origin": pack.origin,
            },
            "alarms": alarms,
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    writeln!(
        out,
        "pack {} {}{} — {} alarm{}, ok",
        pack.name,
        pack.version,
        pack.publisher
            .as_ref()
            .map(|p| format!(" by {p}"))
            .unwrap_or_default(),
        pack.alarms.len(),
        if pack.alarms.len() == 1 { "" } else { "s" }
    )?;
    if let Some(d) = &pack.description {
        writeln!(out, "  {d}")?;
    }
    for a in &pack.alarms {
        writeln!(out)?;
        writeln!(
            out,
            "  {}  [{}; risk {}; {}]",
            a.name,
            a.kinds,
            a.risk,
            firing(a)
        )?;
        writeln!(out, "    when    {}", a.when)?;
        for u in &a.unless {
            writeln!(out, "    unless  {u}")?;
        }
        writeln!(
            out,
            "    actions {}",
            super::table::action_labels(&plan_shape(a))
        )?;
    }
    Ok(EXIT_OK)
}

fn firing(a: &AlarmDef) -> String {
    let repeat = match a.repeat {
        Repeat::OncePerSpan => "once per span",
        Repeat::EveryMatch => "every match",
    };
    match a.cooldown {
        Some(c) => format!("{repeat}, cooldown {}", humantime::format_duration(c)),
        None => repeat.to_string(),
    }
}

fn plan_shape(a: &AlarmDef) -> Vec<crate::actions::PlannedAction> {
    a.actions.iter().map(|act| act.as_written()).collect()
}

fn alarm_json(a: &AlarmDef) -> serde_json::Value {
    json!({
        "name": a.name,
        "description": a.description,
        "kinds": a.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "risk": a.risk,
        "firing": firing(a),
        "when": a.when.to_string(),
        "unless": a.unless.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        "actions": plan_shape(a),
    })
}
