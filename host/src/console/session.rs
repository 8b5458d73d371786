//! Console sessions: logging in with the admin token gives a session cookie; every page and
//! file needs one, and every change carries the session's CSRF token.
//!
//! The cookie is `HttpOnly` (scripts cannot read it), `SameSite=Strict` (no other site's page
//! can make the browser send it) and holds only a random id; the session lives in the agent's
//! memory, so a restart logs everyone out. Forms that change something carry a second random
//! value, the CSRF token, checked against the session — a forged request from elsewhere has the
//! cookie at worst, never the token — and a request whose `Origin` is another site is refused
//! outright.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

/// The session cookie's name.
pub const COOKIE: &str = "vigilo_session";

/// How long a session lasts from logging in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Most sessions kept at once (the oldest goes first): memory stays bounded whatever is sent.
const MAX_SESSIONS: usize = 256;

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The value each state-changing form must send back.
    pub csrf: String,
    created: Instant,
}

/// The sessions of the running agent.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session; returns its id (for the cookie).
    pub fn create(&self) -> Result<String, String> {
        let (id, csrf) = (random()?, random()?);
        let mut all = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, s| s.created.elapsed() < LIFETIME);
        if all.len() >= MAX_SESSIONS
            && let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            all.remove(&oldest);
        }
        all.insert(
            id.clone(),
            Session {
                csrf,
                created: Instant::now(),
            },
        );
        Ok(id)
    }

    /// The live session a request's cookie names, if any.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let mut all = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        match all.get(id) {
            Some(s) if s.created.elapsed() < LIFETIME => Some(s.clone()),
            Some(_) => {
                all.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session a request's cookie names.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.by_id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
    }
}

impl Session {
    /// Whether a form's CSRF value is this session's (compared in constant time).
    pub fn allows(&self, presented: &str) -> bool {
        crate::secret::matches(presented, &self.csrf)
    }
}

/// The `Set-Cookie` value that gives a browser session `id`.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a state-changing request may come from where it says it does: with no `Origin`
/// (older browsers, scripts) the CSRF token decides; with one, it must be this server.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or_default();
    !host.is_empty() && origin_host == host
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 32 random bytes from the operating system, as hex.
fn random() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a session: {e}"))?;
    Ok(crate::hex::encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_ends() {
        let sessions = Sessions::default();
        let id = sessions.create().expect("session");
        let cookie = format!("theme=dark; {COOKIE}={id}");
        let with = headers(&[("cookie", &cookie)]);
        let session = sessions.of(&with).expect("logged in");
        assert!(session.allows(&session.csrf));
        assert!(!session.allows("forged"));
        assert!(
            sessions
                .of(&headers(&[("cookie", "vigilo_session=guess")]))
                .is_none()
        );
        assert!(sessions.of(&headers(&[])).is_none());
        sessions.end(&with);
        assert!(sessions.of(&with).is_none(), "logged out");
        assert!(set_cookie(&id).contains("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn only_this_server_may_be_the_origin_of_a_change() {
        let host = ("host", "127.0.0.1:8470");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8470")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
    }
}
