//! The page shell every console page shares (header, navigation, log-out form, style) and the
//! small pieces several pages show the same way (risk badges, times, flash messages).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Session;

/// The style sheet, inlined: one request per page and nothing to build.
const STYLE: &str = include_str!("console.css");

/// The console's sections, in the navigation's order: (path, label).
const SECTIONS: [(&str, &str); 6] = [
    ("/console/alarms", "Alarms"),
    ("/console/risk", "Risk"),
    ("/console/packs", "Packs"),
    ("/console/agent", "Agent"),
    ("/console/agents", "Agents"),
    ("/console/groups", "Groups"),
];

/// A whole page: `here` is the current section's path.
pub fn page(title: &str, here: &str, session: &Session, body: Markup) -> Markup {
    document(
        title,
        html! {
                header {
                    span.brand { "vigilo" }
                    nav {
                        @for (path, label) in SECTIONS {
                            a href=(path) class=[(path == here).then_some("here")] { (label) }
                        }
                    }
                    form method="post" action="/console/logout" {
                        (csrf_field(session))
                        button type="submit" { "Log out" }
                    }
                }
                main { (body) }
        },
    )
}

/// A page with no session (the login page).
pub fn bare(title: &str, body: Markup) -> Markup {
    document(title, html! { main { (body) } })
}

/// The HTML document around a page's `body` content.
fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vigilo" }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// The hidden field every state-changing form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A risk level as a coloured badge.
pub fn risk_badge(risk: u8) -> Markup {
    let class = match risk {
        0..=3 => "risk low",
        4..=6 => "risk mid",
        _ => "risk high",
    };
    html! { span class=(class) title={ "risk " (risk) } { (risk) } }
}

/// A stored UTC time (`2026-11-02T09:05:00.000Z`) as `2026-11-02 09:05:00`.
pub fn time(utc: &str) -> String {
    utc.get(..19).unwrap_or(utc).replace('T', " ")
}

/// A message at the top of a page: what just happened, or what went wrong.
pub fn flash(ok: Option<&str>, errors: &[String]) -> Markup {
    html! {
        @if let Some(done) = ok {
            div.flash.ok role="status" { (done) }
        }
        @if !errors.is_empty() {
            div.flash.error role="alert" {
                strong { "Nothing changed:" }
                ul { @for e in errors { li { (e) } } }
            }
        }
    }
}

/// The query of a page shown after a change: what was done (see [`after_change`]).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    /// What was done, in words.
    pub done: Option<String>,
}

/// Back to page `path` after a change, saying what was done (a redirect, so a reload does not
/// repeat the change).
pub fn after_change(path: &str, done: &str) -> axum::response::Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", done)
        .finish();
    axum::response::IntoResponse::into_response(axum::response::Redirect::to(&format!(
        "{path}?{query}"
    )))
}
