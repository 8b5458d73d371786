//! `vigilo plugin`: tools for plugin authors.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::rules::wasm::{Fault, Limits, Plugin, PluginRuntime};
use crate::sources::jsonl::JsonlReader;

use super::{EXIT_FAULTS, EXIT_INVALID, EXIT_OK};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Run a plugin over recorded events and show what it fired, what it logged, and any fault.
    Test {
        /// The plugin: a WebAssembly component implementing wit/vigilo-alarms.wit.
        plugin: PathBuf,
        /// Recorded events, JSONL.
        events: PathBuf,
        /// Configuration passed to the plugin's `configure` (a TOML file).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Deadline per call, in milliseconds.
        #[arg(long, default_value_t = 50)]
        deadline_ms: u64,
        /// Memory cap, in MiB.
        #[arg(long, default_value_t = 64)]
        memory_mib: usize,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<u8> {
    let What::Test {
        plugin,
        events,
        config,
        deadline_ms,
        memory_mib,
        json,
    } = args.what;
    let bytes =
        std::fs::read(&plugin).with_context(|| format!("cannot read {}", plugin.display()))?;
    let config = match &config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => String::new(),
    };
    let limits = Limits {
        deadline: std::time::Duration::from_millis(deadline_ms),
        memory_bytes: memory_mib << 20,
        ..Limits::default()
    };
    let runtime = PluginRuntime::new()?;
    let loaded = match Plugin::load(&runtime, &bytes, &config, limits) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e:#}", plugin.display());
            return Ok(EXIT_INVALID);
        }
    };
    let info = loaded.info().clone();
    let mut instance = loaded.instantiate(Default::default())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !json {
        writeln!(
            out,
            "plugin {} {} — subscribes to {}",
            info.name,
            info.version,
            if info.subscribes.is_empty() {
                "nothing".to_string()
            } else {
                info.subscribes.to_string()
            }
        )?;
    }
    let name = events.display().to_string();
    let file = File::open(&events).with_context(|| format!("cannot open {name}"))?;
    let (mut seen, mut fired, mut faults, mut bad) = (0u64, 0u64, 0u64, 0u64);
    for (line, item) in JsonlReader::new(BufReader::new(file), name.clone()).enumerate() {
        let event = match item.with_context(|| format!("cannot read {name}"))? {
            Ok(e) => e,
            Err(bad_line) => {
                bad += 1;
                eprintln!("warning: skipped {bad_line}");
                continue;
            }
        };
        seen += 1;
        let result = instance.on_event(&event, event.ts().timestamp_millis());
        let at = format!("{name}:{}", line + 1);
        for l in instance.log() {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({ "at": at, "log": l.level, "message": l.message })
                )?;
            } else {
                writeln!(out, "  {at}: log {}: {}", l.level, l.message)?;
            }
        }
        match result {
            Ok(alarms) => {
                for a in alarms {
                    fired += 1;
                    let actions = super::table::action_labels(&a.actions);
                    if json {
                        let doc = json!({
                            "at": at, "alarm": a.alarm, "risk": a.risk, "actions": a.actions,
                            "note": a.note, "event": event,
                        });
                        writeln!(out, "{doc}")?;
                    } else {
                        writeln!(
                            out,
                            "{at}: {} (risk {}) {actions}{}",
                            a.alarm,
                            a.risk,
                            a.note.map(|n| format!(" — {n}")).unwrap_or_default()
                        )?;
                    }
                }
            }
            Err(Fault::Quarantined) => {
                break;
            }
            Err(fault) => {
                faults += 1;
                if json {
                    writeln!(out, "{}", json!({ "at": at, "fault": fault.to_string() }))?;
                } else {
                    writeln!(out, "{at}: FAULT: the plugin {fault}")?;
                }
            }
        }
    }
    out.flush()?;
    let quarantined = instance.is_quarantined();
    eprintln!(
        "{seen} events, {fired} alarms, {faults} faults{}{}",
        if bad > 0 {
            format!(", {bad} malformed lines skipped")
        } else {
            String::new()
        },
        if quarantined {
            "; the plugin was switched off after repeated faults"
        } else {
            ""
        }
    );
    Ok(if faults > 0 { EXIT_FAULTS } else { EXIT_OK })
}
