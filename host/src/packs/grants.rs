//! What a pack may ask the agent to do: its `[grants]`.
//!
//! A pack is untrusted until an admin reads what it is allowed to do, so the allowance is
//! explicit and small: the action kinds it may request, the webhook endpoints it may post to and
//! the e-mail recipients it may write to. Nothing is granted by default. A built-in alarm asking
//! for more is refused when the pack loads; a plugin or script asking for more at run time has
//! that action recorded as refused and not performed.
//!
//! ```toml
//! [grants]
//! actions = ["screenshot", "popup", "webhook", "email"]
//! webhooks = ["https://siem.acme.example/hooks/"]   # an endpoint, or a prefix ending in "/"
//! email_to = ["soc@acme.example", "*@security.acme.example"]
//! ```

use serde::Deserialize;
use toml::Spanned;

use crate::model::action::{ACTION_NAMES, Action};

use super::diagnostic::Reporter;

/// `[grants]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrants {
    #[serde(default)]
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    webhooks: Vec<Spanned<String>>,
    #[serde(default)]
    email_to: Vec<Spanned<String>>,
}

/// What a pack may ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Action kinds, by name (`screenshot`, `popup`…).
    pub actions: Vec<String>,
    /// Webhook endpoints: an exact URL, or a prefix ending in `/`.
    pub webhooks: Vec<String>,
    /// E-mail recipients: an address, or `*@domain` for any address at that domain.
    pub email_to: Vec<String>,
}

impl Grants {
    /// Validates `[grants]`, reporting each bad entry where it is written.
    pub(super) fn from_raw(raw: &RawGrants, r: &mut Reporter<'_>) -> Grants {
        let mut grants = Grants::default();
        for a in &raw.actions {
            if ACTION_NAMES.contains(&a.get_ref().as_str()) {
                grants.actions.push(a.get_ref().clone());
            } else {
                r.error(
                    a.span(),
                    format!(
                        "unknown action {:?}; expected one of {}",
                        a.get_ref(),
                        ACTION_NAMES.join(", ")
                    ),
                );
            }
        }
        for w in &raw.webhooks {
            match Endpoint::parse(w.get_ref()) {
                Some(_) => grants.webhooks.push(w.get_ref().clone()),
                None => r.error(
                    w.span(),
                    "a webhook grant is an http(s) URL with a host, e.g. \
                     \"https://siem.example/hooks/\"",
                ),
            }
        }
        for e in &raw.email_to {
            let text = e.get_ref();
            let ok = text
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
            if ok {
                grants.email_to.push(text.to_ascii_lowercase());
            } else {
                r.error(
                    e.span(),
                    "an e-mail grant is an address or \"*@domain\", e.g. \"*@acme.example\"",
                );
            }
        }
        grants
    }

    /// Everything, for the embedded standard pack and for tests.
    pub fn all_actions() -> Grants {
        Grants {
            actions: ACTION_NAMES.iter().map(|a| a.to_string()).collect(),
            ..Grants::default()
        }
    }

