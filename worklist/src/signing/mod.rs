//! Doctors' signing credentials: the PIN their private key is sealed under,
//! the short unlock they may grant a session, and the lock after wrong PINs.
//!
//! A reliable electronic signature (电子签名法 §13) is under the signer's
//! sole control. The key is stored only sealed ([`telediag_reports::sealed`])
//! and opened for one signature with the PIN the doctor types, or from a
//! session's unlock the doctor granted with it (minutes long, configurable,
//! held in this process's memory only). The server alone — or an admin, or
//! whoever copies the database — cannot sign as a doctor.
//!
//! A forgotten PIN cannot be recovered: setting a new one without the old
//! retires the certificate (revoked, if the centre issued it) and issues a
//! new key. Choosing or resetting a PIN needs the login password, so a
//! stolen session alone cannot mint a key.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use sqlx::Row;
use telediag_archive::db::now_ms;
use telediag_reports::SigningIdentity;
use telediag_reports::sealed::{self, SealError};

pub mod enrolment;
pub mod external_tsa;
pub mod routes;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;

/// Wrong PINs in a row before signing locks.
pub const MAX_PIN_FAILURES: i64 = 5;
/// How long signing stays locked after [`MAX_PIN_FAILURES`].
pub const PIN_LOCK_MS: i64 = 15 * 60 * 1000;
/// A PIN's length in characters: six digits at least, a passphrase at most.
pub const PIN_CHARS: std::ops::RangeInclusive<usize> = 6..=64;

/// Why a signing credential was refused. Each maps to an HTTP answer with
/// a `code` the web application acts on.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("you have no signing PIN yet: choose one (PUT /api/me/signing-pin) before signing")]
    NoPin,
    #[error("signing needs your signing PIN")]
    PinRequired,
    #[error("wrong signing PIN: {remaining} more wrong PINs lock signing for 15 minutes")]
    WrongPin { remaining: i64 },
    #[error("signing is locked for {minutes} more minutes after {failures} wrong PINs")]
    Locked { minutes: i64, failures: i64 },
    #[error("a signing PIN has {} to {} characters, found {found}", PIN_CHARS.start(), PIN_CHARS.end())]
    PinLength { found: usize },
    #[error("the signing PIN must not be your login password")]
    PinIsPassword,
    #[error("the current signing PIN is wrong")]
    CurrentPinWrong,
    #[error("the stored signing key is unusable: {0}")]
    Unusable(String),
    #[error(
        "a new signing key is issued only with the enrolment code the centre's registration officer gives you in person \
         (telediag user enrol-signing on the server)"
    )]
    EnrolmentRequired,
    #[error("the enrolment code is wrong, expired or used: ask the registration officer for a new one")]
    EnrolmentWrong,
}

impl From<SigningError> for ApiError {
    fn from(e: SigningError) -> Self {
        let (status, code) = match &e {
            SigningError::NoPin => (StatusCode::CONFLICT, "signing_pin_not_set"),
            SigningError::PinRequired => (StatusCode::FORBIDDEN, "signing_pin_required"),
            SigningError::WrongPin { .. } | SigningError::CurrentPinWrong => (StatusCode::FORBIDDEN, "signing_pin_wrong"),
            SigningError::Locked { .. } => (StatusCode::FORBIDDEN, "signing_locked"),
            SigningError::PinLength { .. } | SigningError::PinIsPassword => (StatusCode::BAD_REQUEST, "signing_pin_refused"),
            SigningError::Unusable(_) => (StatusCode::INTERNAL_SERVER_ERROR, "signing_key_unusable"),
            SigningError::EnrolmentRequired => (StatusCode::FORBIDDEN, "signing_enrolment_required"),
            SigningError::EnrolmentWrong => (StatusCode::FORBIDDEN, "signing_enrolment_wrong"),
        };
        ApiError::new(status, e.to_string()).with_code(code)
    }
}

/// Sessions a doctor unlocked for signing, by session token hash. In
/// memory only: a restart locks every session again.
#[derive(Default)]
pub struct Unlocks {
    sessions: Mutex<HashMap<String, Unlocked>>,
}

