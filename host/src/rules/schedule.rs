//! When an alarm is on: `active = { days = ["mon", …], hours = "08:00-18:00", tz = "Europe/Paris" }`
//! (or `outside = …` for an off-hours alarm), judged on the *event's* time in that zone, so a
//! recorded day replays as it ran live and a rule means the same on both sides of a DST change
//! (Teramind's rule schedules).
//!
//! Hours are a half-open window `[from, to)` of wall-clock time. A window that ends before it
//! starts (`22:00-06:00`) runs past midnight and belongs to the day it starts on: with
//! `days = ["fri"]`, Saturday 03:00 is inside. `24:00` is the end of the day. Without `tz`, the
//! zone is the computer's own.

use chrono::{DateTime, FixedOffset};
use jiff::tz::TimeZone;

/// The days of the week as a pack names them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When an alarm may fire.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Which days a window starts on, Monday first.
    days: [bool; 7],
    /// The window's start, in minutes after midnight.
    from: u16,
    /// Its end, in minutes after midnight (up to 1440; before `from`: past midnight).
    to: u16,
    /// The zone the window is wall-clock time of.
    tz: TimeZone,
    /// Fire outside the window instead of inside it.
    outside: bool,
}

/// A schedule's part that is not one: which key, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSchedule {
    /// `days`, `hours` or `tz`.
    pub key: &'static str,
    /// What was expected.
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> BadSchedule {
    BadSchedule {
        key,
        message: message.into(),
    }
}

