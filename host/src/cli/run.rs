//! `vigilo run`: the agent itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the admin API and the console listen: `127.0.0.1:7077`, `localhost:7077`, `:7077`
    /// (loopback), `[::1]:7077`; port 0 picks a free one, written to DATA_DIR/admin-address.
    /// Anything but loopback serves the console over plain HTTP to the network: put a TLS
    /// reverse proxy in front.
    #[arg(long, default_value = "127.0.0.1:7077", value_name = "ADDR", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Feed events from this JSONL file or stream (`-`: standard input), as a source.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Print each stored alarm as a JSON line on stdout.
    #[arg(long)]
    json: bool,
    /// Do not watch the desktop's focused window (X11 or Wayland; `--no-x11` is its old name).
    #[arg(long, alias = "no-x11")]
    no_desktop: bool,
    /// Do not listen for vigilo's browser extension (DATA_DIR/browser.sock).
    #[arg(long)]
    no_browser: bool,
    /// Do not follow USB devices or files written to removable storage.
    #[arg(long)]
    no_usb: bool,
    /// Treat the file system mounted at PATH as removable storage (repeatable): for media the
    /// kernel does not mark removable. USB and removable disks are found without this.
    #[arg(long, value_name = "PATH")]
    removable: Vec<PathBuf>,
    /// Attempts at an action (a webhook delivery) before it is given up as dead.
    #[arg(long, default_value_t = 8, value_name = "N")]
    action_attempts: u32,
    /// At most this many of one action (e-mails, pop-ups…) an hour for one alarm and one
    /// user; beyond, actions are recorded as limited and not performed (0: no limit).
    #[arg(long, default_value_t = 20, value_name = "N")]
    action_limit: u32,
    /// Seconds to wait after an action's first failure; doubled after each next one (at most
    /// an hour).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    retry_after: u64,
    /// Screenshots and videos older than this many days are deleted.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    captures_max_days: u64,
    /// Beyond this many megabytes of screenshots and videos, the oldest are deleted.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    captures_max_mb: u64,
    /// The agent's settings file (the mail server…) [default: DATA_DIR/agent.toml, if present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also run this pack (a folder or an archive; repeatable), uploaded at start as `vigilo
    /// pack upload` would: checked in full, refused (exit 2) if it does not load.
    #[arg(long = "pack", value_name = "DIR")]
    packs: Vec<PathBuf>,
    /// Seconds without keyboard or mouse input after which time in a window stops counting.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    idle_after: u64,
    /// Report to a fleet's hub through this NATS server (`nats://HOST:4222`; comma-separated
    /// for a cluster): each alarm is forwarded, and kept until the bus acknowledges it
    /// [default: [fleet] url in the settings file, if any].
    #[arg(long, value_name = "URL")]
    fleet: Option<String>,
    /// This agent's name in the fleet: letters, digits, `-`, `_` [default: [fleet] agent_id,
    /// else the host name].
    #[arg(long, value_name = "NAME")]
    agent_id: Option<String>,
    /// In a fleet, the file of this agent's nkey seed (`vigilo fleet credentials` writes one
    /// per computer) [default: [fleet] nkey].
    #[arg(long, value_name = "FILE")]
    fleet_nkey: Option<PathBuf>,
    /// In a fleet, seconds between two heartbeats to the hub (its Agents page; an agent silent
    /// for long is "not reporting").
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    heartbeat: u64,
}

/// `--listen`: a socket address, `localhost:PORT` or `:PORT` (both loopback), or a name that
/// resolves.
pub(super) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = text.parse() {
        return Ok(a);
    }
    let port_of = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port (0–65535)"))
    };
    if let Some(port) = text.strip_prefix(':') {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port_of(port)?)));
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port_of(port)?)));
    }
    std::net::ToSocketAddrs::to_socket_addrs(text)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("{text:?}: expected HOST:PORT, such as 127.0.0.1:7077, localhost:7077 or :7077")
        })
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    let ran = crate::agent::run(crate::agent::Options {
        packs: args.packs,
        pages: crate::console::router,
        data_dir: data_dir.to_path_buf(),
        listen: args.listen,
        events: args.events,
        json: args.json,
        x11: !args.no_desktop,
        idle_after: std::time::Duration::from_secs(args.idle_after),
        browser: !args.no_browser,
        usb: !args.no_usb,
        removable: args
            .removable
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
            .collect(),
        retry: crate::actions::worker::Retry {
            attempts: args.action_attempts.max(1),
            first: std::time::Duration::from_secs(args.retry_after.max(1)),
            ..Default::default()
        },
        config: args.config,
        action_limit: (args.action_limit > 0).then_some(args.action_limit),
        retention: crate::store::Retention {
            max_age: std::time::Duration::from_secs(args.captures_max_days * 24 * 3600),
            max_bytes: args.captures_max_mb << 20,
        },
        fleet: crate::agent::FleetOptions {
            url: args.fleet,
            agent_id: args.agent_id,
            nkey: args.fleet_nkey,
            hub: false,
            heartbeat: Some(std::time::Duration::from_secs(args.heartbeat.max(1))),
            quiet_after: None,
        },
        store: None,
    });
    exit_code(ran)
}

/// How an agent's (or hub's) run ends, as an exit code: a refused `--pack` is invalid input.
pub(super) fn exit_code(ran: Result<()>) -> Result<u8> {
    match ran {
        Ok(()) => Ok(EXIT_OK),
        Err(e) if e.downcast_ref::<crate::agent::RefusedPack>().is_some() => {
            eprintln!("{e}");
            Ok(super::EXIT_INVALID)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_the_forms_people_type() {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(parse_listen("127.0.0.1:7077"), Ok(loopback(7077)));
        assert_eq!(parse_listen("localhost:7077"), Ok(loopback(7077)));
        assert_eq!(parse_listen(":8080"), Ok(loopback(8080)));
        assert_eq!(
            parse_listen("[::1]:7077"),
            Ok("[::1]:7077".parse().expect("v6"))
        );
        assert!(
            parse_listen(":http")
                .expect_err("no port")
                .contains("not a port")
        );
        assert!(
            parse_listen("7077")
                .expect_err("no host")
                .contains("HOST:PORT")
        );
    }
}