struct Unlocked {
    user_id: i64,
    identity: SigningIdentity,
    until_ms: i64,
}

impl Unlocks {
    fn get(&self, session: &str, user_id: i64) -> Option<SigningIdentity> {
        let mut sessions = self.sessions.lock().expect("unlock table");
        let now = now_ms();
        sessions.retain(|_, u| u.until_ms > now);
        sessions.get(session).filter(|u| u.user_id == user_id).map(|u| u.identity.clone())
    }

    fn until(&self, session: &str, user_id: i64) -> Option<i64> {
        let sessions = self.sessions.lock().expect("unlock table");
        sessions.get(session).filter(|u| u.user_id == user_id && u.until_ms > now_ms()).map(|u| u.until_ms)
    }

    fn insert(&self, session: String, unlocked: Unlocked) {
        self.sessions.lock().expect("unlock table").insert(session, unlocked);
    }

    /// Ends a session's unlock (the doctor locks, or logs out).
    pub fn remove(&self, session: &str) {
        self.sessions.lock().expect("unlock table").remove(session);
    }

    fn forget_user(&self, user_id: i64) {
        self.sessions.lock().expect("unlock table").retain(|_, u| u.user_id != user_id);
    }
}

/// What the doctor's own settings page shows.
#[derive(Debug, serde::Serialize)]
pub struct SigningStatus {
    pub has_pin: bool,
    pub subject: Option<String>,
    pub fingerprint: Option<String>,
    /// `centre-ca` or `pkcs12`.
    pub source: Option<String>,
    pub locked_until: Option<i64>,
    /// When this session's unlock ends, if it has one.
    pub unlocked_until: Option<i64>,
    /// The longest unlock this centre allows, in minutes (0: every signature asks for the PIN).
    pub max_unlock_minutes: u32,
    /// An enrolment code awaits use: a new key can be issued with it.
    pub enrolment_pending: bool,
}

struct StoredIdentity {
    cert_der: Vec<u8>,
    chain_der: Vec<u8>,
    key_sealed: Vec<u8>,
    source: String,
    failures: i64,
    locked_until: Option<i64>,
}

async fn stored(state: &AppState, user_id: i64) -> Result<Option<StoredIdentity>, ApiError> {
    let row = sqlx::query(
        "SELECT cert_der, chain_der, key_sealed, source, pin_failures, pin_locked_until FROM signing_identities WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(state.archive.database().pool())
    .await
    .map_err(ApiError::database)?;
    Ok(row.map(|r| StoredIdentity {
        cert_der: r.get(0),
        chain_der: r.get::<Option<Vec<u8>>, _>(1).unwrap_or_default(),
        key_sealed: r.get(2),
        source: r.get(3),
        failures: r.get(4),
        locked_until: r.get(5),
    }))
}

/// The subject of the user's current signing certificate, if they have one:
/// what an administrator's list of users shows.
pub async fn certificate_subject(db: &telediag_archive::Database, user_id: i64) -> Result<Option<String>, ApiError> {
    let cert: Option<Vec<u8>> = sqlx::query_scalar("SELECT cert_der FROM signing_identities WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await
        .map_err(ApiError::database)?;
    Ok(cert.and_then(|der| SigningIdentity::subject_of(&der)))
}

/// The user's signing state, for their settings.
pub async fn status(state: &AppState, user: &CurrentUser, session: &str) -> Result<SigningStatus, ApiError> {
    let max_unlock_minutes = state.config.signing_unlock_max_minutes;
    let enrolment_pending = enrolment::pending(state.archive.database(), user.id).await?;
    let Some(s) = stored(state, user.id).await? else {
        return Ok(SigningStatus {
            has_pin: false,
            subject: None,
            fingerprint: None,
            source: None,
            locked_until: None,
            unlocked_until: None,
            max_unlock_minutes,
            enrolment_pending,
        });
    };
    use sha2::Digest;
    Ok(SigningStatus {
        has_pin: true,
        subject: SigningIdentity::subject_of(&s.cert_der),
        fingerprint: Some(hex::encode(sha2::Sha256::digest(&s.cert_der))),
        source: Some(s.source),
        locked_until: s.locked_until.filter(|&t| t > now_ms()),
        unlocked_until: state.signing_unlocks.until(session, user.id),
        max_unlock_minutes,
        enrolment_pending,
    })
}

fn check_pin_shape(pin: &str) -> Result<(), SigningError> {
    let found = pin.chars().count();
    if !PIN_CHARS.contains(&found) {
        return Err(SigningError::PinLength { found });
    }
    Ok(())
}

/// Argon2 is tens of milliseconds of CPU: never on an async worker.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("signing credential check failed: {e}")))
}

/// What choosing a PIN did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinChange {
    /// A first PIN: a key and certificate were issued under it.
    Issued,
    /// The same key, sealed under the new PIN.
    Changed,
    /// The old PIN was not given: the old certificate was retired and a new key issued.
    Reissued,
}

