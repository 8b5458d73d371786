//! `vigilo browser-host` (started by browsers) and `vigilo install-browser-host`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{EXIT_INVALID, EXIT_OK};
use crate::sources::browser::install::{self, Target};
use crate::sources::browser::native;

#[derive(clap::Args, Debug)]
pub struct HostArgs {
    /// The agent's socket [default: DATA_DIR/browser.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// What the browser passes (the extension's origin; Firefox adds its manifest path):
    /// accepted and ignored, since the manifest already limits who may start the host.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    browser_args: Vec<String>,
}

/// Relays the extension's reports until the browser closes the port.
pub fn host(args: HostArgs, data_dir: &Path) -> Result<u8> {
    let socket = args
        .socket
        .unwrap_or_else(|| data_dir.join(crate::data_dir::BROWSER_SOCKET));
    let relayed = native::relay(
        &mut std::io::stdin().lock(),
        &socket,
        &mut std::io::stderr(),
    )
    .context("reading from the browser")?;
    tracing::info!(relayed, "the browser closed the port");
    Ok(EXIT_OK)
}

#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Browsers to install the host for, for this user: chromium, chrome, firefox
    /// [default: all three].
    #[arg(long = "browser", value_name = "NAME")]
    browsers: Vec<String>,
    /// A Chromium-based browser's `--user-data-dir` (it reads only that folder's manifests).
    #[arg(long = "profile", value_name = "DIR")]
    profiles: Vec<PathBuf>,
}

/// Writes the launcher, the extension's files and the browsers' host manifests.
pub fn install_host(args: InstallArgs, data_dir: &Path) -> Result<u8> {
    let mut targets = Vec::new();
    for name in &args.browsers {
        targets.push(match name.as_str() {
            "chromium" => Target::Chromium,
            "chrome" => Target::Chrome,
            "firefox" => Target::Firefox,
            other => {
                eprintln!("error: --browser {other}: expected chromium, chrome or firefox");
                return Ok(EXIT_INVALID);
            }
        });
    }
    if targets.is_empty() && args.profiles.is_empty() {
        targets = vec![Target::Chromium, Target::Chrome, Target::Firefox];
    }
    targets.extend(args.profiles.into_iter().map(Target::ChromiumProfile));
    let home = dirs::home_dir().context("no home folder to install browser manifests in")?;
    let vigilo = std::env::current_exe().context("cannot tell where this vigilo binary is")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let written =
        install::install(&vigilo, data_dir, &home, &targets).map_err(anyhow::Error::msg)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "next: load {} in the browser (chrome://extensions → Developer mode → Load unpacked; \
         or deploy it by policy), then keep `vigilo run` running",
        data_dir.join("browser-extension").display()
    );
    Ok(EXIT_OK)
}
