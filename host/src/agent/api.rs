//! The admin HTTP API (axum), on loopback by default.
//!
//! Every route needs `Authorization: Bearer TOKEN` (the data folder's `admin-token`); without
//! it: 401 and nothing changes. An optional `X-Vigilo-Actor` header names the person behind
//! the token in the audit trail (`admin (alice)`).
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /api/v1/status` | sources up/down, events (total, per second), alarms (since start, today), programs and their state, anything shed |
//! | `GET /api/v1/packs` | every pack: version, enabled, signature, grants, contents, versions |
//! | `POST /api/v1/packs` | upload a pack: multipart fields `archive` and (optional) `signature` |
//! | `POST /api/v1/packs/{name}/enable`, `/disable`, `/rollback` | change a pack |
//! | `GET /api/v1/audit?limit=N` | the audit trail, newest first |
//! | `GET /api/v1/alarms?user=&computer=&alarm=&pack=&since=&until=&risk=&limit=&after=` | alarms, newest first, a page at a time (`next` gives the following page's `after`) |
//! | `GET /api/v1/alarms/{id}` | one alarm, its outcomes and its captures |
//! | `GET /api/v1/alarms/{id}/captures/{n}` | a screenshot (PNG) or video (APNG) |
//! | `GET /api/v1/risk?days=&until=` | users ranked by risk score, with trend |
//! | `GET /api/v1/agents` | on a fleet's hub: every agent, not reporting first, with its last heartbeat |
//! | `GET /api/v1/fleet/packs` | on a fleet's hub: each pack published to the fleet and where it runs |
//! | `POST /api/v1/fleet/packs` | on a fleet's hub: publish a signed pack to every agent it targets (multipart `archive`, `signature`) |
//! | `GET /metrics` | Prometheus / OpenMetrics text |
//! | `GET /api/v1/openapi.json` | this API described in OpenAPI 3.1 (no token needed) |

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::pack_set::{PackSet, Refusal};
use super::stats::Stats;
use crate::model::report::{OutboxFigures, StatusReport, StoreSize};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The managed packs; one change at a time.
    pub packs: Arc<Mutex<PackSet>>,
    /// The admin token.
    pub token: Arc<String>,
    /// The pipeline's counters.
    pub stats: Arc<Stats>,
    /// A reading connection to the store.
    pub store: Arc<Mutex<crate::store::Store>>,
    /// On a fleet's hub: the way to publish packs to the agents.
    pub publisher: Option<Arc<crate::fleet::packs::Publisher>>,
    /// On a fleet's hub: the groups it defines for the agents.
    pub groups: Option<Arc<crate::fleet::groups::GroupBook>>,
}

/// Every route, for the test that holds the OpenAPI document to them: (method, path).
#[cfg(test)]
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/status"),
    ("get", "/api/v1/packs"),
    ("post", "/api/v1/packs"),
    ("post", "/api/v1/packs/{name}/enable"),
    ("post", "/api/v1/packs/{name}/disable"),
    ("post", "/api/v1/packs/{name}/rollback"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/alarms"),
    ("get", "/api/v1/alarms/{id}"),
    ("get", "/api/v1/alarms/{id}/captures/{n}"),
    ("get", "/api/v1/risk"),
    ("get", "/api/v1/agents"),
    ("get", "/api/v1/fleet/packs"),
    ("post", "/api/v1/fleet/packs"),
    ("get", "/api/v1/fleet/groups"),
    ("put", "/api/v1/fleet/groups/{name}"),
    ("delete", "/api/v1/fleet/groups/{name}"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
];

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let body_limit = crate::packs::archive::MAX_TOTAL_BYTES as usize + (1 << 20);
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/packs", get(list).post(upload))
        .route("/api/v1/packs/{name}/enable", post(enable))
        .route("/api/v1/packs/{name}/disable", post(disable))
        .route("/api/v1/packs/{name}/rollback", post(rollback))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/alarms", get(alarms))
        .route("/api/v1/alarms/{id}", get(alarm))
        .route("/api/v1/alarms/{id}/captures/{n}", get(capture))
        .route("/api/v1/risk", get(risk))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/fleet/packs", get(fleet_packs).post(publish))
        .route("/api/v1/fleet/groups", get(super::groups::list))
        .route(
            "/api/v1/fleet/groups/{name}",
            axum::routing::put(super::groups::put).delete(super::groups::delete),
        )
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        // The description of the API holds no data: readable without the token.
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(state)
}

/// Refuses any request without the token, before its body is read.
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !crate::secret::matches(presented.trim(), &state.token) {
        // Read (and drop) a small body first: a server that answers before the client has
        // sent its request resets the connection, and the client sees an error instead of 401.
        // A large body is not read: the answer then may be lost, never the refusal.
        let _ = axum::body::to_bytes(request.into_body(), 64 << 10).await;
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({ "error": "a valid admin token is required (Authorization: Bearer …)" })),
        )
            .into_response();
    }
    next.run(request).await
}

/// Who made a change, for the audit trail.
pub(super) fn actor(headers: &HeaderMap) -> String {
    let named = headers
        .get("x-vigilo-actor")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        })
        .filter(|v| !v.trim().is_empty());
    match named {
        Some(who) => format!("admin ({})", who.trim()),
        None => "admin".into(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Refusal::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": "the pack was refused; nothing changed", "errors": errors }),
            ),
            Refusal::Conflict(why) => (StatusCode::CONFLICT, json!({ "error": why })),
            Refusal::Unknown(why) => (StatusCode::NOT_FOUND, json!({ "error": why })),
            Refusal::Failed(why) => (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": why })),
        };
        (status, Json(body)).into_response()
    }
}

/// Runs a pack-set operation off the async threads (it compiles rules, reads the database).
async fn with_packs<T: serde::Serialize + Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut PackSet) -> Result<T, Refusal> + Send + 'static,
) -> Response {
    match on_packs(state, f).await {
        Ok(value) => Json(value).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Runs a pack-set operation off the async threads, one at a time (the API's and the
/// console's changes alike).
pub async fn on_packs<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut PackSet) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    let packs = state.packs.clone();
    tokio::task::spawn_blocking(move || match packs.lock() {
        Ok(mut set) => f(&mut set),
        Err(_) => Err(Refusal::Failed(
            "the pack set is unusable after a crash".into(),
        )),
    })
    .await
    .unwrap_or_else(|e| Err(Refusal::Failed(e.to_string())))
}

async fn status(State(state): State<AppState>) -> Response {
    match status_report(&state).await {
        Ok(report) => Json(report).into_response(),
        Err(why) => internal(&why),
    }
}

/// How the agent is doing, as `GET /api/v1/status` answers (the console's agent page and
/// `/metrics` show the same).
pub async fn status_report(state: &AppState) -> Result<StatusReport, String> {
    let stats = &state.stats;
    let figures = store_figures(state).await?;
    Ok(StatusReport {
        events: stats.events.load(Ordering::Relaxed),
        events_per_second: (stats.events_per_second() * 10.0).round() / 10.0,
        alarms: stats.alarms.load(Ordering::Relaxed),
        alarms_today: figures.alarms_today,
        generation: stats.generation.load(Ordering::Relaxed),
        sources: stats.sources(),
        programs: stats.programs(),
        latency: stats.latency(),
        shed: stats.shed_counts(),
        outbox: OutboxFigures {
            pending: figures.outbox_pending,
            dead: figures.outbox_dead,
        },
        store: StoreSize {
            bytes: figures.store_bytes,
        },
        fleet: stats.ingest.get().map(|i| i.figures()),
    })
}

/// The store's figures, read off the async threads.
async fn store_figures(state: &AppState) -> Result<super::metrics::StoreFigures, String> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || {
        super::metrics::StoreFigures::read(&*super::query::lock(&store)?)
    })
    .await
    {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    }
}

fn internal(why: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": why })),
    )
        .into_response()
}

async fn list(State(state): State<AppState>) -> Response {
    with_packs(&state, |set| set.list()).await
}

/// An uploaded archive and its signature: the multipart fields `archive` and `signature`
/// (and, from the console's forms, `csrf`).
pub struct PackForm {
    /// The archive's bytes.
    pub archive: Vec<u8>,
    /// The archive's file name, as the client gave it.
    pub file_name: Option<String>,
    /// The signature file's text, if one came.
    pub signature: Option<String>,
    /// The console's CSRF token, if one came.
    pub csrf: Option<String>,
}

impl PackForm {
    /// Reads the form; a field it does not know, or no archive, is refused saying so. A file
    /// input left empty (a browser sends an empty part) counts as not there.
    pub async fn read(mut form: Multipart) -> Result<PackForm, String> {
        let (mut archive, mut signature, mut csrf) = (None, None, None);
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => return Err(format!("the form did not arrive whole: {e}")),
            };
            let name = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().map(str::to_string);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("field {name}: {e}"))?;
            match name.as_str() {
                _ if bytes.is_empty() => {}
                "archive" => archive = Some((file_name, bytes.to_vec())),
                "signature" => match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => signature = Some(text),
                    Err(_) => return Err("signature: not a .minisig text file".into()),
                },
                "csrf" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
                other => return Err(format!("unknown field {other:?}")),
            }
        }
        let (file_name, archive) = archive
            .ok_or("no pack archive came (multipart/form-data: archive, signature)".to_string())?;
        Ok(PackForm {
            archive,
            file_name,
            signature,
            csrf,
        })
    }
}

async fn upload(State(state): State<AppState>, headers: HeaderMap, form: Multipart) -> Response {
    let PackForm {
        archive, signature, ..
    } = match PackForm::read(form).await {
        Ok(f) => f,
        Err(why) => return bad_request(&why),
    };
    let who = actor(&headers);
    with_packs(&state, move |set| {
        set.upload(&archive, signature.as_deref(), &who)
    })
    .await
}

/// Publishes a pack to the fleet from this hub, as `actor`: checked here first (signed, and it
/// loads), so an admin hears of a bad pack before every agent refuses it.
pub async fn publish_pack(
    state: &AppState,
    form: PackForm,
    actor: String,
) -> Result<crate::fleet::packs::Publication, Refusal> {
    let Some(publisher) = state.publisher.clone() else {
        return Err(Refusal::Conflict(
            "this is not a fleet's hub: publish through `vigilo hub`, or upload the pack to \
             this agent with `vigilo pack upload`"
                .into(),
        ));
    };
    let Some(signature) = form.signature else {
        return Err(Refusal::Invalid(vec![
            "a pack for the fleet must be signed (agents refuse unsigned packs): sign it with \
             `vigilo pack sign ARCHIVE --key KEY`, and give its .minisig"
                .into(),
        ]));
    };
    let archive = Arc::new(form.archive);
    let (checked, sig, who) = (archive.clone(), signature.clone(), actor.clone());
    let pack = on_packs(state, move |set| set.check_for_fleet(&checked, &sig, &who)).await?;
    let publication = crate::fleet::packs::Publication {
        form: crate::model::FORM_VERSION,
        name: pack.name.clone(),
        version: pack.version.to_string(),
        object: crate::fleet::packs::Publication::object_name(
            &pack.name,
            &pack.version.to_string(),
        ),
        bytes: archive.len() as u64,
        sha256: crate::hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&archive[..])),
        signature,
        targets: pack.targets.clone(),
        published_by: actor.clone(),
        published_at: crate::event::Event::utc_string(chrono::Utc::now().fixed_offset()),
    };
    publisher
        .publish(&archive, &publication)
        .await
        .map_err(|e| match e {
            crate::fleet::packs::PublishError::Conflict(why) => Refusal::Conflict(why),
            crate::fleet::packs::PublishError::Bus(why) => Refusal::Failed(why),
        })?;
    let (object, detail) = (
        format!("{} {}", publication.name, publication.version),
        format!("for {}; {}", pack.targets.words(), pack.signature),
    );
    on_packs(state, move |set| {
        set.record_fleet_change(&actor, "pack_published", &object, &detail);
        Ok(())
    })
    .await?;
    Ok(publication)
}

async fn publish(State(state): State<AppState>, headers: HeaderMap, form: Multipart) -> Response {
    let form = match PackForm::read(form).await {
        Ok(f) => f,
        Err(why) => return bad_request(&why),
    };
    match publish_pack(&state, form, actor(&headers)).await {
        Ok(p) => Json(p).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Each pack published to the fleet and where it runs (the hub's Packs page shows the same).
pub async fn fleet_rollout(
    state: &AppState,
) -> Result<Vec<crate::model::report::FleetPack>, String> {
    let Some(publisher) = &state.publisher else {
        return Err("this is not a fleet's hub".into());
    };
    let published = publisher.published().await.map_err(|e| format!("{e:#}"))?;
    let store = state.store.clone();
    let agents = tokio::task::spawn_blocking(move || super::query::lock(&store)?.agents())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e:#}"))?;
    Ok(crate::fleet::packs::rollout(&published, &agents))
}

async fn fleet_packs(State(state): State<AppState>) -> Response {
    match fleet_rollout(&state).await {
        Ok(packs) => Json(json!({ "packs": packs })).into_response(),
        Err(why) => internal(&why),
    }
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response()
}

async fn enable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let who = actor(&headers);
    with_packs(&state, move |set| set.set_enabled(&name, true, &who)).await
}

async fn disable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let who = actor(&headers);
    with_packs(&state, move |set| set.set_enabled(&name, false, &who)).await
}

async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let who = actor(&headers);
    with_packs(&state, move |set| set.roll_back(&name, &who)).await
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
}

async fn audit(State(state): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(10_000);
    with_packs(&state, move |set| set.audit_trail(limit)).await
}

/// The OpenAPI document, written by hand next to the handlers it describes (a test checks
/// that every route is in it).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Runs store work off the async threads; an error is a JSON 500, a bad query a JSON 400.
async fn read_store<T: serde::Serialize + Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&crate::store::Store) -> anyhow::Result<T> + Send + 'static,
) -> Response {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&*super::query::lock(&store)?)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => internal(&format!("{e:#}")),
        Err(e) => internal(&e.to_string()),
    }
}

async fn alarms(
    State(state): State<AppState>,
    Query(q): Query<super::query::AlarmQuery>,
) -> Response {
    let filter = match q.to_filter() {
        Ok(f) => f,
        Err(why) => return bad_request(&why),
    };
    let size = q.page_size();
    read_store(&state, move |store| {
        let (alarms, more) = super::query::alarm_page(store, &filter, size)?;
        let next = alarms
            .last()
            .filter(|_| more)
            .map(super::query::AlarmQuery::position);
        Ok(json!({ "alarms": alarms, "next": next }))
    })
    .await
}

async fn alarm(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let store = super::query::lock(&store)?;
        let Some(alarm) = store.alarm(id)? else {
            return Ok(None);
        };
        let captures: Vec<serde_json::Value> = store
            .captures_of(id)?
            .iter()
            .enumerate()
            .map(|(n, c)| {
                json!({
                    "kind": c.kind, "bytes": c.bytes, "taken_at": c.taken_at,
                    "url": format!("/api/v1/alarms/{id}/captures/{n}"),
                })
            })
            .collect();
        let mut value = serde_json::to_value(&alarm)?;
        value["captures"] = captures.into();
        Ok::<_, anyhow::Error>(Some(value))
    })
    .await;
    match found {
        Ok(Ok(Some(v))) => Json(v).into_response(),
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no alarm {id}") })),
        )
            .into_response(),
        Ok(Err(e)) => internal(&format!("{e:#}")),
        Err(e) => internal(&e.to_string()),
    }
}

async fn capture(State(state): State<AppState>, Path((id, n)): Path<(i64, usize)>) -> Response {
    super::query::serve_capture(&state.store, id, n).await
}

async fn risk(State(state): State<AppState>, Query(q): Query<super::query::RiskQuery>) -> Response {
    let (days, until) = match q.resolve() {
        Ok(w) => w,
        Err(why) => return bad_request(&why),
    };
    read_store(&state, move |store| {
        let mut ranked = super::query::ranking(store, days, until)?;
        if let Some(user) = &q.user {
            ranked.retain(|r| &r.user == user);
        }
        Ok(json!({
            "since": crate::event::Event::utc_string((until - chrono::Duration::days(i64::from(days))).fixed_offset()),
            "until": crate::event::Event::utc_string(until.fixed_offset()),
            "formula": "score = 100 × Σ(risk × times fired) / max(activity records, 100); trend = score − score over the window before",
            "users": ranked,
        }))
    })
    .await
}

async fn agents(State(state): State<AppState>) -> Response {
    read_store(&state, |store| Ok(json!({ "agents": store.agents()? }))).await
}

async fn metrics(State(state): State<AppState>) -> Response {
    let figures = match store_figures(&state).await {
        Ok(f) => f,
        Err(why) => return internal(&why),
    };
    match super::metrics::render(&state.stats, &figures) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => internal(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields the document lists for `schema`, and those `value` serialises with.
    fn fields(
        doc: &serde_json::Value,
        schema: &str,
        value: impl serde::Serialize,
    ) -> [Vec<String>; 2] {
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect();
            k.sort();
            k
        };
        let listed = keys(&doc["components"]["schemas"][schema]["properties"]);
        let sent = keys(&serde_json::to_value(value).expect("serialises"));
        [listed, sent]
    }

    #[test]
    fn the_documented_schemas_list_exactly_what_the_model_types_send() {
        use crate::model::report::{AuditEntry, PackInfo};
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let status = StatusReport {
            events: 1,
            events_per_second: 0.5,
            alarms: 1,
            alarms_today: 1,
            generation: 1,
            sources: Default::default(),
            programs: Vec::new(),
            latency: None,
            shed: Default::default(),
            outbox: OutboxFigures {
                pending: 0,
                dead: 0,
            },
            store: StoreSize { bytes: 0 },
            fleet: Some(crate::model::report::FleetIngest {
                stored: 1,
                repeats: 0,
                refused: 0,
                captures: 0,
                lag: None,
            }),
        };
        let pack = PackInfo {
            name: "p".into(),
            version: "1.0.0".into(),
            enabled: true,
            publisher: None,
            description: None,
            signature: "unsigned".into(),
            grants: String::new(),
            alarms: Vec::new(),
            plugins: Vec::new(),
            scripts: Vec::new(),
            versions: Vec::new(),
        };
        let audit = AuditEntry {
            id: 1,
            at: "2026-11-02T09:00:00.000Z".into(),
            actor: "admin".into(),
            action: "pack_uploaded".into(),
            object: "p 1.0.0".into(),
            detail: None,
        };
        for (schema, [listed, sent]) in [
            ("Status", fields(&doc, "Status", &status)),
            ("Pack", fields(&doc, "Pack", &pack)),
            ("AuditEntry", fields(&doc, "AuditEntry", &audit)),
        ] {
            assert_eq!(listed, sent, "{schema}: documented vs sent");
        }
        let back: StatusReport =
            serde_json::from_value(serde_json::to_value(&status).expect("json")).expect("reads");
        assert_eq!(back, status, "the CLI reads back what the API sends");
    }

    #[test]
    fn the_openapi_document_describes_every_route_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).is_some_and(|p| p.get(*method).is_some()),
                "{method} {path} undocumented"
            );
        }
        let documented: usize = paths
            .values()
            .map(|p| p.as_object().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(
            documented,
            ROUTES.len(),
            "a documented route that does not exist"
        );
        // Every reference resolves.
        let text = OPENAPI;
        for (at, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[at + 21..]
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            assert!(doc["components"]["schemas"].get(&name).is_some(), "{name}");
        }
    }
}
