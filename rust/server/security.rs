//! The guard every Studio request passes, and the layers around the app.
//!
//! Threats and answers: a web page on another site must not change the
//! database (mutations need the `X-Ferrum-Studio: 1` header, which a
//! cross-site page cannot send without a CORS preflight, and preflights are
//! refused); a DNS-rebinding page must not read it either (on loopback binds
//! the Host header must be a loopback name); other machines must not reach it
//! without a secret (non-loopback binds need a token, sent as
//! `Authorization: Bearer`); a viewer may be given a `read_only` Studio
//! (every change is 403; queries, which are reads, are answered). Responses forbid framing and sniffing, and the
//! page never leaks its `?token=` through the Referer header.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use super::error::{json_errors, ApiError, MAX_BODY_BYTES};

/// The header a mutating request must carry (with value `1`).
pub const STUDIO_HEADER: &str = "x-ferrum-studio";

/// What the guard enforces.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub token: Option<String>,
    pub read_only: bool,
    /// Loopback bind: refuse Host headers that are not loopback names.
    pub check_host: bool,
}

/// Wrap `app` in (outermost first): JSON errors, the guard, panic catching,
/// the body limit.
pub(crate) fn layered(app: Router, guard: Guard) -> Router {
    app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(Arc::new(guard), check))
        .layer(middleware::from_fn(json_errors))
}

/// Whether a Host header value names this machine's loopback interface.
fn is_loopback_name(host: &str) -> bool {
    // Strip the port: "[::1]:7474", "127.0.0.1:7474", "localhost".
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Constant-time comparison, so the token cannot be guessed byte by byte
/// from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer_ok(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same_secret(given.trim().as_bytes(), token.as_bytes()))
}

/// Whether the request's Origin (when sent) is this server itself.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn is_mutation(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD)
}

/// Routes that take a POST body but only read (README "Ferrum Studio"): a read-only
/// Studio answers them (an export reads the database into a temporary file
/// of Studio's own, for download). They still need the Studio header, like every
/// POST, so a cross-site page cannot make Studio run them.
const READ_POSTS: [&str; 4] = ["/api/query", "/api/explain", "/api/find", "/api/ops/export"];

fn changes_data(method: &Method, path: &str) -> bool {
    is_mutation(method) && !(*method == Method::POST && READ_POSTS.contains(&path))
}

/// The guard middleware.
async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if let Err(e) = admit(&guard, &req) {
        return with_safety_headers(e.into_response(), false);
    }
    let is_api = req.uri().path().starts_with("/api/");
    with_safety_headers(next.run(req).await, is_api)
}

fn admit(guard: &Guard, req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let method = req.method();
    if method == Method::OPTIONS {
        return Err(ApiError::forbidden(
            "Studio refuses cross-origin (CORS) requests; use the Studio page itself",
        ));
    }
    if guard.check_host {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !is_loopback_name(host) {
                return Err(ApiError::forbidden(format!(
                    "Host {host:?} is not this machine's loopback address (DNS rebinding protection); \
                     open Studio at http://127.0.0.1:<port>/"
                )));
            }
        }
    }
    if !req.uri().path().starts_with("/api/") {
        return Ok(());
    }
    if let Some(token) = &guard.token {
        if !bearer_ok(headers, token) {
            return Err(ApiError::forbidden(
                "missing or wrong token: send Authorization: Bearer <token> \
                 (open the URL that studio() printed, it carries ?token=)",
            ));
        }
    }
    if is_mutation(method) {
        let marked = headers
            .get(STUDIO_HEADER)
            .is_some_and(|v| v.as_bytes() == b"1");
        if !marked {
            return Err(ApiError::forbidden(
                "mutating requests must carry the header X-Ferrum-Studio: 1",
            ));
        }
        if !same_origin(headers) {
            return Err(ApiError::forbidden(
                "cross-origin mutating requests are refused",
            ));
        }
        if guard.read_only && changes_data(method, req.uri().path()) {
            return Err(ApiError::forbidden(
                "this Studio is read-only: it refuses every change",
            ));
        }
    }
    Ok(())
}

fn with_safety_headers(mut response: Response, is_api: bool) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    if is_api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for ok in [
            "127.0.0.1:7474",
            "localhost:7474",
            "LOCALHOST",
            "[::1]:80",
            "127.1.2.3",
            "studio.localhost:1",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in [
            "evil.com:7474",
            "10.0.0.1",
            "[::2]:80",
            "",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_panicking_handler_is_a_json_500_and_the_app_lives_on() {
        use axum::body::{to_bytes, Body};
        use axum::http::{Request, StatusCode};
        use axum::routing::get;
        use tower::ServiceExt;

        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app = layered(
            Router::new()
                .route("/api/boom", get(boom))
                .route("/api/fine", get(|| async { "ok" })),
            Guard {
                token: None,
                read_only: false,
                check_host: true,
            },
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let res = app
                .clone()
                .oneshot(Request::get("/api/boom").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].is_string(), "{v}");
            let res = app
                .oneshot(Request::get("/api/fine").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        });
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
