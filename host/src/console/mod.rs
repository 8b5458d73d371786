//! The console: web pages for admins, served by the agent itself next to the admin API (same
//! listener, loopback unless configured) — what fired and what the screen showed, who is
//! trending risky, which packs run, how the agent is doing.
//!
//! Server-rendered HTML (maud: templates checked at compile time, every value escaped), one
//! inlined style sheet, no script and no build step. Logging in takes the admin token and gives
//! a session cookie ([`session`]); every page and every capture needs it, and every change
//! carries the session's CSRF token.
//!
//! | Path | Page |
//! |---|---|
//! | `/console/login` | log in with the admin token |
//! | `/console/alarms` | the timeline, filtered and paged; `/console/alarms/{id}` one alarm |
//! | `/console/risk` | users ranked by risk score, with a chart of the trend |
//! | `/console/packs` | packs: upload, enable, disable, roll back; the audit trail |
//! | `/console/agent` | sources, events/s, plugins, store, outbox |
//! | `/console/agents` | on a fleet's hub: every agent, not reporting first |

mod agent;
mod agents;
mod alarms;
mod groups;
mod packs;
mod page;
mod risk;
pub mod session;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use crate::agent::api::AppState;
use session::{Session, Sessions};

/// What the console's handlers share: the API's state and the sessions.
#[derive(Clone)]
pub struct ConsoleState {
    /// The admin API's state (packs, token, counters, store).
    pub api: AppState,
    /// Who is logged in.
    pub sessions: Arc<Sessions>,
}

/// The console's routes.
pub fn router(api: AppState) -> Router {
    let state = ConsoleState {
        api,
        sessions: Arc::new(Sessions::default()),
    };
    let body_limit = crate::packs::archive::MAX_TOTAL_BYTES as usize + (1 << 20);
    let pages = Router::new()
        .route("/console/alarms", get(alarms::list))
        .route("/console/alarms/{id}", get(alarms::one))
        .route("/console/alarms/{id}/captures/{n}", get(alarms::capture))
        .route("/console/risk", get(risk::page))
        .route("/console/risk/chart.svg", get(risk::chart))
        .route("/console/packs", get(packs::page).post(packs::upload))
        .route("/console/packs/publish", post(packs::publish))
        .route("/console/packs/{name}/{change}", post(packs::change))
        .route("/console/agent", get(agent::page))
        .route("/console/agents", get(agents::page))
        .route("/console/groups", get(groups::page).post(groups::set))
        .route("/console/groups/{name}/remove", post(groups::remove))
        .route("/console/logout", post(logout))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/alarms") }))
        .route(
            "/console",
            get(|| async { Redirect::to("/console/alarms") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/alarms") }),
        )
        .route("/console/login", get(login_page).post(login))
        .merge(pages)
        .layer(axum::middleware::map_response(plain_words))
        .layer(axum::middleware::map_response(never_framed))
        .with_state(state)
}

/// A request the framework refused (a path segment that is not a number, a form missing a
/// field) answers with its own terse text — "Cannot parse `abc` to a `i64`". Console pages
/// answer with a page that says, in words, what was wrong and where to go.
async fn plain_words(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !(plain && status.is_client_error() && status != StatusCode::UNAUTHORIZED) {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&bytes);
    let what = explain_rejection(&said);
    let body = html! {
        div.card {
            h1 { "That request could not be used" }
            p { (what) }
            p { a href="/console/alarms" { "Back to the alarms" } " · " a href="/console/login" { "Log in again" } }
        }
    };
    (status, page::bare("Not understood", body)).into_response()
}

/// A framework rejection in words.
fn explain_rejection(said: &str) -> String {
    if let Some(rest) = said.split("missing field `").nth(1) {
        let field = rest.split('`').next().unwrap_or("?");
        if field == "csrf" {
            return "The form came without its security token: reload the page and try again."
                .into();
        }
        return format!(
            "The form came without its “{field}” field: reload the page and try again."
        );
    }
    if let Some(rest) = said.split("Cannot parse `").nth(1) {
        let value = rest.split('`').next().unwrap_or("?");
        return format!(
            "“{value}” is not a number here: an alarm is named by its number, as in /console/alarms/42."
        );
    }
    if said.contains("Content-Type") || said.contains("content type") {
        return "The form was sent in a form this page does not take: use the page's own form."
            .into();
    }
    if said.contains("length limit") || said.contains("too large") {
        return "What was sent is larger than this page takes.".into();
    }
    format!(
        "The address or the form was not understood ({}).",
        said.trim()
    )
}

/// No other site may show a console page in a frame (clickjacking an admin into a pack change).
async fn never_framed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

/// Lets a request through only with a live session (which handlers then find in the request's
/// extensions); a change must also come from this server. Pages without one send the browser
/// to the login page; anything else is refused.
async fn require_session(
    State(state): State<ConsoleState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(session) = state.sessions.of(request.headers()) else {
        if request.method() == Method::GET && !request.uri().path().contains("/captures/") {
            let next_page = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &next_page)
                .finish();
            let to = format!("/console/login?{query}");
            return Redirect::to(&to).into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in first: /console/login").into_response();
    };
    if request.method() != Method::GET && !session::same_origin(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "a change must come from the console's own pages",
        )
            .into_response();
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
}

/// `GET /console/login`
async fn login_page(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    login_form(q.next.as_deref(), None, StatusCode::OK)
}

fn login_form(next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        div.login.card {
            h1 { "vigilo console" }
            @if let Some(e) = error { div.flash.error role="alert" { (e) } }
            form method="post" action="/console/login" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" autofocus;
                input type="hidden" name="next" value=(next.unwrap_or("/console/alarms"));
                input type="submit" value="Log in";
            }
            p.muted { "The token is in the agent's data folder: " code { (crate::data_dir::ADMIN_TOKEN) } "." }
        }
    };
    (status, page::bare("Log in", body)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /console/login`
async fn login(
    State(state): State<ConsoleState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Only this console's own pages may follow a login (no open redirect).
    let next = form
        .next
        .filter(|n| n.starts_with("/console/") && !n.starts_with("//"))
        .unwrap_or_else(|| "/console/alarms".into());
    if !session::same_origin(&headers) {
        return login_form(
            Some(&next),
            Some("Log in from the console's own page."),
            StatusCode::FORBIDDEN,
        );
    }
    if !crate::secret::matches(form.token.trim(), &state.api.token) {
        return login_form(
            Some(&next),
            Some("That is not the admin token."),
            StatusCode::UNAUTHORIZED,
        );
    }
    match state.sessions.create() {
        Ok(id) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, session::set_cookie(&id)),
                (header::LOCATION, next),
            ],
        )
            .into_response(),
        Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// `POST /console/logout`
async fn logout(
    State(state): State<ConsoleState>,
    axum::Extension(session): axum::Extension<Session>,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.allows(&form.csrf) {
        return csrf_refused();
    }
    state.sessions.end(&headers);
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::clear_cookie()),
            (header::LOCATION, "/console/login".to_string()),
        ],
    )
        .into_response()
}

/// The answer to a change whose CSRF token is wrong.
fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the form's CSRF token is not this session's: reload the page and try again",
    )
        .into_response()
}

/// Runs store work off the async threads; an error becomes a 500 page.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()),
    }
}

/// A 404 page.
fn not_found(session: &Session, what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page::page(
            "Not found",
            "",
            session,
            html! { h1 { "Not found" } p { (what) } },
        ),
    )
        .into_response()
}
