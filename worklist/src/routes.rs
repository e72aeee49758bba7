//! The HTTP routes. Each handler takes a [`CurrentUser`] unless it is one of
//! the two public ones (health, login).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use telediag_archive::index::StudyQuery;
use telediag_archive::{NewSite, StudyUid};

use crate::AppState;
use crate::audit::AuditEntry;
use crate::auth::{self, CurrentUser, Role, SESSION_COOKIE, SESSION_HOURS, Scope};
use crate::error::ApiError;

pub async fn health(State(state): State<AppState>) -> Response {
    match state.archive.database().ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("index database unavailable: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Json(login): Json<Login>,
) -> Result<Response, ApiError> {
    let client = connect.map(|c| (c.0).0);
    let address = client.map(|c| c.ip());
    let db = state.archive.database();
    let name = login.username.trim();
    let refuse = |why: &str, wait: std::time::Duration| {
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, why.to_owned());
        error.retry_after = Some(wait.as_secs().max(1));
        error
    };
    let audit_refusal = |action: &str, status: u16| {
        let mut entry = AuditEntry::for_user(None, action.into(), name.to_owned(), status, address.map(|a| a.to_string()));
        entry.username = Some(name.chars().take(64).collect());
        entry
    };
    if let Some(wait) = address.and_then(|a| state.login_limiter.blocked(a)) {
        tracing::warn!(client = ?address, "login refused: too many failed logins from this address");
        state.audit.append(&audit_refusal("login refused: address rate limit", 429)).await?;
        return Err(refuse(
            &format!("too many failed logins from your address; try again in {} minutes", wait.as_secs().div_ceil(60)),
            wait,
        ));
    }
    if let Some(a) = address {
        state.login_limiter.attempt(a);
    }
    let user = db.user_by_name(name).await?;
    // The attempt is counted before the password is checked, so parallel
    // guesses cannot each pass the lock.
    // Names that are no account are counted and locked alike, so that a
    // lock does not tell which accounts exist.
    let locked = match user.as_ref().filter(|u| !u.disabled) {
        Some(user) => match db.begin_login_attempt(user.id).await? {
            Some(_) => None,
            None => {
                let lock = db.login_lock(user.id).await?;
                let now = telediag_archive::db::now_ms();
                let wait = std::time::Duration::from_millis(lock.locked_until.unwrap_or(now).saturating_sub(now).max(1000) as u64);
                Some((lock.failed_logins, wait))
            }
        },
        None => state.login_limiter.unknown_name_attempt(name).err(),
    };
    if let Some((failed, wait)) = locked {
        tracing::warn!(username = %name, failed, "login refused: account locked");
        state.audit.append(&audit_refusal("login refused: account locked", 429)).await?;
        return Err(refuse(
            &format!(
                "this account is locked for {} minutes after {failed} failed logins; an administrator can unlock it",
                wait.as_secs().div_ceil(60)
            ),
            wait,
        ));
    }
    // Unknown users are verified against a fixed hash, so timing does not tell.
    let (hash, user) = match user {
        Some(user) if !user.disabled => (user.password_hash.clone(), Some(user)),
        _ => (auth::unknown_user_hash().to_owned(), None),
    };
    // argon2 takes tens of milliseconds of CPU: not on an async worker.
    let password = login.password.clone();
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("password check failed: {e}")))?;
    let Some(user) = user.filter(|_| verified) else {
        tracing::warn!(username = %name, "login failed");
        state.audit.append(&audit_refusal("login failed", 401)).await?;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong username or password"));
    };
    if let Some(a) = address {
        state.login_limiter.succeeded(a);
    }
    db.clear_login_failures(user.id).await?;
    let token = auth::new_token();
    let expires_at = telediag_archive::db::now_ms() + SESSION_HOURS * 3_600_000;
    db.insert_session(&auth::token_hash(&token), user.id, expires_at).await?;
    tracing::info!(user = %user.username, "login");
    let current: CurrentUser = user.into();
    let entry =
        AuditEntry::for_user(Some(&current), "login".into(), format!("/api/users/{}", current.id), 200, client.map(|c| c.ip().to_string()));
    state.audit.append(&entry).await?;
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", SESSION_HOURS * 3600);
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("token is hex"));
    Ok((headers, Json(serde_json::json!({ "token": token, "expires_at": expires_at, "user": current }))).into_response())
}

