//! The one error shape of Studio's API: `{"error": "..."}` with a 4xx (or,
//! for a bug, 5xx) status. Handlers return [`ApiError`]; [`json_errors`]
//! rewrites every other error response (axum's extractor rejections, 404 and
//! 405 from routing, 413 from the body limit, 500 from a caught panic) into
//! the same shape, so a client never has to parse plain text.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::{BackendErrorKind, Error};

/// Largest request body accepted (a document, a query): 16 MiB. Bigger
/// documents are stored through Python or the REPL. It lives here, beside
/// the 413 message that names it, so `error` imports nothing from `api`.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Longest error text kept from a rejection body.
const MAX_ERROR_TEXT: usize = 16 * 1024;

/// An API failure: the status and the message for `{"error": ...}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::InvalidKey { .. }
            | Error::InvalidValue { .. }
            | Error::InvalidFilter { .. }
            | Error::InvalidConfig(_)
            | Error::InvalidUpdate { .. }
            | Error::UpdateTypeMismatch { .. } => StatusCode::BAD_REQUEST,
            // The request is fine; the data refuses it as it stands now.
            Error::DuplicateKey { .. } | Error::TransactionConflict { .. } => StatusCode::CONFLICT,
            Error::ReadOnly => StatusCode::FORBIDDEN,
            Error::Closed => StatusCode::SERVICE_UNAVAILABLE,
            Error::Backend { kind, .. } => match kind {
                BackendErrorKind::BadInput => StatusCode::BAD_REQUEST,
                BackendErrorKind::Conflict => StatusCode::CONFLICT,
                BackendErrorKind::ReadOnly => StatusCode::FORBIDDEN,
                BackendErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                BackendErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
                BackendErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Middleware: give every error response a JSON body.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, true) => "no such page or API route".to_string(),
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if allowed.is_empty() {
                "method not allowed on this route".to_string()
            } else {
                format!("method not allowed on this route (allowed: {allowed})")
            }
        }
        (StatusCode::PAYLOAD_TOO_LARGE, _) => format!(
            "request body too large (Studio accepts at most {} MiB)",
            MAX_BODY_BYTES >> 20
        ),
        (_, false) => text,
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
    };
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
