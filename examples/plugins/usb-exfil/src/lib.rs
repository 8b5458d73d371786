//! USB exfiltration: raises an alarm when one user writes more than `limit_mb` megabytes to USB
//! storage within `window_minutes`, unless the device's serial is in `allowed_serials`.
//!
//! Built-in conditions see one event at a time; this needs a running total per user over a
//! sliding window, which is what plugins are for.

use std::collections::{HashMap, VecDeque};

use vigilo_sdk::{Event, EventKind, Field, Plugin, PluginInfo, Triggered, action, config};

/// Writes of one user inside the window: (time in ms, bytes), oldest first.
#[derive(Default)]
struct Window {
    writes: VecDeque<(i64, u64)>,
    total: u64,
    alerted: bool,
}

struct UsbExfil {
    limit_bytes: u64,
    window_ms: i64,
    allowed: Vec<String>,
    users: HashMap<String, Window>,
}

impl Default for UsbExfil {
    fn default() -> Self {
        UsbExfil {
            limit_bytes: 100 << 20,
            window_ms: 10 * 60_000,
            allowed: Vec::new(),
            users: HashMap::new(),
        }
    }
}

impl Plugin for UsbExfil {
    fn describe() -> PluginInfo {
        vigilo_sdk::info(
            "usb-exfil",
            env!("CARGO_PKG_VERSION"),
            &[EventKind::Usb],
            &[
                Field::Action,
                Field::Bytes,
                Field::Serial,
                Field::Username,
                Field::Vendor,
                Field::Product,
            ],
            "limit_mb = 100          # megabytes per user within the window\n\
             window_minutes = 10     # the sliding window\n\
             allowed_serials = []    # devices whose writes do not count",
        )
    }

    fn configure(&mut self, text: &str) -> Result<(), String> {
        if let Some(mb) = config::number(text, "limit_mb")? {
            if mb <= 0.0 {
                return Err("limit_mb must be positive".into());
            }
            self.limit_bytes = (mb * 1_048_576.0) as u64;
        }
        if let Some(minutes) = config::number(text, "window_minutes")? {
            if !(1.0..=1440.0).contains(&minutes) {
                return Err("window_minutes must be 1 to 1440".into());
            }
            self.window_ms = (minutes * 60_000.0) as i64;
        }
        self.allowed = config::strings(text, "allowed_serials")?;
        Ok(())
    }

    fn on_event(&mut self, e: &Event) -> Vec<Triggered> {
        let (Some("file_written"), Some(bytes)) = (e.action.as_deref(), e.bytes) else {
            return Vec::new();
        };
        if e.serial.as_ref().is_some_and(|s| self.allowed.contains(s)) {
            return Vec::new();
        }
        let user = e.username.clone().unwrap_or_default();
        let window = self.users.entry(user.clone()).or_default();
        window.writes.push_back((e.ts_ms, bytes));
        window.total += bytes;
        while let Some(&(at, b)) = window.writes.front() {
            if e.ts_ms - at <= self.window_ms {
                break;
            }
            window.writes.pop_front();
            window.total -= b;
        }
        if window.total <= self.limit_bytes {
            window.alerted = false;
            return Vec::new();
        }
        if window.alerted {
            return Vec::new(); // once per burst
        }
        window.alerted = true;
        let device = format!(
            "{} {}",
            e.vendor.as_deref().unwrap_or("USB"),
            e.product.as_deref().unwrap_or("storage")
        );
        let note = format!(
            "{user} wrote {} MB to {device} within {} minutes ({} files)",
            window.total >> 20,
            self.window_ms / 60_000,
            window.writes.len()
        );
        vec![
            vigilo_sdk::alarm("USB exfiltration", 8)
                .with_note(note)
                .with_action(action::screenshot(1, 10))
                .with_action(action::popup(
                    "Data protection",
                    "Large copies to removable media are recorded.",
                )),
        ]
    }
}

vigilo_sdk::export!(UsbExfil);
