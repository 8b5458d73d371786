//! The hub's groups page: each group's member users and computers, a form to make or change
//! one, and removal. What is kept here reaches every agent through the bus; targets that name
//! a group follow its members from then on.

use axum::Extension;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::page::{Done, after_change, csrf_field, flash, page as shell, time};
use super::session::Session;
use super::{ConsoleState, csrf_refused};
use crate::agent::groups::{GroupForm, GroupRefusal, list_groups, remove_group, set_group};
use crate::model::targets::Group;

/// Who made a change, for the audit trail.
const ACTOR: &str = "admin (console)";

/// `GET /console/groups`
pub async fn page(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(done): Query<Done>,
) -> Response {
    render(&state, &session, done.done.as_deref(), &[], StatusCode::OK).await
}

async fn render(
    state: &ConsoleState,
    session: &Session,
    done: Option<&str>,
    errors: &[String],
    status: StatusCode,
) -> Response {
    let mut errors = errors.to_vec();
    let hub = state.api.groups.is_some();
    let groups = if hub {
        list_groups(&state.api).await.unwrap_or_else(|e| {
            errors.push(format!("the groups cannot be read: {e}"));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let body = html! {
        h1 { "Groups" }
        (flash(done, &errors))
        @if !hub {
            p.muted { "Groups are defined on the fleet's hub (" code { "vigilo hub" } ") and \
                       reach every agent through the bus." }
        } @else {
            div.card {
                h2 style="margin-top:0" { "Make or change a group" }
                p.muted { "Pack targets and alarms' " code { "applies_to" } " name groups; every \
                           agent hears of a change within moments. Names: letters, digits, "
                           code { "-" } ", " code { "_" } ", " code { "." } "." }
                (group_form(session, None))
            }
            table #groups {
                thead { tr { th { "Group" } th { "Users" } th { "Computers" } th { "Changed" } th { "" } } }
                tbody {
                    @if groups.is_empty() {
                        tr { td colspan="5" .muted { "No groups yet." } }
                    }
                    @for g in &groups {
                        tr data-group=(g.name) {
                            td { strong { (g.name) } @if !g.description.is_empty() { br; span.muted { (g.description) } } }
                            td.users { (g.users.join(", ")) }
                            td.computers { (g.computers.join(", ")) }
                            td.muted { (time(&g.updated_at)) br; (g.updated_by) }
                            td {
                                details { summary { "Edit" } (group_form(session, Some(g))) }
                                form.inline method="post" action={ "/console/groups/" (g.name) "/remove" } {
                                    (csrf_field(session))
                                    button.small type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    (status, shell("Groups", "/console/groups", session, body)).into_response()
}

/// The form that makes a group, or changes `group`.
fn group_form(session: &Session, group: Option<&Group>) -> maud::Markup {
    let (name, users, computers, description) = match group {
        Some(g) => (
            g.name.as_str(),
            g.users.join(", "),
            g.computers.join(", "),
            g.description.as_str(),
        ),
        None => ("", String::new(), String::new(), ""),
    };
    html! {
        form.group method="post" action="/console/groups" {
            (csrf_field(session))
            @if group.is_some() {
                input type="hidden" name="name" value=(name);
            } @else {
                label { "Name " input type="text" name="name" required maxlength="64"; }
                " "
            }
            label { "Users " input type="text" name="users" value=(users) placeholder="ann, bob"; }
            " "
            label { "Computers " input type="text" name="computers" value=(computers) placeholder="ws-fin-01"; }
            " "
            label { "Description " input type="text" name="description" value=(description); }
            " "
            input type="submit" value=(if group.is_some() { "Save" } else { "Make" });
        }
    }
}

/// The group form as posted: lists separated by commas or new lines.
#[derive(Deserialize)]
pub struct Posted {
    csrf: String,
    name: String,
    #[serde(default)]
    users: String,
    #[serde(default)]
    computers: String,
    #[serde(default)]
    description: String,
}

fn names(list: &str) -> Vec<String> {
    list.split([',', '\n'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// `POST /console/groups`: makes or changes a group.
pub async fn set(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<Posted>,
) -> Response {
    if !session.allows(&form.csrf) {
        return csrf_refused();
    }
    let posted = GroupForm {
        description: form.description,
        users: names(&form.users),
        computers: names(&form.computers),
    };
    match set_group(&state.api, form.name.trim(), posted, ACTOR.to_string()).await {
        Ok(g) => after_change(
            "/console/groups",
            &format!(
                "Group {} kept: {} users, {} computers.",
                g.name,
                g.users.len(),
                g.computers.len()
            ),
        ),
        Err(e) => refused(&state, &session, e).await,
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
}

/// `POST /console/groups/{name}/remove`
pub async fn remove(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return csrf_refused();
    }
    match remove_group(&state.api, &name, ACTOR.to_string()).await {
        Ok(()) => after_change("/console/groups", &format!("Group {name} removed.")),
        Err(e) => refused(&state, &session, e).await,
    }
}

/// The page again, saying why nothing changed.
async fn refused(state: &ConsoleState, session: &Session, why: GroupRefusal) -> Response {
    let errors = [why.to_string()];
    render(
        state,
        session,
        None,
        &errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}
