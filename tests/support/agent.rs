//! A running agent for end-to-end tests: `vigilo run` as a child with events on its stdin, its
//! admin API's address and token, and the packs tests upload to it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{stderr, vigilo};

/// A `vigilo run` child with events on its stdin and alarms (JSON lines) from its stdout.
pub struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    alarms: Option<std::thread::JoinHandle<Vec<serde_json::Value>>>,
    data: PathBuf,
    /// The admin API's (and console's) base URL.
    pub url: String,
    /// The admin token.
    pub token: String,
}

impl Agent {
    /// An agent without a desktop (whatever display the tests run under).
    pub fn start(data: &Path) -> Agent {
        Agent::start_on(data, None)
    }

    /// An agent watching X display `display`.
    pub fn start_on(data: &Path, display: Option<&str>) -> Agent {
        Agent::start_with(data, display, &[])
    }

    /// An agent watching X display `display`, with more `vigilo run` arguments.
    pub fn start_with(data: &Path, display: Option<&str>, extra: &[&str]) -> Agent {
        Agent::start_in(data, display, extra, &[])
    }

    /// As [`Agent::start_with`], with more environment variables (a session bus…).
    pub fn start_in(
        data: &Path,
        display: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let run = ["run", "--listen", "127.0.0.1:0", "--events", "-", "--json"];
        let args: Vec<&str> = run.iter().chain(extra).copied().collect();
        Agent::spawn(data, display, &args, env)
    }

    /// The fleet's hub (`vigilo hub`) on the bus at `fleet`, with its console on a free port.
    pub fn start_hub(data: &Path, fleet: &str) -> Agent {
        Agent::start_hub_with(data, fleet, &[])
    }

    /// [`Agent::start_hub`] with more `vigilo hub` arguments.
    pub fn start_hub_with(data: &Path, fleet: &str, extra: &[&str]) -> Agent {
        let hub = ["hub", "--listen", "127.0.0.1:0", "--fleet", fleet];
        let args: Vec<&str> = hub.iter().chain(extra).copied().collect();
        Agent::spawn(data, None, &args, &[("RUST_LOG", "vigilo=info")])
    }

    /// `GET PATH` on its API, as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .expect("request")
            .json()
            .expect("json")
    }

    /// Logs in to its console as a browser would: a client that follows no redirects, and
    /// the session's cookie.
    pub fn console_session(&self) -> (reqwest::blocking::Client, String) {
        vigilo::use_ring_for_tls();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let login = client
            .post(format!("{}/console/login", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}&next=%2Fconsole%2Falarms", self.token))
            .send()
            .expect("login");
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        (client, cookie)
    }

    /// `GET PATH` on its API, as bytes (a capture), asserting it answers 200.
    pub fn get_bytes(&self, path: &str) -> Vec<u8> {
        let answer = http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .expect("request");
        assert_eq!(answer.status(), 200, "GET {path}");
        answer.bytes().expect("body").to_vec()
    }

    /// `vigilo ARGS` as a child on data folder `data`, once it listens.
    fn spawn(data: &Path, display: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Agent {
        // A killed agent leaves its address behind; wait for this one's.
        let _ = std::fs::remove_file(data.join("admin-address"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigilo"));
        // Which desktop it watches is the test's to say, not the machine's.
        for var in ["DISPLAY", "WAYLAND_DISPLAY", "SWAYSOCK", "XDG_SESSION_TYPE"] {
            command.env_remove(var);
        }
        if let Some(d) = display {
            command.env("DISPLAY", d);
        }
        let mut child = command
            .args(args)
            .env("VIGILO_DATA_DIR", data)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Appended: an agent started again on the same folder keeps the log before it.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data.with_extension("stderr"))
                    .expect("stderr file"),
            )
            .spawn()
            .expect("vigilo run starts");
        let stdout = child.stdout.take().expect("stdout");
        let alarms = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .map(|line| serde_json::from_str(&line).expect("alarms are JSON lines"))
                .collect()
        });
        // The agent writes its address once it listens.
        let address = data.join("admin-address");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            if let Ok(a) = std::fs::read_to_string(&address) {
                break format!("http://{}", a.trim());
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not start; its log:\n{}",
                std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let token = std::fs::read_to_string(data.join("admin-token"))
            .expect("token")
            .trim()
            .to_string();
        let stdin = child.stdin.take();
        Agent {
            child,
            stdin,
            alarms: Some(alarms),
            data: data.to_path_buf(),
            url,
            token,
        }
    }

    pub fn send(&mut self, lines: &[String]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        for l in lines {
            writeln!(stdin, "{l}").expect("write event");
        }
        stdin.flush().expect("flush");
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the agent wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("stderr")).unwrap_or_default()
    }

    /// `vigilo ARGS` against this agent (its data folder: address and token).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        vigilo(&self.data, args)
    }

    pub fn status(&self) -> serde_json::Value {
        http()
            .get(format!("{}/api/v1/status", self.url))
            .bearer_auth(&self.token)
            .send()
            .expect("status")
            .json()
            .expect("json")
    }

    /// Waits until the pipeline has evaluated at least `n` events.
    pub fn wait_for_events(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.status()["events"].as_u64().unwrap_or(0) < n {
            assert!(
                Instant::now() < deadline,
                "events not processed: {}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then every alarm it printed.
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        drop(self.stdin.take());
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "clean exit on SIGTERM: {status}");
        self.alarms
            .take()
            .map(|t| t.join().expect("reader"))
            .unwrap_or_default()
    }
}

impl Agent {
    /// SIGKILL: the agent gets no chance to save or finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    /// A failed test must not leave an agent running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client for the admin API (rustls needs its crypto provider chosen first, as the
/// `vigilo` binary does at start).
pub fn http() -> reqwest::blocking::Client {
    vigilo::use_ring_for_tls();
    reqwest::blocking::Client::new()
}

/// A pack folder `name` with one every-match alarm on files written to USB, at `risk`.
pub fn counter_pack(dir: &Path, version: &str, risk: u8, extra: &str) -> PathBuf {
    let pack = dir.join(format!("counter-{version}"));
    std::fs::create_dir_all(&pack).expect("mkdir");
    std::fs::write(
        pack.join("pack.toml"),
        format!(
            r#"[pack]
name = "counter"
version = "{version}"

[[alarm]]
name = "Copy seen"
kind = "usb"
repeat = "every_match"
conditions = [ {{ field = "action", op = "eq", value = "file_written" }} ]
risk = {risk}
{extra}"#
        ),
    )
    .expect("write pack");
    pack
}

/// `vigilo pack build DIR -o DIR.tar.gz`.
pub fn build(data: &Path, pack: &Path) -> PathBuf {
    let out = pack.with_extension("tar.gz");
    let built = vigilo(
        data,
        &[
            "pack",
            "build",
            pack.to_str().expect("p"),
            "-o",
            out.to_str().expect("p"),
        ],
    );
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    out
}

/// A file written to USB storage by dave, the `n`th of a day.
pub fn copy_event(n: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-03T09:{:02}:{:02}Z","kind":"usb","username":"dave","computer":"ws-dave","action":"file_written","path":"/media/dave/USB/file-{n}.bin","bytes":1000}}"#,
        (n / 60) % 60,
        n % 60
    )
}
