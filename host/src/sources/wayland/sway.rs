//! Which process a toplevel is, asked of sway over its IPC socket.
//!
//! `wlr-foreign-toplevel-management` names a toplevel's title and app id, never its process;
//! sway's tree (`get_tree`) gives each container's `pid`. Asked once per focus change, not per
//! title change. Used only where sway says where its socket is (`$SWAYSOCK`): the agent starts
//! no program to find it.
//!
//! The IPC is a few lines (`i3-ipc`, a length, a type, JSON), spoken here rather than through a
//! client crate because what answers on that socket is only as trusted as the environment that
//! named it: each exchange is bounded in time ([`TIMEOUT`]) and size ([`MAX_REPLY`]), and the
//! JSON in nesting (serde_json's own limit).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long sway may take to answer one request.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The largest tree read: a desktop with hundreds of windows is well under 1 MiB.
const MAX_REPLY: u32 = 16 << 20;

const MAGIC: &[u8; 6] = b"i3-ipc";
const GET_TREE: u32 = 4;

/// A container in sway's tree: what is read of it.
#[derive(Debug, serde::Deserialize)]
struct Node {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    pid: Option<i64>,
    #[serde(default)]
    focused: bool,
    #[serde(default)]
    nodes: Vec<Node>,
    #[serde(default)]
    floating_nodes: Vec<Node>,
}

impl Node {
    /// This node and every node below it.
    fn all(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut queue = vec![self];
        while let Some(n) = queue.pop() {
            queue.extend(n.nodes.iter().chain(&n.floating_nodes));
            out.push(n);
        }
        out
    }
}

/// Where sway's IPC is.
pub(crate) struct Tree {
    socket: std::path::PathBuf,
}

impl Tree {
    /// The socket `$SWAYSOCK` names, if sway answers on it; `None` outside sway.
    pub(crate) fn from_env() -> Option<Tree> {
        let socket = std::env::var_os("SWAYSOCK").filter(|s| !s.is_empty())?;
        let tree = Tree {
            socket: socket.into(),
        };
        match get_tree(&tree.socket) {
            Ok(_) => Some(tree),
            Err(e) => {
                tracing::warn!("sway's IPC does not answer, no PIDs: {e}");
                None
            }
        }
    }

    /// The PID of the toplevel with this app id and title: the focused container if it is that
    /// one, else the only container that is.
    pub(crate) fn pid_of(&mut self, app_id: &str, title: &str) -> Option<u32> {
        match get_tree(&self.socket) {
            Ok(tree) => pid_in(&tree, app_id, title),
            Err(e) => {
                tracing::debug!("sway's tree: {e}");
                None
            }
        }
    }
}

/// Asks sway at `socket` for its tree, on a connection of its own.
fn get_tree(socket: &Path) -> Result<Node, String> {
    let mut conn = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    conn.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut request = MAGIC.to_vec();
    request.extend(0u32.to_ne_bytes());
    request.extend(GET_TREE.to_ne_bytes());
    conn.write_all(&request)
        .map_err(|e| format!("cannot ask: {e}"))?;
    let mut header = [0u8; 14];
    conn.read_exact(&mut header)
        .map_err(|e| format!("no answer: {e}"))?;
    if &header[..6] != MAGIC {
        return Err("the answer is not sway's IPC".into());
    }
    let len = u32::from_ne_bytes([header[6], header[7], header[8], header[9]]);
    let kind = u32::from_ne_bytes([header[10], header[11], header[12], header[13]]);
    if kind != GET_TREE {
        return Err(format!("answered message type {kind}, not the tree"));
    }
    if len > MAX_REPLY {
        return Err(format!("a tree of {len} bytes, over the {MAX_REPLY} read"));
    }
    let mut payload = Vec::with_capacity(len as usize);
    (&mut conn)
        .take(u64::from(len))
        .read_to_end(&mut payload)
        .map_err(|e| format!("the tree: {e}"))?;
    serde_json::from_slice(&payload).map_err(|e| format!("the tree is not sway's: {e}"))
}

/// The PID of the container in `tree` showing this app id and title.
fn pid_in(tree: &Node, app_id: &str, title: &str) -> Option<u32> {
    let all = tree.all();
    let matching: Vec<&&Node> = all
        .iter()
        .filter(|n| {
            n.pid.is_some()
                && n.app_id.as_deref().unwrap_or_default() == app_id
                && n.name.as_deref().unwrap_or_default() == title
        })
        .collect();
    let pick = match matching.iter().find(|n| n.focused) {
        Some(focused) => Some(focused),
        None if matching.len() == 1 => matching.first(),
        None => None,
    };
    pick.and_then(|n| n.pid).and_then(|p| u32::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A tree from `swaymsg -t get_tree` (sway 1.7 headless, three foot windows: "Report" in
    /// front, two titled "Mail"), the PIDs replaced with 100, 200, 300.
    const TREE: &str = include_str!("testdata/sway-tree.json");

    #[test]
    fn the_focused_container_names_the_pid_and_an_ambiguous_title_names_none() {
        let tree: Node = serde_json::from_str(TREE).expect("sway's tree");
        assert_eq!(pid_in(&tree, "foot", "Report"), Some(100));
        assert_eq!(pid_in(&tree, "foot", "Mail"), None, "two are Mail");
        assert_eq!(pid_in(&tree, "xterm", "Report"), None);
    }

    /// A socket that answers one request with `answer` (after reading the request), then holds
    /// the connection open, saying nothing more, until the test drops what this returns.
    fn server(
        answer: Vec<u8>,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::sync::mpsc::Sender<()>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sway-ipc.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let (hold, until) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut request = [0u8; 14];
                let _ = conn.read_exact(&mut request);
                let _ = conn.write_all(&answer);
                let _ = until.recv();
            }
        });
        (dir, path, hold)
    }

    fn reply(len: u32, kind: u32, payload: &[u8]) -> Vec<u8> {
        let mut r = MAGIC.to_vec();
        r.extend(len.to_ne_bytes());
        r.extend(kind.to_ne_bytes());
        r.extend(payload);
        r
    }

    #[test]
    fn the_tree_is_read_over_the_socket() {
        let (_dir, path, _hold) = server(reply(TREE.len() as u32, GET_TREE, TREE.as_bytes()));
        let tree = get_tree(&path).expect("the tree");
        assert_eq!(pid_in(&tree, "foot", "Report"), Some(100));
    }

    #[test]
    fn a_hostile_socket_is_refused_within_its_bounds() {
        // A length of 4 GiB is not allocated.
        let (_d1, huge, _h1) = server(reply(u32::MAX, GET_TREE, b""));
        assert!(get_tree(&huge).is_err_and(|e| e.contains("over the")));
        // Another protocol.
        let (_d2, other, _h2) = server(b"HTTP/1.1 200 OK\r\n\r\n".to_vec());
        assert!(get_tree(&other).is_err_and(|e| e.contains("not sway's IPC")));
        // A length promised and never sent, the connection held open: without the read's
        // timeout this would wait for ever.
        let (_d3, silent, _h3) = server(reply(1000, GET_TREE, b"{"));
        assert!(get_tree(&silent).is_err_and(|e| e.contains("the tree")));
        // JSON nested past any tree's depth.
        let deep = "{\"nodes\":[".repeat(10_000);
        let (_d4, nested, _h4) = server(reply(deep.len() as u32, GET_TREE, deep.as_bytes()));
        assert!(get_tree(&nested).is_err_and(|e| e.contains("not sway's")));
    }
}
