//! The agent page: sources up or down and why, events per second, alarms, plugins and scripts
//! (quarantined ones highlighted with their last fault), the store's size and the outbox.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::ConsoleState;
use super::page::page as shell;
use super::session::Session;
use crate::model::report::StatusReport;

/// `GET /console/agent`
pub async fn page(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    let report = match crate::agent::api::status_report(&state.api).await {
        Ok(r) => r,
        Err(why) => return (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    };
    let latency = |ms: fn(&crate::model::report::Latency) -> f64| {
        report
            .latency
            .as_ref()
            .map_or("—".to_string(), |l| number(ms(l)))
    };
    let StatusReport {
        sources, programs, ..
    } = &report;
    let store_mib = report.store.bytes as f64 / (1024.0 * 1024.0);
    let body = html! {
        h1 { "Agent" }
        div.grid2 {
            div.card { div.muted { "Events per second (last minute)" } div.stat #eps { (number(report.events_per_second)) }
                       div.muted { (report.events) " events since start" } }
            div.card { div.muted { "Alarms today" } div.stat { (report.alarms_today) }
                       div.muted { (report.alarms) " since start" } }
            div.card { div.muted { "Outbox" } div.stat #outbox { (report.outbox.pending) " pending" }
                       div.muted { (report.outbox.dead) " given up" } }
            div.card { div.muted { "Store" } div.stat { (format!("{store_mib:.1}")) " MiB" }
                       div.muted { "title → alarm p50 " (latency(|l| l.p50_ms)) " ms, p99 " (latency(|l| l.p99_ms)) " ms" } }
        }
        h2 { "Sources" }
        table #sources {
            thead { tr { th { "Source" } th { "State" } th { "Detail" } } }
            tbody { @for (name, s) in sources {
                tr { td { (name) }
                     td { @if s.up { span.state.done { "up" } } @else { span.state.dead { "down" } } }
                     td { (s.detail) } }
            } }
        }
        h2 { "Plugins and scripts" }
        @if programs.is_empty() { p.muted { "None loaded." } } @else {
            table #programs {
                thead { tr { th { "Pack" } th { "Name" } th { "Kind" } th { "State" } th { "Calls" } th { "Faults" } th { "Time a call" } th { "Last fault" } } }
                tbody { @for p in programs {
                    tr { td { (p.pack) } td { (p.name) } td { (p.kind) }
                         td { @if let Some(why) = &p.switched_off { span.state.dead title=(why) { "quarantined" } } @else { span.state.done { "running" } } }
                         td.num { (p.calls) } td.num { (p.faults) } td.num { (p.us_per_call) " µs" }
                         td { (p.switched_off.as_deref().or(p.last_fault.as_deref()).unwrap_or("")) } }
                } }
            }
        }
        @if !report.shed.is_empty() {
            h2 { "Shed under load" }
            ul { @for (what, count) in &report.shed { li { (what) ": " (count) } } }
        }
    };
    shell("Agent", "/console/agent", &session, body).into_response()
}

/// A figure as the page shows it: whole numbers without a decimal point, others with one.
fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}
