//! The admin API: users (list, change, disable), reader credentials, site
//! settings (assignment mode, single signature, webhook), signing
//! identities (PKCS#12 import) and the audit log. Admins only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use telediag_archive::accounts::UserChange;

use crate::AppState;
use crate::audit::{self, AuditQuery};
use crate::auth::{self, CurrentUser, Role};
use crate::error::ApiError;
use telediag_workflow::assign::Credentials;

/// A user as the admin sees it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub site_id: Option<i64>,
    pub disabled: bool,
    pub credentials: Credentials,
    /// Subject of the signing certificate, if one was issued or imported.
    pub signing_certificate: Option<String>,
    /// Failed logins since the last success, and the lock they caused.
    pub login: telediag_archive::accounts::LoginLock,
}

pub async fn list_users(State(state): State<AppState>, user: CurrentUser) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing users")?;
    let db = state.archive.database();
    let mut out = Vec::new();
    for row in db.list_users().await? {
        let (credentials, _) = state.workflow.credentials(row.id).await?;
        let signing_certificate = crate::signing::certificate_subject(db, row.id).await?;
        let current: CurrentUser = row.clone().into();
        out.push(UserView {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            roles: current.roles,
            site_id: row.site_id,
            disabled: row.disabled,
            credentials,
            signing_certificate,
            login: db.login_lock(row.id).await?,
        });
    }
    Ok(Json(out).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeUser {
    display_name: Option<String>,
    roles: Option<Vec<Role>>,
    /// A site name, or "" to remove the site.
    site: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
    /// `true` lifts a lock left by failed logins.
    unlock: Option<bool>,
}

/// `PATCH /api/users/{id}`
pub async fn change_user(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(change): Json<ChangeUser>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing users")?;
    let db = state.archive.database();
    if id == user.id && (change.disabled == Some(true) || change.roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin))) {
        return Err(ApiError::bad_request("an admin cannot disable themselves or drop their own admin role"));
    }
    let site_id = match change.site.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(name) => Some(Some(db.site_by_name(name).await?.id)),
    };
    let password_hash = match &change.password {
        Some(p) if p.len() < 8 => {
            return Err(ApiError::bad_request("a password has at least 8 characters"));
        }
        Some(p) => Some(auth::hash_password(p)?),
        None => None,
    };
    if change.roles.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::bad_request("a user needs at least one role"));
    }
    db.update_user(
        id,
        &UserChange {
            display_name: change.display_name.clone(),
            roles: change.roles.as_ref().map(|r| r.iter().map(|r| r.as_str().to_owned()).collect()),
            site_id,
            disabled: change.disabled,
            password_hash,
        },
    )
    .await?;
    if change.unlock == Some(true) {
        db.clear_login_failures(id).await?;
        tracing::info!(user = id, by = %user.username, "login lock lifted");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/users/{id}/credentials`: the modalities and sites a reader reads.
pub async fn set_credentials(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(credentials): Json<Credentials>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing credentials")?;
    let db = state.archive.database();
    db.user_by_id(id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    state.workflow.set_credentials(id, &credentials).await?;
    let (stored, _) = state.workflow.credentials(id).await?;
    Ok(Json(stored).into_response())
}

/// `PATCH /api/sites/{name}`: how a site's requests are assigned and signed.
pub async fn change_site(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
    Json(change): Json<telediag_workflow::site_settings::SiteSettingsChange>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin, "managing sites")?;
    let site = state.archive.database().site_by_name(&name).await?;
    state.workflow.change_site_settings(site.id, &change).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/audit?user=&contains=&from=&to=&limit=`
pub async fn query_audit(State(state): State<AppState>, user: CurrentUser, Query(q): Query<AuditQuery>) -> Result<Response, ApiError> {
    user.require(Role::Admin, "reading the audit log")?;
    Ok(Json(audit::query(state.archive.database(), &q).await?).into_response())
}

/// `GET /api/audit/verify`: recomputes the hash chain.
pub async fn verify_audit(State(state): State<AppState>, user: CurrentUser) -> Result<Response, ApiError> {
    user.require(Role::Admin, "verifying the audit log")?;
    Ok(Json(audit::verify(state.archive.database()).await?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CollisionQuery {
    limit: Option<i64>,
}

/// `GET /api/uid-collisions`: objects refused because a UID they carried
/// belongs to another site, newest first, for the administrator to follow up.
pub async fn list_uid_collisions(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<CollisionQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Admin, "reviewing cross-site UID collisions")?;
    Ok(Json(state.archive.database().uid_collisions(q.limit.unwrap_or(100)).await?).into_response())
}
