//! The hub's groups, through its API (`/api/v1/fleet/groups`) and its console: users and
//! computers under one name, which pack targets and alarms' `applies_to` list. A change is
//! kept on the bus, where every agent hears it, and audited here as a setup change.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::api::{AppState, actor, on_packs};
use super::pack_set::Refusal;
use crate::fleet::groups::{GroupBook, GroupError};
use crate::model::targets::Group;

/// What an admin says a group is (the name is the path's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupForm {
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Member users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Member computers (agent ids).
    #[serde(default)]
    pub computers: Vec<String>,
}

/// Why a change to the groups was not made.
#[derive(Debug, thiserror::Error)]
pub enum GroupRefusal {
    /// Only a hub defines groups.
    #[error("this is not a fleet's hub: groups are defined on `vigilo hub`")]
    NotHub,
    /// What the admin gave is not a group (400).
    #[error("{0}")]
    Bad(String),
    /// No such group (404).
    #[error("{0}")]
    Unknown(String),
    /// The bus or the audit trail failed (500).
    #[error("{0}")]
    Failed(String),
}

impl From<GroupError> for GroupRefusal {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Bad(bad) => GroupRefusal::Bad(bad.to_string()),
            GroupError::Bus(why) => GroupRefusal::Failed(why),
        }
    }
}

impl From<Refusal> for GroupRefusal {
    fn from(e: Refusal) -> Self {
        GroupRefusal::Failed(e.to_string())
    }
}

impl IntoResponse for GroupRefusal {
    fn into_response(self) -> Response {
        let status = match self {
            GroupRefusal::NotHub => StatusCode::CONFLICT,
            GroupRefusal::Bad(_) => StatusCode::BAD_REQUEST,
            GroupRefusal::Unknown(_) => StatusCode::NOT_FOUND,
            GroupRefusal::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

fn book(state: &AppState) -> Result<&GroupBook, GroupRefusal> {
    state.groups.as_deref().ok_or(GroupRefusal::NotHub)
}

/// Every group the hub defines.
pub async fn list_groups(state: &AppState) -> Result<Vec<Group>, GroupRefusal> {
    Ok(book(state)?.list().await?)
}

/// Makes or replaces group `name` as `actor` says; audited.
pub async fn set_group(
    state: &AppState,
    name: &str,
    form: GroupForm,
    actor: String,
) -> Result<Group, GroupRefusal> {
    let book = book(state)?;
    // Each name once, in the order given.
    let once = |list: Vec<String>| {
        let mut seen = std::collections::BTreeSet::new();
        list.into_iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty() && seen.insert(crate::model::targets::fold(n)))
            .collect::<Vec<_>>()
    };
    let group = Group {
        form: crate::model::FORM_VERSION,
        name: name.to_string(),
        description: form.description.trim().to_string(),
        users: once(form.users),
        computers: once(form.computers),
        updated_by: actor.clone(),
        updated_at: crate::event::Event::utc_string(chrono::Utc::now().fixed_offset()),
    };
    book.set(&group).await?;
    let detail = format!(
        "{} users, {} computers",
        group.users.len(),
        group.computers.len()
    );
    let object = group.name.clone();
    on_packs(state, move |set| {
        set.record_fleet_change(&actor, "group_set", &object, &detail);
        Ok(())
    })
    .await?;
    Ok(group)
}

/// Removes group `name` as `actor`; audited.
pub async fn remove_group(state: &AppState, name: &str, actor: String) -> Result<(), GroupRefusal> {
    if !book(state)?.remove(name).await? {
        return Err(GroupRefusal::Unknown(format!("no group {name:?}")));
    }
    let object = name.to_string();
    on_packs(state, move |set| {
        set.record_fleet_change(&actor, "group_removed", &object, "");
        Ok(())
    })
    .await?;
    Ok(())
}

pub(super) async fn list(State(state): State<AppState>) -> Response {
    match list_groups(&state).await {
        Ok(groups) => Json(json!({ "groups": groups })).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

pub(super) async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<GroupForm>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let form = match body {
        Ok(Json(form)) => form,
        Err(e) => {
            return GroupRefusal::Bad(format!("not a group: {}", e.body_text())).into_response();
        }
    };
    match set_group(&state, &name, form, actor(&headers)).await {
        Ok(group) => Json(group).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match remove_group(&state, &name, actor(&headers)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
