//! `/api/me/signing…`: a doctor's own signing PIN, unlock and PKCS#12
//! import; `/api/users/{id}/signing-identity/retire` for administrators.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{PinChange, SigningError};
use crate::AppState;
use crate::auth::{self, CurrentUser, Role};
use crate::error::ApiError;

fn session(headers: &HeaderMap) -> Result<String, ApiError> {
    auth::session_key(headers).ok_or_else(ApiError::unauthorized)
}

/// Signing is for the centre's doctors; site staff and admins sign nothing.
fn require_signer(user: &CurrentUser) -> Result<(), ApiError> {
    if [Role::Radiologist, Role::EcgDoctor, Role::Reviewer].iter().any(|&r| user.has(r)) {
        Ok(())
    } else {
        Err(ApiError::forbidden("holding a signing key"))
    }
}

/// `GET /api/me/signing`: whether the user has a PIN, their certificate, locks and unlock.
pub async fn status(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap) -> Result<Response, ApiError> {
    require_signer(&user)?;
    Ok(Json(super::status(&state, &user, &session(&headers)?).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPin {
    /// The login password: a stolen session alone cannot choose a PIN.
    password: String,
    pin: String,
    /// The PIN in use, to keep the same key; without it a new key is issued
    /// and the old certificate retired.
    current_pin: Option<String>,
    /// The registration officer's one-time code, which a new key needs
    /// ([`super::enrolment`]).
    enrolment_code: Option<String>,
}

/// `PUT /api/me/signing-pin`: choose, change or (forgotten) reset the signing PIN.
pub async fn set_pin(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<SetPin>,
) -> Result<Response, ApiError> {
    require_signer(&user)?;
    auth::confirm_password(&state, &user, &body.password, "choosing a signing PIN").await?;
    let change =
        super::set_pin(&state, &user, &body.password, &body.pin, body.current_pin.as_deref(), body.enrolment_code.as_deref()).await?;
    let status = super::status(&state, &user, &session(&headers)?).await?;
    Ok(Json(serde_json::json!({ "change": change, "signing": status })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unlock {
    pin: String,
    minutes: u32,
}

/// `POST /api/me/signing-unlock`: sign without retyping the PIN, in this session, for some minutes.
pub async fn unlock(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<Unlock>,
) -> Result<Response, ApiError> {
    require_signer(&user)?;
    let until = super::unlock(&state, &user, &session(&headers)?, &body.pin, body.minutes).await?;
    Ok(Json(serde_json::json!({ "unlocked_until": until })).into_response())
}

/// `DELETE /api/me/signing-unlock`: ask for the PIN again.
pub async fn lock(State(state): State<AppState>, _user: CurrentUser, headers: HeaderMap) -> Result<Response, ApiError> {
    state.signing_unlocks.remove(&session(&headers)?);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/me/signing-identity`: the doctor brings their own key and
/// certificate as PKCS#12 (the body), its password in `X-Pkcs12-Password`
/// and the signing PIN to seal it under in `X-Signing-Pin` (headers, never
/// the URL, which is logged). Their login password in `X-Password`, their
/// enrolment code in `X-Enrolment-Code`.
pub async fn import_pkcs12(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_signer(&user)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let password = header("x-password");
    auth::confirm_password(&state, &user, &password, "importing a signing certificate").await?;
    let pin = header("x-signing-pin");
    if pin == password {
        return Err(SigningError::PinIsPassword.into());
    }
    let p12_password = header("x-pkcs12-password");
    let identity = tokio::task::spawn_blocking(move || telediag_reports::SigningIdentity::from_pkcs12(&body, &p12_password))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (subject, sha256) = (identity.subject(), identity.fingerprint());
    let enrolment_code = header("x-enrolment-code");
    let new =
        super::NewKey { source: "pkcs12", retire_reason: "replaced by an imported certificate", enrolment_code: Some(&enrolment_code) };
    super::store(&state, user.id, identity, &pin, new).await?;
    tracing::info!(user = %user.username, fingerprint = %sha256, "signing identity imported");
    Ok(Json(serde_json::json!({ "change": PinChange::Issued, "subject": subject, "sha256": sha256 })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retire {
    reason: String,
}

/// `POST /api/users/{id}/signing-identity/retire` (admin): the doctor's
/// certificate is retired; they choose a new PIN, which issues a new key.
pub async fn retire(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Retire>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin, "retiring signing certificates")?;
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request("retiring a certificate needs a reason"));
    }
    state.archive.database().user_by_id(id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    if !super::retire(&state, id, &format!("revoked by an administrator: {reason}")).await? {
        return Err(ApiError::not_found("signing certificate"));
    }
    tracing::info!(user_id = id, "signing certificate retired by an administrator");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /ca.crl` (public): the centre CA's certificate revocation list, so
/// that a verifier can tell a revoked doctor's certificate from a good one.
pub async fn crl(State(state): State<AppState>) -> Result<Response, ApiError> {
    let crl = super::current_crl(&state).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pkix-crl"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
            (axum::http::header::CONTENT_DISPOSITION, "inline; filename=\"telediag-ca.crl\""),
        ],
        crl,
    )
        .into_response())
}
