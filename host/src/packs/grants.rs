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

use crate::actions::{ACTION_NAMES, Action};

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
            match endpoint_parts(w.get_ref()) {
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

/// `scheme://authority` and the path of an http(s) URL.
fn endpoint_parts(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if authority_end == 0 || rest[..authority_end].contains('@') {
        return None;
    }
    let split = url.len() - rest.len() + authority_end;
    Some((&url[..split], &url[split..]))
}

/// A grant covers the exact URL, or every URL under it when it ends in `/`. Scheme and host must
/// match exactly: `https://siem.example` never covers `https://siem.example.evil.net`.
fn endpoint_allows(grant: &str, url: &str) -> bool {
    let (Some((g_origin, g_path)), Some((u_origin, u_path))) =
        (endpoint_parts(grant), endpoint_parts(url))
    else {
        return false;
    };
    if !g_origin.eq_ignore_ascii_case(u_origin) {
        return false;
    }
    if g_path.is_empty() || g_path == "/" {
        return true;
    }
    u_path == g_path || (g_path.ends_with('/') && u_path.starts_with(g_path))
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
