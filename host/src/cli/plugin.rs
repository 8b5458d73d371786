//! `vigilo plugin`: tools for plugin authors.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::event::FieldSet;
use crate::rules::program::Loaded;
use crate::rules::script::Script;
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
    /// Create a plugin crate that builds as-is: a skeleton plugin, the SDK and the contract
    /// (vendored, so the crate builds anywhere).
    New {
        /// The plugin's name (letters, digits, `-`); also the folder created.
        name: String,
    },
    /// Build a plugin into a component. A Rust crate (Cargo.toml) is built by cargo for
    /// wasm32-unknown-unknown (rustup's target when installed, else Debian's rustc-web with
    /// -Zbuild-std) and componentized; any other folder with a Makefile (C, …) is built by
    /// `make VIGILO=this-binary OUT=OUTPUT`, which ends with `vigilo plugin componentize`.
    Build {
        /// The plugin's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the component [default: DIR/target/NAME.wasm].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Turn a core WebAssembly module that embeds the contract's type information (as
    /// wit-bindgen's Rust and C bindings do) into a plugin component, checked against the
    /// contract; like `wasm-tools component new`.
    Componentize {
        /// The core module.
        module: PathBuf,
        /// Where to write the component.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a plugin (or a Rhai script, `.rhai`) over recorded events and show what it fired,
    /// what it logged, and any fault.
    Test(TestArgs),
}

#[derive(clap::Args, Debug)]
struct TestArgs {
    /// The plugin: a WebAssembly component implementing wit/vigilo-alarms.wit, or a Rhai script
    /// (`.rhai`) implementing the same contract. With `--pack`, its path inside the pack.
    plugin: PathBuf,
    /// Recorded events, JSONL.
    events: PathBuf,
    /// Run the plugin or script as this pack (a folder or an archive) runs it: the pack's
    /// `[[plugin]]`/`[[script]]` entry for PLUGIN gives its configuration and limits.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "deadline_ms", "memory_mib"])]
    pack: Option<PathBuf>,
    /// Configuration passed to the plugin's `configure` (a TOML file).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Deadline per call, in milliseconds (1–1000, as in a pack).
    #[arg(long, default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=crate::rules::program::limits::MAX_DEADLINE_MS))]
    deadline_ms: u64,
    /// Memory cap, in MiB (1–1024, as in a pack).
    #[arg(long, default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=crate::rules::program::limits::MAX_MEMORY_MIB))]
    memory_mib: u64,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, data_dir: &std::path::Path) -> Result<u8> {
    match args.what {
        What::New { name } => new(&name),
        What::Build { dir, output } => build(&dir, output),
        What::Componentize { module, output } => {
            componentize(&module, &output)?;
            Ok(EXIT_OK)
        }
        What::Test(test) => run_test(test, data_dir),
    }
}

/// The SDK and the contract, compiled into the binary so `plugin new` works anywhere.
const SDK_MANIFEST: &str = include_str!("../../../sdk/Cargo.toml");
const SDK_LIB: &str = include_str!("../../../sdk/src/lib.rs");
const CONTRACT: &str = include_str!("../../../wit/vigilo-alarms.wit");

fn new(name: &str) -> Result<u8> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        eprintln!(
            "error: {name:?}: a plugin name is lowercase letters, digits and '-', starting with a letter"
        );
        return Ok(EXIT_INVALID);
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        eprintln!("error: {} already exists", dir.display());
        return Ok(EXIT_INVALID);
    }
    let type_name: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A plugin is its own workspace: it is built for wasm32, not with anything around it.
[workspace]

[lib]
crate-type = ["cdylib"]

[dependencies]
vigilo-sdk = {{ path = "vigilo-sdk" }}

