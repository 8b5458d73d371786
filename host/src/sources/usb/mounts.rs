//! Mounts, from `/proc/self/mountinfo`, and which of them are removable storage.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::UsbDevice;
use super::sysfs::Sysfs;

/// One mounted file system.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Device number of the file system (`major:minor`).
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// File system type (`vfat`, `ext4`, `tmpfs`…).
    pub fs_type: String,
}

/// Parses mountinfo text; malformed lines are skipped (the kernel writes this file).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw`: the fields after
/// the optional ones start after a lone `-`.
fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let (_id, _parent) = (fields.next()?, fields.next()?);
    let (major, minor) = fields.next()?.split_once(':')?;
    let _root = fields.next()?;
    let mount_point = unescape(fields.next()?);
    let fs_type = fields.by_ref().skip_while(|f| *f != "-").nth(1)?;
    Some(Mount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: PathBuf::from(mount_point),
        fs_type: fs_type.to_string(),
    })
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A removable mount and the USB device it is on (when it is on one).
#[derive(Debug, Clone, PartialEq)]
pub struct Removable {
    /// The mount.
    pub mount: Mount,
    /// Its USB device, when sysfs ties the disk to one.
    pub device: Option<UsbDevice>,
}

/// The mounts that are removable storage: on a USB device, on a disk marked removable, or
/// named by the admin in `extra` (media the kernel cannot tell apart, and the tests' "stick").
pub fn removable(mounts: &[Mount], sysfs: &Sysfs, extra: &[PathBuf]) -> Vec<Removable> {
    mounts
        .iter()
        .filter_map(|m| {
            let device = sysfs.usb_device_of_block(m.major, m.minor);
            let named = extra.contains(&m.mount_point);
            (device.is_some() || named || sysfs.is_removable_block(m.major, m.minor)).then(|| {
                Removable {
                    mount: m.clone(),
                    device,
                }
            })
        })
        .collect()
}

/// The mount point under which `path` lies (the longest that matches).
pub fn mount_of<'a>(path: &Path, mounts: &'a [Removable]) -> Option<&'a Removable> {
    mounts
        .iter()
        .filter(|r| path.starts_with(&r.mount.mount_point))
        .max_by_key(|r| r.mount.mount_point.as_os_str().len())
}

/// Waits for changes to the mount table: the kernel marks `/proc/self/mountinfo` with
/// `POLLPRI` whenever something is mounted or unmounted.
pub struct MountWatch {
    file: std::fs::File,
}

impl MountWatch {
    /// Opens `/proc/self/mountinfo`.
    pub fn open() -> std::io::Result<MountWatch> {
        Ok(MountWatch {
            file: std::fs::File::open("/proc/self/mountinfo")?,
        })
    }

    /// The current mounts.
    pub fn read(&mut self) -> std::io::Result<Vec<Mount>> {
        use std::io::{Read, Seek};
        let mut text = String::new();
        self.file.rewind()?;
        self.file.read_to_string(&mut text)?;
        Ok(parse(&text))
    }

    /// Blocks until the mount table changes, or `timeout_ms` passes (`true` if it changed).
    pub fn wait(&self, timeout_ms: u16) -> std::io::Result<bool> {
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLPRI)];
        let n = poll(&mut fds, PollTimeout::from(timeout_ms)).map_err(std::io::Error::from)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
29 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
95 29 8:17 / /media/alice/MY\\040STICK rw,nosuid,nodev shared:50 master:3 - vfat /dev/sdb1 rw,uid=1000
96 29 0:55 / /tmp/stick rw - tmpfs tmpfs rw
broken line
";

    #[test]
    fn mountinfo_lines_are_read_with_their_escapes() {
        let mounts = parse(INFO);
        assert_eq!(mounts.len(), 4, "{mounts:?}");
        assert_eq!(mounts[2].mount_point, Path::new("/media/alice/MY STICK"));
        assert_eq!((mounts[2].major, mounts[2].minor), (8, 17));
        assert_eq!(mounts[2].fs_type, "vfat");
        assert_eq!(mounts[3].fs_type, "tmpfs");
    }

    #[test]
    fn removable_mounts_are_the_usb_ones_and_those_named() {
        let root = tempfile::tempdir().expect("tmp");
        super::super::sysfs::fixture::build(root.path());
        let sys = Sysfs::new(root.path());
        let mounts = parse(INFO);
        let found = removable(&mounts, &sys, &[PathBuf::from("/tmp/stick")]);
        let points: Vec<&Path> = found
            .iter()
            .map(|r| r.mount.mount_point.as_path())
            .collect();
        assert_eq!(
            points,
            [Path::new("/media/alice/MY STICK"), Path::new("/tmp/stick")]
        );
        assert_eq!(
            found[0].device.as_ref().map(|d| d.product.as_deref()),
            Some(Some("Cruzer Blade"))
        );
        assert_eq!(found[1].device, None);
        let file = Path::new("/media/alice/MY STICK/q3/customers.csv");
        assert_eq!(
            mount_of(file, &found).map(|r| r.mount.mount_point.as_path()),
            Some(Path::new("/media/alice/MY STICK"))
        );
        assert_eq!(mount_of(Path::new("/home/alice/x"), &found), None);
    }

    #[test]
    fn this_machine_mount_table_reads() {
        let mut watch = MountWatch::open().expect("mountinfo");
        let mounts = watch.read().expect("read");
        assert!(mounts.iter().any(|m| m.mount_point == Path::new("/")));
        watch.wait(0).expect("the mount table can be polled");
    }
}
