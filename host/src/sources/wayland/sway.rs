//! Which process a toplevel is, asked of sway over its IPC socket.
//!
//! `wlr-foreign-toplevel-management` names a toplevel's title and app id, never its process;
//! sway's tree (`get_tree`) gives each container's `pid`. Asked once per focus change, not per
//! title change. Used only where sway says where its socket is (`$SWAYSOCK`): the agent starts
//! no program to find it.

use swayipc::{Connection, Node};

/// A connection to sway's IPC.
pub(crate) struct Tree {
    conn: Connection,
}

impl Tree {
    /// Connects to the socket `$SWAYSOCK` names; `None` outside sway (or if it does not answer).
    pub(crate) fn from_env() -> Option<Tree> {
        std::env::var_os("SWAYSOCK").filter(|s| !s.is_empty())?;
        match Connection::new() {
            Ok(conn) => Some(Tree { conn }),
            Err(e) => {
                tracing::warn!("sway's IPC does not answer, no PIDs: {e}");
                None
            }
        }
    }

    /// The PID of the toplevel with this app id and title: the focused container if it is that
    /// one, else the only container that is.
    pub(crate) fn pid_of(&mut self, app_id: &str, title: &str) -> Option<u32> {
        let tree = match self.conn.get_tree() {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!("sway's tree: {e}");
                return None;
            }
        };
        pid_in(&tree, app_id, title)
    }
}

/// The PID of the container in `tree` showing this app id and title.
fn pid_in(tree: &Node, app_id: &str, title: &str) -> Option<u32> {
    let is_it = |n: &&Node| {
        n.pid.is_some()
            && n.app_id.as_deref().unwrap_or_default() == app_id
            && n.name.as_deref().unwrap_or_default() == title
    };
    let pid = |n: &Node| n.pid.and_then(|p| u32::try_from(p).ok());
    if let Some(n) = tree.iter().filter(is_it).find(|n| n.focused) {
        return pid(n);
    }
    let mut matching = tree.iter().filter(is_it);
    match (matching.next(), matching.next()) {
        (Some(only), None) => pid(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_focused_container_names_the_pid_and_an_ambiguous_title_names_none() {
        // `swaymsg -t get_tree` from sway 1.7 headless with three foot windows ("Report" in
        // front, two titled "Mail"), the PIDs replaced with 100, 200, 300.
        let tree: Node =
            serde_json::from_str(include_str!("testdata/sway-tree.json")).expect("sway's tree");
        assert_eq!(pid_in(&tree, "foot", "Report"), Some(100));
        assert_eq!(pid_in(&tree, "foot", "Mail"), None, "two are Mail");
        assert_eq!(pid_in(&tree, "xterm", "Report"), None);
    }
}
