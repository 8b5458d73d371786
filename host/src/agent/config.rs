//! The agent's own settings file, `DATA_DIR/agent.toml` (or `vigilo run --config FILE`):
//! what a site sets once and packs must not carry: the mail server, the video frame rate. Each
//! section's type lives beside what it configures ([`EmailConfig`], [`VideoConfig`]); this file
//! only reads the whole and names the file, line and column of what is wrong.
//!
//! ```toml
//! [email]
//! # smtps://… (TLS), smtp://…?tls=required (STARTTLS), smtp://… (plain: loopback relays only)
//! url = "smtps://alerts%40example.com:PASSWORD@mail.example.com"
//! from = "vigilo <alerts@example.com>"
//! attach_screenshots = true
//!
//! [video]
//! fps = 2        # frames a second the screen is recorded at while an alarm wants video (1–10)
//!
//! [fleet]
//! url = "nats://bus.example.com:4222"   # the fleet's NATS server(s), comma-separated
//! agent_id = "ws-dave-04"               # this agent's name in the fleet (default: host name)
//! credentials = "/etc/vigilo/agent.creds"  # optional: NATS credentials (JWT + nkey seed)
//! ca = "/etc/vigilo/bus-ca.pem"            # optional: CA of the server's TLS certificate
//! tags = { department = "finance" }        # optional: what pack targets may name
//!
//! [[fleet.pack_source]]                  # optional: a web server's pack, polled (repeatable)
//! url = "https://packs.example.com/dlp.tar.gz"   # or "oci://registry.example.com/acme/dlp:1"
//! every = "5m"
//!
//! [[output]]                             # every stored alarm to a SIEM too (repeatable)
//! name = "siem"
//! syslog = "tcp://siem.example.com:601"  # or: otlp = "http://collector:4318"
//! ```
//!
//! The file may hold a password: it should be owner-only, and the agent says so when it is not.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::actions::email::EmailConfig;
use crate::actions::output::{Output, OutputSettings};
use crate::actions::recorder::VideoConfig;
use crate::fleet::FleetSettings;

/// The agent's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Where e-mail goes out.
    pub email: Option<EmailConfig>,
    /// How the screen is recorded for videos.
    pub video: Option<VideoConfig>,
    /// The fleet this agent reports to (or, for `vigilo hub`, takes alarms from).
    pub fleet: Option<FleetSettings>,
    /// Where every stored alarm also goes (SIEMs: syslog, OpenTelemetry).
    #[serde(default)]
    pub output: Vec<OutputSettings>,
}

impl AgentConfig {
    /// Reads `path` (`None`: `DATA_DIR/agent.toml`, which may be missing). The error names the
    /// file, the line and column, and what was expected.
    pub fn load(path: Option<&Path>, data_dir: &Path) -> Result<AgentConfig, String> {
        let (path, required): (PathBuf, bool) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (data_dir.join(crate::data_dir::SETTINGS), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AgentConfig::default());
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                tracing::warn!(
                    "{} can be read by others; it may hold the mail server's password (chmod 600)",
                    path.display()
                );
            }
        }
        let config: AgentConfig = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(":{line}:{column}")
                })
                .unwrap_or_default();
            format!("{}{at}: {}", path.display(), e.message().trim())
        })?;
        if let Some(email) = &config.email {
            crate::actions::email::Mailer::new(email)
                .map_err(|e| format!("{}: [email]: {e}", path.display()))?;
        }
        if let Some(id) = config.fleet.as_ref().and_then(|f| f.agent_id.as_deref()) {
            crate::fleet::check_agent_id(id)
                .map_err(|e| format!("{}: [fleet] {e}", path.display()))?;
        }
        let mut names = std::collections::HashSet::new();
        for (n, output) in config.output.iter().enumerate() {
            output
                .check()
                .map_err(|e| format!("{}: [[output]] {}: {e}", path.display(), n + 1))?;
            if !names.insert(output.name.as_str()) {
                return Err(format!(
                    "{}: [[output]] {}: a second output named {:?}",
                    path.display(),
                    n + 1,
                    output.name
                ));
            }
        }
        if let Some(video) = &config.video {
            video
                .check()
                .map_err(|e| format!("{}: [video] {e}", path.display()))?;
        }
        Ok(config)
    }

    /// The outputs, checked (by `load`), by name.
    pub fn outputs(&self) -> std::collections::HashMap<String, Output> {
        self.output
            .iter()
            .filter_map(|o| Some((o.name.clone(), o.check().ok()?)))
            .collect()
    }

    /// Frames a second the screen is recorded at for videos.
    pub fn video_fps(&self) -> u32 {
        self.video
            .as_ref()
            .map_or(crate::actions::recorder::DEFAULT_FPS, |v| v.fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_default_file_is_no_settings_but_bad_ones_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let none = AgentConfig::load(None, dir.path()).expect("no file, no settings");
        assert!(none.email.is_none());
        assert!(
            AgentConfig::load(Some(&dir.path().join("nope.toml")), dir.path())
                .is_err_and(|e| e.contains("cannot read"))
        );
        std::fs::write(
            dir.path().join(crate::data_dir::SETTINGS),
            "[email]\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"vigilo <v@example.com>\"\nport = 3\n",
        )
        .expect("write");
        let err = AgentConfig::load(None, dir.path()).expect_err("unknown key");
        assert!(
            err.contains("agent.toml:4:1") && err.contains("port"),
            "{err}"
        );
        std::fs::write(
            dir.path().join(crate::data_dir::SETTINGS),
            "[email]\nurl = \"gopher://x\"\nfrom = \"v@example.com\"\n",
        )
        .expect("write");
        let err = AgentConfig::load(None, dir.path()).expect_err("bad url");
        assert!(err.contains("[email]"), "{err}");
        std::fs::write(
            dir.path().join(crate::data_dir::SETTINGS),
            "[email]\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"vigilo <v@example.com>\"\n",
        )
        .expect("write");
        let ok = AgentConfig::load(None, dir.path()).expect("good");
        assert_eq!(ok.video_fps(), 2);
        assert!(ok.email.is_some_and(|e| e.attach_screenshots));
        std::fs::write(
            dir.path().join(crate::data_dir::SETTINGS),
            "[video]\nfps = 60\n",
        )
        .expect("write");
        let err = AgentConfig::load(None, dir.path()).expect_err("too fast");
        assert!(
            err.contains("[video] fps: must be 1 to 10, found 60"),
            "{err}"
        );
        std::fs::write(
            dir.path().join(crate::data_dir::SETTINGS),
            "[video]\nfps = 5\n",
        )
        .expect("write");
        let ok = AgentConfig::load(None, dir.path()).expect("good");
        assert_eq!(ok.video_fps(), 5);
    }
}
