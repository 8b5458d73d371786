//! The human-readable alarm table shared by `replay` and `alarms`.

use std::io::Write;

/// One alarm as a table shows it.
pub struct Row<'a> {
    /// When (UTC, RFC 3339).
    pub time: &'a str,
    /// Who.
    pub user: &'a str,
    /// Risk level.
    pub risk: u8,
    /// Alarm name.
    pub alarm: &'a str,
    /// The planned actions, as JSON (`[{"screenshot": {...}}, …]`).
    pub actions: &'a serde_json::Value,
    /// What happened.
    pub what: &'a str,
}

const WIDTHS: [usize; 5] = [20, 10, 4, 30, 22];

/// Writes the header line.
pub fn header(out: &mut impl Write) -> std::io::Result<()> {
    line(
        out,
        ["TIME (UTC)", "USER", "RISK", "ALARM", "ACTIONS"],
        "WHAT",
    )
}

/// Writes one row.
pub fn row(out: &mut impl Write, r: &Row<'_>) -> std::io::Result<()> {
    let time = r
        .time
        .get(..19)
        .map_or(r.time.to_string(), |t| format!("{t}Z"));
    let risk = r.risk.to_string();
    let actions = action_labels(r.actions);
    line(out, [&time, r.user, &risk, r.alarm, &actions], r.what)
}

fn line(out: &mut impl Write, cells: [&str; 5], last: &str) -> std::io::Result<()> {
    for (cell, width) in cells.iter().zip(WIDTHS) {
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

/// `screenshot×3, popup` from a JSON list of planned actions.
pub fn action_labels(actions: &serde_json::Value) -> String {
    let labels: Vec<String> = actions
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_object()?.iter().next())
                .map(|(name, params)| match params["count"].as_u64() {
                    Some(n) if n > 1 => format!("{name}×{n}"),
                    _ => name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    if labels.is_empty() {
        "-".into()
    } else {
        labels.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_cut() {
        let actions =
            serde_json::json!([{"screenshot": {"count": 3}}, {"popup": {"message": "x"}}]);
        let mut out = Vec::new();
        row(
            &mut out,
            &Row {
                time: "2026-11-02T12:50:01.000Z",
                user: "alice",
                risk: 2,
                alarm: "YouTube over 20 minutes",
                actions: &actions,
                what: "youtube.com",
            },
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.starts_with("2026-11-02T12:50:01Z  alice       2     YouTube over 20 minutes"),
            "{text}"
        );
        assert!(text.contains("screenshot×3, popup"), "{text}");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
