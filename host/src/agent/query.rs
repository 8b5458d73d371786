//! What the admin API and the console both take and give: the alarm filters of a query string
//! (with key-based paging), a risk window, and an alarm's capture files.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::event::Event;
use crate::model::alarm::StoredAlarm;
use crate::risk::{UserRisk, rank};
use crate::store::{AlarmFilter, Store};

/// Alarms on one page unless asked otherwise.
pub const PAGE: u32 = 50;

/// Most alarms on one page.
pub const MAX_PAGE: u32 = 1000;

/// Alarm filters as a query string gives them (empty values mean "any").
#[derive(Debug, Default, Deserialize)]
pub struct AlarmQuery {
    /// Only this user (exact).
    pub user: Option<String>,
    /// Only this computer (exact): on a hub, one agent's alarms.
    pub computer: Option<String>,
    /// Only alarms whose name contains this.
    pub alarm: Option<String>,
    /// Only this pack.
    pub pack: Option<String>,
    /// Fired at or after (RFC 3339 or a date).
    pub since: Option<String>,
    /// Fired before (RFC 3339 or a date).
    pub until: Option<String>,
    /// At least this risk level (1–10).
    pub risk: Option<String>,
    /// Where the previous page ended (`next` of the previous answer).
    pub after: Option<String>,
    /// Alarms per page (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// A query value, trimmed, if there is one.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl AlarmQuery {
    /// Alarms per page.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE)
    }

    /// The store's filter (one alarm more than a page, to know whether another follows), or
    /// what is wrong with the query.
    pub fn to_filter(&self) -> Result<AlarmFilter, String> {
        let time = |key: &str, v: &Option<String>, end: crate::event::Bound| {
            given(v)
                .map(|t| {
                    Event::parse_bound(&t, end, chrono::Utc::now())
                        .map(|ts| Event::utc_string(ts.fixed_offset()))
                        .map_err(|e| format!("{key}: {e}"))
                })
                .transpose()
        };
        let min_risk = given(&self.risk)
            .map(|r| match r.parse::<u8>() {
                Ok(n @ 1..=10) => Ok(n),
                _ => Err(format!("risk: {r:?} is not a level from 1 to 10")),
            })
            .transpose()?;
        let after = given(&self.after)
            .map(|a| {
                a.rsplit_once('~')
                    .and_then(|(at, id)| Some((at.to_string(), id.parse().ok()?)))
                    .ok_or_else(|| "after: not a page position (FIRED_AT~ID)".to_string())
            })
            .transpose()?;
        Ok(AlarmFilter {
            user: given(&self.user),
            computer: given(&self.computer),
            alarm: given(&self.alarm),
            pack: given(&self.pack),
            since: time("since", &self.since, crate::event::Bound::Start)?,
            until: time("until", &self.until, crate::event::Bound::End)?,
            min_risk,
            after,
            limit: Some(self.page_size() + 1),
            ..AlarmFilter::default()
        })
    }

    /// The page position after `last`, for `after=`.
    pub fn position(last: &StoredAlarm) -> String {
        format!("{}~{}", Event::utc_string(last.record.fired_at), last.id)
    }

    /// This query string with the page moved on to after `last`.
    pub fn next_page(&self, last: &StoredAlarm) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user", &self.user),
            ("computer", &self.computer),
            ("alarm", &self.alarm),
            ("pack", &self.pack),
            ("since", &self.since),
            ("until", &self.until),
            ("risk", &self.risk),
        ] {
            if let Some(v) = given(v) {
                q.append_pair(k, &v);
            }
        }
        if let Some(l) = self.limit {
            q.append_pair("limit", &l.to_string());
        }
        q.append_pair("after", &AlarmQuery::position(last));
        q.finish()
    }
}

/// One page of `size` alarms for `filter` (from [`AlarmQuery::to_filter`], which asks for one
/// more), and whether another page follows.
pub fn alarm_page(
    store: &Store,
    filter: &AlarmFilter,
    size: u32,
) -> anyhow::Result<(Vec<StoredAlarm>, bool)> {
    let mut alarms = store.alarms(filter)?;
    let more = alarms.len() > size as usize;
    alarms.truncate(size as usize);
    Ok((alarms, more))
}

/// A risk window as a query string gives it.
#[derive(Debug, Default, Deserialize)]
pub struct RiskQuery {
    /// Its length in days (default 7).
    pub days: Option<u32>,
    /// Its end: RFC 3339, or a date (the whole day included); default now.
    pub until: Option<String>,
    /// One user only.
    pub user: Option<String>,
}

impl RiskQuery {
    /// (days, end), or what is wrong.
    pub fn resolve(&self) -> Result<(u32, DateTime<Utc>), String> {
        let days = self.days.unwrap_or(7);
        if !(1..=366).contains(&days) {
            return Err(format!("days: must be 1 to 366, found {days}"));
        }
        let until = match self.until_given() {
            // A day is included whole: the window ends at its end.
            Some(u) => Event::parse_bound(u, crate::event::Bound::End, Utc::now())?,
            None => Utc::now(),
        };
        Ok((days, until))
    }

    /// The end, when one was given.
    pub fn until_given(&self) -> Option<&str> {
        self.until
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// This window as a query string (its end only when one was chosen; otherwise each request
    /// ends now).
    pub fn query(&self, days: u32) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("days", &days.to_string());
        if let Some(u) = self.until_given() {
            q.append_pair("until", u);
        }
        q.finish()
    }
}

/// Users ranked over `days` to `until`, with the trend from the window before.
pub fn ranking(store: &Store, days: u32, until: DateTime<Utc>) -> anyhow::Result<Vec<UserRisk>> {
    let length = Duration::days(i64::from(days));
    let now = store.risk_window(until - length, until)?;
    let before = store.risk_window(until - length - length, until - length)?;
    Ok(rank(&now, &before))
}

/// The store, or an error when a crash poisoned it.
pub fn lock(store: &Mutex<Store>) -> anyhow::Result<MutexGuard<'_, Store>> {
    store
        .lock()
        .map_err(|_| anyhow::anyhow!("the store is unusable after a crash"))
}

/// Capture `n` of alarm `id` (a screenshot or video): only files the store lists for it,
/// never a path from the request; private to the browser (not cached, not sniffed).
pub async fn serve_capture(store: &Arc<Mutex<Store>>, id: i64, n: usize) -> Response {
    let store = store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let store = lock(&store)?;
        let Some(capture) = store.captures_of(id)?.into_iter().nth(n) else {
            return Ok(None);
        };
        // A hub on PostgreSQL keeps what it fetched in the store; otherwise it is a file.
        let held = store.capture_bytes(capture.id)?;
        Ok::<_, anyhow::Error>(Some((capture, held)))
    })
    .await;
    let (capture, held) = match found {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return (StatusCode::NOT_FOUND, "no such capture").into_response(),
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let read = match held {
        Some(bytes) => Ok(bytes),
        None => tokio::fs::read(&capture.path).await,
    };
    let bytes = match read {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::GONE,
                format!("the capture is gone (retention?): {e}"),
            )
                .into_response();
        }
    };
    let kind = if capture.kind == "video" {
        "image/apng"
    } else {
        "image/png"
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "private, no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}
