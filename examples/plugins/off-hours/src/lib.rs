//! Off-hours sensitive apps: raises an alarm when one of the listed applications gets focus
//! outside working hours (a configurable schedule, in the site's UTC offset).
//!
//! Built-in conditions have no notion of the clock; a plugin has `ts-ms` and ordinary Rust.

use vigilo_sdk::{Event, EventKind, Field, Plugin, PluginInfo, Triggered, action, config};

struct OffHours {
    /// Working hours, `[start, end)` in minutes after local midnight.
    start_min: i64,
    end_min: i64,
    /// Working days, Monday = 0.
    days: Vec<i64>,
    /// The site's offset from UTC, in minutes.
    utc_offset_min: i64,
    /// Lowercased substrings of executable or application name that count as sensitive.
    apps: Vec<String>,
}

impl Default for OffHours {
    fn default() -> Self {
        OffHours {
            start_min: 8 * 60,
            end_min: 18 * 60,
            days: (0..5).collect(),
            utc_offset_min: 0,
            apps: ["keepassxc", "wireshark", "pgadmin", "dbeaver", "soffice"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// `HH:MM` to minutes after midnight.
fn clock(text: &str, key: &str) -> Result<i64, String> {
    let bad = || format!("`{key}` must be a time like \"08:30\", found {text:?}");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || h * 60 + m > 24 * 60 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Plugin for OffHours {
    fn describe() -> PluginInfo {
        vigilo_sdk::info(
            "off-hours",
            env!("CARGO_PKG_VERSION"),
            &[EventKind::Activity],
            &[Field::Executable, Field::Description, Field::Username],
            "hours = [\"08:00\", \"18:00\"]                    # working hours, local time\n\
             days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]   # working days\n\
             utc_offset_minutes = 0                          # the site's time zone\n\
             apps = [\"keepassxc\", \"wireshark\", ...]         # executable or app name contains",
        )
    }

    fn configure(&mut self, text: &str) -> Result<(), String> {
        let hours = config::strings(text, "hours")?;
        match hours.as_slice() {
            [] => {}
            [start, end] => {
                self.start_min = clock(start, "hours")?;
                self.end_min = clock(end, "hours")?;
                if self.start_min >= self.end_min {
                    return Err("`hours` must start before it ends".into());
                }
            }
            _ => return Err("`hours` takes two times: [\"08:00\", \"18:00\"]".into()),
        }
        let days = config::strings(text, "days")?;
        if !days.is_empty() {
            self.days = days
                .iter()
                .map(|d| {
                    DAYS.iter()
                        .position(|n| d.eq_ignore_ascii_case(n))
                        .map(|i| i as i64)
                        .ok_or_else(|| format!("unknown day {d:?}; use mon, tue, … sun"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(offset) = config::number(text, "utc_offset_minutes")? {
            if offset.abs() > 14.0 * 60.0 {
                return Err("`utc_offset_minutes` must be within ±840".into());
            }
            self.utc_offset_min = offset as i64;
        }
        let apps = config::strings(text, "apps")?;
        if !apps.is_empty() {
            self.apps = apps.iter().map(|a| a.to_lowercase()).collect();
        }
        Ok(())
    }

    fn on_event(&mut self, e: &Event) -> Vec<Triggered> {
        let names = [e.executable.as_deref(), e.description.as_deref()];
        let Some(app) = self.apps.iter().find(|app| {
            names
                .iter()
                .flatten()
                .any(|n| n.to_lowercase().contains(app.as_str()))
        }) else {
            return Vec::new();
        };
        let local_min = e.ts_ms.div_euclid(60_000) + self.utc_offset_min;
        let day = local_min.div_euclid(24 * 60);
        let minute = local_min.rem_euclid(24 * 60);
        // 1970-01-01 was a Thursday (Monday = 0 makes it 3).
        let weekday = (day + 3).rem_euclid(7);
        let working =
            self.days.contains(&weekday) && (self.start_min..self.end_min).contains(&minute);
        if working {
            return Vec::new();
        }
        let note = format!(
            "{} opened {} at {:02}:{:02} on a {}",
            e.username.as_deref().unwrap_or("someone"),
            e.description
                .as_deref()
                .or(e.executable.as_deref())
                .unwrap_or(app),
            minute / 60,
            minute % 60,
            DAYS[weekday as usize]
        );
        vec![
            vigilo_sdk::alarm("Sensitive app outside working hours", 5)
                .with_note(note)
                .with_action(action::screenshot(1, 10)),
        ]
    }
}

vigilo_sdk::export!(OffHours);
