//! A real PostgreSQL cluster for end-to-end tests: `scripts/postgres.sh` makes one in a
//! temporary folder (initdb, a free loopback port, local users trusted) and stops it on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running throwaway cluster.
pub struct Postgres {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

impl Postgres {
    /// Makes and starts one under `dir`.
    pub fn start(dir: &Path) -> Postgres {
        Postgres::start_with(dir, None)
    }

    /// [`Postgres::start`] with TLS on, under the certificate and key in folder `tls`
    /// (`cert.pem`, `key.pem`).
    pub fn start_with(dir: &Path, tls: Option<&Path>) -> Postgres {
        let out = Command::new(script())
            .arg("start")
            .arg(dir)
            .args(tls)
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Postgres {
            dir: dir.to_path_buf(),
            url,
        }
    }

    /// Its database's address (`postgres://vigilo@127.0.0.1:PORT/postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
    }
}
