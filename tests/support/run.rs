//! Running the real `vigilo` binary and reading what it printed: the helpers every end-to-end
//! test uses, and the example day they share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (tests run with the `host/` crate as working directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The recorded example day.
pub fn workday() -> PathBuf {
    root().join("examples/events/workday.jsonl")
}

/// The example day's events as JSON, parsed independently of vigilo (the tests' oracle).
pub fn workday_events() -> Vec<serde_json::Value> {
    std::fs::read_to_string(workday())
        .expect("read the example day")
        .lines()
        .map(|l| serde_json::from_str(l).expect("the example day is valid JSON"))
        .collect()
}

/// How many events of the example day are of `kind`.
pub fn workday_count(kind: &str) -> usize {
    workday_events()
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

/// Runs `vigilo` with a private data folder.
pub fn vigilo(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(args)
        .env("VIGILO_DATA_DIR", data)
        .env_remove("RUST_LOG")
        .output()
        .expect("vigilo runs")
}

/// Runs the `minisign` tool with `input` on its standard input (passwords).
pub fn minisign(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("minisign")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the minisign tool is installed (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("minisign runs");
    assert!(out.status.success(), "minisign {args:?}: {}", stderr(&out));
    out
}

/// The alarms (JSON lines of `replay --json`) fired on account events named `event_name`.
pub fn alarms_on(o: &Output, event_name: &str) -> Vec<serde_json::Value> {
    json_lines(o)
        .into_iter()
        .filter(|a| a["event"]["event_name"] == event_name)
        .collect()
}

/// The events of the alarms named `alarm`, in the order they fired.
pub fn events_of<'a>(alarms: &'a [serde_json::Value], alarm: &str) -> Vec<&'a serde_json::Value> {
    alarms
        .iter()
        .filter(|a| a["alarm"] == alarm)
        .map(|a| &a["event"])
        .collect()
}

/// The outcome of the first action of the newest alarm named `alarm`, once it has settled
/// (done or dead).
pub fn settled_outcome(data: &Path, alarm: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = vigilo(data, &["alarms", "--json", "--alarm", alarm]);
        if let Some(line) = stdout(&out).lines().next() {
            let a: serde_json::Value = serde_json::from_str(line).expect("json");
            let outcome = a["outcomes"][0].clone();
            if !outcome.is_null() && outcome["state"] != "pending" {
                return outcome;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the action of {alarm:?} never settled"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs `tar ARGS`, which must succeed.
pub fn tar(args: &[&str]) {
    let made = Command::new("tar").args(args).output().expect("tar runs");
    assert!(made.status.success(), "tar {args:?}: {}", stderr(&made));
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// JSON lines of standard output.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The eight alarms of the standard pack an agent raises (every one fires on the example day);
/// its ninth, "Computer not reporting", only a fleet's hub raises.
pub const STANDARD_ALARMS: [&str; 8] = [
    "File written to USB storage",
    "Job-search sites",
    "Monitoring setup changed",
    "Social media over 60 minutes",
    "Tor or anonymiser in use",
    "Torrent client in use",
    "USB storage device inserted",
    "YouTube over 20 minutes",
];
