//! A real OCI registry for end-to-end tests: Debian's `docker-registry` (the CNCF
//! distribution server, 2.8) on a loopback port, storing under a temporary folder, no
//! authentication, its access log kept to read what clients asked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    child: Child,
    log: PathBuf,
    /// Its address, `127.0.0.1:PORT`.
    pub host: String,
}

impl Registry {
    /// Starts one with its store, settings and log under `dir`.
    pub fn start(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir).expect("mkdir");
        // A port nobody holds now; the registry takes it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("store").display()
            ),
        )
        .expect("write the registry's settings");
        let log = dir.join("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("log"),
            ))
            .spawn()
            .expect("docker-registry runs (Debian: docker-registry; scripts/test.sh installs it)");
        let registry = Registry {
            child,
            log,
            host: format!("127.0.0.1:{port}"),
        };
        vigilo::use_ring_for_tls();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::blocking::get(format!("http://{}/v2/", registry.host))
                .is_ok_and(|r| r.status().is_success());
            if up {
                return registry;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What it logged: its access log among the rest.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
