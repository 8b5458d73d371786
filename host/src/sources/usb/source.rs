//! The live USB source: device arrivals and departures, and files written to removable mounts.
//!
//! Three threads, each blocked on the kernel: device uevents, the mount table, fanotify.
//! [`Devices`] holds the mapping from uevents to events, apart from the socket, so it can be
//! driven with recorded uevents over a fixture sysfs tree.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset};

use super::UsbDevice;
use super::mounts::{self, MountWatch, Removable};
use super::sysfs::Sysfs;
use super::uevent::{Uevent, UeventSocket};
use super::writes::{FileWrites, Written};
use crate::event::{Event, EventKind, Field};
use crate::os::process;
use crate::sources::{Running, Sink, Source};

/// The USB devices present, by device path, and what their uevents mean.
pub struct Devices {
    sysfs: Sysfs,
    known: HashMap<String, UsbDevice>,
    /// Devices added whose class was not readable yet (their interfaces come after them).
    pending: HashSet<String>,
}

impl Devices {
    /// The devices present now (they are known, not announced: they were there before).
    pub fn present(sysfs: Sysfs) -> Devices {
        let known = sysfs.usb_devices().into_iter().collect();
        Devices {
            sysfs,
            known,
            pending: HashSet::new(),
        }
    }

    /// How many devices are known.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// The `inserted` or `removed` event a uevent means, if any. A device whose class is
    /// decided by its interfaces is announced once the first of them exists (the kernel adds
    /// the device before its interfaces) or, at the latest, when a driver binds to it.
    pub fn on_uevent(
        &mut self,
        uevent: &Uevent,
        at: DateTime<FixedOffset>,
        computer: &str,
    ) -> Option<Event> {
        if uevent.subsystem != "usb" {
            return None;
        }
        let device_path = match uevent.devtype.as_str() {
            "usb_device" => uevent.devpath.clone(),
            // An interface's parent is its device.
            "usb_interface" => uevent.devpath.rsplit_once('/')?.0.to_string(),
            _ => return None,
        };
        match (uevent.action.as_str(), uevent.devtype.as_str()) {
            ("add", "usb_device") => {
                let device = self
                    .sysfs
                    .usb_device(&self.sysfs.device_dir(&device_path))?;
                if device.class == "unknown" {
                    self.pending.insert(device_path);
                    return None;
                }
                self.known.insert(device_path, device.clone());
                Some(device.event("inserted", at, computer))
            }
            ("add", "usb_interface") | ("bind", "usb_device") => {
                if !self.pending.remove(&device_path) {
                    return None;
                }
                let device = self
                    .sysfs
                    .usb_device(&self.sysfs.device_dir(&device_path))?;
                self.known.insert(device_path, device.clone());
                Some(device.event("inserted", at, computer))
            }
            ("remove", "usb_device") => {
                self.pending.remove(&device_path);
                let device = self.known.remove(&device_path)?;
                Some(device.event("removed", at, computer))
            }
            _ => None,
        }
    }
}

/// The event for a file written to a removable mount.
pub fn file_written(
    written: &Written,
    mount: Option<&Removable>,
    at: DateTime<FixedOffset>,
    computer: &str,
) -> Event {
    let device = mount.and_then(|m| m.device.as_ref());
    let mut event = match device {
        Some(d) => d.event("file_written", at, computer),
        None => Event::new(EventKind::Usb, at)
            .with_text(Field::Action, "file_written")
            .with_text(Field::Computer, computer),
    };
    event.set_text(Field::Path, &written.path.to_string_lossy());
    event.set_number(Field::Bytes, written.bytes as f64);
    if let Some(m) = mount {
        event.set_text(Field::MountPoint, &m.mount.mount_point.to_string_lossy());
    }
    // A short-lived writer (`cp`) may be gone already: then the file's owner says who.
    let mut user = None;
    if written.pid != 0 {
        event.set_number(Field::Pid, f64::from(written.pid));
        if let Some(exe) = process::executable(written.pid) {
            event.set_text(Field::Executable, &exe);
        }
        user = process::owner(written.pid);
    }
    let user = user.unwrap_or_else(|| process::user(written.owner));
    event.set_text(Field::Username, &user);
    event
}