[profile.release]
opt-level = "s"
lto = true
panic = "abort"
"#
    );
    let lib = format!(
        r#"//! {name}: a vigilo rule plugin. Build it with `vigilo plugin build {name}` and try it
//! with `vigilo plugin test {name}/target/{name}.wasm EVENTS.jsonl`.

use vigilo_sdk::{{Event, EventKind, Field, Plugin, PluginInfo, Triggered, action, config}};

/// The plugin's state: plain fields live as long as the agent runs.
struct {type_name} {{
    /// Seconds of focus after which an application is worth an alarm.
    limit_secs: f64,
}}

impl Default for {type_name} {{
    fn default() -> Self {{
        {type_name} {{ limit_secs: 3600.0 }}
    }}
}}

impl Plugin for {type_name} {{
    fn describe() -> PluginInfo {{
        vigilo_sdk::info(
            "{name}",
            env!("CARGO_PKG_VERSION"),
            &[EventKind::Activity],
            // Every field on_event reads; the others arrive as None.
            &[Field::Duration, Field::Title],
            "limit_secs = 3600   # focus time that raises the alarm",
        )
    }}

    fn configure(&mut self, text: &str) -> Result<(), String> {{
        if let Some(secs) = config::number(text, "limit_secs")? {{
            self.limit_secs = secs;
        }}
        Ok(())
    }}

    fn on_event(&mut self, event: &Event) -> Vec<Triggered> {{
        match event.duration {{
            Some(d) if d > self.limit_secs => vec![
                vigilo_sdk::alarm("Long focus", 2)
                    .with_note(format!("{{}} s on {{}}", d, event.title.as_deref().unwrap_or("?")))
                    .with_action(action::screenshot(1, 10)),
            ],
            _ => vec![],
        }}
    }}
}}

vigilo_sdk::export!({type_name});
"#
    );
    // The vendored SDK keeps its layout: vigilo-sdk/ next to wit/, as in vigilo's repository.
    let files = [
        (dir.join("Cargo.toml"), manifest),
        (dir.join("src/lib.rs"), lib),
        // Inside the plugin's own workspace, the SDK must not declare one of its own.
        (
            dir.join("vigilo-sdk/Cargo.toml"),
            SDK_MANIFEST.replace("\n[workspace]\n", "\n"),
        ),
        (dir.join("vigilo-sdk/src/lib.rs"), SDK_LIB.to_string()),
        (dir.join("wit/vigilo-alarms.wit"), CONTRACT.to_string()),
        (dir.join(".gitignore"), "/target\n".to_string()),
    ];
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("created {name}/: build it with `vigilo plugin build {name}`");
    Ok(EXIT_OK)
}

/// How to compile for wasm32 on this machine.
enum Toolchain {
    /// rustup with the wasm32-unknown-unknown target installed: the ordinary path.
    Rustup,
    /// Debian's `rustc-web` + `rust-web-src`: nightly features unlocked to rebuild std.
    DebianWeb,
}

fn toolchain() -> Option<Toolchain> {
    let rustup_has_target = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"));
    if rustup_has_target {
        return Some(Toolchain::Rustup);
    }
    let debian = std::path::Path::new("/usr/bin/rustc").exists()
        && std::path::Path::new("/usr/lib/rustlib/src/rust/library").exists()
        && which("wasm-ld-22");
    debian.then_some(Toolchain::DebianWeb)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn build(dir: &std::path::Path, output: Option<PathBuf>) -> Result<u8> {
    if dir.join("Cargo.toml").is_file() {
        build_rust(dir, output)
    } else if dir.join("Makefile").is_file() {
        build_make(dir, output)
    } else {
        eprintln!(
            "error: {} has neither a Cargo.toml (a Rust plugin) nor a Makefile (a plugin in \
             another language)",
            dir.display()
        );
        Ok(EXIT_INVALID)
    }
}

fn build_rust(dir: &std::path::Path, output: Option<PathBuf>) -> Result<u8> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let doc: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{} is not valid TOML", manifest.display()))?;
    let Some(name) = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    else {
        anyhow::bail!("{} has no [package] name", manifest.display());
    };
    let Some(toolchain) = toolchain() else {
        eprintln!(
            "error: no wasm32 toolchain: run `rustup target add wasm32-unknown-unknown`, or on \
             Debian `apt-get install rustc-web cargo-web rust-web-src lld-22`"
        );
        return Ok(EXIT_INVALID);
    };
    let mut cargo = match toolchain {
        Toolchain::Rustup => std::process::Command::new("cargo"),
        Toolchain::DebianWeb => {
            let mut c = std::process::Command::new("/usr/bin/cargo");
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("/usr/bin:{path}"))
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTDOC", "/usr/bin/rustdoc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld-22");
            c
        }
    };
    cargo
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"]);
    if let Toolchain::DebianWeb = toolchain {
        cargo.arg("-Zbuild-std=std,panic_abort");
    }
    // A plugin crate is its own workspace; the agent's build settings must not leak into it.
    cargo.env_remove("CARGO_TARGET_DIR").env_remove("RUSTFLAGS");
    let status = cargo.status().context("cannot run cargo")?;
    anyhow::ensure!(status.success(), "cargo build failed for {}", dir.display());
    let module = dir
        .join("target/wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let output = output.unwrap_or_else(|| dir.join("target").join(format!("{name}.wasm")));
    componentize(&module, &output)?;
    Ok(EXIT_OK)
}

