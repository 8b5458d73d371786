//! `vigilo install-browser-host`: what a browser needs to find the host, for one user.
//!
//! Browsers start a native host from a manifest naming its executable, and pass it only their
//! own arguments; the host must still know the agent's data folder. So the manifest points at a
//! small launcher in the data folder that runs this very binary with that folder. The
//! extension's files are written beside it, ready for "Load unpacked" or an admin's policy.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{CHROMIUM_EXTENSION_ID, EXTENSION_FILES, FIREFOX_EXTENSION_ID, HOST_NAME};

/// Where a manifest goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Debian's Chromium for this user (`~/.config/chromium`).
    Chromium,
    /// Google Chrome for this user (`~/.config/google-chrome`).
    Chrome,
    /// Firefox for this user (`~/.mozilla`).
    Firefox,
    /// A Chromium-based browser started with `--user-data-dir=DIR`: it reads only `DIR`.
    ChromiumProfile(PathBuf),
}

impl Target {
    fn manifest_dir(&self, home: &Path) -> PathBuf {
        match self {
            Target::Chromium => home.join(".config/chromium/NativeMessagingHosts"),
            Target::Chrome => home.join(".config/google-chrome/NativeMessagingHosts"),
            Target::Firefox => home.join(".mozilla/native-messaging-hosts"),
            Target::ChromiumProfile(dir) => dir.join("NativeMessagingHosts"),
        }
    }

    fn manifest(&self, launcher: &Path) -> serde_json::Value {
        let common = json!({
            "name": HOST_NAME,
            "description": "vigilo: relays the active tab to the vigilo agent",
            "path": launcher,
            "type": "stdio",
        });
        let mut manifest = common;
        match self {
            Target::Firefox => {
                manifest["allowed_extensions"] = json!([FIREFOX_EXTENSION_ID]);
            }
            _ => {
                manifest["allowed_origins"] =
                    json!([format!("chrome-extension://{CHROMIUM_EXTENSION_ID}/")]);
            }
        }
        manifest
    }
}

/// Writes the launcher and the extension into `data_dir`, and a manifest for each target under
/// `home`. Returns every file written, for the user to see.
pub fn install(
    vigilo: &Path,
    data_dir: &Path,
    home: &Path,
    targets: &[Target],
) -> Result<Vec<PathBuf>, String> {
    let write = |path: &Path, text: &str| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let mut written = Vec::new();

    let launcher = data_dir.join("browser-host");
    write(&launcher, &launcher_script(vigilo, data_dir)?)?;
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} executable: {e}", launcher.display()))?;
    written.push(launcher.clone());

    let extension = data_dir.join("browser-extension");
    for (name, text) in EXTENSION_FILES {
        let path = extension.join(name);
        write(&path, text)?;
        written.push(path);
    }

    for target in targets {
        let path = target.manifest_dir(home).join(format!("{HOST_NAME}.json"));
        let text =
            serde_json::to_string_pretty(&target.manifest(&launcher)).map_err(|e| e.to_string())?;
        write(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// `exec VIGILO --data-dir DIR browser-host "$@"`, every path quoted for the shell.
fn launcher_script(vigilo: &Path, data_dir: &Path) -> Result<String, String> {
    let quote = |p: &Path| -> Result<String, String> {
        let text = p
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", p.display()))?;
        Ok(format!("'{}'", text.replace('\'', r"'\''")))
    };
    Ok(format!(
        "#!/bin/sh\n# Written by `vigilo install-browser-host`: browsers start this for vigilo's extension.\nexec {} --data-dir {} browser-host \"$@\"\n",
        quote(vigilo)?,
        quote(data_dir)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_point_at_a_launcher_that_knows_the_data_folder() {
        let root = tempfile::tempdir().expect("tmp");
        let data = root.path().join("it's data");
        let home = root.path().join("home");
        let profile = root.path().join("profile");
        let written = install(
            Path::new("/opt/vigilo/bin/vigilo"),
            &data,
            &home,
            &[
                Target::Chromium,
                Target::Firefox,
                Target::ChromiumProfile(profile.clone()),
            ],
        )
        .expect("install");
        assert_eq!(written.len(), 1 + EXTENSION_FILES.len() + 3);

        // The launcher runs under sh with the awkward folder name intact.
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg(data.join("browser-host"))
            .output()
            .expect("sh");
        assert!(out.status.success());
        let script = std::fs::read_to_string(data.join("browser-host")).expect("launcher");
        assert!(script.contains(r"'/opt/vigilo/bin/vigilo' --data-dir '"));
        assert!(script.contains(r"it'\''s data"));

        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(p).expect("manifest")).expect("json")
        };
        let chromium = read(profile.join("NativeMessagingHosts/org.vigilo.browser_host.json"));
        assert_eq!(chromium["name"], HOST_NAME);
        assert_eq!(chromium["type"], "stdio");
        assert_eq!(
            chromium["allowed_origins"][0],
            "chrome-extension://bgcjdbgebgbbnoebkgbmppadnmelmiim/"
        );
        assert_eq!(
            chromium["path"],
            data.join("browser-host").to_str().expect("utf-8")
        );
        let firefox =
            read(home.join(".mozilla/native-messaging-hosts/org.vigilo.browser_host.json"));
        assert_eq!(firefox["allowed_extensions"][0], FIREFOX_EXTENSION_ID);
        assert!(data.join("browser-extension/manifest.json").exists());
    }
}
