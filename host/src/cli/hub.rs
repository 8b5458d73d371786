//! `vigilo hub`: the fleet's hub — every agent's alarms, one store, one console.
//!
//! The hub is an agent without sources of its own: the same data folder (token, address,
//! store), the same console and API, the same pack commands; instead of watching a desktop it
//! takes the alarms agents forward through the bus into its store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The fleet's NATS server (`nats://HOST:4222`; comma-separated for a cluster)
    /// [default: [fleet] url in the settings file].
    #[arg(long, value_name = "URL")]
    fleet: Option<String>,
    /// The file of the hub's nkey seed (`vigilo fleet credentials --hub`) [default: [fleet] nkey].
    #[arg(long, value_name = "FILE")]
    fleet_nkey: Option<PathBuf>,
    /// Where the console and the admin API listen (as `vigilo run --listen`).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR", value_parser = super::run::parse_listen)]
    listen: SocketAddr,
    /// Print each alarm the hub stores of its own (not-reporting agents…) as a JSON line.
    #[arg(long)]
    json: bool,
    /// The hub's settings file [default: DATA_DIR/agent.toml, if present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also run this pack (a folder or an archive; repeatable), as `vigilo run --pack`.
    #[arg(long = "pack", value_name = "DIR")]
    packs: Vec<PathBuf>,
    /// Seconds after an agent's last heartbeat before it counts as not reporting (an alarm,
    /// "Computer not reporting", and first place on the Agents page).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    not_reporting_after: u64,
    /// Where the hub keeps alarms: `sqlite` (a file in the data folder) or a PostgreSQL
    /// database (`postgres://USER:PASSWORD@HOST:5432/DB`), where several hubs can share the
    /// work. Remembered in the data folder (`store-url`, owner-only) until changed
    /// [default: as remembered; at first, sqlite].
    #[arg(
        long,
        env = "VIGILO_HUB_STORE",
        value_name = "sqlite|URL",
        hide_env_values = true
    )]
    store: Option<crate::store::Location>,
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let ran = crate::agent::run(crate::agent::Options {
        data_dir: data_dir.to_path_buf(),
        listen: args.listen,
        events: None,
        json: args.json,
        x11: false,
        idle_after: std::time::Duration::from_secs(120),
        browser: false,
        usb: false,
        removable: Vec::new(),
        retry: crate::actions::worker::Retry::default(),
        retention: crate::store::Retention::default(),
        config: args.config,
        action_limit: Some(20),
        packs: args.packs,
        pages: crate::console::router,
        fleet: crate::agent::FleetOptions {
            url: args.fleet,
            agent_id: None,
            nkey: args.fleet_nkey,
            hub: true,
            heartbeat: None,
            quiet_after: Some(std::time::Duration::from_secs(
                args.not_reporting_after.max(1),
            )),
        },
        store: args.store,
    });
    super::run::exit_code(ran)
}
