//! Browser tabs: joins the page a browser extension reports to the window in front.
//!
//! A window title says "Quarterly report - Chromium"; only the browser knows that the page is
//! `https://docs.example.com/…`. The extension (`browser/`) reports the active tab's URL and
//! title through `vigilo browser-host`; this stage keeps the recent reports and gives an
//! activity event its `url` and `primary_domain` when — and only when — the report comes from
//! that window's browser process (the host is a child of the process that owns the window) and
//! the tab's title is in the window's title. Anything less would be a guess, and a guessed URL
//! in an alarm is worse than none: without a matching report the URL stays empty.
//!
//! The report and the title change race each other (either may come first), so a report that
//! arrives after its window's event produces that event again, now with the URL; the sessions
//! stage treats it as the same span learning its URL.

use std::collections::VecDeque;

use chrono::{DateTime, FixedOffset};

use crate::event::{Event, EventKind, Field};

/// How many recent reports are kept (the active tab of each browser window seen lately).
const RECENT: usize = 32;

/// The longest URL kept; longer ones are cut (query strings can be huge).
pub const MAX_URL: usize = 4096;

/// One report from a browser: its active tab.
#[derive(Debug, Clone, PartialEq)]
pub struct TabReport {
    /// The tab's URL, without any user name or password.
    pub url: String,
    /// The tab's title.
    pub title: String,
    /// The processes the report may speak for: the native host's ancestors (the browser).
    pub browsers: Vec<u32>,
}

impl TabReport {
    /// A report as the extension sent it; the URL is cleaned ([`clean_url`]). `None` when the
    /// URL is not one (the report is then ignored rather than guessed at).
    pub fn new(url: &str, title: &str, browsers: Vec<u32>) -> Option<TabReport> {
        Some(TabReport {
            url: clean_url(url)?,
            title: title.trim().to_string(),
            browsers,
        })
    }

    /// Whether this report describes the window of `event`.
    fn describes(&self, event: &Event) -> bool {
        let Some(pid) = event.number(Field::Pid) else {
            return false;
        };
        !self.title.is_empty()
            && self.browsers.iter().any(|&b| f64::from(b) == pid)
            && event
                .text(Field::Title)
                .is_some_and(|t| t.contains(self.title.as_str()))
    }
}

/// The tabs stage: see the module docs.
#[derive(Default)]
pub struct Tabs {
    recent: VecDeque<TabReport>,
    /// The last activity event as the window source sent it (before any URL was added).
    front: Option<Event>,
}

impl Tabs {
    /// An empty stage.
    pub fn new() -> Tabs {
        Tabs::default()
    }

    /// Gives an activity event from a window source its URL, when a report describes its
    /// window. Events that already carry a URL (recorded streams) are left as they are.
    pub fn enrich(&mut self, event: &mut Event) {
        if event.kind() != EventKind::Activity || event.has(Field::Url) {
            return;
        }
        self.front = Some(event.clone());
        if let Some(report) = self.recent.iter().rev().find(|r| r.describes(event)) {
            set_url(event, &report.url);
        }
    }

    /// Takes a report. When it describes the window in front, returns that window's event
    /// again, stamped `now` and carrying the URL, for the pipeline to evaluate.
    pub fn report(&mut self, report: TabReport, now: DateTime<FixedOffset>) -> Option<Event> {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        // A newer report of the same page replaces the older one.
        self.recent
            .retain(|r| !(r.url == report.url && r.title == report.title));
        self.recent.push_back(report);
        let report = self.recent.back()?;
        let front = self.front.as_ref()?;
        if !report.describes(front) {
            return None;
        }
        let mut event = front.clone();
        event.set_ts(now.max(front.ts()));
        set_url(&mut event, &report.url);
        Some(event)
    }
}

fn set_url(event: &mut Event, url: &str) {
    event.set_text(Field::Url, url);
    match primary_domain(url) {
        Some(domain) => event.set_text(Field::PrimaryDomain, &domain),
        None => event.remove(Field::PrimaryDomain),
    }
}

/// A URL fit to store: parsed, without user name or password, at most [`MAX_URL`] bytes.
/// `None` when `raw` is not a URL.
pub fn clean_url(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw.trim()).ok()?;
    // Credentials in a URL are secrets, not activity: never store them.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut text = String::from(url);
    if text.len() > MAX_URL {
        let mut end = MAX_URL;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text)
}

