//! Pop-ups on a real session bus: a private `dbus-daemon` and the `dunst` notification daemon
//! on the test's X display. An alarm's pop-up reaches dunst with its template filled; a
//! terminate with a warning shows the warning (critical, until dismissed) and ends the program
//! when it is still in front after the delay.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::Agent;
use crate::desktop::{Desktop, upload_pack, wait_for_alarms};
use crate::{settled_outcome, stderr, stdout};

/// A session bus with dunst on it; both stopped on drop.
struct Session {
    address: String,
    children: Vec<Child>,
}

impl Session {
    fn start(display: &str) -> Session {
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus)");
        let mut address = String::new();
        std::io::BufReader::new(bus.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("the bus address");
        let address = address.trim().to_string();
        let dunst = Command::new("dunst")
            .env("DISPLAY", display)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dunst (package dunst)");
        let session = Session {
            address,
            children: vec![bus, dunst],
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !session.dunstctl(&["is-paused"]).status.success() {
            assert!(Instant::now() < deadline, "dunst did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        session
    }

    fn dunstctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("dunstctl")
    }

    /// Every notification dunst showed: (summary, body, timeout in µs; 0 = until dismissed).
    fn shown(&self) -> Vec<(String, String, i64)> {
        // History holds the closed ones: close what is on screen first.
        let closed = self.dunstctl(&["close-all"]);
        assert!(closed.status.success(), "{}", stderr(&closed));
        let out = self.dunstctl(&["history"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let history: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
        let text =
            |n: &serde_json::Value, k: &str| n[k]["data"].as_str().unwrap_or_default().to_string();
        history["data"][0]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                let timeout = n["timeout"]["data"].as_i64().unwrap_or(-1);
                (text(n, "summary"), text(n, "body"), timeout)
            })
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn pop_ups_and_terminate_warnings_reach_the_desktop_notification_daemon() {
    let mut desktop = Desktop::start();
    let session = Session::start(&desktop.display);
    let (reading, _) = desktop.window("vigilo-e2e-reading");
    let (warned, warned_pid) = desktop.window("vigilo-e2e-warned");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let agent = Agent::start_in(
        &data,
        Some(&desktop.display),
        &[],
        &[("DBUS_SESSION_BUS_ADDRESS", &session.address)],
    );
    upload_pack(
        &agent,
        &data,
        "nudges",
        r#"[grants]
actions = ["popup", "terminate"]

[[alarm]]
name = "Reading nudge"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-reading" } ]
risk = 1
actions = [ { popup = { title = "Time check", message = "{{title}} for {{username}}" } } ]

[[alarm]]
name = "Warned window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-warned" } ]
risk = 6
actions = [ { terminate = { after = "2s", warn = "{{title}} closes in 2 seconds" } } ]
"#,
    );
    desktop.activate(&reading);
    wait_for_alarms(&data, "Reading nudge", 1);
    let nudge = settled_outcome(&data, "Reading nudge");
    assert_eq!(nudge["state"], "done", "{nudge}");
    desktop.activate(&warned);
    let ended = settled_outcome(&data, "Warned window");
    assert_eq!(ended["state"], "done", "{ended}");
    assert!(
        ended["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("process {warned_pid}"))),
        "{ended}"
    );
    let shown = session.shown();
    agent.stop();
    let me = stdout(&Command::new("id").arg("-un").output().expect("id"));
    assert!(
        shown.contains(&(
            "Time check".to_string(),
            format!("vigilo-e2e-reading for {}", me.trim()),
            15_000_000
        )),
        "{shown:?}"
    );
    assert!(
        shown.contains(&(
            "Warned window".to_string(),
            "vigilo-e2e-warned closes in 2 seconds".to_string(),
            0
        )),
        "the warning stays until dismissed: {shown:?}"
    );
}
