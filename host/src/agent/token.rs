//! The admin token: a random secret created on first run, kept owner-only in the data folder.
//!
//! Whoever can read it can change what the agent watches, so it is made from the operating
//! system's CSPRNG, written 0600 without following links, and compared in constant time.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// Where the token of the agent using `data_dir` is.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::data_dir::ADMIN_TOKEN)
}

/// Reads the token, creating it first if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<String> {
    crate::secret::load_or_create(&token_path(data_dir), "admin token", |bytes| {
        crate::hex::encode(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::matches;

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
