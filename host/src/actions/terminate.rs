//! Ending an application: the process that owned the window of the alarm's event, by its PID —
//! never by name (another user's program, or another copy of the same one, shares the name).
//!
//! Before anything is sent the PID is checked to still be that program: the same executable
//! and owner as the event says. A PID reused by an unrelated process since is left alone.
//! SIGTERM first, so the program can save and close; SIGKILL if it is still there after the
//! grace period.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::event::{Event, Field};
use crate::os::process;

/// How long a program has to end after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Ends the program of `event`; says what was done, or why nothing was.
pub fn end(event: &Event, grace: Duration) -> Result<String, String> {
    let pid = event
        .number(Field::Pid)
        .filter(|p| *p >= 2.0 && p.fract() == 0.0 && *p <= f64::from(u32::MAX))
        .map(|p| p as u32)
        .ok_or("the event names no process")?;
    if pid == std::process::id() {
        return Err("the event names the agent itself".into());
    }
    let exe = process::executable(pid);
    if exe.is_none() {
        return Ok(format!("process {pid} had already ended"));
    }
    if let Some(want) = event.text(Field::Executable)
        && exe.as_deref() != Some(want)
    {
        return Err(format!(
            "process {pid} is now {} , not {want}: the PID was reused; nothing sent",
            exe.unwrap_or_default()
        ));
    }
    if let Some(want) = event.text(Field::Username)
        && process::owner(pid).as_deref() != Some(want)
    {
        return Err(format!(
            "process {pid} is not {want}'s any more: the PID was reused; nothing sent"
        ));
    }
    let target = Pid::from_raw(pid as i32);
    kill(target, Signal::SIGTERM).map_err(|e| format!("SIGTERM to {pid}: {e}"))?;
    let sent = Instant::now();
    while sent.elapsed() < grace {
        if !process::is_running(pid) {
            return Ok(format!(
                "ended process {pid} ({}) with SIGTERM",
                shown(event)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(target, Signal::SIGKILL).map_err(|e| format!("SIGKILL to {pid}: {e}"))?;
    Ok(format!(
        "killed process {pid} ({}): still running {}s after SIGTERM",
        shown(event),
        grace.as_secs()
    ))
}

fn shown(event: &Event) -> &str {
    event.text(Field::Executable).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn event_for(pid: u32, exe: &str) -> Event {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        Event::new(EventKind::Activity, at)
            .with_number(Field::Pid, f64::from(pid))
            .with_text(Field::Executable, exe)
    }

    #[test]
    fn the_named_process_ends_and_a_reused_pid_is_spared() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let exe = process::executable(pid).expect("exe");
        // Another program's path: the PID "was reused".
        let wrong = end(&event_for(pid, "/usr/bin/not-sleep"), GRACE).expect_err("spared");
        assert!(wrong.contains("PID was reused"), "{wrong}");
        assert!(process::is_running(pid));
        let done = end(&event_for(pid, &exe), GRACE).expect("ended");
        assert!(done.contains("with SIGTERM"), "{done}");
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
    }

    #[test]
    fn a_program_ignoring_sigterm_gets_sigkill_after_the_grace() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "trap '' TERM; echo ready; while :; do sleep 0.1; done",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut ready,
        )
        .expect("ready");
        let pid = child.id();
        let exe = process::executable(pid).expect("exe");
        let done = end(&event_for(pid, &exe), Duration::from_millis(300)).expect("ended");
        assert!(done.contains("still running 0s after SIGTERM"), "{done}");
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    #[test]
    fn nothing_is_sent_without_a_process_or_to_the_agent() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("ts");
        assert!(end(&Event::new(EventKind::Activity, at), GRACE).is_err());
        assert!(end(&event_for(std::process::id(), "x"), GRACE).is_err());
    }
}
