//! Files written to removable storage, for real: an ext4 image on a loop device stands in for
//! the stick (these machines have no USB in their kernel), mounted while the agent runs, and
//! named removable with `--removable`. The agent follows the mount table, marks the new mount
//! with fanotify, and reports each file written — in folders made after the mark too — with
//! its writer. Needs root (mount, fanotify), as the test command runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::agent::{Agent, build, counter_pack};
use crate::desktop::wait_for_alarms;
use crate::{events_of, stderr, stdout, vigilo};

/// A loop-mounted ext4 image, unmounted on drop.
struct Stick {
    mount_point: PathBuf,
}

impl Stick {
    /// Makes the image now; [`Stick::plug`] mounts it.
    fn new(dir: &Path) -> Stick {
        let image = dir.join("stick.img");
        let mount_point = dir.join("STICK");
        std::fs::create_dir_all(&mount_point).expect("mkdir");
        run("truncate", &["-s", "16M", image.to_str().expect("p")]);
        run("mkfs.ext4", &["-q", "-F", image.to_str().expect("p")]);
        Stick { mount_point }
    }

    fn plug(&self) {
        let image = self.mount_point.with_file_name("stick.img");
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().expect("p"),
                self.mount_point.to_str().expect("p"),
            ],
        );
    }
}

impl Drop for Stick {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {} (the file-write tests need root: mount, fanotify)",
        stderr(&out)
    );
}

#[test]
fn files_copied_to_a_stick_mounted_while_the_agent_runs_are_file_written_alarms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let stick = Stick::new(dir.path());
    let point = stick.mount_point.to_str().expect("utf-8").to_string();
    let agent = Agent::start_with(&data, None, &["--removable", &point, "-v"]);
    let pack = counter_pack(dir.path(), "1.0.0", 5, "");
    let out = agent.cli(&["pack", "upload", build(&data, &pack).to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Plugged in after the agent started: it must notice the mount by itself.
    stick.plug();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent.stderr().contains("watching removable storage") {
        assert!(
            Instant::now() < deadline,
            "mount not followed: {}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A writer with a name of its own, into folders made after the mark, and a file outside.
    let writer = dir.path().join("vigilo-e2e-copier");
    std::fs::copy("/bin/sh", &writer).expect("copy sh");
    let script = format!(
        "mkdir -p '{point}/q3/deep' && printf '%04000d' 0 > '{point}/q3/deep/customers.csv' \
         && echo hi > '{point}/readme.txt' && echo no > '{}/not-on-the-stick.txt' && sleep 1",
        dir.path().display()
    );
    let copier = Command::new(&writer)
        .args(["-c", &script])
        .spawn()
        .expect("copier");
    let copier_pid = copier.id();
    let status = copier.wait_with_output().expect("copier").status;
    assert!(status.success());

    wait_for_alarms(&data, "Copy seen", 2);
    wait_for_alarms(&data, "File written to USB storage", 1);
    let status = agent.status();
    assert_eq!(status["sources"]["files"]["up"], true, "{status}");
    let alarms = agent.stop();

    let copies = events_of(&alarms, "Copy seen");
    let paths: Vec<&str> = copies.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("{point}/q3/deep/customers.csv"),
            format!("{point}/readme.txt")
        ],
        "every file on the stick, none elsewhere"
    );
    let csv = copies[0];
    assert_eq!(csv["bytes"], 4000.0);
    assert_eq!(csv["mount_point"], point.as_str());
    assert_eq!(csv["pid"], copier_pid, "{csv}");
    assert_eq!(csv["executable"], writer.to_str().expect("utf-8"), "{csv}");
    let me = stdout(&Command::new("id").arg("-un").output().expect("id"));
    assert_eq!(csv["username"], me.trim());
    let standard = alarms
        .iter()
        .find(|a| a["alarm"] == "File written to USB storage")
        .expect("the standard pack's alarm");
    assert_eq!(standard["pack"], "standard");

    // Stored, too: what an admin lists afterwards.
    let out = vigilo(&data, &["alarms", "--all", "--alarm", "Copy seen"]);
    assert!(stdout(&out).contains("customers.csv"), "{}", stdout(&out));
}
