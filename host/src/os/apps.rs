//! Applications' human names, from their `.desktop` entries.
//!
//! A window says what program it is in `WM_CLASS` ("Chromium", "XTerm", "libreoffice-writer");
//! the name a person knows it by ("Chromium Web Browser", "LibreOffice Writer") is the `Name`
//! of its desktop entry. Entries are matched the way docks and task bars match them
//! (`freedesktop-desktop-entry`'s `find_app_by_id`: `StartupWMClass`, then the entry's file
//! name, then its name or command), trying the window's class, then its instance, then the
//! executable's file name. Without a match the window's class stands in.
//!
//! Entries are read once per application and the answer is kept: a desktop has a few hundred
//! entries, and focus moves between the same few programs all day.

use std::collections::HashMap;
use std::path::PathBuf;

use freedesktop_desktop_entry::{DesktopEntry, Iter, find_app_by_id, unicase::Ascii};

/// Looks up and remembers application names.
pub struct AppNames {
    dirs: Vec<PathBuf>,
    known: HashMap<String, Option<String>>,
}

impl AppNames {
    /// Names from the XDG data folders' `applications/` (`$XDG_DATA_HOME`, `$XDG_DATA_DIRS`).
    pub fn from_env() -> AppNames {
        AppNames::new(xdg_application_dirs())
    }

    /// Names from these `applications/` folders, first one winning.
    pub fn new(dirs: Vec<PathBuf>) -> AppNames {
        AppNames {
            dirs,
            known: HashMap::new(),
        }
    }

    /// The human name of the program whose window has this `WM_CLASS` (class, instance) and
    /// executable; `None` when no entry matches.
    pub fn name(
        &mut self,
        class: &str,
        instance: &str,
        executable: Option<&str>,
    ) -> Option<String> {
        let exe = executable
            .and_then(|e| e.rsplit('/').next())
            .unwrap_or_default();
        let key = format!("{class}\u{1f}{instance}\u{1f}{exe}");
        if let Some(known) = self.known.get(&key) {
            return known.clone();
        }
        let no_locales: &[&str] = &[];
        let entries: Vec<DesktopEntry> = Iter::new(self.dirs.iter().cloned())
            .filter_map(|path| DesktopEntry::from_path(path, Some(no_locales)).ok())
            .filter(|e| !e.hidden())
            .collect();
        let name = [class, instance, exe]
            .into_iter()
            .filter(|id| !id.is_empty())
            .find_map(|id| find_app_by_id(&entries, Ascii::new(id)))
            .and_then(|entry| entry.name(no_locales))
            .map(|n| n.into_owned());
        self.known.insert(key, name.clone());
        name
    }
}

/// `$XDG_DATA_HOME/applications` (default `~/.local/share`), then each of `$XDG_DATA_DIRS`
/// (default `/usr/local/share:/usr/share`).
fn xdg_application_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(home) => dirs.push(PathBuf::from(home)),
        None => {
            if let Some(home) = dirs::home_dir() {
                dirs.push(home.join(".local/share"));
            }
        }
    }
    let shared = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.extend(
        shared
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    );
    dirs.into_iter().map(|d| d.join("applications")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &std::path::Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(file), text).expect("write");
    }

    #[test]
    fn windows_are_named_by_their_desktop_entries() {
        let root = tempfile::tempdir().expect("tmp");
        let apps = root.path().join("applications");
        entry(
            &apps,
            "browser.desktop",
            "[Desktop Entry]\nType=Application\nName=Chromium Web Browser\nName[de]=Chromium-Webbrowser\nExec=/usr/bin/chromium %U\nStartupWMClass=chromium\n",
        );
        entry(
            &apps,
            "libreoffice-writer.desktop",
            "[Desktop Entry]\nType=Application\nName=LibreOffice Writer\nExec=libreoffice --writer %U\n",
        );
        entry(
            &apps,
            "editor.desktop",
            "[Desktop Entry]\nType=Application\nName=Text Editor\nExec=gedit %U\n",
        );
        entry(
            &apps,
            "gone.desktop",
            "[Desktop Entry]\nType=Application\nName=Removed App\nExec=gone\nHidden=true\n",
        );
        entry(&apps, "broken.desktop", "this is not an entry");
        let mut names = AppNames::new(vec![apps]);
        // By StartupWMClass, whatever the case.
        assert_eq!(
            names.name(
                "Chromium",
                "chromium (/tmp/p)",
                Some("/usr/lib/chromium/chromium")
            ),
            Some("Chromium Web Browser".into())
        );
        // By the entry's file name.
        assert_eq!(
            names.name("libreoffice-writer", "libreoffice", None),
            Some("LibreOffice Writer".into())
        );
        // By the command it runs.
        assert_eq!(
            names.name("Gedit", "gedit-x", Some("/usr/bin/gedit")),
            Some("Text Editor".into())
        );
        // Hidden entries are deleted ones; unknown programs have no name.
        assert_eq!(names.name("gone", "gone", Some("/usr/bin/gone")), None);
        assert_eq!(names.name("Nothing", "nothing", None), None);
    }
}
