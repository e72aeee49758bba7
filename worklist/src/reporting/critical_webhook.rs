//! Telling a site of a critical finding (危急值) the moment it is
//! flagged: a JSON POST to the webhook the site configured, waited for at
//! most 5 s; the outcome is recorded on the finding.

use std::time::Duration;

use telediag_workflow::Actor;
use telediag_workflow::critical::{CriticalFinding, Flagged};

use crate::AppState;
use crate::error::ApiError;

/// Flags a critical finding on request `request_id` and notifies its site.
pub async fn flag(state: &AppState, actor: &Actor, request_id: i64, note: &str) -> Result<CriticalFinding, ApiError> {
    let Flagged { finding, webhook } = state.workflow.flag_critical(actor, request_id, note).await?;
    let Some(url) = webhook else { return Ok(finding) };
    let request = state.workflow.request(actor, request_id).await?;
    let payload = serde_json::json!({
        "event": "critical_finding",
        "critical_finding_id": finding.id,
        "request_id": request.id,
        "site": request.site,
        "accession_number": request.accession_number,
        "patient_id": request.patient_id,
        "modality": request.modality,
        "note": finding.note,
        "flagged_by": finding.flagged_by,
        "flagged_at": finding.flagged_at,
    });
    let status = match post_json(&url, &payload).await {
        Ok(()) => "delivered".to_string(),
        Err(e) => {
            tracing::warn!(critical = finding.id, error = %e, "critical finding webhook failed");
            format!("failed: {e}")
        }
    };
    state.workflow.record_webhook_status(finding.id, &status).await?;
    Ok(state.workflow.critical_finding(actor, finding.id).await?)
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
