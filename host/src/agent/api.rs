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

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::packs::{PackSet, Refusal};
use super::stats::Stats;

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
}

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
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
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
    if !super::token::matches(presented.trim(), &state.token) {
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
fn actor(headers: &HeaderMap) -> String {
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
    let packs = state.packs.clone();
    let done = tokio::task::spawn_blocking(move || match packs.lock() {
        Ok(mut set) => f(&mut set),
        Err(_) => Err(Refusal::Failed(
            "the pack set is unusable after a crash".into(),
        )),
    })
    .await;
    match done {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(e) => Refusal::Failed(format!("{e}")).into_response(),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    match status_report(&state).await {
        Ok(report) => Json(report).into_response(),
        Err(why) => internal(&why),
    }
}

/// How the agent is doing, as `GET /api/v1/status` answers (the console's agent page and
/// `/metrics` show the same).
pub async fn status_report(state: &AppState) -> Result<serde_json::Value, String> {
    let stats = &state.stats;
    // "Today" is the agent's local day.
    let midnight = chrono::Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map(|t| t.fixed_offset());
    let store = state.store.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|p| p.into_inner());
        let today = midnight.map(|m| store.count_alarms_since(m)).transpose()?;
        Ok::<_, anyhow::Error>((today, store.outbox_counts()?, store.size_bytes()))
    })
    .await;
    let (alarms_today, (pending, dead), store_bytes) = match counts {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(format!("{e:#}")),
        Err(e) => return Err(e.to_string()),
    };
    Ok(json!({
        "events": stats.events.load(Ordering::Relaxed),
        "events_per_second": (stats.events_per_second() * 10.0).round() / 10.0,
        "alarms": stats.alarms.load(Ordering::Relaxed),
        "alarms_today": alarms_today,
        "generation": stats.generation.load(Ordering::Relaxed),
        "sources": stats.sources(),
        "programs": stats.programs(),
        "latency": stats.latency(),
        "shed": stats.shed_counts(),
        "outbox": { "pending": pending, "dead": dead },
        "store": { "bytes": store_bytes },
    }))
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

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let (mut archive, mut signature) = (None, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let bytes = match field.bytes().await {
                    Ok(b) => b,
                    Err(e) => return bad_request(&format!("field {name}: {e}")),
                };
                match name.as_str() {
                    "archive" => archive = Some(bytes.to_vec()),
                    "signature" => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => signature = Some(text),
                        Err(_) => return bad_request("signature: not text"),
                    },
                    other => return bad_request(&format!("unknown field {other:?}")),
                }
            }
            Ok(None) => break,
            Err(e) => return bad_request(&format!("not a multipart form: {e}")),
        }
    }
    let Some(archive) = archive else {
        return bad_request("no `archive` field (multipart/form-data: archive, signature)");
    };
    let who = actor(&headers);
    with_packs(&state, move |set| {
        set.upload(&archive, signature.as_deref(), &who)
    })
    .await
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
