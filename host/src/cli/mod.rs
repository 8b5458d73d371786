//! Subcommands of the `vigilo` binary, one file each.
//!
//! Exit codes are part of the interface, so scripts can tell outcomes apart:
//! `0` success; `1` a failure (I/O, database); `2` invalid input (bad usage, a pack rejected,
//! a malformed event line under `--strict`); `3` replay finished but skipped malformed lines;
//! `4` a plugin faulted (`vigilo plugin test`).

mod alarms;
mod bench;
mod browser;
mod check;
mod client;
mod fleet;
mod group;
mod hub;
mod pack;
mod plugin;
mod replay;
mod risk;
mod run;
mod status;
mod synth;
pub(crate) mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::packs::{Pack, TrustedKeys};
use crate::rule_set::RuleSet;

/// Success.
pub const EXIT_OK: u8 = 0;
/// A failure: I/O, database.
pub const EXIT_FAILURE: u8 = 1;
/// Invalid input: bad usage, a rejected pack, a malformed line under `--strict`.
pub const EXIT_INVALID: u8 = 2;
/// Replay finished, but some malformed lines were skipped.
pub const EXIT_SKIPPED: u8 = 3;
/// A plugin faulted (trap, deadline, memory, invalid answer) while being tested.
pub const EXIT_FAULTS: u8 = 4;

/// vigilo — an endpoint agent that watches activity, USB storage and its own setup, and raises
/// alarms defined by rule packs.
#[derive(Parser, Debug)]
#[command(name = "vigilo", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Where the database (and later captures) live [default: $XDG_DATA_HOME/vigilo].
    #[arg(long, global = true, env = "VIGILO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent: packs managed through the admin API, events from the sources, alarms
    /// stored, until SIGTERM or Ctrl-C.
    Run(run::Args),
    /// Run the fleet's hub: every agent's alarms, forwarded through the bus (NATS JetStream),
    /// in one store behind one console and API.
    Hub(hub::Args),
    /// Tools for a fleet: the bus's per-computer credentials.
    Fleet(fleet::Args),
    /// A fleet's groups, defined on its hub: users and computers under one name, which pack
    /// targets and alarms' `applies_to` list.
    Group(group::Args),
    /// How a running agent is doing: sources up or down, events per second, alarms today,
    /// plugins and scripts, anything shed.
    Status(status::Args),
    /// Feed recorded events (JSONL) through the packs; show and store what fires.
    Replay(replay::Args),
    /// List the alarms stored in the database.
    Alarms(alarms::Args),
    /// Rank users by risk score (risk points per 100 activity records) over a window, with
    /// the trend from the window before.
    Risk(risk::Args),
    /// Validate a pack and show what it contains, or every error in it.
    Check(check::Args),
    /// Measure evaluation throughput, latency and memory on generated data.
    Bench(bench::Args),
    /// Write deterministic synthetic data: a workday, an event stream, a pack of alarms.
    Synth(synth::Args),
    /// Tools for plugin authors: new, build, test.
    Plugin(plugin::Args),
    /// Packs: build, keygen, sign, verify archives; upload, list, enable, disable, roll back on a
    /// running agent.
    Pack(pack::Args),
    /// The native messaging host browsers start for vigilo's extension (not run by hand).
    BrowserHost(browser::HostArgs),
    /// Install the browser host for this user: launcher, extension files, browser manifests.
    InstallBrowserHost(browser::InstallArgs),
}

/// Sets up `tracing` on stderr: warnings by default, more with `-v`, or as `RUST_LOG` says.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    crate::use_ring_for_tls();
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(crate::data_dir::default);
    let result = match cli.command {
        Command::Run(args) => run::run(args, &data_dir),
        Command::Hub(args) => hub::run(args, &data_dir),
        Command::Fleet(args) => fleet::run(args),
        Command::Group(args) => group::run(args, &data_dir),
        Command::Status(args) => status::run(args, &data_dir),
        Command::Replay(args) => replay::run(args, &data_dir),
        Command::Alarms(args) => alarms::run(args, &data_dir),
        Command::Risk(args) => risk::run(args, &data_dir),
        Command::Check(args) => check::run(args, &data_dir),
        Command::Bench(args) => bench::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Plugin(args) => plugin::run(args, &data_dir),
        Command::Pack(args) => pack::run(args, &data_dir),
        Command::BrowserHost(args) => browser::host(args, &data_dir),
        Command::InstallBrowserHost(args) => browser::install_host(args, &data_dir),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `vigilo … | head` closes our stdout early; that is the reader's choice, not our failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The keys this agent trusts to sign packs: the `.pub` files in `DATA_DIR/trusted-keys/`. With
/// any there, only packs signed by one of them load.
fn trusted_keys(data_dir: &Path) -> Result<TrustedKeys, u8> {
    TrustedKeys::of_data_dir(data_dir).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_INVALID
    })
}

/// Loads the standard pack (unless told not to) and the named packs, all-or-nothing; on a
/// rejected pack prints every diagnostic and returns the exit code to use. Packs must satisfy
/// the trust policy of `data_dir`; compiled plugins are cached there.
fn load_rules(paths: &[PathBuf], default_pack: bool, data_dir: &Path) -> Result<RuleSet, u8> {
    let trusted = trusted_keys(data_dir)?;
    let mut packs = Vec::new();
    let mut failed = false;
    if default_pack {
        match Pack::standard() {
            Ok(p) => packs.push(p),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    for path in paths {
        match Pack::load_trusted(path, &trusted) {
            Ok(p) => packs.push(p),
            Err(e) => {
                eprintln!("{e}");
                eprintln!("error: pack {} rejected", path.display());
                failed = true;
            }
        }
    }
    if failed {
        return Err(EXIT_INVALID);
    }
    if packs.is_empty() {
        eprintln!("error: no packs to run (add --pack DIR, or drop --no-default-pack)");
        return Err(EXIT_INVALID);
    }
    for p in &packs {
        tracing::info!(pack = %p.name, version = %p.version, alarms = p.alarms.len(), origin = %p.origin, "pack loaded");
    }
    let names: Vec<&str> = packs.iter().map(|p| p.name.as_str()).collect();
    if let Some(dup) = names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
    {
        eprintln!(
            "error: two packs are named {:?}; pack names must be unique",
            dup.1
        );
        return Err(EXIT_INVALID);
    }
    RuleSet::with_plugin_cache(packs, Some(&plugin_cache(data_dir))).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_INVALID
    })
}

/// Where compiled plugins are cached: under the data folder, so `replay`, `check` and
/// `plugin test` share one cache.
fn plugin_cache(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::data_dir::PLUGIN_CACHE)
}

/// The data folder's store, for commands that read what is there (it must exist: an empty
/// new one would only hide a wrong `--data-dir`).
fn existing_store(data_dir: &std::path::Path) -> anyhow::Result<crate::store::Store> {
    let db = data_dir.join(crate::data_dir::STORE);
    if !db.exists() && !data_dir.join(crate::data_dir::STORE_URL).exists() {
        anyhow::bail!(
            "no database at {} yet: run `vigilo replay` (or the agent) first",
            db.display()
        );
    }
    crate::store::Store::open(data_dir)
}
