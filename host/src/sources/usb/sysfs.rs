//! Reading devices from sysfs: USB descriptors, and which USB device a disk belongs to.
//!
//! The root is a parameter so that tests can hand in a fixture tree laid out like the real
//! `/sys` (these machines have no USB in their kernel; see the README).

use std::path::{Path, PathBuf};

use super::{UsbDevice, class_name};

/// A sysfs tree: `/sys`, or a fixture laid out the same way.
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Sysfs {
        Sysfs::new("/sys")
    }
}

impl Sysfs {
    /// The tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    /// The folder of a kernel device path (`DEVPATH` of a uevent: `/devices/…`).
    pub fn device_dir(&self, devpath: &str) -> PathBuf {
        self.root.join(devpath.trim_start_matches('/'))
    }

    /// The USB device whose folder is `dir`; `None` unless it has USB device descriptors.
    pub fn usb_device(&self, dir: &Path) -> Option<UsbDevice> {
        let read = |name: &str| -> Option<String> {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_string())
        };
        let vendor_id = read("idVendor")?.to_ascii_lowercase();
        let product_id = read("idProduct")?.to_ascii_lowercase();
        let device_class = read("bDeviceClass").and_then(|c| u8::from_str_radix(&c, 16).ok());
        let class = match device_class {
            // 0: "defined by each interface" — a storage interface makes it storage.
            Some(0) | None => interface_class(dir).map_or_else(|| "unknown".into(), class_name),
            Some(code) => class_name(code),
        };
        Some(UsbDevice {
            vendor_id,
            product_id,
            vendor: read("manufacturer"),
            product: read("product"),
            serial: read("serial"),
            class,
        })
    }

    /// Every USB device present now, with its device path (`/devices/…`).
    pub fn usb_devices(&self) -> Vec<(String, UsbDevice)> {
        let bus = self.root.join("bus/usb/devices");
        let Ok(entries) = std::fs::read_dir(&bus) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let dir = std::fs::canonicalize(e.path()).ok()?;
                let device = self.usb_device(&dir)?;
                Some((self.devpath(&dir)?, device))
            })
            .collect()
    }

    /// The USB device a block device (`major:minor`) belongs to, if it is on USB.
    pub fn usb_device_of_block(&self, major: u32, minor: u32) -> Option<UsbDevice> {
        let dir = self.block_dir(major, minor)?;
        let root = std::fs::canonicalize(&self.root).ok()?;
        dir.ancestors()
            .take_while(|d| d.starts_with(&root) && *d != root)
            .find_map(|d| self.usb_device(d))
    }

    /// Whether the disk of a block device says it is removable (card readers, some sticks).
    pub fn is_removable_block(&self, major: u32, minor: u32) -> bool {
        let Some(dir) = self.block_dir(major, minor) else {
            return false;
        };
        // A partition's `removable` is its disk's: the parent folder.
        [dir.as_path(), dir.parent().unwrap_or(&dir)]
            .iter()
            .any(|d| std::fs::read_to_string(d.join("removable")).is_ok_and(|t| t.trim() == "1"))
    }

    fn block_dir(&self, major: u32, minor: u32) -> Option<PathBuf> {
        let link = self.root.join(format!("dev/block/{major}:{minor}"));
        std::fs::canonicalize(link).ok()
    }

    fn devpath(&self, dir: &Path) -> Option<String> {
        let root = std::fs::canonicalize(&self.root).ok()?;
        let rel = dir.strip_prefix(root).ok()?;
        Some(format!("/{}", rel.to_str()?))
    }
}