    /// Whether `action` is within these grants; if not, why.
    pub fn check<T>(&self, action: &Action<T>) -> Result<(), String> {
        let name = action.name();
        if !self.actions.iter().any(|a| a == name) {
            return Err(format!(
                "`{name}` is not granted to this pack (its [grants] actions: {})",
                list(&self.actions)
            ));
        }
        match action {
            Action::Webhook { url } if !self.webhooks.iter().any(|g| endpoint_allows(g, url)) => {
                Err(format!(
                    "webhook {url:?} is not a granted endpoint (granted: {})",
                    list(&self.webhooks)
                ))
            }
            Action::Email { to, .. } => match to.iter().find(|t| !self.email_allows(t)) {
                Some(who) => Err(format!(
                    "e-mail to {who:?} is not granted (granted: {})",
                    list(&self.email_to)
                )),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn email_allows(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        let domain = address.rsplit_once('@').map(|(_, d)| d);
        self.email_to.iter().any(|g| match g.strip_prefix("*@") {
            Some(d) => domain == Some(d),
            None => *g == address,
        })
    }
}

impl std::fmt::Display for Grants {
    /// `actions screenshot, popup; webhooks https://…; e-mail to soc@…` (endpoints and
    /// recipients only when there are some).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "actions {}", list(&self.actions))?;
        if !self.webhooks.is_empty() || !self.email_to.is_empty() {
            write!(
                f,
                "; webhooks {}; e-mail to {}",
                list(&self.webhooks),
                list(&self.email_to)
            )?;
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// An http(s) URL as grants compare it: its origin and its path after the normalisation a
/// server applies (RFC 3986 dot segments removed, `%2e` counted as a dot, `\\` as `/`, unreserved
/// characters percent-decoded), so `https://h/hooks/../admin` is compared as `/admin` — the
/// place it is delivered to — and never passes for something under `/hooks/`.
struct Endpoint {
    /// `scheme://host:port`, the port always said.
    origin: String,
    /// The normalised path.
    path: String,
}

impl Endpoint {
    /// `None` for anything that is not a plain http(s) URL with a host: credentials in it, or a
    /// path that still holds something a server might read as a dot segment or a separator
    /// (`%2f`, `%5c`, a dot segment left after decoding).
    fn parse(text: &str) -> Option<Endpoint> {
        let url = url::Url::parse(text).ok()?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let path = decode_unreserved(url.path())?;
        let suspicious = path
            .split('/')
            .any(|seg| seg == "." || seg == ".." || seg.contains('\\'))
            || path.to_ascii_lowercase().contains("%2f")
            || path.to_ascii_lowercase().contains("%5c");
        if suspicious {
            return None;
        }
        Some(Endpoint {
            origin: format!("{}://{}:{port}", url.scheme(), host.to_ascii_lowercase()),
            path,
        })
    }
}

/// `path` with `%XX` decoded where XX is an unreserved character (letters, digits, `-._~`), as
/// RFC 3986 says is equivalent; other escapes stay. `None` for a malformed escape.
fn decode_unreserved(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            let c = path[i..].chars().next()?;
            out.push(c);
            i += c.len_utf8();
        }
    }
    Some(out)
}

/// A grant covers the exact URL, or every URL under it when it ends in `/`. Scheme, host and
/// port must match exactly: `https://siem.example` never covers `https://siem.example.evil.net`.
fn endpoint_allows(grant: &str, url: &str) -> bool {
    let (Some(g), Some(u)) = (Endpoint::parse(grant), Endpoint::parse(url)) else {
        return false;
    };
    if g.origin != u.origin {
        return false;
    }
    if g.path.is_empty() || g.path == "/" {
        return true;
    }
    u.path == g.path || (g.path.ends_with('/') && u.path.starts_with(&g.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            actions: vec!["webhook".into(), "email".into(), "popup".into()],
            webhooks: vec![
                "https://siem.acme.example/hooks/".into(),
                "https://ops.example/alert".into(),
            ],
            email_to: vec!["soc@acme.example".into(), "*@security.acme.example".into()],
        }
    }

    fn webhook(url: &str) -> Action<String> {
        Action::Webhook { url: url.into() }
    }

    fn email(to: &[&str]) -> Action<String> {
        Action::Email {
            to: to.iter().map(|t| t.to_string()).collect(),
            subject: String::new(),
            body: String::new(),
        }
    }

    #[test]
    fn endpoints_match_by_origin_and_path_prefix() {
        let g = grants();
        for ok in [
            "https://siem.acme.example/hooks/vigilo",
            "https://SIEM.acme.example/hooks/",
            "https://ops.example/alert",
            "https://siem.acme.example:443/hooks/a/./b",
            "https://siem.acme.example/%68ooks/x",
            "https://siem.acme.example/hooks/x/../y",
        ] {
            assert_eq!(g.check(&webhook(ok)), Ok(()), "{ok}");
        }
        for refused in [
            "https://siem.acme.example/other",
            "https://siem.acme.example.evil.net/hooks/x",
            "http://siem.acme.example/hooks/x",
            "https://ops.example/alert/more",
            "https://ops.example/alerting",
            "https://user@siem.acme.example/hooks/x",
            // Dot segments, however spelled, resolve before matching or are refused.
            "https://siem.acme.example/hooks/../admin/x",
            "https://siem.acme.example/hooks/%2e%2e/admin/y",
            "https://siem.acme.example/hooks/.%2E/admin/y",
            "https://siem.acme.example/hooks/..%2fadmin",
            "https://siem.acme.example/hooks/..%5Cadmin",
            "https://siem.acme.example/hooks\\..\\admin",
            "https://siem.acme.example:8443/hooks/x",
        ] {
            assert!(g.check(&webhook(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn recipients_match_exactly_or_by_domain() {
        let g = grants();
        assert_eq!(g.check(&email(&["SOC@acme.example"])), Ok(()));
        assert_eq!(g.check(&email(&["a@security.acme.example"])), Ok(()));
        assert_eq!(
            g.check(&email(&["soc@acme.example", "boss@acme.example"])),
            Err(
                "e-mail to \"boss@acme.example\" is not granted (granted: soc@acme.example, \
                 *@security.acme.example)"
                    .into()
            )
        );
        assert!(g.check(&email(&["a@evil.security.acme.example"])).is_err());
    }

    #[test]
    fn actions_must_be_granted_by_kind() {
        let refused = grants().check(&Action::<String>::Screenshot {
            count: 1,
            interval: std::time::Duration::from_secs(10),
        });
        assert_eq!(
            refused,
            Err(
                "`screenshot` is not granted to this pack (its [grants] actions: webhook, \
                 email, popup)"
                    .into()
            )
        );
        assert!(
            Grants::default()
                .check(&webhook("https://x.example/"))
                .is_err()
        );
    }
}
