//! Ferrum Studio: a web dashboard served by the library itself.
//!
//! [`Studio::start`] binds a socket in the caller's thread (so "port in use"
//! is reported at once), then serves the embedded single-page app and its
//! JSON API from a background thread running a small tokio runtime of its
//! own. It shares the caller's [`Documents`] handle: no second open, so the
//! single-writer lock is never in question and every write made through
//! Python or the REPL is visible at the next request. No Python is involved
//! for a file; a PostgreSQL table is served through its Python handle, as a
//! [`Backend`](crate::backend::Backend) ([`Studio::start_backend`]): every
//! route calls only that trait.
//!
//! Files by job: [`api`] the `/api/` routes, [`assets`] the embedded HTML,
//! CSS and JS, [`security`] the guard every request passes, [`metrics`] the
//! ops/sec history for the chart, [`error`] the JSON error shape, [`conn`]
//! the accept loop with its connection timeout and cap, [`wire`] JSON bodies
//! for the errors hyper answers by itself, [`browse`] the key list rows and
//! content search, [`ops`] compact, backup and export as background jobs.

mod api;
mod assets;
mod browse;
mod conn;
mod error;
mod metrics;
mod ops;
mod security;
mod wire;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;

use crate::backend::SharedBackend;
use crate::documents::Documents;

pub use conn::ConnectionLimits;
pub use error::MAX_BODY_BYTES;

/// The port Studio listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7474;
/// How long a stop waits for requests in flight before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Where and how Studio serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudioOptions {
    /// Address to bind: a host name or IP (default `127.0.0.1`).
    pub host: String,
    /// Port to bind; 0 picks a free one (see [`Studio::local_addr`]).
    pub port: u16,
    /// When set, every `/api/` request needs `Authorization: Bearer <token>`.
    /// Required for a non-loopback `host`.
    pub token: Option<String>,
    /// Refuse every mutating request with 403.
    pub read_only: bool,
}

impl Default for StudioOptions {
    fn default() -> Self {
        StudioOptions {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            token: None,
            read_only: false,
        }
    }
}

/// Why Studio could not start.
#[derive(Debug)]
pub enum StudioError {
    /// A non-loopback host was asked for without a token.
    TokenRequired {
        /// The host asked for.
        host: String,
    },
    /// The host or token is unusable (unresolvable host, empty token, ...).
    InvalidOptions(String),
    /// The socket could not be bound (port in use, permission denied).
    Bind {
        /// `host:port` as asked for.
        addr: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The background thread or runtime could not be created.
    Runtime(io::Error),
}

impl fmt::Display for StudioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StudioError::TokenRequired { host } => write!(
                f,
                "Studio on {host:?} would be reachable from other machines: pass a token \
                 (token=\"...\") or bind 127.0.0.1"
            ),
            StudioError::InvalidOptions(msg) => f.write_str(msg),
            StudioError::Bind { addr, source } => write!(
                f,
                "cannot serve Ferrum Studio on {addr}: {source}; choose another port \
                 (port=0 picks a free one)"
            ),
            StudioError::Runtime(e) => write!(f, "cannot start Ferrum Studio: {e}"),
        }
    }
}

impl std::error::Error for StudioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StudioError::Bind { source, .. } | StudioError::Runtime(source) => Some(source),
            _ => None,
        }
    }
}

/// A running Studio. Stop it with [`Studio::stop`] or by dropping it; both
/// stop accepting, let requests in flight finish (for up to two seconds) and
/// join the background thread.
#[derive(Debug)]
pub struct Studio {
    url: String,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The Studio app (pages and API) for `docs`, without a socket: what the
/// server runs, and what tests drive with `tower::ServiceExt::oneshot`.
/// `options.host` only decides whether the Host header is checked (loopback
/// binds refuse other host names, against DNS rebinding).
pub fn router(docs: Documents, options: &StudioOptions) -> Router {
    router_for_backend(Arc::new(docs), options)
}

/// [`router`] for any backend (a PostgreSQL table, through its Python handle).
pub fn router_for_backend(docs: SharedBackend, options: &StudioOptions) -> Router {
    let loopback = is_loopback_host(&options.host);
    let metrics = Arc::new(metrics::Metrics::new());
    app(docs, options, loopback, metrics)
}

fn app(
    docs: SharedBackend,
    options: &StudioOptions,
    loopback: bool,
    metrics: Arc<metrics::Metrics>,
) -> Router {
    let guard = security::Guard {
        token: options.token.clone(),
        read_only: options.read_only,
        check_host: loopback,
    };
    let state = api::AppState {
        docs,
        metrics,
        ops: Arc::default(),
        read_only: options.read_only,
    };
    security::layered(api::routes(state).merge(assets::routes()), guard)
}

/// Whether `host` names only loopback addresses (names are resolved).
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match (bare, 0).to_socket_addrs() {
        Ok(mut addrs) => addrs.all(|a| a.ip().is_loopback()),
        Err(_) => false,
    }
}

