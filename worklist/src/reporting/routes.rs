//! HTTP handlers of reports: open (draft from template), autosave, sign,
//! co-sign, return, amend, download, revoke, critical findings, and the
//! public verification page. Each parses, calls the workflow (or
//! [`sign_off`] for a signature) as the caller, and answers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use telediag_workflow::ReportKind;
use telediag_workflow::reports::{DraftEdit, Opened, Revision, Stage, VerificationStatus, current_final};

use super::sign_off::{self, SignOff};
use super::{critical_webhook, drafts};
use crate::AppState;
use crate::auth::{self, CurrentUser};
use crate::error::ApiError;
use crate::templates;

/// `GET /api/requests/{id}/report`: the request and its versions (a site
/// user sees signed ones only).
pub async fn get_report(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let (request, versions) = state.workflow.report(&user, id).await?;
    Ok(Json(serde_json::json!({ "request": request, "versions": versions })).into_response())
}

/// `POST /api/requests/{id}/report`: the holder opens the report; a first
/// draft is made from the template (ECG: from the measurements). Idempotent.
pub async fn open_report(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let opened = state.workflow.open_report(&user, id, async |request| drafts::first_draft(&state, request).await).await?;
    Ok(match opened {
        Opened::Existing(version) => Json(version).into_response(),
        Opened::Created(version) => (StatusCode::CREATED, Json(version)).into_response(),
    })
}

#[derive(Debug, Deserialize)]
pub struct TemplateQuery {
    modality: String,
}

/// `GET /api/templates?modality=CT`: the templates a reader may switch to
/// and the phrases they insert, for the report panel.
pub async fn list_templates(user: CurrentUser, Query(q): Query<TemplateQuery>) -> Result<Response, ApiError> {
    if !user.is_reader() {
        return Err(ApiError::forbidden("writing reports (readers do)"));
    }
    let modality = q.modality.trim().to_ascii_uppercase();
    Ok(Json(serde_json::json!({ "templates": templates::choices(&modality), "phrases": templates::phrases(&modality) })).into_response())
}

/// `PUT /api/requests/{id}/report`: autosave of the draft.
pub async fn save_draft(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(edit): Json<DraftEdit>,
) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.save_draft(&user, id, &edit).await?).into_response())
}

/// The session a signature is made in: its unlock may stand for the PIN.
fn session_of(headers: &HeaderMap) -> Result<String, ApiError> {
    auth::session_key(headers).ok_or_else(ApiError::unauthorized)
}

fn signed_off(outcome: SignOff) -> Response {
    match outcome {
        SignOff::AwaitsReview(version) => Json(version).into_response(),
        SignOff::Final { report, filed_into_study } => {
            Json(serde_json::json!({ "report": report, "filed_into_study": filed_into_study })).into_response()
        }
    }
}

/// The signer's credential for a signature.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SignWith {
    /// The signer's signing PIN, which opens their key ([`crate::signing`]);
    /// omitted while they have unlocked signing for this session.
    #[serde(default)]
    pin: Option<String>,
}

/// `POST /api/requests/{id}/report/sign`: the reporting doctor signs, with
/// their own key, the document they see. Two-level sites: preliminary,
/// awaiting the reviewer; single-signature sites: final.
pub async fn sign(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Option<Json<SignWith>>,
) -> Result<Response, ApiError> {
    let pin = body.unwrap_or_default().0.pin;
    Ok(signed_off(sign_off::sign(&state, &user, &session_of(&headers)?, id, pin.as_deref()).await?))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// The text as the reviewer revised it (审核修改); omitted, or the same
    /// as the reporting doctor's, for a co-signature.
    method: Option<String>,
    findings: Option<String>,
    conclusion: Option<String>,
    /// The reviewer's signing PIN (see [`SignWith`]).
    #[serde(default)]
    pin: Option<String>,
    /// The `updated_at` of the version the reviewer read.
    #[serde(default)]
    base_updated_at: Option<i64>,
}

