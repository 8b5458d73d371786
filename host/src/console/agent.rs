//! The agent page: sources up or down and why, events per second, alarms, plugins and scripts
//! (quarantined ones highlighted with their last fault), the store's size and the outbox.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::Value;

use super::ConsoleState;
use super::page::page as shell;
use super::session::Session;

/// `GET /console/agent`
pub async fn page(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    let report = match crate::agent::api::status_report(&state.api).await {
        Ok(r) => r,
        Err(why) => return (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    };
    let n = |path: &[&str]| {
        path.iter()
            .fold(&report, |v, k| &v[*k])
            .as_f64()
            .map_or("—".to_string(), |x| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.1}")
                }
            })
    };
    let sources = state.api.stats.sources();
    let programs = state.api.stats.programs();
    let store_mib = report["store"]["bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
    let body = html! {
        h1 { "Agent" }
        div.grid2 {
            div.card { div.muted { "Events per second (last minute)" } div.stat #eps { (n(&["events_per_second"])) }
                       div.muted { (n(&["events"])) " events since start" } }
            div.card { div.muted { "Alarms today" } div.stat { (n(&["alarms_today"])) }
                       div.muted { (n(&["alarms"])) " since start" } }
            div.card { div.muted { "Outbox" } div.stat #outbox { (n(&["outbox", "pending"])) " pending" }
                       div.muted { (n(&["outbox", "dead"])) " given up" } }
            div.card { div.muted { "Store" } div.stat { (format!("{store_mib:.1}")) " MiB" }
                       div.muted { "title → alarm p50 " (n(&["latency", "p50_ms"])) " ms, p99 " (n(&["latency", "p99_ms"])) " ms" } }
        }
        h2 { "Sources" }
        table #sources {
            thead { tr { th { "Source" } th { "State" } th { "Detail" } } }
            tbody { @for (name, s) in &sources {
                tr { td { (name) }
                     td { @if s.up { span.state.done { "up" } } @else { span.state.dead { "down" } } }
                     td { (s.detail) } }
            } }
        }
        h2 { "Plugins and scripts" }
        @if programs.is_empty() { p.muted { "None loaded." } } @else {
            table #programs {
                thead { tr { th { "Pack" } th { "Name" } th { "Kind" } th { "State" } th { "Calls" } th { "Faults" } th { "Time a call" } th { "Last fault" } } }
                tbody { @for p in &programs {
                    tr { td { (p.pack) } td { (p.name) } td { (p.kind) }
                         td { @if let Some(why) = &p.switched_off { span.state.dead title=(why) { "quarantined" } } @else { span.state.done { "running" } } }
                         td.num { (p.calls) } td.num { (p.faults) } td.num { (p.us_per_call) " µs" }
                         td { (p.switched_off.as_deref().or(p.last_fault.as_deref()).unwrap_or("")) } }
                } }
            }
        }
        @if let Some(shed) = report["shed"].as_object().filter(|s| !s.is_empty()) {
            h2 { "Shed under load" }
            ul { @for (what, count) in shed { li { (what) ": " (count_text(count)) } } }
        }
    };
    shell("Agent", "/console/agent", &session, body).into_response()
}

fn count_text(v: &Value) -> String {
    v.as_u64().map_or_else(|| v.to_string(), |n| n.to_string())
}
