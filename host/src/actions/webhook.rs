//! Webhooks, signed the Standard Webhooks way (<https://www.standardwebhooks.com>).
//!
//! Each delivery is a JSON POST with three headers: `webhook-id` (the same on every retry, so
//! a receiver can drop a repeat), `webhook-timestamp` (seconds, this attempt) and
//! `webhook-signature`: `v1,` then base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with
//! the agent's secret (`DATA_DIR/webhook-secret`, `whsec_` + base64 of 32 random bytes, made on
//! first run; give it to the receiver). Redirects are not followed: a granted endpoint must not
//! send the alarm on to one that is not.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use serde_json::json;

use super::failure::{self, Failure};
use crate::model::alarm::StoredAlarm;

/// Signs deliveries.
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    /// A signer for a `whsec_…` secret.
    pub fn new(secret: &str) -> Result<Signer> {
        let encoded = secret
            .trim()
            .strip_prefix("whsec_")
            .unwrap_or(secret.trim());
        let key = STANDARD
            .decode(encoded)
            .context("a webhook secret is whsec_ followed by base64")?;
        anyhow::ensure!(key.len() >= 24, "a webhook secret needs at least 24 bytes");
        Ok(Signer { key })
    }

    /// The agent's signer: the secret in the data folder, made on first run.
    pub fn load_or_create(data_dir: &Path) -> Result<Signer> {
        let secret = crate::secret::load_or_create(
            &data_dir.join(crate::data_dir::WEBHOOK_SECRET),
            "webhook secret",
            |bytes| format!("whsec_{}", STANDARD.encode(bytes)),
        )?;
        Signer::new(&secret)
    }

    /// The `webhook-signature` value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The body of an alarm's webhook: the same bytes on every attempt.
pub fn payload(alarm: &StoredAlarm) -> Vec<u8> {
    let a = &alarm.record;
    let event: serde_json::Value =
        serde_json::from_str(&a.event.to_json()).unwrap_or(serde_json::Value::Null);
    let body = json!({
        "type": "alarm.fired",
        "timestamp": crate::event::Event::utc_string(a.fired_at),
        "data": {
            "id": alarm.id,
            "alarm": a.alarm,
            "pack": a.pack,
            "pack_version": a.pack_version,
            "risk": a.risk,
            "user": a.user,
            "computer": a.computer,
            "summary": a.summary,
            "fired_at": crate::event::Event::utc_string(a.fired_at),
            "event": event,
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// An HTTP client for deliveries: a timeout, no redirects.
pub fn client() -> Result<reqwest::blocking::Client> {
    crate::use_ring_for_tls();
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigilo/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Posts one delivery. `Ok` with the status line on a 2xx answer; `Err` says why not, and
/// whether another attempt can help.
pub fn deliver(
    client: &reqwest::blocking::Client,
    signer: &Signer,
    url: &str,
    id: &str,
    body: &[u8],
) -> Result<String, Failure> {
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signer.sign(id, timestamp, body))
        .body(body.to_vec())
        .send()
        .map_err(|e| {
            let why = format!("{url}: {}", root_cause(&e));
            // A request that cannot even be built (a URL reqwest refuses) stays unbuildable.
            if e.is_builder() {
                Failure::Permanent(why)
            } else {
                Failure::Transient(why)
            }
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(format!("{url}: {status}"))
    } else {
        Err(failure::of_http_status(
            status.as_u16(),
            format!("{url}: answered {status}"),
        ))
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{e} ({cause})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification, signed as its reference libraries do.
    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        let signer = Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn https_endpoints_are_spoken_to_over_tls() {
        // Nothing listens on port 1: the attempt fails connecting, not for want of TLS.
        let signer = Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let err = deliver(
            &client().expect("client"),
            &signer,
            "https://127.0.0.1:1/x",
            "msg_1",
            b"{}",
        )
        .expect_err("nothing there");
        assert!(err.is_transient(), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("Connection refused") && !err.contains("scheme"),
            "{err}"
        );
    }

    #[test]
    fn secrets_that_are_not_base64_are_refused() {
        assert!(Signer::new("whsec_not base64!").is_err());
        assert!(Signer::new("whsec_c2hvcnQ=").is_err(), "too short");
    }
}