/// USB devices plugged in and out, and files written to removable storage: the [`Source`]
/// `vigilo run` starts unless `--no-usb`. What cannot run (no netlink, no fanotify rights) is
/// said, and the rest runs.
pub struct UsbStorage {
    /// Where sysfs is.
    pub sysfs: Sysfs,
    /// Mount points to treat as removable besides those on USB or removable disks.
    pub removable: Vec<PathBuf>,
    /// This computer's name.
    pub computer: String,
}

impl Source for UsbStorage {
    fn start(self: Box<Self>, sink: Arc<dyn Sink>) -> std::io::Result<Running> {
        let down = spawn(*self, sink.clone());
        let (devices_down, files_down) = (down.devices.as_ref(), down.files.as_ref());
        sink.status(
            "usb",
            devices_down.is_none(),
            devices_down.map_or("USB devices from kernel uevents".into(), Clone::clone),
        );
        sink.status(
            "files",
            files_down.is_none(),
            files_down.map_or(
                "files written to removable mounts (fanotify)".into(),
                Clone::clone,
            ),
        );
        for problem in down.devices.iter().chain(&down.files) {
            tracing::warn!("{problem}");
            eprintln!("vigilo: {problem}");
        }
        Ok(Running::threads())
    }
}

/// What could not start, for the admin, by half of the source (the rest runs).
#[derive(Default)]
struct Down {
    /// Devices plugged in and out.
    devices: Option<String>,
    /// Files written to removable mounts.
    files: Option<String>,
}