/// A plugin in another language: its Makefile builds the core module and calls back
/// `vigilo plugin componentize`, so the same binary (and contract) finishes every plugin.
fn build_make(dir: &std::path::Path, output: Option<PathBuf>) -> Result<u8> {
    let exe = std::env::current_exe().context("cannot find the vigilo binary")?;
    let mut make = std::process::Command::new("make");
    make.current_dir(dir)
        .arg(format!("VIGILO={}", exe.display()));
    if let Some(output) = &output {
        // make runs in DIR: a relative OUTPUT must stay relative to where vigilo was started.
        let output = std::path::absolute(output)
            .with_context(|| format!("cannot resolve {}", output.display()))?;
        make.arg(format!("OUT={}", output.display()));
    }
    let status = make.status().context("cannot run make")?;
    anyhow::ensure!(status.success(), "make failed in {}", dir.display());
    Ok(EXIT_OK)
}

/// Reads a core module, encodes it as a component (validated against the type information the
/// bindings embedded) and writes it to `output`.
fn componentize(module: &std::path::Path, output: &std::path::Path) -> Result<()> {
    let core =
        std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            anyhow::anyhow!("{} is not a vigilo plugin module: {e:#}", module.display())
        })?;
    std::fs::write(output, &component)
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("built {} ({} bytes)", output.display(), component.len());
    Ok(())
}

/// The program `file` of `pack` as the pack runs it: its bytes, configuration and limits.
fn program_of_pack(
    pack: &std::path::Path,
    file: &std::path::Path,
) -> Result<(Vec<u8>, String, Limits), String> {
    let loaded = crate::packs::Pack::load(pack)
        .map_err(|e| format!("{e}\nerror: pack {} rejected", pack.display()))?;
    let wanted = file.to_string_lossy();
    let wanted = wanted.trim_start_matches("./");
    if let Some(p) = loaded.plugins.iter().find(|p| p.file == wanted) {
        return Ok((p.bytes.clone(), p.config.clone(), p.limits.clone()));
    }
    if let Some(s) = loaded.scripts.iter().find(|s| s.file == wanted) {
        return Ok((
            s.source.clone().into_bytes(),
            s.config.clone(),
            s.limits.clone(),
        ));
    }
    let known: Vec<&str> = loaded
        .plugins
        .iter()
        .map(|p| p.file.as_str())
        .chain(loaded.scripts.iter().map(|s| s.file.as_str()))
        .collect();
    Err(format!(
        "pack {} has no plugin or script {wanted:?} (it has: {})",
        loaded.name,
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

fn run_test(args: TestArgs, data_dir: &std::path::Path) -> Result<u8> {
    let TestArgs {
        plugin,
        events,
        pack,
        config,
        deadline_ms,
        memory_mib,
        json,
    } = args;
    let (bytes, config, limits) = match &pack {
        Some(pack) => match program_of_pack(pack, &plugin) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_INVALID);
            }
        },
        None => {
            let bytes = std::fs::read(&plugin)
                .with_context(|| format!("cannot read {}", plugin.display()))?;
            let config = match &config {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => String::new(),
            };
            let limits = Limits {
                deadline: std::time::Duration::from_millis(deadline_ms),
                memory_bytes: (memory_mib as usize) << 20,
                ..Limits::default()
            };
            (bytes, config, limits)
        }
    };
    let loaded: Box<dyn Loaded> = if plugin.extension().is_some_and(|e| e == "rhai") {
        let source = String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text", plugin.display()))?;
        match Script::load(&plugin.display().to_string(), &source, &config, limits) {
            Ok(s) => Box::new(s),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_INVALID);
            }
        }
    } else {
        let runtime = PluginRuntime::with_cache(&super::plugin_cache(data_dir))?;
        match Plugin::load(&runtime, &bytes, &config, limits) {
            Ok(p) => Box::new(p),
            Err(e) => {
                eprintln!("error: {}: {e:#}", plugin.display());
                return Ok(EXIT_INVALID);
            }
        }
    };
    let info = loaded.info().clone();
    let mut instance = loaded.start(Default::default())?;
    let kind = instance.kind();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !json {
        writeln!(
            out,
            "{kind} {} {} — subscribes to {}; reads {}",
            info.name,
            info.version,
            if info.subscribes.is_empty() {
                "nothing".to_string()
            } else {
                info.subscribes.to_string()
            },
            if info.reads == FieldSet::ALL {
                "every field".to_string()
            } else if info.reads == FieldSet::EMPTY {
                "no field".to_string()
            } else {
                info.reads.to_string()
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
                    let actions = crate::model::alarm::action_labels(&a.actions, &[]);
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
                    writeln!(out, "{at}: FAULT: the {kind} {fault}")?;
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
            format!("; the {kind} was switched off after repeated faults")
        } else {
            String::new()
        }
    );
    Ok(if faults > 0 { EXIT_FAULTS } else { EXIT_OK })
}