impl Studio {
    /// Bind `options.host:options.port` and serve Studio for `docs` from a
    /// background thread.
    ///
    /// # Errors
    /// [`StudioError::TokenRequired`] for a non-loopback host without a
    /// token; [`StudioError::Bind`] when the port is taken;
    /// [`StudioError::InvalidOptions`], [`StudioError::Runtime`].
    pub fn start(docs: Documents, options: StudioOptions) -> Result<Studio, StudioError> {
        Self::start_backend(Arc::new(docs), options)
    }

    /// [`Studio::start`] for any backend (a PostgreSQL table, through its
    /// Python handle, for `ferrumdb studio postgresql://…`).
    ///
    /// # Errors
    /// As [`Studio::start`].
    pub fn start_backend(
        docs: SharedBackend,
        options: StudioOptions,
    ) -> Result<Studio, StudioError> {
        Self::start_backend_with_limits(docs, options, ConnectionLimits::default())
    }

    /// [`Studio::start`] with other connection limits (tests use a short
    /// header-read timeout and a small cap).
    ///
    /// # Errors
    /// As [`Studio::start`].
    pub fn start_with_limits(
        docs: Documents,
        options: StudioOptions,
        limits: ConnectionLimits,
    ) -> Result<Studio, StudioError> {
        Self::start_backend_with_limits(Arc::new(docs), options, limits)
    }

    fn start_backend_with_limits(
        docs: SharedBackend,
        options: StudioOptions,
        limits: ConnectionLimits,
    ) -> Result<Studio, StudioError> {
        if options.token.as_deref() == Some("") {
            return Err(StudioError::InvalidOptions(
                "the Studio token must not be empty".into(),
            ));
        }
        let bare = options.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (bare, options.port)
            .to_socket_addrs()
            .map_err(|e| {
                StudioError::InvalidOptions(format!(
                    "cannot use host {:?} for Studio: {e}",
                    options.host
                ))
            })?
            .collect();
        let loopback = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
        if !loopback && options.token.is_none() {
            return Err(StudioError::TokenRequired {
                host: options.host.clone(),
            });
        }
        let shown = format!("{}:{}", options.host, options.port);
        let listener = TcpListener::bind(&addrs[..]).map_err(|source| StudioError::Bind {
            addr: shown.clone(),
            source,
        })?;
        let bind_err = |source| StudioError::Bind {
            addr: shown.clone(),
            source,
        };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;

        let host_in_url = if addr.is_ipv6() && !options.host.starts_with('[') {
            format!("[{bare}]")
        } else {
            options.host.clone()
        };
        let mut url = format!("http://{host_in_url}:{}/", addr.port());
        if let Some(token) = &options.token {
            url.push_str("?token=");
            url.push_str(&percent_encode(token));
        }

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .thread_name("ferrum-studio-blocking")
            .build()
            .map_err(StudioError::Runtime)?;
        let metrics = Arc::new(metrics::Metrics::new());
        let router = app(docs.clone(), &options, loopback, metrics.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ferrum-studio".into())
            .spawn(move || serve(runtime, listener, router, limits, docs, metrics, rx))
            .map_err(StudioError::Runtime)?;
        Ok(Studio {
            url,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address to open in a browser (with `?token=` when a token is set).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and wait for the background thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            // An error means the server already ended; nothing to tell it.
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread has already been reported on
            // stderr by the panic hook; stopping must not panic again.
            let _ = thread.join();
        }
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// The background thread: serve until told to stop, sampling metrics.
fn serve(
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    docs: SharedBackend,
    metrics: Arc<metrics::Metrics>,
    stop: oneshot::Receiver<()>,
) {
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ferrum studio: cannot listen: {e}");
                return;
            }
        };
        let sampler = tokio::spawn(metrics::run_sampler(metrics, docs));
        // Either a stop request or the sender being dropped ends serving.
        conn::serve(listener, router, limits, stop, SHUTDOWN_GRACE).await;
        sampler.abort();
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
}

/// Percent-encode everything but unreserved characters (for `?token=`).
fn percent_encode(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("0.0.0.0"));
        assert!(!is_loopback_host("no such host name.invalid"));
    }

    #[test]
    fn token_is_percent_encoded() {
        assert_eq!(percent_encode("a b/c~"), "a%20b%2Fc~");
    }
}
