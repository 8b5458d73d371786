//! A real Wayland desktop for the tests: Debian's sway, headless (no GPU, no input devices,
//! pixman rendering), with foot terminals as its windows and focus moved with `swaymsg`.
//!
//! sway refuses to run as root, so it runs as an unprivileged user made once for the tests
//! (`vigilo-wayland`), each compositor with its own `XDG_RUNTIME_DIR`; the agent, as root, reaches
//! its socket by absolute path (`WAYLAND_DISPLAY=/…/wayland-1`) and its IPC by `SWAYSOCK`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user sway and its windows run as.
pub const USER: &str = "vigilo-wayland";

/// The colour of the focused window's title bar and borders, as RGB.
pub const FOCUSED: [u8; 3] = [0xff, 0, 0];

/// The background of every terminal opened with [`Sway::window`], as RGB.
pub const BACKGROUND: [u8; 3] = [0, 0, 0x80];

/// A headless sway and the windows opened on it; all stopped on drop.
pub struct Sway {
    /// Its runtime folder: the Wayland socket, the IPC socket.
    pub runtime: PathBuf,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Sway {
    /// Starts sway headless with one 1280×800 output and waits for its sockets.
    pub fn start() -> Sway {
        make_user();
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).expect("runtime dir");
        let chown = Command::new("chown")
            .args([USER, runtime.to_str().expect("utf-8")])
            .status()
            .expect("chown");
        assert!(chown.success());
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let config = dir.path().join("sway.conf");
        // Colours a picture of the screen can be checked against: the focused window's title
        // bar and borders pure red, every terminal's background navy ([`FOCUSED`],
        // [`BACKGROUND`]).
        std::fs::write(
            &config,
            "output HEADLESS-1 resolution 1280x800\n\
             client.focused #ff0000 #ff0000 #ffffff #ff0000 #ff0000\n",
        )
        .expect("config");
        let mut sway = Sway {
            runtime,
            children: Vec::new(),
            _dir: dir,
        };
        let child = sway.as_user(
            &["sway", "-c", config.to_str().expect("utf-8")],
            &[
                ("WLR_BACKENDS", "headless"),
                ("WLR_LIBINPUT_NO_DEVICES", "1"),
                ("WLR_RENDERER", "pixman"),
            ],
        );
        sway.children.push(child);
        sway.wait_until("sway's sockets", |s| {
            s.ipc_socket().is_some() && s.display().exists()
        });
        sway
    }

    /// The Wayland socket, by absolute path (what `WAYLAND_DISPLAY` may hold).
    pub fn display(&self) -> PathBuf {
        self.runtime.join("wayland-1")
    }

    /// sway's IPC socket (`SWAYSOCK`).
    pub fn ipc_socket(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.runtime)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("sway-ipc."))
            })
    }

    /// The environment an agent needs to watch this desktop.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("WAYLAND_DISPLAY".into(), path(&self.display())),
            ("SWAYSOCK".into(), path(&self.ipc_socket().expect("ipc"))),
        ]
    }

    /// Runs `program` as the desktop's user, in its session.
    fn as_user(&self, program: &[&str], env: &[(&str, &str)]) -> Child {
        let runtime = path(&self.runtime);
        let mut command = Command::new("runuser");
        command.args(["-u", USER, "--", "env", "-i"]);
        command.arg(format!("XDG_RUNTIME_DIR={runtime}"));
        command.arg(format!("HOME={runtime}"));
        command.arg("PATH=/usr/bin:/bin");
        command.arg("WAYLAND_DISPLAY=wayland-1");
        for (k, v) in env {
            command.arg(format!("{k}={v}"));
        }
        command
            .args(program)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program:?} runs: {e}"))
    }

    /// Opens a foot terminal titled `title` (it takes focus); returns its process id. It sets
    /// its title to `then` once [`Sway::retitle`] is called with the same `title`.
    pub fn window(&mut self, title: &str, then: &str) -> u32 {
        let trigger = self.runtime.join(format!("retitle-{title}"));
        let script = format!(
            "while [ ! -e '{}' ]; do sleep 0.05; done; printf '\\033]2;%s\\007' '{then}'; exec sleep 600",
            path(&trigger)
        );
        let child = self.as_user(
            &[
                "foot",
                "--title",
                title,
                "--override=colors.background=000080",
                "sh",
                "-c",
                &script,
            ],
            &[],
        );
        self.children.push(child);
        let pattern = format!("foot --title {title} ");
        self.wait_until(title, |s| s.focused_title().as_deref() == Some(title));
        let out = Command::new("pgrep")
            .args(["-u", USER, "-f", &pattern])
            .output()
            .expect("pgrep");
        let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        assert_eq!(pids.len(), 1, "one foot titled {title}: {pids:?}");
        pids[0]
    }

    /// Has the window opened as `title` change its title (as a browser does on a tab switch).
    pub fn retitle(&self, title: &str) {
        std::fs::write(self.runtime.join(format!("retitle-{title}")), "").expect("trigger");
    }

    /// Moves focus to the window whose title is `title`.
    pub fn focus(&self, title: &str) {
        let out = self.swaymsg(&[&format!("[title=\"^{title}$\"] focus")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_until(title, |s| s.focused_title().as_deref() == Some(title));
    }

    fn swaymsg(&self, args: &[&str]) -> std::process::Output {
        Command::new("swaymsg")
            .env("SWAYSOCK", self.ipc_socket().expect("ipc"))
            .args(args)
            .output()
            .expect("swaymsg runs")
    }

    /// The focused window's title, as sway says.
    fn focused_title(&self) -> Option<String> {
        let out = self.swaymsg(&["-t", "get_tree"]);
        let tree: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        fn find(n: &serde_json::Value) -> Option<String> {
            if n["focused"] == true && n["pid"].is_number() {
                return n["name"].as_str().map(str::to_string);
            }
            ["nodes", "floating_nodes"]
                .iter()
                .filter_map(|k| n[k].as_array())
                .flatten()
                .find_map(find)
        }
        find(&tree)
    }

    pub fn wait_until(&self, what: &str, done: impl Fn(&Sway) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        // runuser's children are the user's: end them by this desktop's folder, which their
        // command lines name (sway's configuration, each window's script).
        let mine = path(self.runtime.parent().expect("in the tempdir"));
        let _ = Command::new("pkill")
            .args(["-u", USER, "-f", &mine])
            .status();
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", USER, "-f", &mine])
            .status();
    }
}

/// Makes the tests' unprivileged user, once (tests in parallel may race: "exists" is fine).
fn make_user() {
    let exists = |_: ()| {
        Command::new("id")
            .arg(USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if exists(()) {
        return;
    }
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ])
        .status();
    assert!(exists(()), "useradd {USER} (the tests run as root)");
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}
