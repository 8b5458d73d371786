//! The admin token: a random secret created on first run, kept owner-only in the data folder.
//!
//! Whoever can read it can change what the agent watches, so it is made from the operating
//! system's CSPRNG, written 0600 without following links, and compared in constant time.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The token file's name inside the data folder.
pub const TOKEN_FILE: &str = "admin-token";

/// Where the token of the agent using `data_dir` is.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Reads the token, creating it first if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<String> {
    load_or_create_secret(&token_path(data_dir), "admin token", |bytes| {
        crate::hex::encode(bytes)
    })
}

/// Reads a secret file, creating it first (0600, never through a link) from 32 random bytes
/// written as `encode` says, if there is none. `what` names it in messages.
pub fn load_or_create_secret(
    path: &Path,
    what: &str,
    encode: impl Fn(&[u8]) -> String,
) -> Result<String> {
    match read(path) {
        Ok(secret) => return Ok(secret),
        Err(e) if !path.exists() => tracing::debug!("no {what} yet: {e:#}"),
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the {what}: {e}"))?;
    let secret = encode(&bytes);
    crate::owner_only::create(path, format!("{secret}\n").as_bytes())
        .with_context(|| format!("cannot create {}", path.display()))?;
    tracing::info!(path = %path.display(), "{what} created");
    Ok(secret)
}

/// Reads an existing token.
pub fn read(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let token = text.trim().to_string();
    anyhow::ensure!(
        token.len() >= 32,
        "{} holds no usable token",
        path.display()
    );
    Ok(token)
}

/// Compares a presented token with the real one without leaking, through timing, how much of
/// it matched.
pub fn matches(presented: &str, token: &str) -> bool {
    let (a, b) = (presented.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &y) in b.iter().enumerate() {
        let x = a.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_owner_only_and_compared_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = load_or_create(dir.path()).expect("created");
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create(dir.path()).expect("read"), token, "kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(token_path(dir.path()))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches(&token, &token));
        assert!(!matches(&token[..63], &token));
        assert!(!matches(&format!("{token}0"), &token));
        assert!(!matches("", &token));
    }
}