/// Sets the user's signing PIN (see the module's description). The caller
/// has confirmed the login password.
pub async fn set_pin(
    state: &AppState,
    user: &CurrentUser,
    password: &str,
    pin: &str,
    current_pin: Option<&str>,
    enrolment_code: Option<&str>,
) -> Result<PinChange, ApiError> {
    check_pin_shape(pin)?;
    if pin == password {
        return Err(SigningError::PinIsPassword.into());
    }
    let existing = stored(state, user.id).await?;
    if let (Some(s), Some(current)) = (&existing, current_pin) {
        begin_pin_attempt(state, user).await?;
        let (sealed_key, cert, current, pin) = (s.key_sealed.clone(), s.cert_der.clone(), current.to_owned(), pin.to_owned());
        let resealed = blocking(move || -> Result<Vec<u8>, SealError> {
            let key = sealed::open(&sealed_key, &current, &cert)?;
            sealed::seal(&key, &pin, &cert)
        })
        .await?;
        let resealed = match resealed {
            Ok(r) => r,
            Err(SealError::WrongPin) => {
                attempt_failed(state, user).await?;
                return Err(SigningError::CurrentPinWrong.into());
            }
            Err(e) => return Err(SigningError::Unusable(e.to_string()).into()),
        };
        // Only onto the certificate it was sealed for: a reissue meanwhile wins.
        let changed = sqlx::query(
            "UPDATE signing_identities SET key_sealed = $1, pin_failures = 0, pin_locked_until = NULL WHERE user_id = $2 AND cert_der = $3",
        )
        .bind(resealed)
        .bind(user.id)
        .bind(&s.cert_der)
        .execute(state.archive.database().pool())
        .await
        .map_err(ApiError::database)?
        .rows_affected();
        if changed == 0 {
            return Err(ApiError::conflict("your signing key was replaced meanwhile; choose the PIN again"));
        }
        state.signing_unlocks.forget_user(user.id);
        tracing::info!(user = %user.username, "signing PIN changed");
        return Ok(PinChange::Changed);
    }
    let identity = state.ca.issue(&user.display_name, &format!("user-{}", user.id)).map_err(|e| SigningError::Unusable(e.to_string()))?;
    let outcome = if existing.is_some() { PinChange::Reissued } else { PinChange::Issued };
    let reason = "PIN forgotten: a new key was issued";
    store(state, user.id, identity, pin, NewKey { source: "centre-ca", retire_reason: reason, enrolment_code }).await?;
    tracing::info!(user = %user.username, ?outcome, "signing key issued by the centre CA");
    Ok(outcome)
}

/// Where a new key comes from, what becomes of the old one, and the
/// enrolment code that allows it ([`enrolment`]).
pub struct NewKey<'a> {
    /// `centre-ca` or `pkcs12`.
    pub source: &'a str,
    pub retire_reason: &'a str,
    pub enrolment_code: Option<&'a str>,
}

