//! A pack on a web server: the archive's URL and its `.minisig` beside it, asked for only when
//! changed (`If-None-Match`, `If-Modified-Since`), read no further than a pack may be.

use std::time::Duration;

use super::{Fetched, MAX_SIGNATURE_BYTES, PackSourceSettings, TIMEOUT};
use crate::fleet::FetchError;

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
        let max = crate::fleet::packs::MAX_PACK_BYTES as usize;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let source = |url: &str| {
            HttpSource::new(crate::fleet::sources::tests::source(url, None)).expect("client")
        };
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
    fn a_last_modified_within_the_second_of_the_answer_is_no_validator() {
        // A change within that second would look unchanged.
        let (t, next) = (
            "Wed, 02 Dec 2026 06:28:24 GMT",
            "Wed, 02 Dec 2026 06:28:25 GMT",
        );
        assert!(!strong(t, Some(t)));
        assert!(strong(t, Some(next)));
        assert!(!strong(t, None));
        assert!(!strong("yesterday", Some(next)));
    }
}
