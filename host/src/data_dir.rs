//! The data folder: where an agent keeps its store, secrets, captures and the address of its API.
//!
//! Two rules hold it together. It is **owner-only**: the admin token and people's screens live
//! here, and a CLI command trusts `admin-address` enough to send the token to whatever it names,
//! so a folder that others may write is tightened (when it is ours) or refused (when it is not).
//! And it belongs to **one agent at a time**: a second `vigilo run` on the same folder would store
//! every alarm twice, act twice, and delete the first one's address when it stops. The lock is an
//! advisory `flock` on `agent.lock`, held for the process's lifetime and released by the kernel
//! however the process ends (`kill -9` included), so a stale lock file never blocks a restart.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

// What a data folder holds, each name said once (owner-only, as the folder is):

/// The store: alarms, the outbox, packs, the audit trail, activity (SQLite, with its `-wal`).
pub const STORE: &str = "vigilo.db";
/// Where the store is when it is not `STORE`: a PostgreSQL address (`vigilo hub --store`), 0600
/// (it may hold a password).
pub const STORE_URL: &str = "store-url";
/// The admin token the API and the console ask for (0600, made on first run).
pub const ADMIN_TOKEN: &str = "admin-token";
/// Where the running agent's API listens, for the CLI to find it (0600; removed on stop).
pub const ADMIN_ADDRESS: &str = "admin-address";
/// The agent's own settings: the mail server, the video frame rate (optional).
pub const SETTINGS: &str = "agent.toml";
/// The key webhooks are signed with (`whsec_…`, 0600, made on first run).
pub const WEBHOOK_SECRET: &str = "webhook-secret";
/// The public keys packs must be signed with; none there: unsigned packs are accepted.
pub const TRUSTED_KEYS: &str = "trusted-keys";
/// Compiled plugins, so that the next start skips compiling them.
pub const PLUGIN_CACHE: &str = "plugin-cache";
/// Screenshots and videos taken for alarms, kept as long as the retention says.
pub const CAPTURES: &str = "captures";
/// The socket browser hosts report the tab in front on.
pub const BROWSER_SOCKET: &str = "browser.sock";
/// The lock that keeps a second agent off the folder; it holds the holder's PID.
pub const LOCK: &str = "agent.lock";

/// The default data folder: `$XDG_DATA_HOME/vigilo` (usually `~/.local/share/vigilo`).
pub fn default() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("vigilo")
}

/// Why a data folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another agent holds the folder's lock.
    #[error(
        "another vigilo agent{} is running on the data folder {}; stop it first, or give this one \
         its own --data-dir",
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default(),
        dir.display()
    )]
    Held {
        /// The folder.
        dir: PathBuf,
        /// The holder's PID, as it wrote it in the lock file.
        pid: Option<u32>,
    },
    /// Others may write the folder and it is not ours to tighten.
    #[error(
        "the data folder {} may be written by other users (mode {mode:o}) and belongs to user \
         {owner}, not to this one; it holds the admin token and screenshots: make it owner-only \
         (chmod 700) or choose another --data-dir",
        dir.display()
    )]
    Open {
        /// The folder.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The uid that owns it.
        owner: u32,
    },
    /// The file system refused.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// To which file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DataDirError + 'a {
    move |source| DataDirError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes sure `dir` exists and only its owner may write it: created 0700 when missing;
/// group- or world-writable and ours, it is tightened to 0700 (and said); someone else's, it is
/// refused.
pub fn prepare(dir: &Path) -> Result<(), DataDirError> {
    if !dir.is_dir() {
        return crate::owner_only::create_dir(dir)
            .map_err(io("cannot create the data folder", dir));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(dir).map_err(io("cannot read the data folder", dir))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            if meta.uid() != nix::unistd::geteuid().as_raw() {
                return Err(DataDirError::Open {
                    dir: dir.to_path_buf(),
                    mode,
                    owner: meta.uid(),
                });
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io("cannot restrict the data folder", dir))?;
            tracing::warn!(dir = %dir.display(), "the data folder was mode {mode:o}; made it 0700");
            eprintln!(
                "vigilo: the data folder {} could be written by others (mode {mode:o}); made it \
                 owner-only (0700)",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The data folder's lock, held while this value lives.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
}

/// Takes the data folder for this process (after [`prepare`]): fails with
/// [`DataDirError::Held`], naming the holder's PID, when another agent has it. Nothing else in
/// the folder is touched either way.
pub fn lock(dir: &Path) -> Result<AgentLock, DataDirError> {
    let path = dir.join(LOCK);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(io("cannot open the lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            // A PID is a few digits; whatever else is there is not read in full.
            let mut text = String::new();
            let _ = (&mut file).take(32).read_to_string(&mut text);
            return Err(DataDirError::Held {
                dir: dir.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(DataDirError::Io {
                what: "cannot lock",
                path,
                source: e,
            });
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_data())
        .map_err(io("cannot write the lock file", &path))?;
    Ok(AgentLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn one_holder_at_a_time_and_the_refusal_names_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let held = lock(dir.path()).expect("first");
        match lock(dir.path()) {
            Err(DataDirError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        lock(dir.path()).expect("free again once the holder is gone");
    }

    #[test]
    fn a_folder_others_may_write_is_made_owner_only() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        prepare(&dir).expect("ours: tightened");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let fresh = root.path().join("new/data");
        prepare(&fresh).expect("created");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
}
