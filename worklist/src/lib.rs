//! Telediag's HTTP service: the centre's web API.
//!
//! - [`auth`]: argon2 passwords, session tokens (bearer or cookie), roles, and
//!   the per-site [`auth::Scope`] every patient-data query is filtered by.
//! - [`requests`]: the worklist's routes — lists, registration, claims,
//!   assignment, cancellation, the dashboard — over `telediag_workflow`,
//!   which owns every state and its rules.
//! - [`reporting`]: the report panel's routes, first drafts from
//!   [`templates`], the signed PDFs made at each signer's act and filed into
//!   the study, critical findings' webhooks, the public verification page.
//! - [`admin`]: users, credentials, site settings, audit.
//! - [`signing`]: doctors' signing PINs, the keys sealed under them, unlocks
//!   and lockouts, certificate retirement.
//! - [`audit`]: the hash-chained, append-only record of every authenticated
//!   request (one middleware, so no route can forget it).
//! - `routes`: health, login, studies, sites, instance images, ECG upload.
//! - [`dicomweb`]: `/dicom-web`, QIDO-RS, WADO-RS and STOW-RS (their
//!   meaning is `telediag-dicomweb`'s), scoped and audited like the rest.
//! - [`ecg_upload`]: an uploaded ECG read, kept as received and archived as
//!   DICOM (shared with `telediag ecg import`).
//! - [`changes`]: `/api/events`, a server-sent event when the worklist changes.
//! - [`error`]: every failure is JSON `{"error": reason}` with a fitting status.
//! - [`web_app`]: the built web application at `/`, with its caching and
//!   Content-Security-Policy.
//!
//! What it does not do: speak DIMSE or touch objects' bytes; it reads the
//! archive's index and files new objects (reports) through the archive.
//! What a report document *is* (PDF, signature, SR) is `telediag-reports`'.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod config;
pub mod dicomweb;
pub mod ecg_samples;
pub mod ecg_upload;
pub mod error;
pub mod login_limit;
pub mod report_assets;
pub mod reporting;
pub mod requests;
mod routes;
pub mod signing;
pub mod templates;
pub mod web_app;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post, put};
use telediag_archive::Archive;
use telediag_reports::{CentreCa, ReportFont};

pub use config::WorklistConfig;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub archive: Archive,
    /// Read requests and reports: every state change goes through it.
    pub workflow: telediag_workflow::Workflow,
    pub config: Arc<WorklistConfig>,
    pub audit: audit::AuditLog,
    /// Issues doctors' signing certificates.
    pub ca: Arc<CentreCa>,
    /// Sessions a doctor unlocked for signing with their PIN.
    pub signing_unlocks: Arc<signing::Unlocks>,
    /// Timestamps every signature: the centre's own TSA, or the external
    /// one `tsa_url` names.
    pub timestamper: Arc<dyn telediag_reports::Timestamper>,
    /// The centre's TSA certificate (DER), embedded with each signature's
    /// validation data when it is the one that stamps.
    pub tsa_certificate: Option<Vec<u8>>,
    /// The CJK font of reports; `None` when the machine has none (signing then says so).
    pub font: Option<ReportFont>,
    /// Failed logins per client address.
    pub login_limiter: Arc<login_limit::LoginLimiter>,
    /// ECG uploads read at once (each is held whole while it is read).
    pub ecg_uploads: Arc<tokio::sync::Semaphore>,
    /// Configuration problems found at start, shown to admins on the dashboard.
    pub notices: Arc<std::sync::Mutex<Vec<String>>>,
    /// Served over HTTPS: the session cookie is `Secure` and responses carry HSTS.
    pub https: bool,
    /// The web application's files, served at `/`.
    pub web_app: web_app::WebApp,
    /// The worklist's version, streamed to open browsers by `/api/events`.
    pub changes: changes::ChangeFeed,
    /// Hands freed memory back to the system; called after large uploads
    /// (the binary's allocator keeps freed pages for reuse otherwise).
    pub release_memory: Option<fn()>,
}

/// ECG uploads read at once: 4 × the 64 MiB limit at worst.
pub const CONCURRENT_ECG_UPLOADS: usize = 4;

/// Errors of starting the service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ca(#[from] telediag_reports::identity::IdentityError),
    #[error("{0}")]
    CorsOrigin(String),
    #[error("worklist.tsa_url: {0}")]
    TsaUrl(String),
}

impl AppState {
    /// Checks the configuration against where HTTP really listens; what is
    /// wrong is logged and kept for the admins' dashboard.
    pub fn check_listening(&self, http: std::net::SocketAddr) {
        if let Some(warning) = config::public_url_warning(&self.config.public_url, http) {
            tracing::warn!("{warning}");
            self.notices.lock().expect("notices lock").push(warning);
        }
    }