/// The registrable domain of a URL's host by the Public Suffix List ("www.bbc.co.uk" →
/// "bbc.co.uk"); `None` for IP addresses, single-label hosts and non-web URLs.
pub fn primary_domain(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let url::Host::Domain(host) = parsed.host()? else {
        return None;
    };
    let host = host.trim_end_matches('.');
    let domain = psl::domain(host.as_bytes())?;
    // The list's implicit "*" rule makes "localhost" a suffix with no registrable part; a
    // domain must have a known suffix and a label before it.
    if !domain.suffix().is_known() {
        return None;
    }
    std::str::from_utf8(domain.as_bytes())
        .ok()
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("2026-11-02T{s}Z")).expect("ts")
    }

    fn window(title: &str, pid: u32) -> Event {
        Event::new(EventKind::Activity, at("09:00:00"))
            .with_text(Field::Title, title)
            .with_number(Field::Pid, f64::from(pid))
    }

    #[test]
    fn primary_domains_follow_the_public_suffix_list() {
        let cases = [
            ("https://www.bbc.co.uk/news", Some("bbc.co.uk")),
            ("https://mail.google.com/mail/u/0/", Some("google.com")),
            ("https://alice.github.io/x", Some("alice.github.io")),
            ("https://WWW.Example.COM./", Some("example.com")),
            ("http://192.168.1.10/admin", None),
            ("http://localhost:8080/", None),
            ("chrome://newtab/", None),
            ("file:///home/alice/a.pdf", None),
        ];
        for (url, want) in cases {
            assert_eq!(primary_domain(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn urls_lose_credentials_and_junk_is_refused() {
        assert_eq!(
            clean_url("https://bob:hunter2@intranet.example.com/a?b=1").as_deref(),
            Some("https://intranet.example.com/a?b=1")
        );
        assert_eq!(clean_url("not a url"), None);
        let long = format!("https://example.com/?q={}", "é".repeat(5000));
        assert!(clean_url(&long).is_some_and(|u| u.len() <= MAX_URL));
    }

    #[test]
    fn a_report_names_the_page_only_of_its_own_browsers_window() {
        let mut tabs = Tabs::new();
        let report = TabReport::new("https://news.example.com/a", "Big news", vec![4000, 1])
            .expect("report");
        assert_eq!(tabs.report(report, at("08:59:59")), None);

        let mut event = window("Big news - Chromium", 4000);
        tabs.enrich(&mut event);
        assert_eq!(event.text(Field::Url), Some("https://news.example.com/a"));
        assert_eq!(event.text(Field::PrimaryDomain), Some("example.com"));

        // Another process's window with the same title: not the browser that reported.
        let mut other = window("Big news - Chromium", 5000);
        tabs.enrich(&mut other);
        assert_eq!(other.text(Field::Url), None);

        // The browser's window showing another page: not guessed.
        let mut elsewhere = window("Settings - Chromium", 4000);
        tabs.enrich(&mut elsewhere);
        assert_eq!(elsewhere.text(Field::Url), None);
    }

    #[test]
    fn a_report_after_the_title_change_brings_the_window_back_with_its_url() {
        let mut tabs = Tabs::new();
        let mut event = window("Inbox (3) - Mail - Chromium", 4000);
        tabs.enrich(&mut event);
        assert_eq!(event.text(Field::Url), None);
        let report = TabReport::new(
            "https://mail.example.org/inbox",
            "Inbox (3) - Mail",
            vec![4000],
        )
        .expect("report");
        let again = tabs
            .report(report, at("09:00:01"))
            .expect("the window again");
        assert_eq!(
            again.text(Field::Title),
            Some("Inbox (3) - Mail - Chromium")
        );
        assert_eq!(
            again.text(Field::Url),
            Some("https://mail.example.org/inbox")
        );
        assert_eq!(again.ts(), at("09:00:01"));
        // A report for a tab that is not in front changes nothing.
        let other = TabReport::new("https://example.net/", "Other", vec![4000]).expect("report");
        assert_eq!(tabs.report(other, at("09:00:02")), None);
    }

    #[test]
    fn recorded_urls_are_kept_as_they_are() {
        let mut tabs = Tabs::new();
        let report = TabReport::new("https://a.example.com/", "A", vec![7]).expect("report");
        tabs.report(report, at("09:00:00"));
        let mut event = window("A", 7).with_text(Field::Url, "https://recorded.example/");
        tabs.enrich(&mut event);
        assert_eq!(event.text(Field::Url), Some("https://recorded.example/"));
    }
}
