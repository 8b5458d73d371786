//! Secret files in the data folder (the admin token, the webhook signing key): made from the
//! operating system's CSPRNG, written 0600 without following links, read back trimmed, and
//! compared in constant time.

use std::path::Path;

use anyhow::{Context, Result};

/// Reads a secret file, creating it first (0600, never through a link) from 32 random bytes
/// written as `encode` says, if there is none. `what` names it in messages.
pub fn load_or_create(path: &Path, what: &str, encode: impl Fn(&[u8]) -> String) -> Result<String> {
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