/// `HH:MM` as minutes after midnight (`24:00` allowed as an end).
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl Schedule {
    /// A schedule from a pack's words: `days` (default every day), `hours` (`HH:MM-HH:MM`,
    /// default the whole day), `tz` (an IANA name, default the computer's zone); `outside`
    /// turns it into an off-hours schedule.
    pub fn new(
        days: Option<&[String]>,
        hours: Option<&str>,
        tz: Option<&str>,
        outside: bool,
    ) -> Result<Schedule, BadSchedule> {
        let days = match days {
            None => [true; 7],
            Some([]) => return Err(bad("days", "name at least one day, or leave `days` out")),
            Some(names) => {
                let mut set = [false; 7];
                for name in names {
                    let i = DAYS
                        .iter()
                        .position(|d| d.eq_ignore_ascii_case(name.trim()))
                        .ok_or_else(|| {
                            bad(
                                "days",
                                format!("unknown day {name:?}; expected {}", DAYS.join(", ")),
                            )
                        })?;
                    set[i] = true;
                }
                set
            }
        };
        let (from, to) = match hours {
            None => (0, 1440),
            Some(text) => {
                let parsed = text
                    .split_once('-')
                    .and_then(|(a, b)| Some((minutes(a)?, minutes(b)?)));
                match parsed {
                    Some((from, to)) if from != to && from < 1440 => (from, to),
                    _ => {
                        return Err(bad(
                            "hours",
                            format!(
                                "{text:?}: expected HH:MM-HH:MM, like \"08:00-18:00\" \
                                 (or \"22:00-06:00\" past midnight)"
                            ),
                        ));
                    }
                }
            }
        };
        let tz = match tz {
            None => TimeZone::system(),
            Some(name) => TimeZone::get(name).map_err(|_| {
                bad(
                    "tz",
                    format!(
                        "unknown time zone {name:?}; expected an IANA name like \"Europe/Paris\""
                    ),
                )
            })?,
        };
        Ok(Schedule {
            days,
            from,
            to,
            tz,
            outside,
        })
    }

    /// Whether an alarm on this schedule may fire for an event at `at`.
    pub fn admits(&self, at: DateTime<FixedOffset>) -> bool {
        self.inside(at) != self.outside
    }

    fn inside(&self, at: DateTime<FixedOffset>) -> bool {
        let Ok(ts) = jiff::Timestamp::new(at.timestamp(), at.timestamp_subsec_nanos() as i32)
        else {
            return false;
        };
        let local = ts.to_zoned(self.tz.clone());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let day = local.weekday().to_monday_zero_offset() as usize;
        let yesterday = (day + 6) % 7;
        if self.from < self.to {
            self.days[day] && (self.from..self.to).contains(&minute)
        } else {
            (self.days[day] && minute >= self.from) || (self.days[yesterday] && minute < self.to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).expect("time")
    }

    fn weekdays() -> Vec<String> {
        ["mon", "tue", "wed", "thu", "fri"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn office_hours_follow_the_zone_across_a_dst_change() {
        let office = Schedule::new(
            Some(&weekdays()),
            Some("08:00-18:00"),
            Some("Europe/Paris"),
            false,
        )
        .expect("schedule");
        // Paris moved from UTC+1 to UTC+2 on Sunday 2026-03-29: 06:30 UTC is 08:30 there the
        // Monday after (inside), 07:30 the Monday before (outside).
        assert!(
            office.admits(at("2026-03-30T06:30:00Z")),
            "08:30 CEST, Monday"
        );
        assert!(
            !office.admits(at("2026-03-23T06:30:00Z")),
            "07:30 CET, Monday"
        );
        assert!(
            office.admits(at("2026-03-23T07:30:00Z")),
            "08:30 CET, Monday"
        );
        assert!(
            !office.admits(at("2026-03-30T16:00:00Z")),
            "18:00 CEST is the end"
        );
        assert!(office.admits(at("2026-03-30T15:59:59Z")), "17:59:59 CEST");
        assert!(!office.admits(at("2026-03-28T09:00:00Z")), "Saturday");
        // The same instant, written in another offset, is the same time.
        assert!(office.admits(at("2026-03-30T02:30:00-04:00")));

        let off_hours = Schedule::new(
            Some(&weekdays()),
            Some("08:00-18:00"),
            Some("Europe/Paris"),
            true,
        )
        .expect("schedule");
        assert!(!off_hours.admits(at("2026-03-30T06:30:00Z")));
        assert!(off_hours.admits(at("2026-03-28T09:00:00Z")), "Saturday");
    }

    #[test]
    fn a_night_window_belongs_to_the_day_it_starts() {
        let friday_night = Schedule::new(
            Some(&["fri".to_string()]),
            Some("22:00-06:00"),
            Some("UTC"),
            false,
        )
        .expect("schedule");
        assert!(
            friday_night.admits(at("2026-12-04T23:00:00Z")),
            "Friday 23:00"
        );
        assert!(
            friday_night.admits(at("2026-12-05T03:00:00Z")),
            "Saturday 03:00"
        );
        assert!(
            !friday_night.admits(at("2026-12-05T23:00:00Z")),
            "Saturday 23:00"
        );
        assert!(
            !friday_night.admits(at("2026-12-04T03:00:00Z")),
            "Friday 03:00"
        );
        let whole_day =
            Schedule::new(None, Some("00:00-24:00"), Some("UTC"), false).expect("schedule");
        assert!(whole_day.admits(at("2026-12-05T23:59:59Z")));
    }

    #[test]
    fn bad_words_name_their_key_and_what_was_expected() {
        let err = |days: Option<&[String]>, hours: Option<&str>, tz: Option<&str>| {
            Schedule::new(days, hours, tz, false).expect_err("refused")
        };
        assert_eq!(err(Some(&["monday".into()]), None, None).key, "days");
        assert_eq!(err(Some(&[]), None, None).key, "days");
        for hours in ["8-18", "08:00", "08:00-08:00", "25:00-26:00", "24:00-06:00"] {
            assert_eq!(err(None, Some(hours), None).key, "hours", "{hours}");
        }
        let tz = err(None, None, Some("Mars/Olympus"));
        assert!(tz.message.contains("IANA"), "{tz:?}");
    }
}