pub async fn logout(State(state): State<AppState>, _user: CurrentUser, parts: Parts) -> Result<Response, ApiError> {
    if let Some(token) = auth::presented_token(&parts) {
        let session = auth::token_hash(&token);
        // An unlocked signing key is forgotten with the session.
        state.signing_unlocks.remove(&session);
        state.archive.database().delete_session(&session).await?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, HeaderValue::from_static("telediag_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"));
    Ok((headers, StatusCode::NO_CONTENT).into_response())
}

pub async fn me(user: CurrentUser) -> Json<CurrentUser> {
    Json(user)
}

/// `GET /api/studies`: what a client may filter studies by.
#[derive(Debug, Default, Deserialize)]
pub struct StudiesQuery {
    site: Option<String>,
    patient_id: Option<String>,
    /// Substring of the patient's name.
    patient_name: Option<String>,
    accession_number: Option<String>,
    modality: Option<String>,
    /// Study date range, `YYYYMMDD`, inclusive.
    date_from: Option<String>,
    date_to: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list_studies(State(state): State<AppState>, user: CurrentUser, Query(q): Query<StudiesQuery>) -> Result<Response, ApiError> {
    let site_id = match user.scope()? {
        Scope::AllSites => None,
        Scope::Site(id) => Some(id),
    };
    let query = StudyQuery {
        site_id,
        site: q.site,
        patient_id: q.patient_id,
        patient_name: q.patient_name,
        accession_number: q.accession_number,
        modality: q.modality,
        date_from: q.date_from,
        date_to: q.date_to,
        status: q.status,
        limit: q.limit,
        offset: q.offset,
    };
    let page = state.archive.database().list_studies(&query).await?;
    tracing::info!(user = %user.username, results = page.studies.len(), "studies listed");
    Ok(Json(page).into_response())
}

pub async fn get_study(State(state): State<AppState>, user: CurrentUser, Path(uid): Path<String>) -> Result<Response, ApiError> {
    let uid = StudyUid::parse(&uid).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let site = match user.scope()? {
        Scope::AllSites => None,
        Scope::Site(id) => Some(id),
    };
    let detail = state.archive.database().study_detail(&uid, site).await?.ok_or_else(|| ApiError::not_found("study"))?;
    tracing::info!(user = %user.username, study_uid = %uid, "study read");
    Ok(Json(detail).into_response())
}

/// `GET /api/sites`: the sites the caller may see; an admin also gets each
/// site's settings (assignment mode, single signature, critical webhook).
pub async fn list_sites(State(state): State<AppState>, user: CurrentUser) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let sites = db.list_sites().await?;
    let visible: Vec<_> = match user.scope()? {
        Scope::AllSites => sites,
        Scope::Site(id) => sites.into_iter().filter(|s| s.id == id).collect(),
    };
    if !user.has(Role::Admin) {
        return Ok(Json(visible).into_response());
    }
    let settings = state.workflow.site_settings().await?;
    let with_settings: Vec<serde_json::Value> = visible
        .into_iter()
        .map(|site| {
            let mut value = serde_json::to_value(&site).unwrap_or_default();
            if let Some(s) = settings.iter().find(|s| s.site_id == site.id) {
                value["assignment_mode"] = s.assignment_mode.as_str().into();
                value["single_signature"] = s.single_signature.into();
                value["critical_webhook"] = s.critical_webhook.clone().into();
            }
            value
        })
        .collect();
    Ok(Json(with_settings).into_response())
}

