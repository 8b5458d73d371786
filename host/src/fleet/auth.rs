//! Who may do what on the bus: one nkey per computer, and the NATS server's permissions that
//! keep each agent to its own subjects.
//!
//! The bus is the fleet's trust boundary. Every agent and the hub connect with a key of their
//! own (an nkey: the server keeps only the public half and checks a signature at connect).
//! The server's `authorization` block, written by `vigilo fleet credentials`, lets an agent
//! publish its alarms, captures' messages and heartbeat only under its own id, and hear only
//! replies sent to its own inbox prefix — so a stolen agent key cannot publish as another
//! computer, nor read the hub's replies. Only the hub may consume the stream.
//!
//! An agent reads what the fleet publishes (the packs' entries and archives) and can write
//! neither: only the hub publishes packs, and agents verify them with their own keys anyway.
//!
//! What the permissions cannot narrow: the object store's subjects (chunk subjects are random,
//! object names are base64 in one token). An agent may therefore put or overwrite objects in
//! the captures' bucket, but the hub keeps a capture only if its bytes have the SHA-256 the
//! owning agent sent under its own subject: another agent can delay a capture, never forge
//! one.

use std::path::Path;

use super::groups::GROUPS_BUCKET;
use super::heartbeat::AGENTS_BUCKET;
use super::packs::{PACKS_BUCKET, PUBLISHED_BUCKET};
use super::{CAPTURES_BUCKET, alarms_subject, captures_subject};

/// The inbox prefix a process uses for replies: its own, so the server can keep others' replies
/// from it.
pub fn inbox_prefix(id: &str) -> String {
    format!("_INBOX_{id}")
}

/// What a connection may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
}

/// An agent's permissions: its own subjects, the bucket and stream lookups it makes, replies
/// to its own inbox.
pub fn agent_permissions(id: &str) -> Permissions {
    let mut publish = vec![
        alarms_subject(id),
        captures_subject(id),
        format!("$KV.{AGENTS_BUCKET}.{id}"),
        format!("$O.{CAPTURES_BUCKET}.C.>"),
        format!("$O.{CAPTURES_BUCKET}.M.>"),
        format!("$JS.API.STREAM.INFO.KV_{AGENTS_BUCKET}"),
        format!("$JS.API.STREAM.INFO.OBJ_{CAPTURES_BUCKET}"),
        format!("$JS.API.DIRECT.GET.OBJ_{CAPTURES_BUCKET}.>"),
        format!("$JS.API.STREAM.MSG.GET.OBJ_{CAPTURES_BUCKET}"),
        // Reading the archives the fleet publishes, chunk by chunk with direct gets (no
        // consumer: see `fleet::fetch_object`).
        format!("$JS.API.STREAM.INFO.OBJ_{PACKS_BUCKET}"),
        format!("$JS.API.DIRECT.GET.OBJ_{PACKS_BUCKET}"),
        format!("$JS.API.DIRECT.GET.OBJ_{PACKS_BUCKET}.>"),
        format!("$JS.API.STREAM.MSG.GET.OBJ_{PACKS_BUCKET}"),
    ];
    // Watching what the fleet publishes: a watch is an ordered consumer of the bucket's
    // stream, answering its flow control.
    for bucket in [PUBLISHED_BUCKET, GROUPS_BUCKET] {
        publish.extend([
            format!("$JS.API.STREAM.INFO.KV_{bucket}"),
            format!("$JS.API.CONSUMER.CREATE.KV_{bucket}"),
            format!("$JS.API.CONSUMER.CREATE.KV_{bucket}.>"),
            format!("$JS.API.CONSUMER.DELETE.KV_{bucket}.>"),
            format!("$JS.FC.KV_{bucket}.>"),
        ]);
    }
    Permissions {
        publish,
        subscribe: vec![format!("{}.>", inbox_prefix(id))],
    }
}

/// The hub's permissions: everything (it creates the stream, buckets and its consumer, and
/// reads every agent's subjects).
pub fn hub_permissions() -> Permissions {
    Permissions {
        publish: vec![">".into()],
        subscribe: vec![">".into()],
    }
}

/// One connection the server lets in.
#[derive(Debug, Clone)]
pub struct User {
    /// The agent's id (or the hub's name), for the comment beside it.
    pub name: String,
    /// Its nkey's public half (`U…`).
    pub public_key: String,
    /// What it may do.
    pub permissions: Permissions,
}

