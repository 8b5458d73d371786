//! USB devices and the files written to removable storage.
//!
//! ```text
//! kernel uevents (netlink) ──▶ devices ──▶ inserted / removed
//! /proc/self/mountinfo (poll) ──▶ removable mounts ──▶ fanotify marks ──▶ file_written
//!                 sysfs: descriptors, block device → USB device
//! ```
//!
//! Devices: the kernel announces every device it adds or removes on a netlink socket
//! ([`uevent`]); a USB device's descriptor fields (vendor and product IDs and names, serial,
//! class) are read from its sysfs folder ([`sysfs`]) and kept, since the folder is gone by the
//! time the device is removed. This reads what `lsusb` and udev read, without needing udevd or
//! libudev (nor libusb, whose Linux hotplug is itself built on these uevents).
//!
//! Files: a mount is removable when its block device sits under a USB device in sysfs, or the
//! disk says `removable` (card readers), or the admin named it ([`mounts`]). Each removable mount
//! gets a fanotify mark for `FAN_CLOSE_WRITE` ([`writes`]): every file closed after writing,
//! in any folder, with the writer's process ID (inotify would miss files in folders created
//! after the watch). Mounts are followed by polling `/proc/self/mountinfo`, which the kernel
//! signals on every change.

pub mod mounts;
pub mod source;
pub mod sysfs;
pub mod uevent;
pub mod writes;

use chrono::{DateTime, FixedOffset};

use crate::event::{Event, EventKind, Field};

/// A USB device as its descriptors describe it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsbDevice {
    /// Vendor ID, four lowercase hex digits (`0781`).
    pub vendor_id: String,
    /// Product ID, four lowercase hex digits.
    pub product_id: String,
    /// The manufacturer string, when the device has one.
    pub vendor: Option<String>,
    /// The product string, when the device has one.
    pub product: Option<String>,
    /// The serial number, when the device has one.
    pub serial: Option<String>,
    /// What kind of device: `mass_storage`, `hid`, `hub`… (see [`class_name`]).
    pub class: String,
}

impl UsbDevice {
    /// A `usb` event about this device: `action` is `inserted`, `removed` or `file_written`.
    pub fn event(&self, action: &str, at: DateTime<FixedOffset>, computer: &str) -> Event {
        let mut event = Event::new(EventKind::Usb, at)
            .with_text(Field::Action, action)
            .with_text(Field::Computer, computer)
            .with_text(Field::VendorId, &self.vendor_id)
            .with_text(Field::ProductId, &self.product_id)
            .with_text(Field::DeviceClass, &self.class);
        for (field, value) in [
            (Field::Vendor, &self.vendor),
            (Field::Product, &self.product),
            (Field::Serial, &self.serial),
        ] {
            if let Some(v) = value {
                event.set_text(field, v);
            }
        }
        event
    }
}

/// The name of a USB class code (device or interface class), as alarms test it.
pub fn class_name(code: u8) -> String {
    match code {
        0x01 => "audio",
        0x02 => "communications",
        0x03 => "hid",
        0x06 => "imaging",
        0x07 => "printer",
        0x08 => "mass_storage",
        0x09 => "hub",
        0x0a => "cdc_data",
        0x0b => "smart_card",
        0x0e => "video",
        0xe0 => "wireless",
        0xef => "miscellaneous",
        0xfe => "application_specific",
        0xff => "vendor_specific",
        other => return format!("class_{other:02x}"),
    }
    .to_string()
}