    /// Opens the centre's CA under `ca_dir` (creating it at first start) and
    /// loads the report font.
    pub fn new(archive: Archive, config: WorklistConfig, ca_dir: &Path) -> Result<AppState, StartError> {
        for origin in &config.dicomweb_cors_origins {
            config::check_cors_origin(origin).map_err(StartError::CorsOrigin)?;
        }
        let (ca, tsa) = report_assets::load_or_create_authorities(ca_dir, &config.centre_name)?;
        let (timestamper, tsa_certificate): (Arc<dyn telediag_reports::Timestamper>, _) = match &config.tsa_url {
            Some(url) => (Arc::new(signing::external_tsa::HttpTsa::new(url).map_err(StartError::TsaUrl)?), None),
            None => {
                let certificate = tsa.certificate_der();
                (Arc::new(tsa), Some(certificate))
            }
        };
        let font = match report_assets::load_font(config.report_font.as_deref()) {
            Ok(font) => Some(font),
            Err(e) => {
                tracing::warn!(error = %e, "reports cannot be signed until a CJK font is installed");
                None
            }
        };
        let audit = audit::AuditLog::new(archive.database().clone());
        let web_app = web_app::WebApp::new(&config.web_app);
        if let Some(missing) = web_app.missing() {
            tracing::warn!("{missing}");
        }
        Ok(AppState {
            workflow: telediag_workflow::Workflow::new(archive.database().clone(), config.policy()),
            web_app,
            changes: changes::ChangeFeed::default(),
            archive,
            config: Arc::new(config),
            audit,
            ca: Arc::new(ca),
            font,
            login_limiter: Arc::default(),
            signing_unlocks: Arc::default(),
            timestamper,
            tsa_certificate,
            ecg_uploads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_ECG_UPLOADS)),
            notices: Arc::default(),
            https: false,
            release_memory: None,
        })
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    use reporting::routes as report;
    use requests as request;
    let https = state.https;
    let router = Router::new()
        .route("/api/logout", post(routes::logout))
        .route("/api/me", get(routes::me))
        .route("/api/studies", get(routes::list_studies))
        .route("/api/studies/{uid}", get(routes::get_study))
        .route("/api/sites", get(routes::list_sites).post(routes::add_site))
        .route("/api/sites/{name}", delete(routes::remove_site).patch(admin::change_site))
        .route("/api/users", get(admin::list_users).post(routes::add_user))
        .route("/api/users/{id}", axum::routing::patch(admin::change_user))
        .route("/api/users/{id}/credentials", put(admin::set_credentials))
        .route("/api/users/{id}/signing-identity/retire", post(signing::routes::retire))
        .route("/api/me/signing", get(signing::routes::status))
        .route("/api/me/signing-pin", put(signing::routes::set_pin))
        .route("/api/me/signing-unlock", post(signing::routes::unlock).delete(signing::routes::lock))
        .route("/api/me/signing-identity", put(signing::routes::import_pkcs12))
        .route("/api/audit", get(admin::query_audit))
        .route("/api/audit/verify", get(admin::verify_audit))
        .route("/api/uid-collisions", get(admin::list_uid_collisions))
        .route("/api/instances/{uid}/ecg-samples", get(ecg_samples::ecg_samples))
        .route("/api/instances/{uid}/{kind}", get(routes::instance_image))
        .route("/api/ecg", post(routes::upload_ecg).layer(axum::extract::DefaultBodyLimit::max(routes::ECG_UPLOAD_LIMIT)))
        .route("/api/series/{uid}/thumbnail", get(routes::series_thumbnail))
        .route("/api/requests", get(request::list_requests).post(request::create_request))
        .route("/api/requests/{id}", get(request::get_request))
        .route("/api/requests/{id}/claim", post(request::claim))
        .route("/api/requests/{id}/release", post(request::release))
        .route("/api/requests/{id}/assign", post(request::assign_to))
        .route("/api/requests/{id}/cancel", post(request::cancel))
        .route("/api/requests/{id}/confirm-identity", post(request::confirm_identity))
        .route("/api/requests/{id}/report", get(report::get_report).post(report::open_report).put(report::save_draft))
        .route("/api/requests/{id}/report/sign", post(report::sign))
        .route("/api/templates", get(report::list_templates))
        .route("/api/requests/{id}/report/review", post(report::review))
        .route("/api/requests/{id}/report/return", post(report::return_to_author))
        .route("/api/requests/{id}/report/amend", post(report::amend))
        .route("/api/requests/{id}/report/revoke", post(report::revoke))
        .route("/api/requests/{id}/report/pdf", get(report::download_pdf))
        .route("/api/requests/{id}/report/qr", get(report::verification_qr))
        .route("/api/requests/{id}/critical", post(report::flag_critical))
        .route("/api/critical", get(report::list_critical))
        .route("/api/critical/{id}/acknowledge", post(report::acknowledge_critical))
        .route("/api/dashboard", get(request::get_dashboard))
        .route("/api/events", get(changes::stream))
        .nest("/dicom-web", dicomweb::router(&state.config.dicomweb_cors_origins))
        // Every matched route above is audited; the public ones below are not.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .route("/api/health", get(routes::health))
        .route("/api/login", post(routes::login))
        .route("/verify/{token}", get(report::verify))
        .route("/ca.crt", get(routes::ca_certificate))
        .route("/ca.crl", get(signing::routes::crl))
        // Everything else is the web application, whose router knows its paths.
        .fallback(web_app_or_not_found)
        // Request bodies: 1 MiB unless a route says otherwise (ECG uploads).
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        // Rejections from axum's extractors (bad JSON, too large, wrong
        // method) arrive as plain text: every error leaves as JSON.
        .layer(axum::middleware::map_response(error::errors_as_json))
        .with_state(state);
    if https {
        // A browser that has seen the centre over HTTPS never tries plain HTTP again.
        router.layer(axum::middleware::map_response(|mut response: axum::response::Response| async move {
            response.headers_mut().insert(
                axum::http::header::STRICT_TRANSPORT_SECURITY,
                axum::http::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
            response
        }))
    } else {
        router
    }
}

/// A path under the API that no route matched is a JSON 404; any other GET
/// is the web application's.
async fn web_app_or_not_found(State(state): State<AppState>, request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let api = ["/api", "/dicom-web", "/verify"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if api || !(request.method() == axum::http::Method::GET || request.method() == axum::http::Method::HEAD) {
        return error::ApiError::not_found("route").into_response();
    }
    state.web_app.serve(request).await
}

/// The largest request body of a route that does not set its own: reports,
/// registrations and settings are a few kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;