/// The most telling class among a device's interfaces (`1-1:1.0/bInterfaceClass`…): mass
/// storage if any interface is, else the first interface's.
fn interface_class(dir: &Path) -> Option<u8> {
    let mut classes: Vec<(String, u8)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(':'))
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("bInterfaceClass")).ok()?;
            let code = u8::from_str_radix(text.trim(), 16).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), code))
        })
        .collect();
    classes.sort();
    classes
        .iter()
        .find(|(_, c)| *c == 0x08)
        .or_else(|| classes.first())
        .map(|(_, c)| *c)
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A sysfs tree with one USB stick (SanDisk, partition sdb1 = 8:17) and one keyboard.
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// The stick's device path.
    pub const STICK: &str = "/devices/pci0000:00/0000:00:14.0/usb1/1-2";
    /// The keyboard's device path.
    pub const KEYBOARD: &str = "/devices/pci0000:00/0000:00:14.0/usb1/1-3";

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, format!("{text}\n")).expect("write");
    }

    /// Lays the tree out under `root`.
    pub fn build(root: &Path) {
        let stick = STICK;
        for (name, value) in [
            ("idVendor", "0781"),
            ("idProduct", "5567"),
            ("manufacturer", "SanDisk"),
            ("product", "Cruzer Blade"),
            ("serial", "4C530001231108117373"),
            ("bDeviceClass", "00"),
        ] {
            write(root, &format!("{stick}/{name}"), value);
        }
        write(root, &format!("{stick}/1-2:1.0/bInterfaceClass"), "08");
        let disk = format!("{stick}/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb");
        write(root, &format!("{disk}/removable"), "1");
        write(root, &format!("{disk}/sdb1/partition"), "1");
        let kb = KEYBOARD;
        for (name, value) in [
            ("idVendor", "046D"),
            ("idProduct", "C31C"),
            ("product", "USB Keyboard"),
            ("bDeviceClass", "00"),
        ] {
            write(root, &format!("{kb}/{name}"), value);
        }
        write(root, &format!("{kb}/1-3:1.0/bInterfaceClass"), "03");
        // A disk that is not on USB.
        write(
            root,
            "/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/removable",
            "0",
        );
        std::fs::create_dir_all(root.join("dev/block")).expect("mkdir");
        std::fs::create_dir_all(root.join("bus/usb/devices")).expect("mkdir");
        // Relative links, as the kernel makes them: /sys/dev/block/ is two levels down.
        let up = "../..";
        symlink(format!("{up}{disk}/sdb1"), root.join("dev/block/8:17")).expect("link");
        symlink(format!("{up}{disk}"), root.join("dev/block/8:16")).expect("link");
        symlink(
            format!(
                "{up}/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda"
            ),
            root.join("dev/block/8:0"),
        )
        .expect("link");
        let up = "../../..";
        symlink(format!("{up}{stick}"), root.join("bus/usb/devices/1-2")).expect("link");
        symlink(format!("{up}{kb}"), root.join("bus/usb/devices/1-3")).expect("link");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_and_disks_resolve_to_usb_devices() {
        let root = tempfile::tempdir().expect("tmp");
        fixture::build(root.path());
        let sys = Sysfs::new(root.path());
        let stick = sys
            .usb_device(&sys.device_dir(fixture::STICK))
            .expect("the stick");
        assert_eq!(
            stick,
            UsbDevice {
                vendor_id: "0781".into(),
                product_id: "5567".into(),
                vendor: Some("SanDisk".into()),
                product: Some("Cruzer Blade".into()),
                serial: Some("4C530001231108117373".into()),
                class: "mass_storage".into(),
            }
        );
        let keyboard = sys
            .usb_device(&sys.device_dir(fixture::KEYBOARD))
            .expect("the keyboard");
        assert_eq!(keyboard.class, "hid");
        assert_eq!(keyboard.vendor_id, "046d", "IDs are lowercase");
        assert_eq!(keyboard.vendor, None);

        // The partition and its disk lead to the stick; the SATA disk to nothing.
        assert_eq!(sys.usb_device_of_block(8, 17).as_ref(), Some(&stick));
        assert_eq!(sys.usb_device_of_block(8, 16).as_ref(), Some(&stick));
        assert_eq!(sys.usb_device_of_block(8, 0), None);
        assert!(sys.is_removable_block(8, 17));
        assert!(!sys.is_removable_block(8, 0));
        assert!(
            !sys.is_removable_block(9, 9),
            "unknown devices are not removable"
        );

        let mut all = sys.usb_devices();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let paths: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, [fixture::STICK, fixture::KEYBOARD]);
    }

    #[test]
    fn the_real_sysfs_is_read_without_error() {
        // These machines have no USB: nothing is found, and nothing fails.
        let sys = Sysfs::default();
        let _ = sys.usb_devices();
        assert_eq!(sys.usb_device_of_block(1, 0), None, "ram0 is not on USB");
    }
}
