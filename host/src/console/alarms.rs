//! The alarms pages: a timeline, newest first, filtered by user, alarm, pack, time and risk and
//! paged by key (fast on a store of 10⁵ alarms); and one alarm with its event, the actions taken
//! and their outcomes, the screenshots (click to enlarge) and the video.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::page::{page, risk_badge, time};
use super::session::Session;
use super::{ConsoleState, blocking, not_found};
use crate::agent::query::{self, AlarmQuery, given};
use crate::event::{Event, FieldValue};
use crate::store::Capture;

/// `GET /console/alarms`
pub async fn list(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(filters): Query<AlarmQuery>,
) -> Response {
    let filter = match filters.to_filter() {
        Ok(f) => f,
        Err(why) => {
            let body = html! { (form(&filters)) div.flash.error role="alert" { (why) } };
            return (
                StatusCode::BAD_REQUEST,
                page("Alarms", "/console/alarms", &session, body),
            )
                .into_response();
        }
    };
    let (store, size) = (state.api.store.clone(), filters.page_size());
    let (alarms, more) =
        match blocking(move || query::alarm_page(&*query::lock(&store)?, &filter, size)).await {
            Ok(page) => page,
            Err(e) => return e,
        };
    let body = html! {
        h1 { "Alarms" }
        (form(&filters))
        @if alarms.is_empty() {
            div.card.muted { "No alarms match." }
        } @else {
            table #alarms {
                thead { tr {
                    th { "Fired (UTC)" } th { "User" } th { "Computer" } th.num { "Risk" }
                    th { "Alarm" }
                    th { "Pack" } th { "What happened" } th { "Actions" }
                } }
                tbody {
                    @for a in &alarms {
                        tr {
                            td.mono { a href={ "/console/alarms/" (a.id) } {
                                (time(&Event::utc_string(a.record.fired_at))) } }
                            td { (a.record.user.as_deref().unwrap_or("—")) }
                            td.muted { (a.record.computer.as_deref().unwrap_or("—")) }
                            td.num { (risk_badge(a.record.risk)) }
                            td { a href={ "/console/alarms/" (a.id) } { (a.record.alarm) } }
                            td.muted { (a.record.pack) }
                            td { @if let Some(f) = &a.folded { strong.folded { (f.label()) } " · " } (a.record.summary) }
                            td.mono { (crate::model::alarm::action_labels(&a.record.actions, &a.outcomes)) }
                        }
                    }
                }
            }
        }
        div.pager {
            span.muted { (alarms.len()) " shown" }
            @if let (true, Some(last)) = (more, alarms.last()) {
                a #older href={ "/console/alarms?" (filters.next_page(last)) } { "Older →" }
            }
        }
    };
    page("Alarms", "/console/alarms", &session, body).into_response()
}

fn form(f: &AlarmQuery) -> Markup {
    let v = |x: &Option<String>| given(x).unwrap_or_default();
    html! {
        form.filters.card method="get" action="/console/alarms" {
            label { "User" input name="user" value=(v(&f.user)); }
            label { "Computer" input name="computer" value=(v(&f.computer)); }
            label { "Alarm contains" input name="alarm" value=(v(&f.alarm)); }
            label { "Pack" input name="pack" value=(v(&f.pack)); }
            label { "From" input type="date" name="since" value=(v(&f.since)); }
            label { "Through (UTC)" input type="date" name="until" value=(v(&f.until)); }
            label { "Risk at least"
                select name="risk" {
                    option value="" { "any" }
                    @for r in 1..=10u8 {
                        option value=(r) selected[v(&f.risk) == r.to_string()] { (r) }
                    }
                }
            }
            input type="submit" value="Filter";
            a href="/console/alarms" { "Clear" }
        }
    }
}

