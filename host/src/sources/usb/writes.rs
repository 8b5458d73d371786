//! Files written to removable storage, via fanotify.
//!
//! One fanotify group; each removable mount gets a mount mark for `FAN_CLOSE_WRITE`. The kernel
//! then reports every file closed after being written anywhere on that mount, with an open
//! descriptor to it (its path and size are read from that) and the writer's process ID.
//! fanotify needs `CAP_SYS_ADMIN`: an agent without it says so, and runs on without this.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};

/// A file written and closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The file's path when it was closed.
    pub path: PathBuf,
    /// Its size then.
    pub bytes: u64,
    /// The process that wrote it.
    pub pid: u32,
    /// The file's owner: who wrote it when the writer is gone before it can be asked (on FAT
    /// media, the user the mount gives every file to).
    pub owner: u32,
}

/// What one read of the group brought.
#[derive(Debug, Default)]
pub struct Batch {
    /// Files written.
    pub written: Vec<Written>,
    /// The kernel's queue overflowed: this many times, writes were lost before being read.
    pub overflows: u64,
}

/// The fanotify group.
pub struct FileWrites {
    group: Fanotify,
}

impl FileWrites {
    /// A new group; fails without `CAP_SYS_ADMIN`, with a message that says so.
    pub fn new() -> Result<FileWrites, String> {
        let group = Fanotify::init(
            InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC,
            EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EPERM => {
                "files written to removable media are not watched: fanotify needs \
                 CAP_SYS_ADMIN (run the agent as root, or grant it that capability)"
                    .to_string()
            }
            e => format!("files written to removable media are not watched: fanotify: {e}"),
        })?;
        Ok(FileWrites { group })
    }

    /// Watches every file on the mount at `mount_point`.
    pub fn watch(&self, mount_point: &Path) -> Result<(), String> {
        self.group
            .mark(
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_MOUNT,
                MaskFlags::FAN_CLOSE_WRITE,
                AT_FDCWD,
                Some(mount_point),
            )
            .map_err(|e| format!("cannot watch {}: {e}", mount_point.display()))
    }

    /// Blocks until the kernel reports something, then returns it.
    pub fn next(&self) -> Result<Batch, String> {
        let events = self
            .group
            .read_events()
            .map_err(|e| format!("reading file writes: {e}"))?;
        let mut batch = Batch::default();
        for event in events {
            if event.mask().contains(MaskFlags::FAN_Q_OVERFLOW) {
                batch.overflows += 1;
                continue;
            }
            let Some(fd) = event.fd() else { continue };
            let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
                continue;
            };
            let Ok(stat) = nix::sys::stat::fstat(fd.as_fd()) else {
                continue;
            };
            // Only regular files: a device node or a pipe on the mount is not a copied file.
            if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
                continue;
            }
            batch.written.push(Written {
                path,
                bytes: u64::try_from(stat.st_size).unwrap_or(0),
                pid: u32::try_from(event.pid()).unwrap_or(0),
                owner: stat.st_uid,
            });
        }
        Ok(batch)
    }
}
