//! Packs without a bus: `[[fleet.pack_source]]` in agent.toml names a pack on a web server
//! (an archive's URL, its `.minisig` beside it) or in an OCI registry
//! (`oci://registry/acme/packs/dlp:1`, the archive and its signature as two layers, as
//! Falco's falcoctl distributes rules), and the agent polls it.
//!
//! Polling is what a fleet without a bus can afford, so it is cheap when nothing changed: a
//! web server is asked conditionally (`If-None-Match`, `If-Modified-Since`: a `304` has no
//! body), a registry only for the manifest's digest (a `HEAD`). Polls are spread (±10 % of the
//! period, at random) so a thousand agents started together do not knock at once. What
//! arrives is trusted no more than what the bus brings: at most the largest archive a pack may
//! have is read, then the agent verifies its signature against its own keys.

mod http;
pub mod oci;

use std::time::Duration;

use serde::Deserialize;

use super::FetchError;

pub use http::HttpSource;
pub use oci::OciSource;

/// The default time between two polls.
pub const EVERY: Duration = Duration::from_secs(300);

/// How long one poll may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The largest signature file read.
const MAX_SIGNATURE_BYTES: usize = 4096;

/// One `[[fleet.pack_source]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackSourceSettings {
    /// Where the pack is: an archive's `https://…` address (or `http://` on a trusted network:
    /// the signature is what an agent trusts, not the transport), or an OCI reference
    /// `oci://REGISTRY/REPOSITORY:TAG` (or `@sha256:…`).
    pub url: String,
    /// A web server's signature address (default: the archive's with `.minisig` added); an
    /// OCI reference carries its signature as a layer.
    #[serde(default)]
    pub signature: Option<String>,
    /// The time between two polls (`"5m"`; 10 s to 1 day; default 5 minutes).
    #[serde(default)]
    pub every: Option<String>,
    /// Speak plain HTTP to an OCI registry (one on a trusted network without TLS).
    #[serde(default)]
    pub plain_http: bool,
}

/// A pack source that cannot be used as written.
#[derive(Debug, thiserror::Error)]
#[error("[[fleet.pack_source]] {url:?}: {why}")]
pub struct BadSource {
    /// The source's URL, as written.
    pub url: String,
    /// What was expected.
    pub why: String,
}

impl PackSourceSettings {
    /// Checks the addresses and the period; returns the period.
    pub fn check(&self) -> Result<Duration, BadSource> {
        let bad = |why: String| BadSource {
            url: self.url.clone(),
            why,
        };
        if self.is_oci() {
            oci::reference(&self.url)?;
            if self.signature.is_some() {
                return Err(bad(
                    "signature: an OCI pack carries its signature as a layer (`vigilo pack push`)"
                        .into(),
                ));
            }
        } else {
            if self.plain_http {
                return Err(bad(
                    "plain_http is for oci:// references; a web server's is an http:// address"
                        .into(),
                ));
            }
            for u in std::iter::once(&self.url).chain(&self.signature) {
                let parsed = url::Url::parse(u).map_err(|e| bad(format!("{u:?}: {e}")))?;
                if !matches!(parsed.scheme(), "https" | "http") {
                    return Err(bad(format!(
                        "{u:?}: an https:// (or http://) address, or an oci:// reference"
                    )));
                }
            }
        }
        match &self.every {
            None => Ok(EVERY),
            Some(text) => {
                let every = humantime::parse_duration(text).map_err(|e| {
                    bad(format!(
                        "every: {text:?} is not a duration like \"5m\" ({e})"
                    ))
                })?;
                if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&every) {
                    return Err(bad("every: 10 s to 1 day".into()));
                }
                Ok(every)
            }
        }
    }

    /// Whether it names an OCI registry's artifact.
    fn is_oci(&self) -> bool {
        self.url.starts_with(oci::SCHEME)
    }

    /// A web server's signature address.
    fn signature_url(&self) -> String {
        self.signature
            .clone()
            .unwrap_or_else(|| format!("{}.minisig", self.url))
    }
}