/// Keeps `identity` as the user's, sealed under `pin`, retiring any
/// earlier certificate, and uses up the enrolment code in the same
/// transaction: without a valid one nothing is stored.
pub async fn store(state: &AppState, user_id: i64, identity: SigningIdentity, pin: &str, new: NewKey<'_>) -> Result<(), ApiError> {
    let NewKey { source, retire_reason, enrolment_code } = new;
    check_pin_shape(pin)?;
    let der = identity.to_der().map_err(|e| SigningError::Unusable(e.to_string()))?;
    let (key, cert, pin_owned) = (identity.key.clone(), der.certificate.clone(), pin.to_owned());
    let sealed_key = blocking(move || sealed::seal(&key, &pin_owned, &cert)).await?.map_err(|e| SigningError::Unusable(e.to_string()))?;
    let now = now_ms();
    let mut tx = state.archive.database().pool().begin().await.map_err(ApiError::database)?;
    enrolment::consume(&mut tx, user_id, enrolment_code).await?;
    keep_retired(&mut tx, user_id, now, retire_reason).await?;
    sqlx::query(
        "INSERT INTO signing_identities (user_id, cert_der, chain_der, key_sealed, source, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET cert_der = excluded.cert_der, chain_der = excluded.chain_der,
           key_sealed = excluded.key_sealed, source = excluded.source, created_at = excluded.created_at,
           pin_failures = 0, pin_locked_until = NULL",
    )
    .bind(user_id)
    .bind(der.certificate)
    .bind(der.chain)
    .bind(sealed_key)
    .bind(source)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    tx.commit().await.map_err(ApiError::database)?;
    state.signing_unlocks.forget_user(user_id);
    Ok(())
}

/// Copies the user's current certificate, if any, into the retired ones
/// (the CRL lists those the centre issued), in the caller's transaction.
async fn keep_retired(tx: &mut sqlx::AnyConnection, user_id: i64, at: i64, reason: &str) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO retired_certificates (user_id, cert_der, source, retired_at, reason)
         SELECT user_id, cert_der, source, $1, $2 FROM signing_identities WHERE user_id = $3",
    )
    .bind(at)
    .bind(reason)
    .bind(user_id)
    .execute(tx)
    .await
    .map_err(ApiError::database)?;
    Ok(())
}

