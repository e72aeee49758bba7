//! Who is calling: passwords, sessions, roles, and the site a user may see.
//!
//! Passwords are stored as argon2id hashes (PHC strings). A login issues a
//! random 256-bit token, returned once as a bearer token and as an HttpOnly
//! cookie; the database keeps only its SHA-256. Every route but health and
//! login takes a [`CurrentUser`], so forgetting authentication is a compile
//! error rather than a hole.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use telediag_archive::Database;
use telediag_archive::accounts::NewUserRow;

use crate::AppState;
use crate::error::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "telediag_session";
/// Sessions last a working shift and a half.
pub const SESSION_HOURS: i64 = 12;

pub use telediag_workflow::{Role, Scope};

/// An authenticated caller: the workflow's [`telediag_workflow::Actor`],
/// extracted from the request's session (see the `FromRequestParts` impl
/// below), so a handler that takes one cannot forget authentication.
pub type CurrentUser = telediag_workflow::Actor;

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] telediag_archive::DbError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(reason) => ApiError::bad_request(reason),
            AccountError::Database(e) => e.into(),
            AccountError::Hashing(reason) => ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, reason),
        }
    }
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| AccountError::Hashing(format!("salt: {e}")))?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| AccountError::Hashing(e.to_string()))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()).unwrap_or(false)
}

/// Confirms a signing act (sign, co-sign, return, amend) with the actor's
/// own login password, so that a session left open or stolen cannot sign.
/// A wrong password counts as a failed login: the account lock that stops
/// password guessing stops guessing here too. Refusals are 403, not 401:
/// the session itself is still good.
pub async fn confirm_password(state: &AppState, user: &CurrentUser, password: &str, act: &str) -> Result<(), ApiError> {
    let forbidden = |reason: String| ApiError::new(axum::http::StatusCode::FORBIDDEN, reason);
    if password.is_empty() {
        return Err(forbidden(format!("{act} is confirmed with your password, and none was given")));
    }
    let db = state.archive.database();
    if db.begin_login_attempt(user.id).await?.is_none() {
        let lock = db.login_lock(user.id).await?;
        let wait = lock.locked_until.unwrap_or(0).saturating_sub(telediag_archive::db::now_ms()).max(1000) / 1000;
        return Err(forbidden(format!(
            "your account is locked for {} minutes after {} wrong passwords; an administrator can unlock it",
            (wait as u64).div_ceil(60),
            lock.failed_logins
        )));
    }
    let row = db.user_by_id(user.id).await?.ok_or_else(ApiError::unauthorized)?;
    let (password, hash) = (password.to_owned(), row.password_hash);
    // argon2 takes tens of milliseconds of CPU: not on an async worker.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("password check failed: {e}")))?;
    if !verified {
        tracing::warn!(user = %user.username, act, "signing act refused: wrong password");
        return Err(forbidden(format!("{act} refused: wrong password")));
    }
    db.clear_login_failures(user.id).await?;
    Ok(())
}

/// A hash of a random password, made once, that an unknown username's login
/// is verified against: it costs what a real verification costs.
pub fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_token()).expect("hashing a random password"))
}

/// A token's database key.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A user to create, with a plain password that is hashed here.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub roles: Vec<Role>,
    /// Required for site users.
    pub site: Option<String>,
}

/// Creates a user (hashing the password).
pub async fn create_user(db: &Database, user: &NewUser) -> Result<i64, AccountError> {
    if user.username.trim().is_empty() || user.password.len() < 8 {
        return Err(AccountError::Invalid("a user needs a username and a password of at least 8 characters".into()));
    }
    if user.roles.is_empty() {
        return Err(AccountError::Invalid("a user needs at least one role".into()));
    }
    let site_id = match &user.site {
        Some(name) => Some(db.site_by_name(name).await?.id),
        None if user.roles.contains(&Role::SiteUser) => {
            return Err(AccountError::Invalid("a site user needs a site".into()));
        }
        None => None,
    };
    Ok(db
        .insert_user(&NewUserRow {
            username: user.username.trim().to_owned(),
            display_name: user.display_name.clone(),
            password_hash: hash_password(&user.password)?,
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            site_id,
        })
        .await?)
}

