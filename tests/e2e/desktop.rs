//! The agent on a real X desktop: Xvfb with the openbox window manager and xterm windows, focus
//! moved with xdotool, as a person would. Each test starts its own display.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{Agent, build};
use crate::{events_of, stderr, stdout, vigilo};

/// An X server, a window manager and the windows opened on them; all stopped on drop.
pub struct Desktop {
    pub display: String,
    children: Vec<Child>,
}

impl Desktop {
    pub fn start() -> Desktop {
        // Xvfb picks a free display number and writes it on the descriptor given.
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (scripts/test.sh installs xvfb)");
        let mut line = String::new();
        std::io::BufReader::new(xvfb.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("Xvfb says its display");
        let display = format!(":{}", line.trim());
        let mut desktop = Desktop {
            display,
            children: vec![xvfb],
        };
        let wm = desktop.spawn("openbox", &[]);
        desktop.children.push(wm);
        desktop.wait_until("the window manager", |d| {
            stdout(&d.run("xprop", &["-root", "_NET_SUPPORTING_WM_CHECK"])).contains("window id")
        });
        desktop
    }

    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    }

    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    }

    pub fn wait_until(&self, what: &str, done: impl Fn(&Desktop) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a program on the display, stopped with it; returns its process id.
    pub fn launch(&mut self, program: &str, args: &[&str]) -> u32 {
        let child = self.spawn(program, args);
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Opens an xterm titled `title`; returns its window id and its process id.
    pub fn window(&mut self, title: &str) -> (String, u32) {
        let pid = self.launch("xterm", &["-T", title, "-e", "sleep", "600"]);
        let pattern = format!("^{title}$");
        self.wait_until(title, |d| {
            !stdout(&d.run("xdotool", &["search", "--name", &pattern]))
                .trim()
                .is_empty()
        });
        let id = stdout(&self.run("xdotool", &["search", "--name", &pattern]))
            .lines()
            .next()
            .expect("window")
            .to_string();
        // The window manager gives a new window focus when it gets round to it; under a full
        // parallel run that can be after the next step. Focus it now, so "the last opened has
        // focus" holds before the agent starts.
        self.activate(&id);
        (id, pid)
    }

    pub fn activate(&self, window: &str) {
        let out = self.run("xdotool", &["windowactivate", "--sync", window]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// Changes a window's title, as a browser does on a tab switch.
    pub fn retitle(&self, window: &str, title: &str) {
        let out = self.run("xdotool", &["set_window", "--name", title, window]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A desktop with windows open, an agent watching it, and a pack uploaded: where most desktop
/// tests start.
pub struct Scene {
    /// The display and its windows.
    pub desktop: Desktop,
    /// The windows opened, in order: (window id, process id).
    pub windows: Vec<(String, u32)>,
    /// The agent's data folder.
    pub data: std::path::PathBuf,
    /// The agent.
    pub agent: Agent,
    _dir: tempfile::TempDir,
}

impl Scene {
    /// Opens an xterm for each title (the last has focus), starts an agent on the display and
    /// uploads pack `name` with `toml` (grants and alarms).
    pub fn start(titles: &[&str], name: &str, toml: &str) -> Scene {
        let mut desktop = Desktop::start();
        let windows = titles.iter().map(|t| desktop.window(t)).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let agent = Agent::start_on(&data, Some(&desktop.display));
        upload_pack(&agent, &data, name, toml);
        Scene {
            desktop,
            windows,
            data,
            agent,
            _dir: dir,
        }
    }
}

/// Uploads a pack `name` whose alarms are `alarms` (TOML) to `agent`.
pub fn upload_pack(agent: &Agent, data: &Path, name: &str, alarms: &str) {
    let pack = data.parent().expect("data has a parent").join(name);
    std::fs::create_dir_all(&pack).expect("mkdir");
    std::fs::write(
        pack.join("pack.toml"),
        format!("[pack]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n{alarms}"),
    )
    .expect("write pack");
    let out = agent.cli(&["pack", "upload", build(data, &pack).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Waits until the store holds `n` alarms named `alarm` (generously: under a full parallel
/// test run a browser can take many seconds to start).
pub fn wait_for_alarms(data: &Path, alarm: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = vigilo(data, &["alarms", "--all", "--json", "--alarm", alarm]);
        let count = stdout(&out).lines().count();
        if count >= n {
            return;
        }
        if Instant::now() > deadline {
            // The agent's own account (run with -vv it names each window and tab report).
            let log = std::fs::read_to_string(data.with_extension("stderr")).unwrap_or_default();
            panic!("{count} of {n} {alarm:?} alarms; the agent said:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An alarm on every activity event whose title starts `vigilo-e2e-`: what the desktops' focus
/// tests count.
pub const WINDOW_SEEN: &str = r#"[[alarm]]
name = "Window seen"
kind = "activity"
repeat = "every_match"
conditions = [ { field = "title", op = "starts_with", value = "vigilo-e2e-" } ]
risk = 2
"#;

#[test]
fn focus_and_title_changes_on_a_real_desktop_become_activity_alarms() {
    let scene = Scene::start(
        &["vigilo-e2e-alpha", "vigilo-e2e-beta"],
        "windows",
        WINDOW_SEEN,
    );
    let (desktop, data) = (&scene.desktop, &scene.data);
    let (alpha, alpha_pid) = scene.windows[0].clone();
    let (beta, beta_pid) = scene.windows[1].clone();

    desktop.activate(&alpha);
    wait_for_alarms(data, "Window seen", 1);
    desktop.activate(&beta);
    wait_for_alarms(data, "Window seen", 2);
    desktop.retitle(&beta, "vigilo-e2e-gamma");
    wait_for_alarms(data, "Window seen", 3);
    let status = scene.agent.status();
    assert_eq!(status["sources"]["x11"]["up"], true, "{status}");
    assert!(
        status["latency"]["count"].as_u64().is_some_and(|n| n >= 3),
        "title changes that stored alarms are timed: {status}"
    );
    let alarms = scene.agent.stop();

    let seen = events_of(&alarms, "Window seen");
    let titles: Vec<&str> = seen.iter().filter_map(|e| e["title"].as_str()).collect();
    assert_eq!(
        titles,
        ["vigilo-e2e-alpha", "vigilo-e2e-beta", "vigilo-e2e-gamma"]
    );
    let me = String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout)
        .trim()
        .to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    // The machine's address toward the Internet, found independently; reported only if private.
    let local = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|()| s.local_addr()))
        .map(|a| a.ip());
    let private_ip = match local {
        Ok(std::net::IpAddr::V4(v4)) if v4.is_private() => serde_json::json!(v4.to_string()),
        _ => serde_json::Value::Null,
    };
    for (event, pid) in seen.iter().zip([alpha_pid, beta_pid, beta_pid]) {
        assert_eq!(event["executable"], "/usr/bin/xterm", "{event}");
        assert_eq!(event["description"], "XTerm");
        assert_eq!(event["username"], me.as_str());
        assert_eq!(event["computer"], host.trim());
        assert_eq!(event["pid"], pid, "{event}");
        assert_eq!(event["private_ip"], private_ip, "{event}");
        assert!(
            event["url"].is_null(),
            "no browser reported: no URL, {event}"
        );
    }
}

#[test]
fn without_a_display_the_agent_says_so_and_runs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut agent = Agent::start_on(&data, Some(":9999"));
    let pack = crate::agent::counter_pack(dir.path(), "1.0.0", 3, "");
    let out = agent.cli(&["pack", "upload", build(&data, &pack).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent.send(&[r#"{"ts":"2026-11-03T09:00:00Z","kind":"usb","username":"dave","action":"file_written","path":"/media/x","bytes":1}"#.to_string()]);
    wait_for_alarms(&data, "Copy seen", 1);
    let said = agent.stderr();
    assert!(
        said.contains("cannot connect to X display :9999")
            && said.contains("activity from windows is off, other sources keep running"),
        "{said}"
    );
    // `vigilo status` says the same, and that the rest runs.
    let out = agent.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("x11      DOWN  cannot connect to X display :9999"),
        "{text}"
    );
    assert!(text.contains("events   up    JSON lines from -"), "{text}");
    assert!(text.contains("browser  up"), "{text}");
    // The upload's "Monitoring setup changed" today; the copy's two alarms carry the stream's
    // own date.
    assert!(text.contains("ALARMS   1 today, 3 since start"), "{text}");
    agent.stop();
}

#[test]
fn time_spent_in_a_window_fires_a_duration_alarm_with_no_other_event() {
    let scene = Scene::start(
        &["vigilo-e2e-other", "vigilo-e2e-reading"],
        "timing",
        r#"[[alarm]]
name = "Reading for 2 seconds"
conditions = [
  { field = "title", op = "eq", value = "vigilo-e2e-reading" },
  { field = "duration", op = "gte", value = 2 },
]
risk = 1
"#,
    );
    let reading = &scene.windows[1].0;
    // The focus moves once; from then on only the clock does.
    scene.desktop.activate(reading);
    wait_for_alarms(&scene.data, "Reading for 2 seconds", 1);
    let alarms = scene.agent.stop();
    let fired: Vec<&serde_json::Value> = alarms
        .iter()
        .filter(|a| a["alarm"] == "Reading for 2 seconds")
        .collect();
    assert_eq!(fired.len(), 1, "once per span");
    assert_eq!(fired[0]["event"]["duration"], 2.0);
}

#[test]
fn time_stops_counting_while_the_person_is_idle_and_restarts_when_they_are_back() {
    let mut desktop = Desktop::start();
    let (reading, _) = desktop.window("vigilo-e2e-reading");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start_with(&data, Some(&desktop.display), &["--idle-after", "2"]);
    upload_pack(
        &agent,
        &data,
        "timing",
        r#"[[alarm]]
name = "Reading for 4 seconds"
conditions = [
  { field = "title", op = "eq", value = "vigilo-e2e-reading" },
  { field = "duration", op = "gte", value = 4 },
]
"#,
    );
    let wiggle = |x: u32| {
        let out = desktop.run("xdotool", &["mousemove", &x.to_string(), "10"]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    wiggle(5);
    desktop.activate(&reading);
    // Nobody touches anything: after 2 s idle the span stops short of 4 s.
    std::thread::sleep(Duration::from_secs(7));
    let out = vigilo(
        &data,
        &["alarms", "--all", "--json", "--alarm", "Reading for 4"],
    );
    assert_eq!(stdout(&out), "", "idle time does not count");

    // Back at the keyboard (the mouse moves every half second): a new span counts from zero.
    let back_at = chrono::Utc::now();
    let back = Instant::now();
    let mut x = 10;
    loop {
        wiggle(x);
        x = if x == 10 { 20 } else { 10 };
        let out = vigilo(
            &data,
            &["alarms", "--all", "--json", "--alarm", "Reading for 4"],
        );
        if !stdout(&out).is_empty() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "no alarm once back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let alarms = agent.stop();
    let fired = alarms
        .iter()
        .find(|a| a["alarm"] == "Reading for 4 seconds")
        .expect("fired");
    // The span that fired began when the person came back (the clock ticks once a second),
    // not when the window was activated.
    let started = chrono::DateTime::parse_from_rfc3339(fired["event"]["ts"].as_str().expect("ts"))
        .expect("ts");
    assert!(
        started >= back_at - chrono::Duration::seconds(1),
        "span from {started}, back at {back_at}"
    );
    assert_eq!(fired["event"]["duration"], 4.0);
}
