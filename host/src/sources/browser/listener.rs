//! The agent's side: a unix socket where browser hosts relay tab reports.
//!
//! Each connection is one browser host (one browser profile); it sends one JSON line per
//! report. The socket lives in the owner-only data folder and is itself owner-only, so only
//! the agent's user (whose browsers these are) can connect. Who connected is read from the
//! socket (`SO_PEERCRED`), never from the message: the report speaks for the host's ancestors,
//! which is how [`crate::tabs`] ties it to the browser's window.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::{MAX_MESSAGE, TabMessage};
use crate::os::process;
use crate::sources::{Running, Sink, Source};
use crate::tabs::TabReport;

/// At most this many browser hosts at once (each is one browser profile).
const MAX_HOSTS: usize = 16;

/// How far up from the host to look for the browser that owns the window.
const LINEAGE: usize = 8;

/// The bound socket; [`BrowserListener::serve`] runs it.
pub struct BrowserListener {
    listener: UnixListener,
    path: PathBuf,
}

impl BrowserListener {
    /// Binds `path`. A socket file left by an agent that is gone is replaced; one that an agent
    /// still answers on is an error (two agents would split the reports).
    pub fn bind(path: &Path) -> Result<BrowserListener, String> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "{} is in use: is another vigilo agent running on this data folder?",
                    path.display()
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale {}: {e}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        crate::owner_only::restrict(path)
            .map_err(|e| format!("cannot make {} owner-only: {e}", path.display()))?;
        Ok(BrowserListener {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket file, to remove when the agent stops.
    pub fn file(&self) -> SocketFile {
        SocketFile {
            path: self.path.clone(),
            identity: identity(&self.path),
        }
    }

    /// Accepts hosts forever, each on its own thread, handing every valid report to `deliver`.
    /// A host is dropped when `deliver` says the agent is stopping.
    pub fn serve(self, deliver: impl Fn(TabReport) -> bool + Send + Sync + 'static) {
        let deliver = Arc::new(deliver);
        let hosts = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            if hosts.fetch_add(1, Ordering::SeqCst) >= MAX_HOSTS {
                hosts.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!("refused a browser host: {MAX_HOSTS} already connected");
                continue;
            }
            let (deliver, hosts) = (deliver.clone(), hosts.clone());
            let spawned = std::thread::Builder::new()
                .name("vigilo-browser-host".into())
                .spawn(move || {
                    read_host(stream, &*deliver);
                    hosts.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a thread for a browser host: {e}");
            }
        }
    }
}

/// The browser extension's reports, heard on a socket in the data folder: the [`Source`]
/// `vigilo run` starts unless `--no-browser`. The socket file is removed when the agent stops.
pub struct BrowserTabs {
    /// Where to listen (`DATA_DIR/browser.sock`).
    pub socket: PathBuf,
}

impl Source for BrowserTabs {
    /// A socket that cannot be made is said and the agent runs on without URLs.
    fn start(self: Box<Self>, sink: Arc<dyn Sink>) -> std::io::Result<Running> {
        let listener = match BrowserListener::bind(&self.socket) {
            Ok(l) => l,
            Err(why) => {
                sink.off("browser", why, "URLs from browsers are off");
                return Ok(Running::threads());
            }
        };
        tracing::info!(socket = %listener.path().display(), "listening for browser hosts");
        sink.status(
            "browser",
            true,
            format!("tab reports on {}", listener.path().display()),
        );
        let file = listener.file();
        std::thread::Builder::new()
            .name("vigilo-source-browser".into())
            .spawn(move || listener.serve(move |report| sink.tab(report)))?;
        Ok(Running::with_cleanup(move || file.remove()))
    }
}

/// A socket file this agent made.
pub struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, i64, i64)>,
}

/// Inode and change time: inode numbers alone are reused as soon as a file is removed.
fn identity(path: &Path) -> Option<(u64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.ctime(), m.ctime_nsec()))
}

impl SocketFile {
    /// Removes the file, unless it is no longer ours: an agent started on the same folder
    /// while this one was stopping has bound a new socket there, which must stay.
    pub fn remove(self) {
        let now = identity(&self.path);
        if now.is_some() && now == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads one host's reports until it disconnects, sends a line too long, or the agent stops.
fn read_host(stream: UnixStream, deliver: &(dyn Fn(TabReport) -> bool + Send + Sync)) {
    let browsers = match getsockopt(&stream, PeerCredentials) {
        Ok(cred) => match u32::try_from(cred.pid()) {
            Ok(pid) => process::lineage(pid, LINEAGE),
            Err(_) => return,
        },
        Err(e) => {
            tracing::warn!("a browser host with no credentials was dropped: {e}");
            return;
        }
    };
    tracing::info!(host = ?browsers.first(), "browser host connected");
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = (MAX_MESSAGE + 1) as u64;
        match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.len() > MAX_MESSAGE => {
                tracing::warn!("a browser host sent a line over {MAX_MESSAGE} bytes; dropped it");
                return;
            }
            Ok(_) => {}
        }
        let message: TabMessage = match serde_json::from_slice(&line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("a browser host sent a line that is not a tab report: {e}");
                continue;
            }
        };
        let Some(report) = TabReport::new(&message.url, &message.title, browsers.clone()) else {
            tracing::debug!("a tab report without a valid URL was ignored");
            continue;
        };
        tracing::debug!(url = %report.url, title = %report.title, "tab report");
        if !deliver(report) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::mpsc;

    #[test]
    fn reports_carry_the_sender_lineage_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("browser.sock");
        let listener = BrowserListener::bind(&path).expect("bind");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second agent on the same folder is refused while the first listens.
        assert!(BrowserListener::bind(&path).is_err_and(|e| e.contains("in use")));

        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        std::thread::spawn(move || {
            listener.serve(move |r| tx.lock().map(|t| t.send(r).is_ok()).unwrap_or(false))
        });
        let mut host = UnixStream::connect(&path).expect("connect");
        host.write_all(b"{\"url\":\"https://user:pw@example.com/x\",\"title\":\"X\"}\n")
            .expect("write");
        host.write_all(b"not json\n{\"url\":\"nope\",\"title\":\"Y\"}\n")
            .expect("write");
        host.write_all(b"{\"url\":\"https://example.org/\",\"title\":\"Z\"}\n")
            .expect("write");
        let first = rx.recv().expect("first report");
        assert_eq!(first.url, "https://example.com/x");
        assert_eq!(first.browsers.first(), Some(&std::process::id()));
        let second = rx.recv().expect("second report");
        assert_eq!(second.title, "Z", "the bad lines in between were skipped");
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("browser.sock");
        drop(UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let first = BrowserListener::bind(&path).expect("rebinds over a dead socket");
        let file = first.file();
        drop(first);
        // Another agent took the folder over: the first one's clean-up leaves its socket be.
        let second = BrowserListener::bind(&path).expect("rebinds");
        file.remove();
        assert!(path.exists());
        second.file().remove();
        assert!(!path.exists());
    }
}