/// Creates the `admin` user when no enabled user is an admin (a first start,
/// or readers added from the CLI before it). Returns the password when it
/// was generated, so the caller can print it once.
pub async fn ensure_admin(db: &Database, configured_password: Option<&str>) -> Result<Option<String>, AccountError> {
    if db.count_admins().await? > 0 || db.user_by_name("admin").await?.is_some() {
        return Ok(None);
    }
    let generated = configured_password.is_none().then(|| {
        let bytes: [u8; 12] = rand::random();
        hex::encode(bytes)
    });
    let password = configured_password.map(str::to_owned).or(generated.clone()).expect("one of the two");
    create_user(
        db,
        &NewUser { username: "admin".into(), display_name: "系统管理员".into(), password, roles: vec![Role::Admin], site: None },
    )
    .await?;
    Ok(generated)
}

/// The caller's token, when one was sent (for logout).
pub fn presented_token(parts: &Parts) -> Option<String> {
    token_in(&parts.headers)
}

/// The session's user as the audit middleware found it (`Ok(None)`: no
/// valid session; `Err`: the database could not say, with the reason),
/// kept in the request so handlers do not look it up again.
#[derive(Debug, Clone)]
pub struct Caller(pub Result<Option<CurrentUser>, String>);

/// The user of the session named by the request's bearer token or cookie.
/// A database that cannot answer is an error, not an unknown session: the
/// client is told to retry (503), not to log in again (401), which would
/// send every doctor back to the login page while PostgreSQL restarts.
pub async fn resolve(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Option<CurrentUser>, String> {
    let Some(token) = token_in(headers) else { return Ok(None) };
    match state.archive.database().session_user(&token_hash(&token)).await {
        Ok(user) => Ok(user.map(Into::into)),
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            Err(format!("index database unavailable: cannot check the session: {e}"))
        }
    }
}

/// The session a request came with, as its database key: what a session's
/// own state (a signing unlock) is kept under.
pub fn session_key(headers: &axum::http::HeaderMap) -> Option<String> {
    token_in(headers).map(|t| token_hash(&t))
}

fn token_in(headers: &axum::http::HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The header the web application sends with every change. A page of
/// another origin cannot add it without a CORS grant, which `/api` never
/// gives.
pub const CSRF_HEADER: &str = "x-telediag-request";

/// Whether a state-changing request cannot be a cross-site forgery: it
/// carries a bearer token (which a browser never adds by itself), or the
/// browser says it comes from the centre's own origin, or it carries
/// [`CSRF_HEADER`]. The session cookie is also `SameSite=Strict`; this is
/// the second lock, for browsers and proxies that get that wrong.
fn cross_site_safe(headers: &axum::http::HeaderMap) -> bool {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer "));
    let same_origin = headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"same-origin");
    bearer || same_origin || headers.contains_key(CSRF_HEADER)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    /// The audit middleware has looked the session up already (found or not);
    /// without it (unit tests of single routes) it is looked up here.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if token_in(&parts.headers).is_none() {
            return Err(ApiError::unauthorized());
        }
        if !parts.method.is_safe() && !cross_site_safe(&parts.headers) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "a change made with the session cookie must come from the centre's own pages: \
                 expected Sec-Fetch-Site: same-origin or an X-Telediag-Request header, found neither",
            ));
        }
        let user = match parts.extensions.get::<Caller>() {
            Some(Caller(user)) => user.clone(),
            None => resolve(state, &parts.headers).await,
        };
        let user = user.map_err(|reason| ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, reason))?;
        user.ok_or_else(|| ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "session expired or unknown: log in again"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
