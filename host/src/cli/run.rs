//! `vigilo run`: the agent itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the admin API listens (loopback unless you mean otherwise; port 0 picks a free
    /// one, written to DATA_DIR/admin-address).
    #[arg(long, default_value = "127.0.0.1:7077", value_name = "ADDR")]
    listen: SocketAddr,
    /// Feed events from this JSONL file or stream (`-`: standard input), as a source.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Print each stored alarm as a JSON line on stdout.
    #[arg(long)]
    json: bool,
    /// Do not watch the X display's focused window.
    #[arg(long)]
    no_x11: bool,
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
    /// Seconds without keyboard or mouse input after which time in a window stops counting.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    idle_after: u64,
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    crate::agent::run(crate::agent::Options {
        data_dir: data_dir.to_path_buf(),
        listen: args.listen,
        events: args.events,
        json: args.json,
        x11: !args.no_x11,
        idle_after: std::time::Duration::from_secs(args.idle_after),
        browser: !args.no_browser,
        usb: !args.no_usb,
        removable: args.removable,
    })?;
    Ok(EXIT_OK)
}