/// `POST /api/requests/{id}/report/review`: the reviewer signs, final.
/// Unchanged, their signature is added to the document the reporting
/// doctor signed. Revised, they sign the revised text alone as its editor:
/// the reporting doctor's signature stays on the draft they signed (kept,
/// downloadable with `?stage=author`), never on words they did not write.
pub async fn review(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Option<Json<Review>>,
) -> Result<Response, ApiError> {
    let Review { method, findings, conclusion, pin, base_updated_at } = body.map(|b| b.0).unwrap_or_default();
    let revision = Revision { method, findings, conclusion, base_updated_at };
    Ok(signed_off(sign_off::review(&state, &user, &session_of(&headers)?, id, revision, pin.as_deref()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Returned {
    reason: String,
    /// The reviewer's login password ([`auth::confirm_password`]).
    #[serde(default)]
    password: String,
}

/// `POST /api/requests/{id}/report/return`: the reviewer sends a preliminary report back to its author.
pub async fn return_to_author(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Returned>,
) -> Result<Response, ApiError> {
    let request = state.workflow.request(&user, id).await?;
    state.workflow.check_return(&user, &request, &body.reason).await?;
    auth::confirm_password(&state, &user, &body.password, "returning the report").await?;
    Ok(Json(state.workflow.return_to_author(&user, id, &body.reason).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    /// `addendum` (adds to the final report) or `amendment` (replaces it).
    kind: String,
    /// The author's login password ([`auth::confirm_password`]).
    #[serde(default)]
    password: String,
}

/// `POST /api/requests/{id}/report/amend`: a new version after final.
pub async fn amend(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Amend>,
) -> Result<Response, ApiError> {
    let kind = ReportKind::parse(&body.kind)
        .filter(|k| *k != ReportKind::Report)
        .ok_or_else(|| ApiError::bad_request(format!("kind must be addendum or amendment, found {:?}", body.kind)))?;
    state.workflow.check_amend(&user, id, kind).await?;
    auth::confirm_password(&state, &user, &body.password, "opening an addendum or amendment").await?;
    Ok((StatusCode::CREATED, Json(state.workflow.amend(&user, id, kind).await?)).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct PdfQuery {
    version: Option<i64>,
    /// `author`: the document the reporting doctor signed (before the
    /// reviewer's signature, or the draft a reviewer then revised).
    stage: Option<String>,
    /// Shown in the page (the report panel's preview) rather than saved.
    #[serde(default)]
    inline: bool,
}

/// `GET /api/requests/{id}/report/pdf`: the signed PDF of the newest final
/// version (or `?version=`). A site user's download is recorded (已打印).
pub async fn download_pdf(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<PdfQuery>,
) -> Result<Response, ApiError> {
    let stage = match q.stage.as_deref() {
        None | Some("final") => Stage::Final,
        Some("author") => Stage::Author,
        Some(other) => return Err(ApiError::bad_request(format!("stage is final or author, found {other:?}"))),
    };
    let (request, report, key) = state.workflow.signed_document(&user, id, q.version, stage).await?;
    let bytes = state
        .archive
        .read_small_object(&key)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the signed report cannot be read: {e}")))?;
    state.workflow.record_download(&user, &report).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    let suffix = if stage == Stage::Author { "-author" } else { "" };
    let filename = format!("report-{}-v{}{suffix}.pdf", request.id, report.version);
    let disposition = if q.inline { "inline" } else { "attachment" };
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&format!("{disposition}; filename=\"{filename}\"")).expect("ascii"));
    Ok((headers, bytes).into_response())
}

/// `GET /api/requests/{id}/report/qr`: the newest final version's
/// verification QR code (SVG), as printed on its form.
pub async fn verification_qr(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let (_, versions) = state.workflow.report(&user, id).await?;
    let token = current_final(&versions).and_then(|v| v.verify_token.clone()).ok_or_else(|| ApiError::not_found("signed report"))?;
    let url = format!("{}/verify/{token}", state.config.public_url.trim_end_matches('/'));
    let svg = telediag_reports::verification_qr_svg(&url).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, no-cache")], svg).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    version: i64,
    reason: String,
}

/// `POST /api/requests/{id}/report/revoke` (admin): withdraws a signed
/// version (wrong patient, wrong study). The PDF stays as it was signed; its
/// verification page says revoked, with the reason.
pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Revoke>,
) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.revoke(&user, id, body.version, &body.reason).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    note: String,
}

/// `POST /api/requests/{id}/critical`
pub async fn flag_critical(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<Flag>,
) -> Result<Response, ApiError> {
    let finding = critical_webhook::flag(&state, &user, id, &body.note).await?;
    Ok((StatusCode::CREATED, Json(finding)).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct CriticalQuery {
    #[serde(default)]
    open: bool,
}

/// `GET /api/critical?open=true`
pub async fn list_critical(State(state): State<AppState>, user: CurrentUser, Query(q): Query<CriticalQuery>) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.critical_findings(&user, q.open).await?).into_response())
}

/// `POST /api/critical/{id}/acknowledge`
pub async fn acknowledge_critical(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    Ok(Json(state.workflow.acknowledge_critical(&user, id).await?).into_response())
}

/// Initials of a name: 张三丰 → 张**, "Zhang^San" → Z.S.
pub fn initials(name: &str) -> String {
    let name = name.trim();
    if name.chars().next().is_some_and(|c| c as u32 >= 0x2E80) {
        let mut chars = name.chars();
        let first = chars.next().map(String::from).unwrap_or_default();
        return first + &"*".repeat(chars.count());
    }
    name.split(['^', ' '])
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.chars().next())
        .map(|c| format!("{}.", c.to_ascii_uppercase()))
        .collect()
}

/// `GET /verify/{token}` (public): is this printed report genuine and current?
pub async fn verify(State(state): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("report"));
    }
    let found = state.workflow.verification(&token).await?.ok_or_else(|| ApiError::not_found("report"))?;
    // Revised by the reviewer: the reporting doctor signed the draft (its
    // own document, whose hash is given), the reviewer this text.
    let (author_role, reviewer_role) = if found.edited_by_reviewer {
        ("报告医师（签署初稿）", "审核医师（修改并签署本版）")
    } else {
        ("报告医师", "审核医师")
    };
    let mut author = serde_json::json!({ "role": author_role, "name": found.author_name, "signed_at": found.author_signed_at });
    if found.edited_by_reviewer {
        author["draft_sha256"] = found.author_document_sha256.clone().into();
    }
    let mut signers = vec![author];
    if let Some(name) = &found.reviewer_name {
        signers.push(serde_json::json!({ "role": reviewer_role, "name": name, "signed_at": found.reviewer_signed_at }));
    }
    let body = serde_json::json!({
        "report_id": format!("R{}-{}", found.request_id, found.version),
        "version": found.version,
        "kind": found.kind,
        "status": found.status,
        "hospital": found.hospital,
        "patient_initials": initials(found.patient_name.as_deref().unwrap_or_default()),
        "signers": signers,
        "document_sha256": found.document_sha256,
        "revoked_reason": found.revoked_reason,
        "edited_by_reviewer": found.edited_by_reviewer,
    });
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return Ok(Json(body).into_response());
    }
    let offset = state.config.utc_offset_minutes;
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let rows: String = signers
        .iter()
        .map(|s| {
            let at = s["signed_at"].as_i64().map(|t| telediag_reports::Timestamp::new(t, offset).date_time()).unwrap_or_default();
            format!(
                "<tr><th>{}</th><td>{} &nbsp; {at}</td></tr>",
                s["role"].as_str().unwrap_or(""),
                escape(s["name"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let verdict = match found.status {
        VerificationStatus::Valid => "✔ 报告有效",
        VerificationStatus::Superseded => "⚠ 此版本已被更正报告替代",
        VerificationStatus::NotFinal => "⏳ 报告尚未审核，未生效",
        VerificationStatus::Revoked => "✖ 报告已撤销",
    };
    let page = format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>报告验证</title>
<body style=\"font-family:sans-serif;max-width:36em;margin:2em auto\"><h1>{verdict}</h1><table>
<tr><th>报告编号</th><td>{}</td></tr><tr><th>医院</th><td>{}</td></tr><tr><th>患者</th><td>{}</td></tr>{rows}
<tr><th>文件 SHA-256</th><td style=\"word-break:break-all\">{}</td></tr></table></body></html>",
        escape(body["report_id"].as_str().unwrap_or("")),
        escape(body["hospital"].as_str().unwrap_or("")),
        escape(body["patient_initials"].as_str().unwrap_or("")),
        body["document_sha256"].as_str().unwrap_or(""),
    );
    Ok(Html(page).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn initials_hide_the_name() {
        assert_eq!(super::initials("张三丰"), "张**");
        assert_eq!(super::initials("Zhang^San Feng"), "Z.S.F.");
        assert_eq!(super::initials(""), "");
    }
}