pub async fn add_site(State(state): State<AppState>, user: CurrentUser, Json(site): Json<NewSite>) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing sites")?;
    let site = state.archive.database().add_site(&site).await?;
    tracing::info!(user = %user.username, site = %site.name, "site added");
    Ok((StatusCode::CREATED, Json(site)).into_response())
}

pub async fn remove_site(State(state): State<AppState>, user: CurrentUser, Path(name): Path<String>) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing sites")?;
    state.archive.database().remove_site(&name).await?;
    tracing::info!(user = %user.username, site = %name, "site removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn add_user(State(state): State<AppState>, user: CurrentUser, Json(new_user): Json<auth::NewUser>) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing users")?;
    let id = auth::create_user(state.archive.database(), &new_user).await?;
    tracing::info!(user = %user.username, created = %new_user.username, "user added");
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id, "username": new_user.username }))).into_response())
}

/// `GET /api/instances/{uid}/thumbnail`, `/preview`, and for ECGs
/// `/ecg-measurements` (JSON) and `/ecg-page` (SVG): the derived object,
/// with an ETag so browsers and the viewer revalidate instead of refetching.
pub async fn instance_image(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((uid, kind)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use telediag_archive::derived::DerivedKind;
    let kind = match kind.as_str() {
        "thumbnail" => DerivedKind::Thumbnail,
        "preview" => DerivedKind::Preview,
        "ecg-measurements" => DerivedKind::EcgMeasurements,
        "ecg-page" => DerivedKind::EcgPage,
        _ => return Err(ApiError::not_found("route")),
    };
    let sop = telediag_archive::SopInstanceUid::parse(&uid).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let db = state.archive.database();
    let owner = db.instance_site(&sop).await?.ok_or_else(|| ApiError::not_found("instance"))?;
    if let Scope::Site(site) = user.scope()?
        && site != owner
    {
        return Err(ApiError::not_found("instance"));
    }
    let record = db
        .derived(&sop, kind)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("the {} is not made yet; try again shortly", kind.as_str())))?;
    if let Some(error) = record.error {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error));
    }
    let etag = record.etag.unwrap_or_default();
    let mut reply = HeaderMap::new();
    reply.insert(header::ETAG, HeaderValue::from_str(&etag).map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad etag"))?);
    reply.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=0, must-revalidate"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, reply).into_response());
    }
    let bytes = state
        .archive
        .read_small_object(&record.object_key.unwrap_or_default())
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the {}: {e}", kind.as_str())))?;
    let content_type = record.content_type.unwrap_or_else(|| "application/octet-stream".into());
    reply.insert(header::CONTENT_TYPE, HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("image/jpeg")));
    tracing::info!(user = %user.username, sop_instance_uid = %sop, kind = kind.as_str(), "image read");
    Ok((reply, bytes).into_response())
}

/// `GET /api/series/{uid}/thumbnail`: the thumbnail of the series' middle instance.
pub async fn series_thumbnail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let series = telediag_archive::SeriesUid::parse(&uid).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (sop, _) = state.archive.database().series_representative(series.as_str()).await?.ok_or_else(|| ApiError::not_found("series"))?;
    instance_image(State(state), user, Path((sop, "thumbnail".to_owned())), headers).await
}

/// Uploads from this size on are followed by handing memory back.
const LARGE_UPLOAD: usize = 8 * 1024 * 1024;

/// Largest ECG upload: a 24-hour Holter in WFDB is about 60 MB.
pub const ECG_UPLOAD_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Deserialize)]
pub struct EcgUploadQuery {
    /// The site an admin uploads for; site users always upload for their own.
    site: Option<String>,
    /// File name of a raw-body upload (informational).
    name: Option<String>,
}

