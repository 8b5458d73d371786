//! Kernel uevents: the kernel's own announcements of devices added and removed.
//!
//! A netlink socket (`NETLINK_KOBJECT_UEVENT`, multicast group 1) receives one datagram per
//! change: a header `ACTION@DEVPATH`, then `KEY=VALUE` pairs separated by NUL bytes. Only the
//! kernel may send to group 1 (the socket checks the sender is port 0), so messages are not
//! forged by other processes; their content is still parsed defensively.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, socket,
};

/// One device change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Uevent {
    /// `add`, `remove`, `change`, `bind`, `unbind`…
    pub action: String,
    /// The device's path under `/sys` (`/devices/…`).
    pub devpath: String,
    /// `usb`, `block`…
    pub subsystem: String,
    /// `usb_device`, `usb_interface`, `disk`, `partition`…
    pub devtype: String,
    /// All the pairs, for what the fields above do not cover.
    pub vars: HashMap<String, String>,
}

/// Parses one datagram; `None` if it is not a kernel uevent.
pub fn parse(datagram: &[u8]) -> Option<Uevent> {
    let mut parts = datagram.split(|&b| b == 0).filter(|p| !p.is_empty());
    let header = std::str::from_utf8(parts.next()?).ok()?;
    // udevd's re-broadcasts start with "libudev"; only the kernel's have ACTION@DEVPATH.
    let (action, devpath) = header.split_once('@')?;
    let mut vars = HashMap::new();
    for part in parts {
        if let Some((k, v)) = std::str::from_utf8(part)
            .ok()
            .and_then(|p| p.split_once('='))
        {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    let take = |vars: &HashMap<String, String>, k: &str| vars.get(k).cloned().unwrap_or_default();
    Some(Uevent {
        action: action.to_string(),
        devpath: devpath.to_string(),
        subsystem: take(&vars, "SUBSYSTEM"),
        devtype: take(&vars, "DEVTYPE"),
        vars,
    })
}

/// The netlink socket.
pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    /// Subscribes to the kernel's uevents.
    pub fn open() -> Result<UeventSocket, String> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(|e| format!("cannot open the kernel's device events: {e}"))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1))
            .map_err(|e| format!("cannot subscribe to the kernel's device events: {e}"))?;
        Ok(UeventSocket { fd })
    }

    /// Waits for the next kernel uevent (other datagrams are skipped).
    pub fn next(&self) -> Result<Uevent, String> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let (n, from) = recvfrom::<NetlinkAddr>(self.fd.as_raw_fd(), &mut buf)
                .map_err(|e| format!("reading the kernel's device events: {e}"))?;
            // Port 0 is the kernel; anything else is another process.
            if from.is_some_and(|a| a.pid() != 0) {
                continue;
            }
            if let Some(event) = parse(&buf[..n]) {
                return Ok(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_datagrams_parse_and_others_do_not() {
        let msg = b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0PRODUCT=781/5567/100\0SEQNUM=4242\0";
        let e = parse(msg).expect("uevent");
        assert_eq!(e.action, "add");
        assert_eq!(e.devpath, "/devices/pci0000:00/0000:00:14.0/usb1/1-2");
        assert_eq!(e.subsystem, "usb");
        assert_eq!(e.devtype, "usb_device");
        assert_eq!(e.vars["PRODUCT"], "781/5567/100");
        assert_eq!(parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(parse(b""), None);
    }
}
