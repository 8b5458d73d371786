//! The human-readable alarm table shared by `replay` and `alarms`.

use std::io::Write;

use crate::model::alarm::{ActionOutcome, AlarmRecord, action_labels};

const WIDTHS: [usize; 5] = [20, 10, 4, 30, 22];

/// The width of the COMPUTER column, shown on a hub.
const COMPUTER_WIDTH: usize = 14;

/// How the table is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Layout {
    /// The zone times are shown in.
    pub zone: Zone,
    /// A COMPUTER column after USER: where the alarms come from many computers (a hub).
    pub computer: bool,
}

/// The zone times are shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Zone {
    /// UTC, as the store keeps them (`2026-11-02T09:05:00Z`).
    #[default]
    Utc,
    /// This computer's zone, its offset said (`2026-11-02 10:05:00+01:00`).
    Local,
}

impl Zone {
    /// The column's width: a UTC time, or a local one with its offset.
    fn width(self) -> usize {
        match self {
            Zone::Utc => 20,
            Zone::Local => 25,
        }
    }

    fn show(self, ts: chrono::DateTime<chrono::FixedOffset>) -> String {
        match self {
            Zone::Utc => ts
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            Zone::Local => ts
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S%:z")
                .to_string(),
        }
    }
}

/// Writes the header line.
pub fn header(out: &mut impl Write, layout: Layout) -> std::io::Result<()> {
    let time = match layout.zone {
        Zone::Utc => "TIME (UTC)",
        Zone::Local => "TIME (local)",
    };
    line(
        out,
        layout,
        [time, "USER", "COMPUTER", "RISK", "ALARM", "ACTIONS"],
        "WHAT",
    )
}

/// Writes one alarm as a row; `outcomes` mark the actions performed (`webhook✓`, `webhook…`
/// while pending, `webhook✗` given up, `email⊘` over the rate limit); what its cooldown folded
/// into it leads the last column (`+14 more files, 640 MB`), before it is cut.
pub fn row(
    out: &mut impl Write,
    a: &AlarmRecord,
    outcomes: &[ActionOutcome],
    folded: Option<&crate::model::alarm::Folded>,
    layout: Layout,
) -> std::io::Result<()> {
    let time = layout.zone.show(a.fired_at);
    let computer = a.computer.as_deref().unwrap_or("-");
    let risk = a.risk.to_string();
    let user = a.user.as_deref().unwrap_or("-");
    // Refusals first, so a narrow column still shows them.
    let actions = match a.refused.len() {
        0 => action_labels(&a.actions, outcomes),
        n => format!("{n} refused; {}", action_labels(&a.actions, outcomes)),
    };
    let what = match folded {
        Some(f) => format!("{} · {}", f.label(), a.summary),
        None => a.summary.clone(),
    };
    line(
        out,
        layout,
        [&time, user, computer, &risk, &a.alarm, &actions],
        &what,
    )
}

/// One line: `cells` are time, user, computer (left out unless the layout shows it), risk,
/// alarm, actions; `last` is the long column, cut at 80.
fn line(out: &mut impl Write, layout: Layout, cells: [&str; 6], last: &str) -> std::io::Result<()> {
    let [time, user, computer, rest @ ..] = cells;
    let mut columns = vec![(time, layout.zone.width()), (user, WIDTHS[1])];
    if layout.computer {
        columns.push((computer, COMPUTER_WIDTH));
    }
    columns.extend(rest.into_iter().zip(WIDTHS[2..].iter().copied()));
    for (cell, width) in columns {
        write!(out, "{:<width$}  ", fit(cell, width))?;
    }
    writeln!(out, "{}", fit(last, 80))
}

/// Shortens `s` to `width` characters, marking the cut with an ellipsis.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_cut() {
        let pack = crate::packs::Pack::standard().expect("standard");
        let youtube = &pack.alarms[0];
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-02T13:50:01+01:00").expect("ts");
        let event = crate::event::Event::new(crate::event::EventKind::Activity, ts)
            .with_text(crate::event::Field::Username, "alice")
            .with_text(crate::event::Field::PrimaryDomain, "youtube.com");
        let fired = crate::alarms::FiredAlarm::new(0, &pack, youtube, &event, ts, None);
        let mut out = Vec::new();
        row(&mut out, &fired.record, &[], None, Layout::default()).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with("2026-11-02T12:50:01Z  alice       2     YouTube over 20 minutes"),
            "{text}"
        );
        assert!(text.contains("screenshot×3, popup"), "{text}");
        assert_eq!(fit("abcdef", 4), "abc…");
        let hub = Layout {
            computer: true,
            ..Layout::default()
        };
        let mut out = Vec::new();
        header(&mut out, hub).expect("write");
        let mut record = fired.record.clone();
        record.computer = Some("ws-alice".into());
        row(&mut out, &record, &[], None, hub).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with("TIME (UTC)            USER        COMPUTER        RISK  ALARM"),
            "{text}"
        );
        assert!(
            text.contains("2026-11-02T12:50:01Z  alice       ws-alice        2     YouTube"),
            "{text}"
        );
    }
}
