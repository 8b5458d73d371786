//! Packs from a web server instead of the bus: `[[fleet.pack_source]]` in agent.toml names an
//! archive's URL (the `.minisig` beside it unless told otherwise), and the agent polls it.
//!
//! Polling is what a fleet without a bus can afford, so it is cheap when nothing changed: the
//! server's `ETag` goes back as `If-None-Match` and its `Last-Modified` as
//! `If-Modified-Since`, and a `304 Not Modified` ends the poll with no body. Polls are spread
//! (±10 % of the period, at random) so a thousand agents started together do not knock at
//! once. What arrives is trusted no more than what the bus brings: at most the largest archive
//! a pack may have is read, then the agent verifies its signature against its own keys.

use std::time::Duration;

use serde::Deserialize;

use super::FetchError;

/// The default time between two polls.
pub const EVERY: Duration = Duration::from_secs(300);

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The largest signature file read.
const MAX_SIGNATURE_BYTES: usize = 4096;

/// One `[[fleet.pack_source]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackSourceSettings {
    /// The archive's address: `https://…` (or `http://` on a trusted network: the signature
    /// is what an agent trusts, not the transport).
    pub url: String,
    /// Its signature's address (default: the archive's with `.minisig` added).
    #[serde(default)]
    pub signature: Option<String>,
    /// The time between two polls (`"5m"`; 10 s to 1 day; default 5 minutes).
    #[serde(default)]
    pub every: Option<String>,
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
        for u in std::iter::once(&self.url).chain(&self.signature) {
            let parsed = url::Url::parse(u).map_err(|e| bad(format!("{u:?}: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(bad(format!("{u:?}: an https:// (or http://) address")));
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

    /// The signature's address.
    pub fn signature_url(&self) -> String {
        self.signature
            .clone()
            .unwrap_or_else(|| format!("{}.minisig", self.url))
    }
}

/// A source being polled: what the server said last of the archive and of its signature,
/// to ask it only for something newer.
pub struct HttpSource {
    client: reqwest::Client,
    settings: PackSourceSettings,
    archive: Validators,
    signature: Validators,
}

/// What identifies a version of a file to its server.
#[derive(Default, Clone)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// What a poll found.
pub struct Fetched {
    /// The archive.
    pub archive: Vec<u8>,
    /// Its signature file's text.
    pub signature: String,
}

impl HttpSource {
    /// A source polled as `settings` say.
    pub fn new(settings: PackSourceSettings) -> Result<HttpSource, FetchError> {
        crate::use_ring_for_tls();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("vigilo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Wrong(format!("cannot make an HTTP client: {e}")))?;
        Ok(HttpSource {
            client,
            settings,
            archive: Validators::default(),
            signature: Validators::default(),
        })
    }

    /// Where it is.
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// Asks for the archive and its signature; `None`: neither changed since the last poll
    /// that found them. A new signature for the same archive counts as new (a re-signed pack).
    pub async fn poll(&mut self) -> Result<Option<Fetched>, FetchError> {
        let (archive_url, signature_url) =
            (self.settings.url.clone(), self.settings.signature_url());
        let max = super::packs::MAX_PACK_BYTES as usize;
        let archive = self.get(&archive_url, Some(&self.archive), max).await?;
        let signature = self
            .get(&signature_url, Some(&self.signature), MAX_SIGNATURE_BYTES)
            .await?;
        if archive.is_none() && signature.is_none() {
            return Ok(None);
        }
        // One of the two changed: both are needed whole.
        let archive = match archive {
            Some(got) => got,
            None => self.get(&archive_url, None, max).await?.ok_or_else(|| {
                FetchError::Again(format!("{archive_url}: not modified, though not asked"))
            })?,
        };
        let signature = match signature {
            Some(got) => got,
            None => self
                .get(&signature_url, None, MAX_SIGNATURE_BYTES)
                .await?
                .ok_or_else(|| {
                    FetchError::Again(format!("{signature_url}: not modified, though not asked"))
                })?,
        };
        let text = String::from_utf8(signature.0).map_err(|_| {
            FetchError::Wrong(format!(
                "{signature_url}: not a minisign signature (not text)"
            ))
        })?;
        // Remembered only once both arrived: a failed fetch is asked for again.
        self.archive = archive.1;
        self.signature = signature.1;
        Ok(Some(Fetched {
            archive: archive.0,
            signature: text,
        }))
    }

    /// GETs `url` (at most `max` bytes), conditionally on `known`; `None`: not modified.
    async fn get(
        &self,
        url: &str,
        known: Option<&Validators>,
        max: usize,
    ) -> Result<Option<(Vec<u8>, Validators)>, FetchError> {
        let mut request = self.client.get(url);
        if let Some(known) = known {
            if let Some(etag) = &known.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(at) = &known.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, at);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| FetchError::Again(format!("{url}: no answer: {e}")))?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let response = answered(response, url)?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let validators = Validators {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED)
                .filter(|at| strong(at, header(reqwest::header::DATE).as_deref())),
        };
        let body = read_at_most(response, max, url).await?;
        Ok(Some((body, validators)))
    }
}

/// Whether a `Last-Modified` time can tell this version from the next: only if the server's
/// `Date` is at least a second past it (RFC 9110, 8.8.2.2). A file replaced within the second
/// it was written in has the same time, and a poll conditional on it would miss the change —
/// so such a time is not sent back, and the next poll asks for the whole file.
fn strong(last_modified: &str, date: Option<&str>) -> bool {
    let (Ok(modified), Some(Ok(date))) = (
        httpdate::parse_http_date(last_modified),
        date.map(httpdate::parse_http_date),
    ) else {
        return false;
    };
    date.duration_since(modified)
        .is_ok_and(|after| after >= Duration::from_secs(1))
}

/// The response, if it is a success; a server error may pass, a client error will not.
fn answered(response: reqwest::Response, url: &str) -> Result<reqwest::Response, FetchError> {
    let status = response.status();
    if status.is_success() {
        Ok(response)
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(FetchError::Again(format!("{url}: {status}")))
    } else {
        Err(FetchError::Wrong(format!("{url}: {status}")))
    }
}

/// The body of `response`, refused as soon as it passes `max` bytes.
async fn read_at_most(
    mut response: reqwest::Response,
    max: usize,
    url: &str,
) -> Result<Vec<u8>, FetchError> {
    let too_big = || FetchError::Wrong(format!("{url}: more than the {max} bytes it may have"));
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Again(format!("{url}: {e}")))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The wait before the next poll: `every`, give or take 10 %, at random.
pub fn next_wait(every: Duration) -> Duration {
    let spread = every.as_millis() as u64 / 10;
    let jitter = fastrand::u64(0..=spread.saturating_mul(2));
    (every + Duration::from_millis(jitter)).saturating_sub(Duration::from_millis(spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str, every: Option<&str>) -> PackSourceSettings {
        PackSourceSettings {
            url: url.into(),
            signature: None,
            every: every.map(str::to_string),
        }
    }

    /// A server on loopback that answers every request with `answer` (a whole HTTP response,
    /// head and body), then closes.
    async fn server(answer: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head).await;
                let _ = conn.write_all(&answer).await;
            }
        });
        format!("http://{addr}/p.tar.gz")
    }

    #[tokio::test]
    async fn a_hostile_server_is_read_no_further_than_a_pack_may_be() {
        let source = |url: &str| HttpSource::new(source(url, None)).expect("client");
        // It says the body is larger than allowed: refused before a byte is read.
        let url = server(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n".to_vec()).await;
        let e = source(&url)
            .get(&url, None, 1024)
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(&e, FetchError::Wrong(why) if why.contains("more than the 1024 bytes")),
            "{e}"
        );
        // It sends more than allowed without saying so: refused once past the bound.
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..4 {
            chunked.extend_from_slice(b"200\r\n");
            chunked.extend_from_slice(&[b'x'; 0x200]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let url = server(chunked).await;
        let e = source(&url)
            .get(&url, None, 1024)
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(&e, FetchError::Wrong(why) if why.contains("more than the 1024 bytes")),
            "{e}"
        );
        // A client error is not tried again; a server error is.
        let url = server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        assert!(matches!(
            source(&url).get(&url, None, 1024).await,
            Err(FetchError::Wrong(_))
        ));
        let url = server(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        assert!(matches!(
            source(&url).get(&url, None, 1024).await,
            Err(FetchError::Again(_))
        ));
    }

    #[test]
    fn a_source_is_an_http_address_polled_every_10_s_to_a_day() {
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
        for (bad, why) in [
            (source("ftp://x/p.tar.gz", None), "https://"),
            (source("not a url", None), "relative URL"),
            (source("https://x/p.tar.gz", Some("1s")), "10 s to 1 day"),
            (
                source("https://x/p.tar.gz", Some("often")),
                "not a duration",
            ),
        ] {
            let e = bad.check().expect_err("refused").to_string();
            assert!(
                e.contains(why) && e.starts_with("[[fleet.pack_source]]"),
                "{e}"
            );
        }
        // A Last-Modified within the second of the answer could be followed by a change
        // within that second: not a validator.
        let (t, next) = (
            "Wed, 02 Dec 2026 06:28:24 GMT",
            "Wed, 02 Dec 2026 06:28:25 GMT",
        );
        assert!(!strong(t, Some(t)));
        assert!(strong(t, Some(next)));
        assert!(!strong(t, None));
        assert!(!strong("yesterday", Some(next)));
        for _ in 0..100 {
            let w = next_wait(Duration::from_secs(100));
            assert!((90..=110).contains(&w.as_secs()), "{w:?}");
        }
    }
}
