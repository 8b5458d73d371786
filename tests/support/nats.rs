//! A real `nats-server -js` for end-to-end tests: a free loopback port it picks itself (and
//! tells through its ports file, so no other test can take the port in between), a store in a
//! temporary folder, and `kill -9` and restart on the same port and store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running NATS server with JetStream.
pub struct Nats {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nats {
    /// Starts one with its store and ports file under `dir`, and `config` as its settings file
    /// (an `authorization` block…).
    pub fn start_with_config(dir: &Path, config: &str) -> Nats {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("nats.conf"), config).expect("write the server's settings");
        Nats::start(dir)
    }

    /// Starts one with its store and ports file under `dir` (and `dir/nats.conf` as its
    /// settings, if there).
    pub fn start(dir: &Path) -> Nats {
        let ports = dir.join("ports");
        std::fs::create_dir_all(&ports).expect("mkdir");
        let child = Nats::spawn(dir, "-1");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let found = std::fs::read_dir(&ports)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .and_then(|e| std::fs::read_to_string(e.path()).ok())
                .and_then(|text| {
                    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                    let url = v["nats"][0].as_str()?.to_string();
                    url.rsplit(':').next()?.parse::<u16>().ok()
                });
            if let Some(port) = found {
                break port;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let nats = Nats {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        nats.wait_listening();
        nats
    }

    fn spawn(dir: &Path, port: &str) -> Child {
        let mut command = Command::new("nats-server");
        let config = dir.join("nats.conf");
        if config.exists() {
            command.arg("-c").arg(config);
        }
        command
            .args(["-js", "-a", "127.0.0.1", "-p", port])
            .arg("-sd")
            .arg(dir.join("store"))
            .arg("--ports_file_dir")
            .arg(dir.join("ports"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("nats.log"))
                    .expect("log"),
            ))
            .spawn()
            .expect("nats-server runs (Debian: nats-server; scripts/test.sh installs it)")
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What JetStream stream `name` holds now: (messages, bytes), asked with a client of its own
    /// (with the nkey seed in file `nkey`, on a server that asks for one).
    pub fn stream_state(&self, name: &str, nkey: Option<&Path>) -> (u64, u64) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut options = async_nats::ConnectOptions::new();
            if let Some(path) = nkey {
                let seed = std::fs::read_to_string(path).expect("the seed");
                options = options.nkey(seed.trim().to_string());
            }
            let client = options.connect(self.url()).await.expect("connect");
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(name).await.expect("the stream");
            let info = stream.info().await.expect("its info");
            (info.state.messages, info.state.bytes)
        })
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `kill -9`: nothing flushed, nothing said goodbye to.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and store (after [`Nats::kill`]).
    pub fn restart(&mut self) {
        self.child = Nats::spawn(&self.dir, &self.port.to_string());
        self.wait_listening();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
