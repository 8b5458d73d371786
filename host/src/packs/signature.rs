//! Pack signatures: minisign signatures (Ed25519 over the archive's BLAKE2b-512 hash) in a
//! `ARCHIVE.minisig` file next to the archive, so the `minisign` tool and vigilo sign and check
//! each other's packs.
//!
//! Trust is the agent's choice: the public keys in its data folder's `trusted-keys/` (minisign
//! `.pub` files). With none, any pack loads and shows whether it is signed; with at least one,
//! only archives signed by one of those keys load.

use std::path::{Path, PathBuf};

use minisign::{PublicKey, PublicKeyBox, SignatureBox};

/// What is known of a pack's origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureState {
    /// Built into the agent.
    Embedded,
    /// A folder, or an archive without a signature.
    Unsigned,
    /// Signed, by a key this agent does not list as trusted (so not checked against it).
    Unverified {
        /// The signing key's id (16 hex digits, as minisign prints it).
        key_id: String,
    },
    /// Signed by a trusted key, and the signature verifies.
    Verified {
        /// The key's id.
        key_id: String,
        /// The key file's name in `trusted-keys/`.
        key: String,
        /// The signature's trusted comment (signed along with the archive).
        trusted_comment: String,
    },
}

impl std::fmt::Display for SignatureState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureState::Embedded => f.write_str("built in"),
            SignatureState::Unsigned => f.write_str("unsigned"),
            SignatureState::Unverified { key_id } => {
                write!(f, "signed by key {key_id}, which is not trusted here")
            }
            SignatureState::Verified { key_id, key, .. } => {
                write!(f, "signed by trusted key {key_id} ({key})")
            }
        }
    }
}

/// The public keys an agent trusts to sign packs.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, PublicKey)>,
}

impl TrustedKeys {
    /// No keys: every pack loads, signed or not.
    pub fn none() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// The keys of an agent's data folder: its `trusted-keys/` folder (see [`Self::from_dir`]).
    /// A folder beside it whose name is a near miss (`trusted_keys`, `trusted-key`…) is warned
    /// about: its keys are not read, so its owner may believe signing is on when it is off.
    pub fn of_data_dir(data_dir: &Path) -> Result<TrustedKeys, String> {
        let keys = TrustedKeys::from_dir(&data_dir.join(crate::data_dir::TRUSTED_KEYS))?;
        let squash = |n: &str| -> String {
            n.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase()
        };
        for entry in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let near = matches!(
                squash(&name).as_str(),
                "trustedkeys" | "trustedkey" | "trustkeys" | "trustedkeyss"
            );
            if near && name != crate::data_dir::TRUSTED_KEYS {
                tracing::warn!(
                    "{} is not read: trusted keys go in {}",
                    data_dir.join(&name).display(),
                    data_dir.join(crate::data_dir::TRUSTED_KEYS).display()
                );
            }
        }
        Ok(keys)
    }

    /// The keys in `dir`, each a minisign public key in a `.pub` file (a missing folder means no
    /// keys). Anything else there is an error, never skipped: a secret key copied by mistake,
    /// `key.pub.txt` or `KEY.PUB` would otherwise leave the agent loading unsigned packs without a
    /// word — signing must never be a silently open door.
    pub fn from_dir(dir: &Path) -> Result<TrustedKeys, String> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TrustedKeys::none()),
            Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        paths.sort();
        let mut keys = TrustedKeys::none();
        for path in paths {
            if path.extension().is_none_or(|x| x != "pub") || !path.is_file() {
                // Its first few KiB say whether it is a minisign secret key.
                let looks_secret = std::fs::File::open(&path).is_ok_and(|f| {
                    let mut head = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut head).is_ok()
                        && String::from_utf8_lossy(&head)
                            .to_ascii_lowercase()
                            .contains("secret key")
                });
                return Err(format!(
                    "{}: {}; trusted keys are minisign public keys, one per `.pub` file, and \
                     nothing else may be in {} (the agent will not start until it is fixed)",
                    path.display(),
                    if looks_secret {
                        "a secret key — it must never be copied to an agent"
                    } else {
                        "not a `.pub` file"
                    },
                    dir.display()
                ));
            }
            keys.add_file(&path)?;
        }
        Ok(keys)
    }

    /// Adds the public key in `path` (a minisign `.pub` file, or its one base64 line).
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let key = parse_public_key(&text)
            .map_err(|e| format!("{}: not a minisign public key ({e})", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.keys.push((name, key));
        Ok(())
    }

    /// Whether signatures are required.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `archive` against its signature file's text (if any), under this trust policy.
    pub fn check(&self, archive: &[u8], signature: Option<&str>) -> Result<SignatureState, String> {
        let Some(text) = signature else {
            return if self.is_empty() {
                Ok(SignatureState::Unsigned)
            } else {
                Err(
                    "the pack is not signed, and this agent accepts only packs signed by a \
                     trusted key (trusted-keys/)"
                        .into(),
                )
            };
        };
        let sig = SignatureBox::from_string(text)
            .map_err(|e| format!("the signature file is not a minisign signature: {e}"))?;
        let key_id = key_id(sig.keynum());
        let Some((name, key)) = self.keys.iter().find(|(_, k)| k.keynum() == sig.keynum()) else {
            return if self.is_empty() {
                Ok(SignatureState::Unverified { key_id })
            } else {
                Err(format!(
                    "signed by key {key_id}, which is not one of this agent's trusted keys"
                ))
            };
        };
        minisign::verify(key, &sig, std::io::Cursor::new(archive), true, false, false).map_err(
            |e| format!("the signature by key {key_id} does not verify (the archive was changed, or the signature is damaged): {e}"),
        )?;
        Ok(SignatureState::Verified {
            key_id,
            key: name.clone(),
            trusted_comment: sig.trusted_comment().unwrap_or_default(),
        })
    }
}

/// A public key from a minisign `.pub` file (comment line + base64) or the bare base64 line.
pub fn parse_public_key(text: &str) -> Result<PublicKey, String> {
    let text = text.trim();
    let parsed = if text.lines().count() > 1 {
        PublicKeyBox::from_string(text).and_then(PublicKey::from_box)
    } else {
        PublicKey::from_base64(text)
    };
    parsed.map_err(|e| e.to_string())
}

/// minisign's key id: the 8-byte key number as 16 upper-case hex digits, little-endian.
fn key_id(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// The signature file that goes with `archive`.
pub fn signature_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}
