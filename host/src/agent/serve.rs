//! Serving the admin API and the console with bounded connections.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires and an idle
//! keep-alive connection is held forever: 1,100 clients that send half a request header and wait
//! took an agent at the usual 1,024-descriptor limit off the air (the API silent, webhooks failing
//! `Too many open files` until dead), and 20,000 of them grew it by 600 MB. Here every
//! connection must finish its request head within [`HEADER_TIMEOUT`] (between keep-alive
//! requests too), lives at most [`CONNECTION_LIFETIME`], and at most [`MAX_CONNECTIONS`] are open
//! at once; one past the cap is closed at once. The descriptors left over — the agent raises its
//! soft limit to the hard one at start, see [`raise_fd_limit`] — stay for the store, the
//! sources and the actions.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

/// A connection must have sent a whole request head this long after it opened, or after its
/// last response.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection lives longer than this, whatever it does (a pack upload over loopback takes
/// well under a second).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting and gives open
/// connections a few seconds to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
    refused: impl Fn() + Send + Sync + 'static,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most likely: wait a little rather than spin.
                    tracing::warn!("admin API cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused();
            drop(stream);
            continue;
        };
        let app = app.clone();
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = TowerToHyperService::new(app);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 << 10);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
            tokio::pin!(lifetime);
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!("admin API connection ended: {e}");
                        }
                        return;
                    }
                    () = &mut lifetime => return,
                    changed = closed.changed() => {
                        if changed.is_err() || *closed.borrow() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    let _ = closing.send(true);
    // Every slot back means every connection has ended.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
}

/// Raises this process's soft limit on open files to its hard limit, so the connection cap
/// leaves room for everything else the agent opens.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
}
