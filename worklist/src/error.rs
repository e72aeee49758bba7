//! API errors: an HTTP status and a JSON body `{"error": "<reason>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use telediag_archive::DbError;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: String,
    /// Seconds, sent as `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError { status, reason: reason.into(), retry_after: None }
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication required: log in or send a bearer token")
    }
    pub fn forbidden(what: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, format!("your role does not allow {what}"))
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, reason)
    }
    /// A query that failed: the database is unreachable or broken, not the request.
    pub fn database(e: sqlx::Error) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("index database unavailable: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, reason = %self.reason, "request failed");
        }
        let mut response = (self.status, Json(serde_json::json!({ "error": self.reason }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(reason) => ApiError::new(StatusCode::CONFLICT, reason),
            DbError::NotFound { what, name } => ApiError::new(StatusCode::NOT_FOUND, format!("{what} {name:?} not found")),
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("index database unavailable: {other}")),
        }
    }
}
