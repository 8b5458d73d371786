//! The browser: which page is in front, reported by vigilo's extension.
//!
//! ```text
//! extension ──native messaging──▶ vigilo browser-host ──unix socket──▶ agent (tabs stage)
//! ```
//!
//! The browser starts `vigilo browser-host` itself (native messaging: 4-byte length + JSON on
//! stdin) when the extension connects; the host relays each `{url, title}` as one JSON line
//! to the agent's socket, `DATA_DIR/browser.sock`. The agent reads the connecting host's
//! process ID from the socket (`SO_PEERCRED`) and takes its ancestors as the browser the report
//! speaks for; [`crate::tabs`] joins reports to windows. `vigilo install-browser-host` writes the
//! manifests browsers look for and the extension's files.
//!
//! Nothing here trusts the report's content: URLs are parsed and cleaned, lines and messages
//! are bounded, and a report can only name the page of a window whose process is an ancestor
//! of the host that sent it.

pub mod install;
pub mod listener;
pub mod native;

use serde::{Deserialize, Serialize};

/// The native messaging host's name, as browsers know it.
pub const HOST_NAME: &str = "org.vigilo.browser_host";

/// The extension's ID in Chromium-based browsers, fixed by the `key` in its manifest.
pub const CHROMIUM_EXTENSION_ID: &str = "bgcjdbgebgbbnoebkgbmppadnmelmiim";

/// The extension's ID in Firefox (`browser_specific_settings.gecko.id`).
pub const FIREFOX_EXTENSION_ID: &str = "browser-extension@vigilo";

/// The longest message or line accepted from a browser or a host. A URL is cut to
/// [`crate::tabs::MAX_URL`]; this bounds what is read before that.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What the extension reports and the host relays: the active tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabMessage {
    /// The tab's URL.
    pub url: String,
    /// The tab's title (may be empty while a page loads).
    #[serde(default)]
    pub title: String,
}

/// The extension's files, built into the binary so that `install-browser-host` can write them
/// next to the manifests it installs.
pub const EXTENSION_FILES: &[(&str, &str)] = &[
    (
        "manifest.json",
        include_str!("../../../../browser/extension/manifest.json"),
    ),
    (
        "background.js",
        include_str!("../../../../browser/extension/background.js"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// Chromium derives an unpacked extension's ID from the `key` in its manifest: the first
    /// 128 bits of SHA-256 of the public key, written with the letters a–p. The host manifest
    /// allows exactly that ID, so the two must agree.
    #[test]
    fn the_extension_id_is_the_one_its_key_gives() {
        let manifest: serde_json::Value =
            serde_json::from_str(EXTENSION_FILES[0].1).expect("manifest.json");
        let key = manifest["key"].as_str().expect("a key");
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key)
            .expect("base64");
        let digest = sha2::Sha256::digest(&der);
        let id: String = digest[..16]
            .iter()
            .flat_map(|b| [b >> 4, b & 15])
            .map(|n| char::from(b'a' + n))
            .collect();
        assert_eq!(id, CHROMIUM_EXTENSION_ID);
        assert_eq!(
            manifest["browser_specific_settings"]["gecko"]["id"],
            FIREFOX_EXTENSION_ID
        );
    }
}