/// The server's `authorization` block for `users`, to `include` from `nats-server.conf`.
pub fn server_config(users: &[User]) -> String {
    let list = |subjects: &[String]| {
        let quoted: Vec<String> = subjects.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::from(
        "# Written by `vigilo fleet credentials`: one nkey per computer, each agent kept to its\n\
         # own subjects. Include it from nats-server.conf: include \"auth.conf\"\n\
         authorization {\n  users = [\n",
    );
    for u in users {
        out.push_str(&format!(
            "    # {}\n    {{ nkey: {:?}, permissions: {{ publish: {{ allow: {} }}, subscribe: {{ allow: {} }} }} }}\n",
            u.name,
            u.public_key,
            list(&u.permissions.publish),
            list(&u.permissions.subscribe)
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BadKey {
    /// It cannot be read.
    #[error("fleet nkey {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Others may read it: the key is as good as theirs.
    #[error("fleet nkey {path}: readable by others (mode {mode:o}); make it owner-only: chmod 600")]
    Open {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Not a user nkey's seed.
    #[error(
        "fleet nkey {path}: expected a user nkey seed (one line, SU…), as `vigilo fleet credentials` writes"
    )]
    NotASeed {
        /// The file.
        path: String,
    },
}

/// Reads a seed file: owner-only, one user seed.
pub fn read_seed(path: &Path) -> Result<String, BadKey> {
    let shown = path.display().to_string();
    let unreadable = |source| BadKey::Unreadable {
        path: shown.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(BadKey::Open { path: shown, mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let seed = text.trim();
    if !seed.starts_with("SU") || nkeys::KeyPair::from_seed(seed).is_err() {
        return Err(BadKey::NotASeed { path: shown });
    }
    Ok(seed.to_string())
}

/// The public half of a seed.
pub fn public_key(seed: &str) -> Option<String> {
    nkeys::KeyPair::from_seed(seed).ok().map(|k| k.public_key())
}

/// A new user nkey's seed.
pub fn new_seed() -> anyhow::Result<String> {
    nkeys::KeyPair::new_user()
        .seed()
        .map_err(|e| anyhow::anyhow!("cannot make an nkey: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_may_publish_only_under_its_own_id() {
        let p = agent_permissions("ws-1");
        assert!(p.publish.contains(&"vigilo.alarms.ws-1".to_string()));
        assert!(p.publish.contains(&"$KV.vigilo_agents.ws-1".to_string()));
        assert!(
            p.publish
                .iter()
                .all(|s| !s.starts_with("vigilo.") || s.ends_with(".ws-1")),
            "{p:?}"
        );
        // It may not consume the alarms' stream, nor write what the fleet publishes (packs,
        // groups), though it may watch it; it reads archives without consumers.
        assert!(
            p.publish
                .contains(&"$JS.API.CONSUMER.CREATE.KV_vigilo_groups.>".to_string())
        );
        assert!(
            p.publish
                .contains(&"$JS.API.DIRECT.GET.OBJ_vigilo_packs".to_string()),
            "an archive's chunks are direct gets with the subject in the body"
        );
        assert!(!p.publish.iter().any(|s| {
            s == ">"
                || (s.contains("CONSUMER") && s.contains(crate::fleet::ALARMS_STREAM))
                || s.starts_with("$KV.vigilo_pack_targets")
                || s.starts_with("$KV.vigilo_groups")
                || s.starts_with("$O.vigilo_packs")
                || s.starts_with("$JS.API.CONSUMER.CREATE.OBJ_")
        }));
        assert_eq!(p.subscribe, ["_INBOX_ws-1.>"]);
    }

    #[test]
    fn the_servers_block_lists_each_key_with_its_permissions_and_seeds_are_checked() {
        let seed = new_seed().expect("seed");
        let public = public_key(&seed).expect("public");
        let conf = server_config(&[User {
            name: "ws-1".into(),
            public_key: public.clone(),
            permissions: agent_permissions("ws-1"),
        }]);
        assert!(conf.contains(&format!("nkey: {public:?}")), "{conf}");
        assert!(conf.contains(r#"allow: ["_INBOX_ws-1.>"]"#), "{conf}");

        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ws-1.nk");
        crate::owner_only::create(&path, seed.as_bytes()).expect("write");
        assert_eq!(read_seed(&path).expect("read"), seed);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_seed(&path).expect_err("open");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        let other = dir.path().join("public.nk");
        crate::owner_only::create(&other, public.as_bytes()).expect("write");
        let err = read_seed(&other).expect_err("not a seed");
        assert!(
            err.to_string().contains("expected a user nkey seed"),
            "{err}"
        );
    }
}
