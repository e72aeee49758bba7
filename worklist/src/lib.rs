//! Telediag's HTTP service: the centre's web API.
//!
//! - [`auth`]: argon2 passwords, session tokens (bearer or cookie), roles, and
//!   the per-site [`auth::Scope`] every patient-data query is filtered by.
//! - `routes`: health and login (public); studies, sites, users, instance
//!   thumbnails and previews (with ETag), ECG upload, the caller (authenticated).
//! - [`ecg_upload`]: an uploaded ECG read, kept as received and archived as
//!   DICOM (shared with `telediag ecg import`).
//! - [`error`]: every failure is JSON `{"error": reason}` with a fitting status.
//!
//! What it does not do: speak DIMSE or touch objects' bytes; it reads the
//! archive's index. Read requests, reports and DICOMweb come with their issues.

pub mod auth;
pub mod ecg_upload;
pub mod error;
mod routes;

use axum::Router;
use axum::routing::{delete, get, post};
use telediag_archive::Archive;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub archive: Archive,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(routes::health))
        .route("/api/login", post(routes::login))
        .route("/api/logout", post(routes::logout))
        .route("/api/me", get(routes::me))
        .route("/api/studies", get(routes::list_studies))
        .route("/api/studies/{uid}", get(routes::get_study))
        .route("/api/sites", get(routes::list_sites).post(routes::add_site))
        .route("/api/sites/{name}", delete(routes::remove_site))
        .route("/api/users", post(routes::add_user))
        .route("/api/instances/{uid}/{kind}", get(routes::instance_image))
        .route("/api/ecg", post(routes::upload_ecg).layer(axum::extract::DefaultBodyLimit::max(routes::ECG_UPLOAD_LIMIT)))
        .route("/api/series/{uid}/thumbnail", get(routes::series_thumbnail))
        .fallback(|| async { error::ApiError::not_found("route") })
        .with_state(state)
}