/// `GET /console/alarms/{id}`
pub async fn one(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    let store = state.api.store.clone();
    let found = blocking(move || {
        let store = query::lock(&store)?;
        match store.alarm(id)? {
            Some(alarm) => Ok(Some((alarm, store.captures_of(id)?))),
            None => Ok(None),
        }
    })
    .await;
    let (alarm, captures) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(&session, &format!("There is no alarm {id}.")),
        Err(e) => return e,
    };
    let r = &alarm.record;
    let body = html! {
        p { a href="/console/alarms" { "← All alarms" } }
        h1 { (risk_badge(r.risk)) " " (r.alarm) }
        div.grid2 {
            div.card {
                dl.fields {
                    dt { "Fired (UTC)" } dd { (time(&Event::utc_string(r.fired_at))) }
                    dt { "User" } dd { (r.user.as_deref().unwrap_or("—")) }
                    dt { "Computer" } dd { (r.computer.as_deref().unwrap_or("—")) }
                    dt { "Pack" } dd { (r.pack) " " (r.pack_version) }
                    dt { "What happened" } dd { (r.summary) }
                    @if let Some(note) = &r.note { dt { "Why" } dd { (note) } }
                    @if let Some(f) = &alarm.folded {
                        dt { "Within its cooldown" }
                        dd #folded {
                            (f.label())
                            @if !f.paths.is_empty() {
                                ul { @for p in &f.paths { li { code { (p) } } } }
                                @if (f.paths.len() as u64) < f.count {
                                    p.muted { "(the first " (f.paths.len()) " paths)" }
                                }
                            }
                        }
                    }
                }
            }
            div.card {
                h2 style="margin-top:0" { "Event" }
                dl.fields #event {
                    @for (field, value) in r.event.fields() {
                        dt { (field.name()) }
                        dd { @match value {
                            FieldValue::Text(t) => (t),
                            FieldValue::Number(n) => (n),
                        } }
                    }
                }
            }
        }
        h2 { "Actions" }
        @if r.actions.is_empty() && r.refused.is_empty() {
            p.muted { "This alarm only records." }
        } @else {
            table #actions {
                thead { tr { th { "Action" } th { "Outcome" } th.num { "Attempts" } th { "Detail" } } }
                tbody {
                    @for (i, action) in r.actions.iter().enumerate() {
                        @let outcome = alarm.outcomes.iter().find(|o| o.position == i);
                        tr {
                            td { (action.name()) }
                            @match outcome {
                                Some(o) => {
                                    td { span class={ "state " (o.state) } { (o.state) } }
                                    td.num { (o.attempts) }
                                    td { (o.detail.as_deref().unwrap_or("")) }
                                }
                                None => {
                                    @match alarm.origin.strip_prefix("fleet:") {
                                        // Forwarded: its agent performed the actions.
                                        Some(agent) => {
                                            td.muted { "at its agent" } td {} td.muted { "performed by " (agent) "; its outcome is on that agent" }
                                        }
                                        None => {
                                            td.muted { "recorded" } td {} td.muted { "not performed for this alarm's origin (" (alarm.origin) ")" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @for refused in &r.refused {
                        tr {
                            td { (refused.action.name()) }
                            td { span.state.refused { "refused" } }
                            td {}
                            td { (refused.reason) }
                        }
                    }
                }
            }
        }
        (captures_section(id, &captures))
    };
    page(&r.alarm, "/console/alarms", &session, body).into_response()
}

fn captures_section(alarm: i64, captures: &[Capture]) -> Markup {
    html! {
        @if !captures.is_empty() {
            h2 { "Screen" }
            div.shots #captures {
                @for (n, c) in captures.iter().enumerate() {
                    @let src = format!("/console/alarms/{alarm}/captures/{n}");
                    figure {
                        // Click to enlarge: a CSS-only lightbox (no script needed).
                        a href={ "#capture-" (n) } {
                            img src=(src) alt={ (c.kind) " " (n + 1) } loading="lazy";
                        }
                        figcaption {
                            (c.kind) " · " (time(&c.taken_at)) " · " (c.bytes.div_ceil(1024)) " KiB"
                            @if c.kind == "video" { " · plays in the page; reload to replay" }
                        }
                    }
                    a.lightbox id={ "capture-" (n) } href="#captures" { img src=(src) alt="enlarged"; }
                }
            }
        }
    }
}

/// `GET /console/alarms/{id}/captures/{n}`
pub async fn capture(
    State(state): State<ConsoleState>,
    Path((id, n)): Path<(i64, usize)>,
) -> Response {
    crate::agent::query::serve_capture(&state.api.store, id, n).await
}
