//! Critical findings (危急值): flagged by the reading doctor, shown to the
//! site at once (in the app, and POSTed to the site's webhook when one is
//! configured), and acknowledged by a named site user, with the time.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use telediag_archive::db::now_ms;

use crate::AppState;
use crate::auth::{CurrentUser, Role, Scope};
use crate::error::ApiError;
use crate::requests::ReadRequest;

/// A critical finding as shown.
#[derive(Debug, Clone, Serialize)]
pub struct CriticalFinding {
    pub id: i64,
    pub request_id: i64,
    pub site_id: i64,
    pub note: String,
    pub flagged_by: String,
    pub flagged_at: i64,
    /// `delivered`, `failed: <reason>`, or null when the site has no webhook.
    pub webhook_status: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
}

const COLUMNS: &str =
    "c.id, c.request_id, c.site_id, c.note, f.display_name, c.flagged_at, c.webhook_status, a.display_name, c.acknowledged_at
    FROM critical_findings c JOIN users f ON f.id = c.flagged_by LEFT JOIN users a ON a.id = c.acknowledged_by";

fn from_row(r: &sqlx::sqlite::SqliteRow) -> CriticalFinding {
    CriticalFinding {
        id: r.get(0),
        request_id: r.get(1),
        site_id: r.get(2),
        note: r.get(3),
        flagged_by: r.get(4),
        flagged_at: r.get(5),
        webhook_status: r.get(6),
        acknowledged_by: r.get(7),
        acknowledged_at: r.get(8),
    }
}

/// Flags a critical finding on `request` and notifies its site.
pub async fn flag(state: &AppState, user: &CurrentUser, request: &ReadRequest, note: &str) -> Result<CriticalFinding, ApiError> {
    if !(user.has(Role::Radiologist) || user.has(Role::EcgDoctor) || user.has(Role::Reviewer)) {
        return Err(ApiError::forbidden("flagging critical findings"));
    }
    crate::requests::assign::require_credentialed(state.archive.database(), user, request, "flagging critical findings").await?;
    if note.trim().is_empty() {
        return Err(ApiError::bad_request("a critical finding needs a note saying what was found"));
    }
    let db = state.archive.database();
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO critical_findings (request_id, site_id, note, flagged_by, flagged_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(request.id)
    .bind(request.site_id)
    .bind(note.trim())
    .bind(user.id)
    .bind(now)
    .fetch_one(db.pool())
    .await
    .map_err(ApiError::database)?;
    // The working version carries the flag onto the printed form.
    sqlx::query("UPDATE reports SET critical = 1 WHERE request_id = ? AND state IN ('draft', 'preliminary')")
        .bind(request.id)
        .execute(db.pool())
        .await
        .map_err(ApiError::database)?;
    tracing::warn!(request = request.id, site_id = request.site_id, critical = id, "critical finding flagged");
    let webhook: Option<String> = sqlx::query_scalar("SELECT critical_webhook FROM sites WHERE id = ?")
        .bind(request.site_id)
        .fetch_one(db.pool())
        .await
        .map_err(ApiError::database)?;
    if let Some(url) = webhook.filter(|u| !u.is_empty()) {
        let payload = serde_json::json!({
            "event": "critical_finding",
            "critical_finding_id": id,
            "request_id": request.id,
            "site": request.site,
            "accession_number": request.accession_number,
            "patient_id": request.patient_id,
            "modality": request.modality,
            "note": note.trim(),
            "flagged_by": user.display_name,
            "flagged_at": now,
        });
        let status = match post_json(&url, &payload).await {
            Ok(()) => "delivered".to_string(),
            Err(e) => {
                tracing::warn!(critical = id, error = %e, "critical finding webhook failed");
                format!("failed: {e}")
            }
        };
        sqlx::query("UPDATE critical_findings SET webhook_status = ? WHERE id = ?")
            .bind(&status)
            .bind(id)
            .execute(db.pool())
            .await
            .map_err(ApiError::database)?;
    }
    get(state, user, id).await
}

/// POSTs JSON to an `http://` URL (hospital intranets), waiting at most 5 s.
async fn post_json(url: &str, payload: &serde_json::Value) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    if !url.starts_with("http://") {
        return Err(format!("only http:// webhooks are supported, found {url:?}"));
    }
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = axum::http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(payload.to_string())))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .map_err(|_| "no answer within 5 s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    if status.is_success() { Ok(()) } else { Err(format!("the webhook answered {status}")) }
}

pub async fn get(state: &AppState, user: &CurrentUser, id: i64) -> Result<CriticalFinding, ApiError> {
    let sql = format!("SELECT {COLUMNS} WHERE c.id = ?");
    let finding = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(state.archive.database().pool())
        .await
        .map_err(ApiError::database)?
        .as_ref()
        .map(from_row)
        .ok_or_else(|| ApiError::not_found("critical finding"))?;
    match user.scope()? {
        Scope::Site(site) if site != finding.site_id => Err(ApiError::not_found("critical finding")),
        _ => Ok(finding),
    }
}

/// Critical findings the caller may see, newest first; `open` keeps the unacknowledged.
pub async fn list(state: &AppState, user: &CurrentUser, open: bool) -> Result<Vec<CriticalFinding>, ApiError> {
    let site = match user.scope()? {
        Scope::Site(site) => Some(site),
        Scope::AllSites => None,
    };
    let sql = format!("SELECT {COLUMNS} WHERE (?1 IS NULL OR c.site_id = ?1) AND (?2 = 0 OR c.acknowledged_at IS NULL) ORDER BY c.id DESC");
    let rows = sqlx::query(&sql).bind(site).bind(open).fetch_all(state.archive.database().pool()).await.map_err(ApiError::database)?;
    Ok(rows.iter().map(from_row).collect())
}

/// A site user of the finding's site acknowledges it (once).
pub async fn acknowledge(state: &AppState, user: &CurrentUser, id: i64) -> Result<CriticalFinding, ApiError> {
    let finding = get(state, user, id).await?;
    if !user.has(Role::SiteUser) || user.site_id != Some(finding.site_id) {
        return Err(ApiError::forbidden("acknowledging critical findings (a user of the site does)"));
    }
    let changed =
        sqlx::query("UPDATE critical_findings SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL")
            .bind(user.id)
            .bind(now_ms())
            .bind(id)
            .execute(state.archive.database().pool())
            .await
            .map_err(ApiError::database)?
            .rows_affected();
    if changed == 0 {
        return Err(ApiError::conflict(format!(
            "critical finding {id} was acknowledged already by {}",
            finding.acknowledged_by.unwrap_or_default()
        )));
    }
    tracing::info!(critical = id, user = %user.username, "critical finding acknowledged");
    get(state, user, id).await
}
