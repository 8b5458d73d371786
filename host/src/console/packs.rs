//! The packs page: what is loaded (version, publisher, signature, grants, contents), upload
//! (a refused pack shows every error and changes nothing), enable, disable, roll back, and the
//! audit trail of changes.

use axum::Extension;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::page::{csrf_field, flash, page as shell, time};
use super::session::Session;
use super::{ConsoleState, csrf_refused};
use crate::agent::api::on_packs;
use crate::agent::pack_set::Refusal;
use crate::model::report::{AuditEntry, PackInfo};

/// Audit entries shown.
const AUDIT_SHOWN: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /console/packs`
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
    let loaded = on_packs(&state.api, |set| {
        Ok((set.list()?, set.audit_trail(AUDIT_SHOWN)?))
    })
    .await;
    let mut errors = errors.to_vec();
    let (packs, audit): (Vec<PackInfo>, Vec<AuditEntry>) = match loaded {
        Ok(l) => l,
        Err(refusal) => {
            errors.push(format!("the packs cannot be listed: {refusal}"));
            (Vec::new(), Vec::new())
        }
    };
    let body = html! {
        h1 { "Packs" }
        (flash(done, &errors))
        div.card {
            h2 style="margin-top:0" { "Upload a pack" }
            form #upload method="post" action="/console/packs" enctype="multipart/form-data" {
                (csrf_field(session))
                label { "Archive (.tar.gz from " code { "vigilo pack build" } ") " input type="file" name="archive" required; }
                " "
                label { "Signature (.minisig, optional) " input type="file" name="signature"; }
                " "
                input type="submit" value="Upload";
            }
        }
        table #packs {
            thead { tr {
                th { "Pack" } th { "Version" } th { "State" } th { "Signature" } th { "Grants" }
                th { "Contents" } th { "" }
            } }
            tbody {
                @for p in &packs {
                    tr data-pack=(p.name) {
                        td { strong { (p.name) } br; span.muted { (p.publisher.as_deref().unwrap_or("")) } }
                        td.mono { (p.version)
                            @if p.versions.len() > 1 { br; span.muted { (p.versions.len()) " versions" } } }
                        td { @if p.enabled { span.state.done { "enabled" } } @else { span.state.limited { "disabled" } } }
                        td { (p.signature) }
                        td { (p.grants) }
                        td {
                            (p.alarms.len()) " alarms"
                            @if !p.plugins.is_empty() { ", " (p.plugins.len()) " plugins" }
                            @if !p.scripts.is_empty() { ", " (p.scripts.len()) " scripts" }
                            details { summary.muted { "list" }
                                ul { @for a in &p.alarms { li { (a) } }
                                     @for f in p.plugins.iter().chain(&p.scripts) { li.mono { (f) } } } }
                        }
                        td {
                            @for (change, label, shown) in [
                                ("enable", "Enable", !p.enabled),
                                ("disable", "Disable", p.enabled),
                                ("rollback", "Roll back", p.versions.len() > 1),
                            ] {
                                @if shown {
                                    form.inline method="post" action={ "/console/packs/" (p.name) "/" (change) } {
                                        (csrf_field(session))
                                        button.small type="submit" { (label) }
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Audit trail" }
        table #audit {
            thead { tr { th { "When (UTC)" } th { "Who" } th { "What" } th { "On" } th { "Detail" } } }
            tbody {
                @for e in &audit {
                    tr { td.mono { (time(&e.at)) } td { (e.actor) } td { (e.action) } td { (e.object) }
                         td.muted { (e.detail.as_deref().unwrap_or("")) } }
                }
            }
        }
    };
    (status, shell("Packs", "/console/packs", session, body)).into_response()
}

/// Who made a change, for the audit trail.
const ACTOR: &str = "admin (console)";

/// `POST /console/packs`: an upload (multipart: `csrf`, `archive`, optional `signature`).
pub async fn upload(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    mut form: Multipart,
) -> Response {
    let (mut csrf, mut archive, mut signature) = (None, None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return refused(
                    &state,
                    &session,
                    &[format!("the upload did not arrive whole: {e}")],
                )
                .await;
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = match field.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return refused(&state, &session, &[format!("{name}: {e}")]).await,
        };
        match name.as_str() {
            "csrf" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "archive" if !bytes.is_empty() => archive = Some((file_name, bytes)),
            "signature" if !bytes.is_empty() => match String::from_utf8(bytes) {
                Ok(text) => signature = Some(text),
                Err(_) => {
                    return refused(
                        &state,
                        &session,
                        &["signature: not a .minisig text file".into()],
                    )
                    .await;
                }
            },
            _ => {}
        }
    }
    if !csrf.is_some_and(|c| session.allows(&c)) {
        return csrf_refused();
    }
    let Some((file_name, archive)) = archive else {
        return refused(
            &state,
            &session,
            &["choose a pack archive to upload".into()],
        )
        .await;
    };
    let shown = file_name.unwrap_or_else(|| "the archive".into());
    let outcome = on_packs(&state.api, move |set| {
        set.upload(&archive, signature.as_deref(), ACTOR)
    })
    .await;
    match outcome {
        Ok(info) => after_change(&format!(
            "{} {} uploaded and running.",
            info.name, info.version
        )),
        Err(Refusal::Invalid(errors)) => {
            let mut all = vec![format!("{shown} was refused:")];
            all.extend(errors);
            refused(&state, &session, &all).await
        }
        Err(other) => refused(&state, &session, &[other.to_string()]).await,
    }
}

/// The page again, with what was refused and why; nothing changed.
async fn refused(state: &ConsoleState, session: &Session, errors: &[String]) -> Response {
    render(
        state,
        session,
        None,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Back to the page, saying what was done (a redirect, so a reload does not repeat it).
fn after_change(done: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", done)
        .finish();
    let to = format!("/console/packs?{query}");
    Redirect::to(&to).into_response()
}

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
}

/// `POST /console/packs/{name}/{enable|disable|rollback}`
pub async fn change(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Path((name, change)): Path<(String, String)>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return csrf_refused();
    }
    let pack = name.clone();
    let outcome = match change.as_str() {
        "enable" => on_packs(&state.api, move |set| set.set_enabled(&pack, true, ACTOR)).await,
        "disable" => on_packs(&state.api, move |set| set.set_enabled(&pack, false, ACTOR)).await,
        "rollback" => on_packs(&state.api, move |set| set.roll_back(&pack, ACTOR)).await,
        other => return (StatusCode::NOT_FOUND, format!("no change {other:?}")).into_response(),
    };
    match outcome {
        Ok(info) => after_change(&match change.as_str() {
            "enable" => format!("{name} enabled."),
            "disable" => format!("{name} disabled."),
            _ => format!("{name} rolled back to {}.", info.version),
        }),
        Err(Refusal::Invalid(errors)) => refused(&state, &session, &errors).await,
        Err(other) => refused(&state, &session, &[other.to_string()]).await,
    }
}
