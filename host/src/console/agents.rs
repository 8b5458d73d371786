//! The Agents page, on a fleet's hub: every agent that reports to it, the ones not reporting
//! first, with when each was last heard from, its version and host, its sources and its backlog.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::page::page as shell;
use super::session::Session;
use super::{ConsoleState, blocking};
use crate::agent::query;

/// `GET /console/agents`
pub async fn page(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    let store = state.api.store.clone();
    let agents = match blocking(move || query::lock(&store)?.agents()).await {
        Ok(a) => a,
        Err(e) => return e,
    };
    let quiet = agents.iter().filter(|a| !a.reporting).count();
    let body = html! {
        h1 { "Agents" }
        @if agents.is_empty() {
            div.card.muted { "No agent reports here: this console is not a fleet's hub, or no agent has sent its heartbeat yet (vigilo run --fleet URL)." }
        } @else {
            p.muted { (agents.len()) " agents, " (quiet) " not reporting" }
            table #agents {
                thead { tr {
                    th { "Agent" } th { "State" } th { "Last seen (UTC)" } th { "Host" }
                    th { "Version" } th { "Sources" } th.num { "Backlog" } th { "Last alarm (UTC)" }
                } }
                tbody {
                    @for a in &agents {
                        @let beat = &a.heartbeat;
                        @let down: Vec<&String> = beat.status.sources.iter().filter(|(_, s)| !s.up).map(|(n, _)| n).collect();
                        tr {
                            td { a href={ "/console/alarms?computer=" (a.agent) } { (a.agent) } }
                            td { @if a.reporting { span.state.done { "reporting" } } @else { span.state.dead { "not reporting" } } }
                            td.mono { (a.last_seen) }
                            td { (beat.host) }
                            td { (beat.version) " · " (beat.os) }
                            td { @if down.is_empty() { "all up" } @else { "down: " (down.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) } }
                            td.num { (beat.status.outbox.pending) }
                            td.mono { (beat.last_alarm.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    };
    shell("Agents", "/console/agents", &session, body).into_response()
}
