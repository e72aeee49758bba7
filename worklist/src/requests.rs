//! HTTP handlers of the worklist: lists, registration, detail with
//! history, claim / release / assign / cancel, identity confirmation and
//! the dashboard. Each parses, calls the workflow as the caller, and
//! answers; the rules are `telediag_workflow`'s.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use telediag_archive::db::now_ms;
use telediag_workflow::intake::NewRequest;
use telediag_workflow::lists::{RequestFilter, View};
use telediag_workflow::{Priority, RequestState, Role};

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;

/// The query string of the request lists.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestQuery {
    /// `mine` (assigned to me), `pool` (claimable by me), `review`, `overdue`, or `all`.
    view: Option<String>,
    site: Option<String>,
    modality: Option<String>,
    priority: Option<Priority>,
    state: Option<String>,
    /// Requests created on or after / before, as Unix ms.
    from: Option<i64>,
    to: Option<i64>,
    unreconciled: Option<bool>,
    limit: Option<i64>,
}

impl RequestQuery {
    fn filter(self) -> Result<RequestFilter, ApiError> {
        let view = match self.view.as_deref() {
            None => View::All,
            Some(name) => View::parse(name)
                .ok_or_else(|| ApiError::bad_request(format!("view must be mine, pool, review, overdue or all, found {name:?}")))?,
        };
        let state = match self.state.as_deref() {
            None => None,
            Some(name) => Some(RequestState::parse(name).ok_or_else(|| ApiError::bad_request(format!("unknown state {name:?}")))?),
        };
        Ok(RequestFilter {
            view,
            site: self.site,
            modality: self.modality,
            priority: self.priority,
            state,
            from: self.from,
            to: self.to,
            unreconciled: self.unreconciled == Some(true),
            limit: self.limit,
        })
    }
}

/// `GET /api/requests?view=mine|pool|review|overdue&site=&modality=&priority=&state=&from=&to=`
pub async fn list_requests(State(state): State<AppState>, user: CurrentUser, Query(q): Query<RequestQuery>) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.list(&user, &q.filter()?).await?).into_response())
}

/// `POST /api/requests`: a site registers a request ahead of its images.
pub async fn create_request(State(state): State<AppState>, user: CurrentUser, Json(new): Json<NewRequest>) -> Result<Response, ApiError> {
    Ok((StatusCode::CREATED, Json(state.workflow.register(&user, &new).await?)).into_response())
}

/// `GET /api/requests/{id}`: the request and its history.
pub async fn get_request(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let (request, history) = state.workflow.request_with_history(&user, id).await?;
    Ok(Json(serde_json::json!({ "request": request, "history": history })).into_response())
}

/// `POST /api/requests/{id}/claim`
pub async fn claim(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.claim(&user, id).await?).into_response())
}

/// `POST /api/requests/{id}/release`: the holder gives it back; an admin unlocks.
pub async fn release(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.release(&user, id).await?).into_response())
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
    Ok(Json(state.workflow.assign_to(&user, id, body.reader_id).await?).into_response())
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
    Ok(Json(state.workflow.cancel(&user, id, &body.reason).await?).into_response())
}

/// `POST /api/requests/{id}/confirm-identity`: the site (or an admin)
/// confirms that the registration and the images, which name different
/// patients, are one patient.
pub async fn confirm_identity(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.confirm_identity(&user, id).await?).into_response())
}

/// `GET /api/dashboard`: counters per site and overall.
pub async fn get_dashboard(State(state): State<AppState>, user: CurrentUser) -> Result<Response, ApiError> {
    let offset_ms = i64::from(state.config.utc_offset_minutes) * 60_000;
    let day = 86_400_000;
    let start_of_today = (now_ms() + offset_ms).div_euclid(day) * day - offset_ms;
    let (total, sites) = state.workflow.dashboard(&user, start_of_today).await?;
    let notices = if user.has(Role::Admin) { state.notices.lock().expect("notices lock").clone() } else { Vec::new() };
    Ok(Json(serde_json::json!({ "total": total, "sites": sites, "since": start_of_today, "notices": notices })).into_response())
}