/// Retires the user's certificate (an administrator's act: a doctor who
/// left, a key thought compromised). They sign again after choosing a PIN.
pub async fn retire(state: &AppState, user_id: i64, reason: &str) -> Result<bool, ApiError> {
    let mut tx = state.archive.database().pool().begin().await.map_err(ApiError::database)?;
    keep_retired(&mut tx, user_id, now_ms(), reason).await?;
    let removed = sqlx::query("DELETE FROM signing_identities WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::database)?
        .rows_affected();
    tx.commit().await.map_err(ApiError::database)?;
    state.signing_unlocks.forget_user(user_id);
    Ok(removed > 0)
}

/// Counts a PIN attempt before the PIN is checked, in one UPDATE that
/// refuses while signing is locked or while [`MAX_PIN_FAILURES`] attempts
/// are already counted: attempts sent in parallel cannot outrun the lock
/// (each is a failure until it proves right). An expired lock starts the
/// count again. `Err(Locked)` when refused.
async fn begin_pin_attempt(state: &AppState, user: &CurrentUser) -> Result<(), ApiError> {
    let now = now_ms();
    let counted: Option<i64> = sqlx::query_scalar(
        "UPDATE signing_identities
            SET pin_failures = CASE WHEN pin_locked_until IS NOT NULL AND pin_locked_until <= $1 THEN 1 ELSE pin_failures + 1 END,
                pin_locked_until = CASE WHEN pin_locked_until IS NOT NULL AND pin_locked_until <= $2 THEN NULL ELSE pin_locked_until END
          WHERE user_id = $3
            AND ((pin_locked_until IS NOT NULL AND pin_locked_until <= $4) OR (pin_locked_until IS NULL AND pin_failures < $5))
          RETURNING pin_failures",
    )
    .bind(now)
    .bind(now)
    .bind(user.id)
    .bind(now)
    .bind(MAX_PIN_FAILURES)
    .fetch_optional(state.archive.database().pool())
    .await
    .map_err(ApiError::database)?;
    if counted.is_some() {
        return Ok(());
    }
    let s = stored(state, user.id).await?.ok_or(SigningError::NoPin)?;
    let until = s.locked_until.unwrap_or(now + PIN_LOCK_MS);
    Err(SigningError::Locked { minutes: (until - now + 59_999).max(60_000) / 60_000, failures: s.failures }.into())
}

/// The attempt just counted was wrong: at [`MAX_PIN_FAILURES`], signing locks.
async fn attempt_failed(state: &AppState, user: &CurrentUser) -> Result<i64, ApiError> {
    let failures: i64 = sqlx::query_scalar(
        "UPDATE signing_identities SET pin_locked_until = CASE WHEN pin_failures >= $1 THEN $2 ELSE pin_locked_until END
         WHERE user_id = $3 RETURNING pin_failures",
    )
    .bind(MAX_PIN_FAILURES)
    .bind(now_ms() + PIN_LOCK_MS)
    .bind(user.id)
    .fetch_one(state.archive.database().pool())
    .await
    .map_err(ApiError::database)?;
    tracing::warn!(user = %user.username, failures, "wrong signing PIN");
    Ok(failures)
}

/// The attempt just counted was right: the count starts again.
async fn attempt_succeeded(state: &AppState, user: &CurrentUser) -> Result<(), ApiError> {
    sqlx::query("UPDATE signing_identities SET pin_failures = 0, pin_locked_until = NULL WHERE user_id = $1")
        .bind(user.id)
        .execute(state.archive.database().pool())
        .await
        .map_err(ApiError::database)?;
    Ok(())
}

/// Opens the user's key with `pin`, counting the attempt first and
/// refusing while locked.
async fn open_with_pin(state: &AppState, user: &CurrentUser, pin: &str) -> Result<SigningIdentity, ApiError> {
    let s = stored(state, user.id).await?.ok_or(SigningError::NoPin)?;
    begin_pin_attempt(state, user).await?;
    let (sealed_key, cert, pin) = (s.key_sealed, s.cert_der.clone(), pin.to_owned());
    match blocking(move || sealed::open(&sealed_key, &pin, &cert)).await? {
        Ok(key) => {
            attempt_succeeded(state, user).await?;
            Ok(SigningIdentity::from_parts(key, &s.cert_der, &s.chain_der).map_err(|e| SigningError::Unusable(e.to_string()))?)
        }
        Err(SealError::WrongPin) => {
            let failures = attempt_failed(state, user).await?;
            if failures >= MAX_PIN_FAILURES {
                Err(SigningError::Locked { minutes: PIN_LOCK_MS / 60_000, failures }.into())
            } else {
                Err(SigningError::WrongPin { remaining: MAX_PIN_FAILURES - failures }.into())
            }
        }
        Err(e) => Err(SigningError::Unusable(e.to_string()).into()),
    }
}

/// The identity to sign with now: opened with `pin` when given, else from
/// this session's unlock.
pub async fn identity_for_signing(
    state: &AppState,
    user: &CurrentUser,
    session: &str,
    pin: Option<&str>,
) -> Result<SigningIdentity, ApiError> {
    match pin.filter(|p| !p.is_empty()) {
        Some(pin) => open_with_pin(state, user, pin).await,
        None => match state.signing_unlocks.get(session, user.id) {
            Some(identity) => Ok(identity),
            None if stored(state, user.id).await?.is_none() => Err(SigningError::NoPin.into()),
            None => Err(SigningError::PinRequired.into()),
        },
    }
}

/// Unlocks signing for this session for `minutes` (at most the centre's
/// configured maximum). Returns when the unlock ends.
pub async fn unlock(state: &AppState, user: &CurrentUser, session: &str, pin: &str, minutes: u32) -> Result<i64, ApiError> {
    let max = state.config.signing_unlock_max_minutes;
    if max == 0 {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "this centre asks for the signing PIN at every signature")
            .with_code("signing_unlock_disabled"));
    }
    if minutes == 0 || minutes > max {
        return Err(ApiError::bad_request(format!("an unlock lasts 1 to {max} minutes, {minutes} were asked")));
    }
    let identity = open_with_pin(state, user, pin).await?;
    let until_ms = now_ms() + i64::from(minutes) * 60_000;
    state.signing_unlocks.insert(session.to_owned(), Unlocked { user_id: user.id, identity: identity.clone(), until_ms });
    // A retirement or PIN change while the key was being opened forgot the
    // user's unlocks before this one was made: the key held must still be
    // the stored one, or the unlock goes.
    let current = stored(state, user.id).await?.map(|s| s.cert_der);
    if current.as_deref() != Some(identity.to_der().map_err(|e| SigningError::Unusable(e.to_string()))?.certificate.as_slice()) {
        state.signing_unlocks.remove(session);
        return Err(ApiError::conflict("your signing key was replaced meanwhile; unlock again"));
    }
    tracing::info!(user = %user.username, minutes, "signing unlocked for the session");
    Ok(until_ms)
}

