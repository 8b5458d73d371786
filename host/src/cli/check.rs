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

pub fn run(args: Args, data_dir: &std::path::Path) -> Result<u8> {
    let trusted = match super::trusted_keys(data_dir) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let loaded = match &args.pack {
        Some(path) => Pack::load_trusted(path, &trusted),
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
    // Plugins and scripts must also compile, describe and configure themselves for the pack to
    // be valid.
    let rules = match crate::rule_set::RuleSet::with_plugin_cache(
        vec![pack],
        Some(&super::plugin_cache(data_dir)),
    ) {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                serde_json::to_writer_pretty(&mut out, &json!({ "ok": false, "errors": [e] }))?;
                writeln!(out)?;
            } else {
                eprintln!("error: {e}");
                eprintln!("error: the pack was not loaded");
            }
            return Ok(EXIT_INVALID);
        }
    };
    let pack = &rules.packs()[0];
    // The rule set lists a pack's plugins, then its scripts, in file order.
    let files = pack
        .plugins
        .iter()
        .map(|p| ("plugin", &p.file, &p.limits))
        .chain(pack.scripts.iter().map(|s| ("script", &s.file, &s.limits)));
    let programs: Vec<_> = rules
        .programs()
        .zip(files)
        .map(|((_, p), (kind, file, limits))| {
            let info = p.info();
            let mut doc = json!({
                "kind": kind,
                "file": file,
                "name": info.name,
                "version": info.version,
                "subscribes": info.subscribes.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "config_help": info.config_help,
                "deadline_ms": limits.deadline.as_millis() as u64,
            });
            if kind == "plugin" {
                doc["memory_mib"] = json!(limits.memory_bytes >> 20);
            } else {
                doc["max_operations"] = json!(limits.max_operations);
            }
            doc
        })
        .collect();
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
                "signature": pack.signature.to_string(),
                "files": pack.files,
                "grants": {
                    "actions": pack.grants.actions,
                    "webhooks": pack.grants.webhooks,
                    "email_to": pack.grants.email_to,
                },
            },
            "alarms": alarms,
            "programs": programs,
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let count = |n: usize, what: &str| match n {
        0 => String::new(),
        n => format!(", {n} {what}{}", plural(n)),
    };
    let program_note = format!(
        "{}{}",
        count(pack.plugins.len(), "plugin"),
        count(pack.scripts.len(), "script")
    );
    let publisher = pack.publisher.as_ref().map(|p| format!(" by {p}"));
    writeln!(
        out,
        "pack {} {}{} — {} alarm{}{program_note}, ok",
        pack.name,
        pack.version,
        publisher.unwrap_or_default(),
        pack.alarms.len(),
        plural(pack.alarms.len()),
    )?;
    if let Some(d) = &pack.description {
        writeln!(out, "  {d}")?;
    }
    writeln!(out, "  {}; grants: {}", pack.signature, pack.grants)?;
    if !pack.targets.is_everyone() {
        writeln!(out, "  for {}", pack.targets.words())?;
    }
    if pack.regex_bytes > 0 {
        writeln!(
            out,
            "  regular expressions: {:.2} MB compiled, caches at their largest (at most {} MiB a pack)",
            pack.regex_bytes as f64 / 1e6,
            crate::packs::regex_budget::PACK_BUDGET >> 20
        )?;
    }
    for p in &programs {
        let budget = match p["kind"].as_str() {
            Some("plugin") => format!("memory {} MiB", p["memory_mib"]),
            _ => format!("{} operations", p["max_operations"]),
        };
        writeln!(out)?;
        writeln!(
            out,
            "  {} {} {} ({})  [subscribes to {}; deadline {} ms; {budget}]",
            p["kind"].as_str().unwrap_or_default(),
            p["name"].as_str().unwrap_or_default(),
            p["version"].as_str().unwrap_or_default(),
            p["file"].as_str().unwrap_or_default(),
            p["subscribes"].as_array().map_or(String::new(), |k| {
                k.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            p["deadline_ms"],
        )?;
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
            crate::model::alarm::action_labels(&plan_shape(a), &[])
        )?;
        if let Some(t) = &a.applies_to {
            writeln!(out, "    for     {}", t.words())?;
        }
        for step in escalation(a) {
            writeln!(out, "    escalate {step}")?;
        }
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

fn plan_shape(a: &AlarmDef) -> Vec<crate::model::action::PlannedAction> {
    a.actions.iter().map(|act| act.as_written()).collect()
}

/// Each escalation step in words: `from the 3rd within 1h: risk 6, popup`.
fn escalation(a: &AlarmDef) -> Vec<String> {
    a.escalate
        .iter()
        .map(|s| {
            let mut then = Vec::new();
            if let Some(risk) = s.risk {
                then.push(format!("risk {risk}"));
            }
            if let Some(actions) = &s.actions {
                let planned: Vec<_> = actions.iter().map(|act| act.as_written()).collect();
                then.push(crate::model::alarm::action_labels(&planned, &[]));
            }
            format!(
                "from the {} within {}: {}",
                crate::rules::ordinal(s.after),
                humantime::format_duration(s.within),
                if then.is_empty() {
                    "as written".to_string()
                } else {
                    then.join(", ")
                }
            )
        })
        .collect()
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
        "applies_to": a.applies_to.as_ref().map(|t| t.words()),
        "escalate": escalation(a),
    })
}
