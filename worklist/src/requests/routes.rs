//! HTTP handlers of the worklist: lists, registration, detail with
//! history, claim / release / assign / cancel, and the dashboard.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use telediag_archive::db::now_ms;

use super::intake::{NewRequest, register};
use super::{Change, Holder, RequestQuery, RequestState, assign, dashboard, history, list, transition, visible_request};
use crate::AppState;
use crate::auth::{CurrentUser, Role};
use crate::error::ApiError;

/// `GET /api/requests?view=mine|pool|review|overdue&site=&modality=&priority=&state=&from=&to=`
pub async fn list_requests(State(state): State<AppState>, user: CurrentUser, Query(q): Query<RequestQuery>) -> Result<Response, ApiError> {
    if q.view.as_deref() == Some("pool") {
        assign::release_lapsed(&state).await?;
    }
    let requests = list(state.archive.database(), &user, &q).await?;
    Ok(Json(requests).into_response())
}

/// `POST /api/requests`: a site registers a request ahead of its images.
pub async fn create_request(State(state): State<AppState>, user: CurrentUser, Json(new): Json<NewRequest>) -> Result<Response, ApiError> {
    let id = register(&state, &user, &new).await?;
    let request = visible_request(state.archive.database(), &user, id).await?;
    Ok((StatusCode::CREATED, Json(request)).into_response())
}

/// `GET /api/requests/{id}`: the request and its history.
pub async fn get_request(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    let events = history(db, id).await?;
    Ok(Json(serde_json::json!({ "request": request, "history": events })).into_response())
}

/// `POST /api/requests/{id}/claim`
pub async fn claim(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    visible_request(state.archive.database(), &user, id).await?;
    if !(user.has(Role::Radiologist) || user.has(Role::EcgDoctor)) {
        return Err(ApiError::forbidden("claiming requests (readers do)"));
    }
    Ok(Json(assign::claim(&state, &user, id).await?).into_response())
}

/// `POST /api/requests/{id}/release`: the holder gives it back; an admin unlocks.
pub async fn release(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    Ok(Json(assign::release(&state, &user, id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignTo {
    reader_id: i64,
}

/// `POST /api/requests/{id}/assign` (admin)
pub async fn assign_to(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<AssignTo>,
) -> Result<Response, ApiError> {
    Ok(Json(assign::assign_to(&state, &user, id, body.reader_id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    reason: String,
}

/// `POST /api/requests/{id}/cancel`: the site (or an admin) withdraws a request not yet reported.
pub async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Cancel>,
) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    if !(user.has(Role::SiteUser) || user.has(Role::Admin)) {
        return Err(ApiError::forbidden("cancelling requests"));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("a cancellation needs a reason"));
    }
    let open = [RequestState::Received, RequestState::Assigned, RequestState::Reading];
    if !transition(
        db,
        id,
        Change {
            from: &open,
            held_by: None,
            to: RequestState::Cancelled,
            by: Some(user.id),
            note: Some(body.reason.trim()),
            holder: Holder::release(),
        },
    )
    .await?
    {
        return Err(ApiError::conflict(format!("request {id} is {} and can no longer be cancelled", request.state.as_str())));
    }
    Ok(Json(visible_request(db, &user, id).await?).into_response())
}

/// `POST /api/requests/{id}/confirm-identity`: the site (or an admin)
/// confirms that the registration and the images, which name different
/// patients, are one patient.
pub async fn confirm_identity(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    super::intake::confirm_identity(&state, &user, &request).await?;
    Ok(Json(visible_request(db, &user, id).await?).into_response())
}

/// `GET /api/dashboard`: counters per site and overall.
pub async fn get_dashboard(State(state): State<AppState>, user: CurrentUser) -> Result<Response, ApiError> {
    let offset_ms = i64::from(state.config.utc_offset_minutes) * 60_000;
    let day = 86_400_000;
    let start_of_today = (now_ms() + offset_ms).div_euclid(day) * day - offset_ms;
    let (total, sites) = dashboard(state.archive.database(), &user, start_of_today).await?;
    let notices = if user.has(Role::Admin) { state.notices.lock().expect("notices lock").clone() } else { Vec::new() };
    Ok(Json(serde_json::json!({ "total": total, "sites": sites, "since": start_of_today, "notices": notices })).into_response())
}
