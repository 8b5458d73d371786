//! Why an attempt at an action failed, in the one way the worker must tell apart: whether
//! trying again can help. A webhook endpoint that answers 400 or an SMTP server that refuses a
//! recipient will answer the same on the eighth attempt; a refused connection or a 503 may not.

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Trying again later may work: the network, a timeout, a server error, a server asking
    /// to be called back (HTTP 408, 425, 429, 5xx; SMTP 4xx).
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot work until someone changes something: the receiver refused the
    /// request (HTTP 4xx, a redirect not followed; SMTP 5xx), or the message cannot be built.
    #[error("{0}")]
    Permanent(String),
}

impl Failure {
    /// Whether the worker should try again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Transient(_))
    }
}

/// How an HTTP answer that is not a success fails: client errors are permanent except those
/// that ask to be retried (408 Request Timeout, 425 Too Early, 429 Too Many Requests).
pub fn of_http_status(status: u16, detail: String) -> Failure {
    match status {
        408 | 425 | 429 => Failure::Transient(detail),
        300..=499 => Failure::Permanent(detail),
        _ => Failure::Transient(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_permanent_unless_they_ask_to_be_retried() {
        let is_transient = |s| of_http_status(s, String::new()).is_transient();
        assert!(!is_transient(400));
        assert!(!is_transient(401));
        assert!(!is_transient(404));
        assert!(!is_transient(302), "redirects are not followed");
        assert!(is_transient(408));
        assert!(is_transient(429));
        assert!(is_transient(500));
        assert!(is_transient(503));
    }
}
