//! Ending an application on a real desktop: the alarm's window's process ends (by its PID);
//! another copy of the same program, with the same executable, is left running.

use std::time::{Duration, Instant};

use crate::desktop::{Scene, wait_for_alarms};
use crate::settled_outcome;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

#[test]
fn terminate_ends_the_alarms_window_and_spares_a_namesake() {
    let scene = Scene::start(
        &["vigilo-e2e-bystander", "vigilo-e2e-doomed"],
        "enders",
        r#"[grants]
actions = ["terminate"]

[[alarm]]
name = "Forbidden window"
conditions = [ { field = "title", op = "eq", value = "vigilo-e2e-doomed" } ]
risk = 8
actions = [ { terminate = {} } ]
"#,
    );
    let (desktop, data) = (&scene.desktop, &scene.data);
    let (bystander, bystander_pid) = scene.windows[0].clone();
    let (doomed, doomed_pid) = scene.windows[1].clone();
    desktop.activate(&bystander);
    desktop.activate(&doomed);
    wait_for_alarms(data, "Forbidden window", 1);
    let outcome = settled_outcome(data, "Forbidden window");
    assert_eq!(outcome["state"], "done", "{outcome}");
    assert!(
        outcome["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("process {doomed_pid} (/usr/bin/xterm)"))),
        "{outcome}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(doomed_pid) {
        assert!(Instant::now() < deadline, "xterm {doomed_pid} still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(alive(bystander_pid), "the other xterm is untouched");
    scene.agent.stop();
}
