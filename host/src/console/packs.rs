//! The packs page: what is loaded (version, publisher, signature, grants, contents), upload
//! (a refused pack shows every error and changes nothing), enable, disable, roll back, and the
//! audit trail of changes.

use axum::Extension;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::page::{Done, csrf_field, flash, page as shell, time};
use super::session::Session;
use super::{ConsoleState, csrf_refused};
use crate::agent::api::{PackForm, fleet_rollout, on_packs, publish_pack};
use crate::agent::pack_set::Refusal;
use crate::model::report::{AuditEntry, FleetPack, PackInfo};

/// Audit entries shown.
const AUDIT_SHOWN: u32 = 50;

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
    // On a hub: what is published to the fleet, and where it runs.
    let fleet = match state.api.publisher {
        Some(_) => match fleet_rollout(&state.api).await {
            Ok(packs) => Some(packs),
            Err(why) => {
                errors.push(format!("the fleet's packs cannot be read: {why}"));
                Some(Vec::new())
            }
        },
        None => None,
    };
    let body = html! {
        h1 { "Packs" }
        (flash(done, &errors))
        @if let Some(published) = &fleet {
            (fleet_section(session, published))
            h2 { "This hub's own packs" }
        }
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

/// The hub's part of the page: publish a signed pack to the fleet, and where each published
/// pack runs — agents on each version, who refused the published one and why.
fn fleet_section(session: &Session, published: &[FleetPack]) -> maud::Markup {
    html! {
        div.card {
            h2 style="margin-top:0" { "Publish to the fleet" }
            p.muted { "A signed archive, once: every agent it targets verifies it with its own \
                       trusted keys and runs it, or says why not. Publishing an earlier version \
                       again rolls the fleet back." }
            form #publish method="post" action="/console/packs/publish" enctype="multipart/form-data" {
                (csrf_field(session))
                label { "Archive " input type="file" name="archive" required; }
                " "
                label { "Signature (.minisig) " input type="file" name="signature" required; }
                " "
                input type="submit" value="Publish";
            }
        }
        table #fleet-packs {
            thead { tr {
                th { "Pack" } th { "Published" } th { "For" } th { "Running" } th { "Refused" }
                th { "Waiting" }
            } }
            tbody {
                @if published.is_empty() {
                    tr { td colspan="6" .muted { "Nothing published to the fleet yet." } }
                }
                @for p in published {
                    tr data-pack=(p.name) {
                        td { strong { (p.name) } }
                        td { span.mono { (p.version) } br;
                             span.muted { (time(&p.published_at)) " by " (p.published_by) } }
                        td { (p.targets) }
                        td.running {
                            @for (version, n) in p.running.iter().rev() {
                                div { (n) " on " span.mono { (version) } }
                            }
                        }
                        td.refused {
                            @for r in &p.refused {
                                div data-state=(serde_json::to_value(r.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) {
                                    strong { (r.agents.len()) " " (r.state.words()) }
                                    ": " (r.agents.join(", "))
                                    @if let Some(first) = r.errors.first() { br; span.muted { (first) } }
                                }
                            }
                        }
                        td { (p.waiting) }
                    }
                }
            }
        }
    }
}

/// `POST /console/packs/publish`: a signed archive to the fleet (multipart: `csrf`,
/// `archive`, `signature`).
pub async fn publish(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    form: Multipart,
) -> Response {
    let form = match read_form(&session, form).await {
        Ok(f) => f,
        Err(refusal) => return refusal.answer(&state, &session).await,
    };
    match publish_pack(&state.api, form, ACTOR.to_string()).await {
        Ok(p) => after_change(&format!(
            "{} {} published to the fleet, for {}.",
            p.name,
            p.version,
            p.targets.words()
        )),
        Err(Refusal::Invalid(errors)) => {
            let mut all = vec!["The pack was not published:".to_string()];
            all.extend(errors);
            refused(&state, &session, &all).await
        }
        Err(other) => refused(&state, &session, &[other.to_string()]).await,
    }
}

/// Who made a change, for the audit trail.
const ACTOR: &str = "admin (console)";

/// A form the console refused before acting on it.
enum FormRefused {
    /// Its CSRF token is not this session's.
    Csrf,
    /// It is not a whole form with an archive: why.
    Form(String),
}

impl FormRefused {
    async fn answer(self, state: &ConsoleState, session: &Session) -> Response {
        match self {
            FormRefused::Csrf => csrf_refused(),
            FormRefused::Form(why) => refused(state, session, &[why]).await,
        }
    }
}

/// Reads an archive's form, its CSRF token checked.
async fn read_form(session: &Session, form: Multipart) -> Result<PackForm, FormRefused> {
    // The token is checked before the form's words are: a forged request learns nothing.
    let read = PackForm::read(form).await;
    let csrf = read.as_ref().ok().and_then(|f| f.csrf.clone());
    match read {
        Ok(f) if csrf.is_some_and(|c| session.allows(&c)) => Ok(f),
        Ok(_) => Err(FormRefused::Csrf),
        Err(why) => Err(FormRefused::Form(why)),
    }
}

/// `POST /console/packs`: an upload (multipart: `csrf`, `archive`, optional `signature`).
pub async fn upload(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    form: Multipart,
) -> Response {
    let PackForm {
        archive,
        file_name,
        signature,
        ..
    } = match read_form(&session, form).await {
        Ok(f) => f,
        Err(refusal) => return refusal.answer(&state, &session).await,
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

/// Back to the packs page, saying what was done.
fn after_change(done: &str) -> Response {
    super::page::after_change("/console/packs", done)
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