/// What a poll found.
pub struct Fetched {
    /// The archive.
    pub archive: Vec<u8>,
    /// Its signature file's text.
    pub signature: String,
}

/// A source being polled, of either kind.
pub enum PackSource {
    /// An archive on a web server.
    Http(HttpSource),
    /// An artifact in an OCI registry.
    Oci(OciSource),
}

impl PackSource {
    /// A source polled as `settings` (checked) say.
    pub fn new(settings: PackSourceSettings) -> Result<PackSource, FetchError> {
        Ok(if settings.is_oci() {
            PackSource::Oci(OciSource::new(&settings)?)
        } else {
            PackSource::Http(HttpSource::new(settings)?)
        })
    }

    /// Where it is, as written.
    pub fn url(&self) -> &str {
        match self {
            PackSource::Http(s) => s.url(),
            PackSource::Oci(s) => s.url(),
        }
    }

    /// Asks for the archive and its signature; `None`: neither changed since the last poll
    /// that found them. Gives up after two minutes.
    pub async fn poll(&mut self) -> Result<Option<Fetched>, FetchError> {
        let url = self.url().to_string();
        let polled = match self {
            PackSource::Http(s) => tokio::time::timeout(TIMEOUT, s.poll()).await,
            PackSource::Oci(s) => tokio::time::timeout(TIMEOUT, s.poll()).await,
        };
        polled.unwrap_or_else(|_| {
            Err(FetchError::Again(format!(
                "{url}: no whole answer within {} s",
                TIMEOUT.as_secs()
            )))
        })
    }
}

/// The wait before the next poll: `every`, give or take 10 %, at random.
pub fn next_wait(every: Duration) -> Duration {
    let spread = every.as_millis() as u64 / 10;
    let jitter = fastrand::u64(0..=spread.saturating_mul(2));
    (every + Duration::from_millis(jitter)).saturating_sub(Duration::from_millis(spread))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn source(url: &str, every: Option<&str>) -> PackSourceSettings {
        PackSourceSettings {
            url: url.into(),
            signature: None,
            every: every.map(str::to_string),
            plain_http: false,
        }
    }

    #[test]
    fn a_source_is_a_web_address_or_an_oci_reference_polled_every_10_s_to_a_day() {
        let ok = source("https://packs.example.com/dlp.tar.gz", Some("1m"));
        assert_eq!(ok.check().expect("ok"), Duration::from_secs(60));
        assert_eq!(
            ok.signature_url(),
            "https://packs.example.com/dlp.tar.gz.minisig"
        );
        assert_eq!(
            source("http://10.0.0.1/p.tar.gz", None)
                .check()
                .expect("ok"),
            EVERY
        );
        let mut plain = source("oci://127.0.0.1:5000/acme/packs/dlp:1", None);
        plain.plain_http = true;
        assert_eq!(plain.check().expect("ok"), EVERY);
        let mut signed_beside = source("oci://registry.example.com/dlp:1", None);
        signed_beside.signature = Some("https://x/s.minisig".into());
        let mut plain_web = source("https://x/p.tar.gz", None);
        plain_web.plain_http = true;
        for (bad, why) in [
            (source("ftp://x/p.tar.gz", None), "https://"),
            (source("not a url", None), "relative URL"),
            (source("https://x/p.tar.gz", Some("1s")), "10 s to 1 day"),
            (
                source("https://x/p.tar.gz", Some("often")),
                "not a duration",
            ),
            (source("oci://acme/dlp:1", None), "a registry's host"),
            (
                source("oci://registry.example.com/Bad Name", None),
                "OCI reference",
            ),
            (signed_beside, "as a layer"),
            (plain_web, "plain_http is for oci://"),
        ] {
            let e = bad.check().expect_err("refused").to_string();
            assert!(
                e.contains(why) && e.starts_with("[[fleet.pack_source]]"),
                "{e}"
            );
        }
        for _ in 0..100 {
            let w = next_wait(Duration::from_secs(100));
            assert!((90..=110).contains(&w.as_secs()), "{w:?}");
        }
    }
}
