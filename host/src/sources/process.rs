//! What the system says about a process and this machine: the executable and the owner of a
//! PID (from `/proc`), the host name. Sources use it to fill an event's fields.

use std::path::Path;

/// The executable of process `pid` (`/proc/PID/exe`), when it can be read.
pub fn executable(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The login name of the user who owns process `pid`: its real uid (`/proc/PID/status`) looked
/// up in `/etc/passwd`, or the uid itself when it has no name there.
pub fn owner(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    Some(user_name(&uid, Path::new("/etc/passwd")).unwrap_or(uid))
}

/// The name `passwd` (an `/etc/passwd`-format file) gives `uid`.
fn user_name(uid: &str, passwd: &Path) -> Option<String> {
    let text = std::fs::read_to_string(passwd).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()? == uid).then(|| name.to_string())
    })
}

/// This computer's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_an_executable_and_an_owner() {
        let me = std::process::id();
        let exe = executable(me).expect("exe");
        assert!(exe.contains("vigilo"), "{exe}");
        assert!(owner(me).is_some_and(|o| !o.is_empty()));
        assert!(executable(u32::MAX).is_none());
    }

    #[test]
    fn uids_are_named_from_passwd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/a:/bin/sh\n",
        )
        .expect("write");
        assert_eq!(user_name("1000", &passwd).as_deref(), Some("alice"));
        assert_eq!(user_name("0", &passwd).as_deref(), Some("root"));
        assert_eq!(user_name("42", &passwd), None);
    }
}