/// The certificates the centre CA issued that are retired, as (serial,
/// when): what its CRL lists.
async fn revoked_serials(state: &AppState) -> Result<Vec<(Vec<u8>, i64)>, ApiError> {
    // Certificates retired by migration 0010 (their keys had been stored in
    // the clear) are not listed: the reports signed with them carry no
    // timestamp, so a verifier could not tell they were signed before the
    // revocation, and every one of them would read as revoked.
    let rows: Vec<(Vec<u8>, i64)> =
        sqlx::query_as("SELECT cert_der, retired_at FROM retired_certificates WHERE reason != 'key stored unsealed'")
            .fetch_all(state.archive.database().pool())
            .await
            .map_err(ApiError::database)?;
    // Certificates of other CAs (imported PKCS#12) are their CA's to revoke.
    let ours = state.ca.certificate();
    Ok(rows
        .iter()
        .filter_map(|(der, at)| {
            let certificate = <x509_cert::Certificate as der::Decode>::from_der(der).ok()?;
            (certificate.tbs_certificate.issuer == ours.tbs_certificate.subject)
                .then(|| (certificate.tbs_certificate.serial_number.as_bytes().to_vec(), *at))
        })
        .collect())
}

/// How long a CRL is valid for: verifiers fetch a newer one after a week.
const CRL_VALIDITY: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// A CRL of `revoked` issued now. The CRL number rises with time: each
/// CRL issued supersedes the last.
fn crl_now(ca: &telediag_reports::CentreCa, revoked: &[(Vec<u8>, i64)]) -> Result<Vec<u8>, String> {
    let now = now_ms();
    ca.crl(revoked, now, CRL_VALIDITY, u64::try_from(now).unwrap_or_default()).map_err(|e| e.to_string())
}

/// The centre CA's current CRL (DER): every certificate it issued that was
/// retired — a forgotten PIN, an administrator's revocation.
pub async fn current_crl(state: &AppState) -> Result<Vec<u8>, ApiError> {
    crl_now(&state.ca, &revoked_serials(state).await?).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// What a verifier needs offline for a signature (PAdES B-LT): the
/// certificates of the signer, their issuers, the centre CA and the TSA,
/// and a CRL issued after the signature and its timestamp ([`Self::crl`]).
pub struct ValidationData {
    pub certificates: Vec<Vec<u8>>,
    revoked: Vec<(Vec<u8>, i64)>,
    ca: std::sync::Arc<telediag_reports::CentreCa>,
}

impl ValidationData {
    /// The CRL, issued now: called once the signature is made, so that its
    /// thisUpdate follows the signature's timestamp as validators ask.
    pub fn crl(&self) -> Result<Vec<u8>, String> {
        crl_now(&self.ca, &self.revoked)
    }
}

/// The validation data for `signer`'s signature.
pub async fn validation_data(state: &AppState, signer: &SigningIdentity) -> Result<ValidationData, ApiError> {
    let der = signer.to_der().map_err(|e| SigningError::Unusable(e.to_string()))?;
    let mut certificates = vec![der.certificate];
    for issuer in &signer.chain {
        certificates.push(der::Encode::to_der(issuer).map_err(|e| SigningError::Unusable(e.to_string()))?);
    }
    let ca = state.ca.certificate_der();
    if !certificates.contains(&ca) {
        certificates.push(ca);
    }
    certificates.extend(state.tsa_certificate.clone());
    Ok(ValidationData { certificates, revoked: revoked_serials(state).await?, ca: state.ca.clone() })
}
