//! What the system says about a process and this machine: the executable and the owner of a
//! PID (from `/proc`), the host name, the machine's domain or realm, its primary private
//! address. Sources use it to fill an event's fields.

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

/// The login name of `uid` (from `/etc/passwd`), or the uid itself when it has no name there.
pub fn user(uid: u32) -> String {
    let uid = uid.to_string();
    user_name(&uid, Path::new("/etc/passwd")).unwrap_or(uid)
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

/// The parent of a process, from `/proc/PID/stat` (`None` once it is gone, or for PID 1).
pub fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parent_from_stat(&stat).filter(|&p| p > 1)
}

/// A process and its ancestors, nearest first, at most `depth` of them, PID 1 excluded.
pub fn lineage(pid: u32, depth: usize) -> Vec<u32> {
    std::iter::successors(Some(pid), |&p| parent(p))
        .take(depth)
        .collect()
}

/// Whether process `pid` still runs (a zombie waiting for its parent has ended).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_field(&stat, 0).map(|state| state != "Z" && state != "X"))
        .unwrap_or(false)
}

/// The parent field of a `stat` line.
fn parent_from_stat(stat: &str) -> Option<u32> {
    stat_field(stat, 1)?.parse().ok()
}

/// Field `n` after the command name of a `stat` line (0: the state, 1: the parent). The
/// command name may hold spaces and parentheses: the fields after it start after the *last* `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(n)
}

/// This computer's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The machine's Kerberos realm (`default_realm` in `/etc/krb5.conf`) when it is joined to one,
/// else the DNS domain of its name (`host.acme.example` → `acme.example`), else nothing.
pub fn logon_domain() -> Option<String> {
    let krb5 = std::fs::read_to_string("/etc/krb5.conf").unwrap_or_default();
    default_realm(&krb5).or_else(|| {
        let host = hostname();
        host.split_once('.')
            .map(|(_, domain)| domain.to_string())
            .filter(|d| !d.is_empty())
    })
}

/// `default_realm = X` from the `[libdefaults]` section of a krb5.conf.
fn default_realm(krb5: &str) -> Option<String> {
    let mut in_defaults = false;
    for line in krb5.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_defaults = line == "[libdefaults]";
        } else if in_defaults
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "default_realm"
        {
            return Some(value.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

/// The address of the interface the default route goes out of, when it is a private one
/// (RFC 1918 / unique-local): the address a SOC knows the machine by. Found by asking the
/// kernel which source address a UDP socket "connected" to a public address would use; no
/// packet is sent.
pub fn private_ip() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?; // TEST-NET-1: routed like the Internet, never used
    let ip = socket.local_addr().ok()?.ip();
    is_private(ip).then(|| ip.to_string())
}

fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Peak and current resident memory of process `pid` (`"self"`, or a number) in KiB, from
/// /proc (0 where unavailable).
pub fn memory_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_read_past_odd_command_names() {
        assert_eq!(parent_from_stat("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(parent_from_stat("garbage"), None);
        assert_eq!(stat_field("42 (a) b (c)) Z 7", 0), Some("Z"));
        assert!(is_running(std::process::id()));
        let me = std::process::id();
        let line = lineage(me, 4);
        assert_eq!(line.first(), Some(&me));
        assert_eq!(line.get(1).copied(), parent(me), "{line:?}");
    }

    #[test]
    fn this_process_has_an_executable_and_an_owner() {
        let me = std::process::id();
        let exe = executable(me).expect("exe");
        assert!(exe.contains("vigilo"), "{exe}");
        assert!(owner(me).is_some_and(|o| !o.is_empty()));
        assert!(executable(u32::MAX).is_none());
    }

    #[test]
    fn the_realm_comes_from_libdefaults_only() {
        let conf = "[realms]\n default_realm = WRONG\n[libdefaults]\n  dns_lookup = false\n  \
                    default_realm = ACME.EXAMPLE\n";
        assert_eq!(default_realm(conf).as_deref(), Some("ACME.EXAMPLE"));
        assert_eq!(default_realm("[libdefaults]\n"), None);
    }

    #[test]
    fn private_addresses_are_told_apart() {
        for (ip, private) in [
            ("10.20.1.13", true),
            ("192.168.1.2", true),
            ("172.16.0.1", true),
            ("8.8.8.8", false),
            ("fd00::1", true),
            ("2001:db8::1", false),
        ] {
            assert_eq!(is_private(ip.parse().expect("ip")), private, "{ip}");
        }
        // Whatever this machine has, the answer is private or nothing.
        if let Some(ip) = private_ip() {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
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
