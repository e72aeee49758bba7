//! What a workflow call answers when it cannot do what was asked.
//!
//! The kinds are the ones a caller acts on differently: the HTTP layer maps
//! them to 404, 403, 409, 400 and 503; the CLI prints the reason; a worker
//! retries only when the database was unavailable.

use telediag_archive::DbError;

/// Why a workflow operation was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The object does not exist, or the caller's scope does not see it
    /// (another site's request is "not found", exactly as a missing one).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's role or credentials do not allow the action; says what.
    #[error("your role does not allow {0}")]
    Forbidden(String),
    /// The object's state does not allow the action now (held by someone
    /// else, already signed, changed meanwhile); says which state it is in.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong: says what was expected and what was found.
    #[error("{0}")]
    Invalid(String),
    /// The index database could not be reached or failed; nothing was changed.
    #[error("index database unavailable: {0}")]
    Unavailable(String),
}

impl WorkflowError {
    pub fn not_found(what: &str) -> Self {
        WorkflowError::NotFound(what.to_owned())
    }
    pub fn forbidden(what: impl Into<String>) -> Self {
        WorkflowError::Forbidden(what.into())
    }
    pub fn conflict(reason: impl Into<String>) -> Self {
        WorkflowError::Conflict(reason.into())
    }
    pub fn invalid(reason: impl Into<String>) -> Self {
        WorkflowError::Invalid(reason.into())
    }
}

impl From<sqlx::Error> for WorkflowError {
    fn from(e: sqlx::Error) -> Self {
        WorkflowError::Unavailable(e.to_string())
    }
}

impl From<DbError> for WorkflowError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(reason) => WorkflowError::Conflict(reason),
            DbError::NotFound { what, name } => WorkflowError::NotFound(format!("{what} {name:?}")),
            DbError::Query(e) => WorkflowError::Unavailable(e.to_string()),
            other => WorkflowError::Unavailable(other.to_string()),
        }
    }
}

pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;
