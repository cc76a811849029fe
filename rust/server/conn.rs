//! Studio's accept loop: each connection served by hyper's HTTP/1 builder,
//! with a header-read timeout and a cap on concurrent connections.
//!
//! Why not `axum::serve`: it never times out a client and accepts without
//! limit, so a local process holding a few hundred half-sent requests made
//! Studio unreachable and took the descriptors the database needs for
//! compaction, backup and export (EMFILE). Here a connection that does not
//! finish a request head within [`ConnectionLimits::header_read_timeout`]
//! (hyper also applies it to the wait for the next request on a keep-alive
//! connection, so idle ones close too) is closed, so is one whose body
//! stalls ([`ConnectionLimits::body_read_timeout`]), and at most
//! [`ConnectionLimits::max_connections`] are open at once: beyond that, new
//! clients wait in the kernel's accept queue, which costs this process no
//! descriptor.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tower_http::timeout::RequestBodyTimeout;

use super::wire::JsonErrorIo;

/// Bounds on Studio's connections. The defaults suit a browser (which
/// opens about six connections per host) and any local script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client has to send a complete request head, counted from
    /// the connection (or the previous response, on a keep-alive
    /// connection); then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a request body may stall between two chunks before the
    /// request fails (400) and the connection is closed.
    pub body_read_timeout: Duration,
    /// Most connections served at once; later ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(15),
            max_connections: 64,
        }
    }
}

/// Pause after a failed accept (EMFILE and the like) before trying again,
/// so a persistent failure does not spin the thread.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve `router` on `listener` within `limits` until `stop` fires (or its
/// sender is dropped), then let connections finish for up to `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stop: oneshot::Receiver<()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    // Whether the current run of accept failures was reported (once per run,
    // not every ACCEPT_BACKOFF).
    let mut reported = false;
    loop {
        // Take a slot before accepting: while all are in use, new clients
        // stay in the accept queue and hold no descriptor of ours.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    reported = false;
                    stream
                }
                Err(e) => {
                    if !is_connection_error(&e) {
                        if !reported {
                            eprintln!("ferrum studio: cannot accept a connection: {e}");
                            reported = true;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                            _ = &mut stop => break,
                        }
                    }
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Responses are small and interactive: send them at once.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(RequestBodyTimeout::new(
            router.clone(),
            limits.body_read_timeout,
        ));
        let io = TokioIo::new(JsonErrorIo::new(stream));
        let connection = builder.serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is not Studio's error.
            let _ = connection.await;
            drop(permit);
        });
    }
    // Stop accepting (the listener closes here), then let requests in
    // flight finish; connections still open after `grace` are dropped with
    // the runtime.
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

/// Errors of one connection that was already gone when accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
