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
    /// A stable name for what went wrong, sent as `"code"` where a client
    /// acts on it (the web application asks for a signing PIN on
    /// `signing_pin_not_set`), not on the reason's words.
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError { status, reason: reason.into(), retry_after: None, code: None }
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
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
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
        let body = match self.code {
            Some(code) => serde_json::json!({ "error": self.reason, "code": code }),
            None => serde_json::json!({ "error": self.reason }),
        };
        let mut response = (self.status, Json(body)).into_response();
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

impl From<telediag_workflow::WorkflowError> for ApiError {
    fn from(e: telediag_workflow::WorkflowError) -> Self {
        use telediag_workflow::WorkflowError as W;
        let status = match &e {
            W::NotFound(_) => StatusCode::NOT_FOUND,
            W::Forbidden(_) => StatusCode::FORBIDDEN,
            W::Conflict(_) => StatusCode::CONFLICT,
            W::Invalid(_) => StatusCode::BAD_REQUEST,
            W::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Turns an error response that is not JSON (axum's extractor rejections:
/// malformed JSON, a body over the limit, a wrong method) into
/// `{"error": reason}`, keeping its status.
pub async fn errors_as_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // JSON of any kind: `application/json`, or a `+json` type such as a
        // STOW-RS response (`application/dicom+json`), which is a reply,
        // not a rejection to rewrap.
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence == "application/json" || essence.ends_with("+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are one line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned()).unwrap_or_default();
    let reason = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    let mut error = ApiError::new(status, reason).into_response();
    for (name, value) in parts.headers.iter().filter(|(name, _)| *name == axum::http::header::ALLOW) {
        error.headers_mut().insert(name, value.clone());
    }
    error
}
