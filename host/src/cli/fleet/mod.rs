//! `vigilo fleet`: tools for running a fleet — the bus's per-computer credentials, and a
//! simulated fleet to size a hub with.

mod rollout;
mod simulate;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::fleet::auth;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Make an nkey for each computer (kept if there already) and the NATS server's
    /// `authorization` block that keeps each agent to its own subjects (DIR/auth.conf).
    Credentials {
        /// The folder of keys: NAME.nk (owner-only seeds) and auth.conf. Keys already there are
        /// kept and stay in auth.conf, so adding computers later is running this again.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// An agent's id (repeatable): its key may publish only as this agent.
        #[arg(long = "agent", value_name = "ID")]
        agents: Vec<String>,
        /// The hub's name: its key may do everything.
        #[arg(long, default_value = "hub", value_name = "NAME")]
        hub: String,
    },
    /// Run many agents in this process against a real bus and hub: generated workdays through
    /// the standard pack, each alarm committed with its forward row and forwarded by the real
    /// forwarding code; then say how fast, how late and how big. With --publish, time a pack's
    /// rollout to all of them instead.
    Simulate(simulate::Args),
}

pub fn run(args: Args) -> Result<u8> {
    match args.what {
        What::Credentials { out, agents, hub } => credentials(&out, &agents, &hub),
        What::Simulate(args) => simulate::run(args),
    }
}

/// The file of `name`'s seed in `dir`.
fn key_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.nk"))
}

fn credentials(dir: &Path, agents: &[String], hub: &str) -> Result<u8> {
    crate::fleet::check_agent_id(hub)?;
    for a in agents {
        crate::fleet::check_agent_id(a)?;
        if a == hub {
            anyhow::bail!("agent {a:?} has the hub's name; give the hub another with --hub");
        }
    }
    crate::owner_only::create_dir(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Every key already there, and the ones asked for.
    let mut names: Vec<String> = agents.to_vec();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "nk")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && stem != hub
            && crate::fleet::check_agent_id(stem).is_ok()
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    names.dedup();
    names.insert(0, hub.to_string());
    let mut users = Vec::new();
    let mut table = vec![["NAME", "ROLE", "KEY FILE", "PUBLIC KEY", ""].map(String::from)];
    for name in &names {
        let path = key_file(dir, name);
        let (seed, state) = if path.exists() {
            (auth::read_seed(&path)?, "kept")
        } else {
            let seed = auth::new_seed()?;
            crate::owner_only::create(&path, format!("{seed}\n").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            (seed, "new")
        };
        let public_key = auth::public_key(&seed)
            .with_context(|| format!("{}: not a usable seed", path.display()))?;
        let is_hub = name == hub;
        table.push([
            name.clone(),
            if is_hub { "hub" } else { "agent" }.into(),
            format!("{name}.nk"),
            public_key.clone(),
            state.into(),
        ]);
        users.push(auth::User {
            name: name.clone(),
            public_key,
            permissions: if is_hub {
                auth::hub_permissions()
            } else {
                auth::agent_permissions(name)
            },
        });
    }
    let conf = dir.join("auth.conf");
    std::fs::write(&conf, auth::server_config(&users))
        .with_context(|| format!("cannot write {}", conf.display()))?;
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    println!(
        "\nwrote {} (include it from nats-server.conf: include \"auth.conf\");\n\
         start each agent with --fleet-nkey {}/ID.nk, the hub with --fleet-nkey {}",
        conf.display(),
        dir.display(),
        key_file(dir, hub).display()
    );
    Ok(EXIT_OK)
}