/// `POST /api/ecg`: an ECG as the raw body (DICOM, HL7 aECG, SCP-ECG) or as
/// multipart form parts (any of those, or a WFDB `.hea` with its `.dat`
/// files). 201 with what was stored; 200 for a repeat of a stored ECG;
/// 400 with the reason when the file is not a usable ECG.
pub async fn upload_ecg(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<EcgUploadQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    use crate::ecg_upload::{EcgImportError, UploadedFile, import_ecg};
    use axum::extract::FromRequest;

    let db = state.archive.database();
    let site = match user.scope()? {
        Scope::Site(id) => db.list_sites().await?.into_iter().find(|s| s.id == id).ok_or_else(|| ApiError::not_found("site"))?,
        Scope::AllSites if user.has(Role::Admin) => {
            let name = query.site.as_deref().ok_or_else(|| ApiError::bad_request("an admin upload names its site: ?site=NAME"))?;
            db.site_by_name(name).await.map_err(|_| ApiError::not_found("site"))?
        }
        _ => {
            return Err(ApiError::forbidden("uploading ECGs (site users and admins only)"));
        }
    };
    // Uploads are read whole (a reader needs the whole file): at most a few
    // at once, so memory stays bounded however many sites upload.
    let _permit = state.ecg_uploads.acquire().await.map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let is_multipart =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut files = Vec::new();
    if is_multipart {
        let mut multipart = axum::extract::Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("multipart body: {}", e.body_text())))?;
        while let Some(field) =
            multipart.next_field().await.map_err(|e| ApiError::new(e.status(), format!("multipart body: {}", e.body_text())))?
        {
            let name = field.file_name().or(field.name()).unwrap_or("upload").to_string();
            let bytes = field.bytes().await.map_err(|e| ApiError::new(e.status(), format!("multipart part {name}: {}", e.body_text())))?;
            files.push(UploadedFile { name, bytes: bytes.to_vec() });
        }
    } else {
        let bytes = axum::body::Bytes::from_request(request, &state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("request body: {}", e.body_text())))?;
        files.push(UploadedFile { name: query.name.unwrap_or_else(|| "upload".into()), bytes: bytes.to_vec() });
    }
    let origin = telediag_archive::Origin { site_id: site.id, calling_ae: None };
    let received: usize = files.iter().map(|f| f.bytes.len()).sum();
    let outcome = import_ecg(&state.archive, &origin, Some(site.name.clone()), files).await;
    // A large upload's buffers are free now: hand them back to the system,
    // on this thread and on the blocking thread that read the file.
    if received >= LARGE_UPLOAD
        && let Some(release) = state.release_memory
    {
        release();
        let _ = tokio::task::spawn_blocking(release).await;
    }
    match outcome {
        Ok(imported) => {
            tracing::info!(user = %user.username, site = %site.name, sop_instance_uid = %imported.sop_instance_uid, format = imported.format, outcome = imported.outcome, "ECG uploaded");
            let status = if imported.outcome == "duplicate" { StatusCode::OK } else { StatusCode::CREATED };
            Ok((status, Json(imported)).into_response())
        }
        Err(e) => {
            tracing::warn!(user = %user.username, site = %site.name, reason = %e, "ECG upload refused");
            Err(match e {
                EcgImportError::Invalid(reason) => ApiError::bad_request(reason),
                EcgImportError::Archive(telediag_archive::IngestError::OutOfResources(reason)) => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason)
                }
                EcgImportError::Archive(held @ telediag_archive::IngestError::UidHeldElsewhere(_)) => ApiError::conflict(held.to_string()),
                EcgImportError::Archive(other) => ApiError::bad_request(other.to_string()),
                EcgImportError::Io(io) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, io.to_string()),
            })
        }
    }
}

/// `GET /ca.crt` (public): the centre's CA certificate (DER), for hospitals
/// to install so their PDF readers show the doctors' signatures as trusted.
pub async fn ca_certificate(State(state): State<AppState>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pkix-cert"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"telediag-ca.crt\""));
    (headers, state.ca.certificate_der()).into_response()
}