/// Starts the threads.
fn spawn(options: UsbStorage, sink: Arc<dyn Sink>) -> Down {
    let mut down = Down::default();
    let computer = Arc::new(options.computer);
    let now = || chrono::Utc::now().fixed_offset();
    // The user at this desktop: the agent's own user (it runs in their session).
    let user = process::owner(std::process::id());

    match UeventSocket::open() {
        Ok(socket) => {
            let mut devices = Devices::present(options.sysfs.clone());
            tracing::info!(present = devices.len(), "USB devices");
            let (sink, computer, user) = (sink.clone(), computer.clone(), user.clone());
            let spawned = std::thread::Builder::new()
                .name("vigilo-source-usb".into())
                .spawn(move || {
                    loop {
                        let uevent = match socket.next() {
                            Ok(u) => u,
                            Err(e) => {
                                tracing::error!("USB devices no longer followed: {e}");
                                return;
                            }
                        };
                        tracing::trace!(?uevent, "uevent");
                        if let Some(mut event) = devices.on_uevent(&uevent, now(), &computer) {
                            if let Some(u) = &user {
                                event.set_text(Field::Username, u);
                            }
                            if !sink.event(event) {
                                return;
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                down.devices = Some(format!("cannot start the USB device thread: {e}"));
            }
        }
        Err(e) => down.devices = Some(e),
    }

    let writes = match FileWrites::new() {
        Ok(w) => Arc::new(w),
        Err(e) => {
            down.files = Some(e);
            return down;
        }
    };
    let mut watch = match MountWatch::open() {
        Ok(w) => w,
        Err(e) => {
            down.files = Some(format!("cannot read the mount table: {e}"));
            return down;
        }
    };
    let mounted: Arc<Mutex<Vec<Removable>>> = Arc::default();
    {
        let (writes, mounted) = (writes.clone(), mounted.clone());
        let (sysfs, extra) = (options.sysfs, options.removable);
        let spawned = std::thread::Builder::new()
            .name("vigilo-source-mounts".into())
            .spawn(move || {
                loop {
                    match watch.read() {
                        Ok(all) => {
                            follow(&writes, &mounted, mounts::removable(&all, &sysfs, &extra))
                        }
                        Err(e) => tracing::warn!("cannot read the mount table: {e}"),
                    }
                    // Woken by the kernel on a change; the timeout is only a safety net.
                    if let Err(e) = watch.wait(60_000) {
                        tracing::error!("removable mounts no longer followed: {e}");
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            down.files = Some(format!("cannot start the mount thread: {e}"));
        }
    }
    let spawned = std::thread::Builder::new()
        .name("vigilo-source-writes".into())
        .spawn(move || {
            let me = std::process::id();
            loop {
                let batch = match writes.next() {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!("file writes no longer followed: {e}");
                        return;
                    }
                };
                if batch.overflows > 0 {
                    tracing::warn!(
                        overflows = batch.overflows,
                        "the kernel dropped file-write events (its queue was full)"
                    );
                    sink.lost("file_written", batch.overflows);
                }
                for written in batch.written.iter().filter(|w| w.pid != me) {
                    let event = {
                        let mounted = mounted.lock().unwrap_or_else(|p| p.into_inner());
                        let mount = mounts::mount_of(&written.path, &mounted);
                        file_written(written, mount, now(), &computer)
                    };
                    if !sink.event(event) {
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        down.files = Some(format!("cannot start the file-write thread: {e}"));
    }
    down
}

/// Marks newly mounted removable file systems and remembers them all (for naming devices).
fn follow(writes: &FileWrites, mounted: &Mutex<Vec<Removable>>, now: Vec<Removable>) {
    let mut mounted = mounted.lock().unwrap_or_else(|p| p.into_inner());
    for r in &now {
        if !mounted.iter().any(|m| m.mount == r.mount) {
            match writes.watch(&r.mount.mount_point) {
                Ok(()) => tracing::info!(
                    mount = %r.mount.mount_point.display(),
                    device = ?r.device.as_ref().and_then(|d| d.product.as_deref()),
                    "watching removable storage"
                ),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
    // A mount that is gone takes its mark with it (the kernel drops it on unmount).
    *mounted = now;
}

#[cfg(test)]
mod tests {
    use super::super::sysfs::fixture;
    use super::super::uevent;
    use super::*;

    fn at() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z").expect("ts")
    }

    fn uevent(action: &str, devpath: &str, devtype: &str) -> Uevent {
        let raw = format!(
            "{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0SUBSYSTEM=usb\0DEVTYPE={devtype}\0"
        );
        uevent::parse(raw.as_bytes()).expect("uevent")
    }

    #[test]
    fn a_stick_plugged_in_and_out_is_inserted_then_removed_with_its_descriptors() {
        let root = tempfile::tempdir().expect("tmp");
        // The kernel adds the device before its interfaces: at first only descriptors exist.
        fixture::build(root.path());
        let interface = root.path().join(format!(
            "{}/1-2:1.0",
            fixture::STICK.trim_start_matches('/')
        ));
        let saved = tempfile::tempdir().expect("tmp");
        let parked = saved.path().join("if");
        std::fs::rename(&interface, &parked).expect("park the interface");

        let mut devices = Devices {
            sysfs: Sysfs::new(root.path()),
            known: HashMap::new(),
            pending: HashSet::new(),
        };
        assert_eq!(
            devices.on_uevent(&uevent("add", fixture::STICK, "usb_device"), at(), "pc1"),
            None,
            "not announced before its class is known"
        );
        std::fs::rename(&parked, &interface).expect("the interface appears");
        let iface = format!("{}/1-2:1.0", fixture::STICK);
        let inserted = devices
            .on_uevent(&uevent("add", &iface, "usb_interface"), at(), "pc1")
            .expect("inserted");
        assert_eq!(inserted.text(Field::Action), Some("inserted"));
        assert_eq!(inserted.text(Field::DeviceClass), Some("mass_storage"));
        assert_eq!(inserted.text(Field::VendorId), Some("0781"));
        assert_eq!(inserted.text(Field::ProductId), Some("5567"));
        assert_eq!(inserted.text(Field::Vendor), Some("SanDisk"));
        assert_eq!(inserted.text(Field::Product), Some("Cruzer Blade"));
        assert_eq!(inserted.text(Field::Serial), Some("4C530001231108117373"));
        assert_eq!(inserted.text(Field::Computer), Some("pc1"));
        // The bind that follows is not a second insertion.
        assert_eq!(
            devices.on_uevent(&uevent("bind", fixture::STICK, "usb_device"), at(), "pc1"),
            None
        );

        // Unplugged: sysfs forgets the device at once; the event still names it.
        std::fs::remove_dir_all(root.path().join("devices")).expect("unplug");
        let removed = devices
            .on_uevent(&uevent("remove", fixture::STICK, "usb_device"), at(), "pc1")
            .expect("removed");
        assert_eq!(removed.text(Field::Action), Some("removed"));
        assert_eq!(removed.text(Field::Product), Some("Cruzer Blade"));
        assert!(devices.len() == 0);
    }

    #[test]
    fn a_keyboard_is_announced_at_once_and_other_subsystems_are_ignored() {
        let root = tempfile::tempdir().expect("tmp");
        fixture::build(root.path());
        let mut devices = Devices {
            sysfs: Sysfs::new(root.path()),
            known: HashMap::new(),
            pending: HashSet::new(),
        };
        let kb = devices
            .on_uevent(&uevent("add", fixture::KEYBOARD, "usb_device"), at(), "pc1")
            .expect("inserted");
        assert_eq!(kb.text(Field::DeviceClass), Some("hid"));
        let mut block = uevent("add", "/devices/virtual/block/loop0", "disk");
        block.subsystem = "block".into();
        assert_eq!(devices.on_uevent(&block, at(), "pc1"), None);
        // Devices present at start are known (their removal is named) but not announced.
        let present = Devices::present(Sysfs::new(root.path()));
        assert_eq!(present.len(), 2);
    }

    #[test]
    fn file_writes_name_the_writer_and_the_stick() {
        let root = tempfile::tempdir().expect("tmp");
        fixture::build(root.path());
        let sys = Sysfs::new(root.path());
        let all = mounts::parse("95 29 8:17 / /media/alice/STICK rw - vfat /dev/sdb1 rw\n");
        let removable = mounts::removable(&all, &sys, &[]);
        let written = Written {
            path: "/media/alice/STICK/q3/customers.csv".into(),
            bytes: 12345,
            pid: std::process::id(),
            owner: 0,
        };
        let mount = mounts::mount_of(&written.path, &removable);
        let e = file_written(&written, mount, at(), "pc1");
        assert_eq!(e.text(Field::Action), Some("file_written"));
        assert_eq!(
            e.text(Field::Path),
            Some("/media/alice/STICK/q3/customers.csv")
        );
        assert_eq!(e.number(Field::Bytes), Some(12345.0));
        assert_eq!(e.text(Field::MountPoint), Some("/media/alice/STICK"));
        assert_eq!(e.text(Field::Product), Some("Cruzer Blade"));
        assert_eq!(e.number(Field::Pid), Some(f64::from(std::process::id())));
        assert_eq!(
            e.text(Field::Executable),
            process::executable(std::process::id()).as_deref()
        );
        assert_eq!(
            e.text(Field::Username),
            process::owner(std::process::id()).as_deref()
        );
        // The writer is gone: the file's owner is named instead.
        let gone = Written {
            pid: 0,
            owner: 0,
            ..written
        };
        let e = file_written(&gone, mount, at(), "pc1");
        assert_eq!(e.text(Field::Username), Some("root"));
        assert_eq!(e.number(Field::Pid), None);
    }
}
