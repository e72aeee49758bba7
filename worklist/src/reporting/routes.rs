//! HTTP handlers of reports: open (draft from template), autosave, sign,
//! co-sign, return, amend, download, critical findings, and the public
//! verification page.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use sqlx::Row;
use telediag_archive::db::now_ms;
use telediag_archive::derived::DerivedKind;
use telediag_archive::store::ObjectKey;

use super::{Draft, ReportVersion, current_final, finalise, insert_draft, versions, working};
use crate::AppState;
use crate::auth::{self, CurrentUser, Role};
use crate::error::ApiError;
use crate::requests::{Change, Holder, ReadRequest, RequestState, assign, transition, transition_in, visible_request};
use crate::templates;

/// Writing reports is for readers (radiologists and ECG doctors).
fn require_reader(user: &CurrentUser) -> Result<(), ApiError> {
    if user.has(Role::Radiologist) || user.has(Role::EcgDoctor) { Ok(()) } else { Err(ApiError::forbidden("writing reports (readers do)")) }
}

/// What a site user may see of the versions: signed ones only.
fn shown_to(user: &CurrentUser, all: Vec<ReportVersion>) -> Vec<ReportVersion> {
    if user.has(Role::SiteUser) { all.into_iter().filter(|v| v.state != "draft").collect() } else { all }
}

/// `GET /api/requests/{id}/report`: the versions and the template that fits.
pub async fn get_report(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    let all = versions(db, id).await?;
    Ok(Json(serde_json::json!({ "request": request, "versions": shown_to(&user, all) })).into_response())
}

/// The study's (first) waveform instance.
async fn ecg_instance(state: &AppState, study_uid: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT i.sop_instance_uid FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies s ON s.id = se.study_ref
         WHERE s.study_uid = ? AND i.sop_class_uid LIKE ? || '%' ORDER BY i.id LIMIT 1",
    )
    .bind(study_uid)
    .bind(telediag_archive::uid::WAVEFORM_SOP_CLASS_PREFIX)
    .fetch_optional(state.archive.database().pool())
    .await
    .ok()?
}

async fn ecg_analysis(state: &AppState, study_uid: &str) -> Option<telediag_ecg::AnalysisSummary> {
    let db = state.archive.database();
    let sop = ecg_instance(state, study_uid).await?;
    let sop = telediag_archive::SopInstanceUid::parse(&sop).ok()?;
    let record = db.derived(&sop, DerivedKind::EcgMeasurements).await.ok()??;
    let key = ObjectKey::new(record.object_key?).ok()?;
    let bytes = tokio::fs::read(state.archive.store().path_of(&key)).await.ok()?;
    match telediag_ecg::AnalysisSummary::from_json(&bytes) {
        Ok(summary) => Some(summary),
        Err(e) => {
            tracing::error!(study_uid, error = %e, "the stored ECG analysis does not read as the ECG crate's summary");
            None
        }
    }
}

async fn template_for(state: &AppState, request: &ReadRequest) -> templates::Template {
    let Some(study_uid) = request.study_uid.as_deref() else {
        return templates::for_study(request.modality.as_deref(), None, request.requested_exam.as_deref());
    };
    if request.modality.as_deref() == Some("ECG") {
        return templates::for_ecg(ecg_analysis(state, study_uid).await.as_ref());
    }
    let body_part: Option<String> = sqlx::query_scalar(
        "SELECT se.body_part FROM series se JOIN studies s ON s.id = se.study_ref WHERE s.study_uid = ? AND se.body_part IS NOT NULL LIMIT 1",
    )
    .bind(study_uid)
    .fetch_optional(state.archive.database().pool())
    .await
    .ok()
    .flatten();
    let description = request.requested_exam.clone();
    templates::for_study(request.modality.as_deref(), body_part.as_deref(), description.as_deref())
}

/// `POST /api/requests/{id}/report`: the holder opens the report; a first
/// draft is made from the template (ECG: from the measurements). Idempotent.
pub async fn open_report(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    require_reader(&user)?;
    let all = versions(db, id).await?;
    if let Some(current) = working(&all) {
        if request.assigned_to == Some(user.id) {
            assign::touch(&state, &user, &request).await?;
        }
        return Ok(Json(current.clone()).into_response());
    }
    if !all.is_empty() {
        return Err(ApiError::conflict("the report is final: start an addendum or an amendment"));
    }
    assign::touch(&state, &user, &request).await?;
    let template = template_for(&state, &request).await;
    // An ECG report prints its tracing unless the doctor removes it.
    let key_images: Vec<String> = match (request.modality.as_deref(), request.study_uid.as_deref()) {
        (Some("ECG"), Some(study)) => ecg_instance(&state, study).await.into_iter().collect(),
        _ => Vec::new(),
    };
    let draft = Draft {
        kind: "report",
        template: &template.id,
        method: &template.method,
        findings: &template.findings,
        conclusion: &template.conclusion,
        key_images: &key_images,
    };
    let report_id = insert_draft(db, id, user.id, None, draft).await?;
    let created = super::version_by_id(db, report_id).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct TemplateQuery {
    modality: String,
}

/// `GET /api/templates?modality=CT`: the templates a reader may switch to
/// and the phrases they insert, for the report panel.
pub async fn list_templates(user: CurrentUser, Query(q): Query<TemplateQuery>) -> Result<Response, ApiError> {
    require_reader(&user)?;
    let modality = q.modality.trim().to_ascii_uppercase();
    Ok(Json(serde_json::json!({ "templates": templates::choices(&modality), "phrases": templates::phrases(&modality) })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftText {
    method: Option<String>,
    findings: Option<String>,
    conclusion: Option<String>,
    /// SOP Instance UIDs of the study's images to print on the form (at most four).
    key_images: Option<Vec<String>>,
    /// The `updated_at` the client last saw: a save over someone else's newer text is refused.
    base_updated_at: Option<i64>,
}

/// Checks that every key image is an instance of the request's study.
async fn check_key_images(state: &AppState, request: &ReadRequest, images: &[String]) -> Result<(), ApiError> {
    if images.len() > 4 {
        return Err(ApiError::bad_request(format!("at most 4 key images are printed, found {}", images.len())));
    }
    for sop in images {
        let in_study: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies s ON s.id = se.study_ref
             WHERE i.sop_instance_uid = ? AND s.study_uid = ? LIMIT 1",
        )
        .bind(sop)
        .bind(&request.study_uid)
        .fetch_optional(state.archive.database().pool())
        .await
        .map_err(ApiError::database)?;
        if in_study.is_none() {
            return Err(ApiError::bad_request(format!("key image {sop} is not an instance of this request's study")));
        }
    }
    Ok(())
}

/// Who may write the working draft: the request's holder for the report,
/// the author for an addendum or amendment.
fn may_edit(user: &CurrentUser, request: &ReadRequest, draft: &ReportVersion) -> bool {
    if draft.kind == "report" { request.assigned_to == Some(user.id) } else { draft.author_id == Some(user.id) }
}

/// `PUT /api/requests/{id}/report`: autosave of the draft.
pub async fn save_draft(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(text): Json<DraftText>,
) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    require_reader(&user)?;
    let all = versions(db, id).await?;
    let draft =
        all.iter().rev().find(|v| v.state == "draft").ok_or_else(|| ApiError::conflict("no draft to save: open the report first"))?;
    if !may_edit(&user, &request, draft) {
        return Err(ApiError::forbidden("editing a report you do not hold"));
    }
    if draft.kind == "report" {
        assign::touch(&state, &user, &request).await?;
    }
    if let Some(images) = &text.key_images {
        check_key_images(&state, &request, images).await?;
    }
    let now = now_ms().max(draft.updated_at + 1);
    let changed = sqlx::query(
        "UPDATE reports SET method = COALESCE(?, method), findings = COALESCE(?, findings), conclusion = COALESCE(?, conclusion),
            key_images = COALESCE(?, key_images), updated_at = ? WHERE id = ? AND state = 'draft' AND (? IS NULL OR updated_at = ?)",
    )
    .bind(&text.method)
    .bind(&text.findings)
    .bind(&text.conclusion)
    .bind(text.key_images.as_ref().map(|k| serde_json::to_string(k).unwrap_or_else(|_| "[]".into())))
    .bind(now)
    .bind(draft.id)
    .bind(text.base_updated_at)
    .bind(text.base_updated_at)
    .execute(db.pool())
    .await
    .map_err(ApiError::database)?
    .rows_affected();
    if changed == 0 {
        return Err(ApiError::conflict("the draft changed since you loaded it: reload before saving"));
    }
    let saved = super::version_by_id(db, draft.id).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok(Json(saved).into_response())
}

async fn single_signature(state: &AppState, site_id: i64) -> Result<bool, ApiError> {
    sqlx::query_scalar("SELECT single_signature FROM sites WHERE id = ?")
        .bind(site_id)
        .fetch_one(state.archive.database().pool())
        .await
        .map_err(ApiError::database)
}

/// A report is not signed over images whose patient differs from the
/// registration's until the site or an admin has confirmed they are one.
fn require_one_patient(request: &ReadRequest) -> Result<(), ApiError> {
    match &request.identity_mismatch {
        Some(both) if request.identity_unconfirmed() => Err(ApiError::conflict(format!(
            "the registration and the images name different patients ({both}); the site or an administrator confirms \
             (POST /api/requests/{}/confirm-identity) before the report is signed",
            request.id
        ))),
        _ => Ok(()),
    }
}

fn ready_to_sign(draft: &ReportVersion) -> Result<(), ApiError> {
    if draft.conclusion.trim().is_empty() || draft.findings.trim().is_empty() {
        return Err(ApiError::bad_request("a report is signed with its findings (检查所见) and conclusion (检查结论) written"));
    }
    for (section, text) in [("检查方法", &draft.method), ("检查所见", &draft.findings), ("检查结论", &draft.conclusion)] {
        if let Some(placeholder) = crate::templates::placeholder_in(text) {
            return Err(ApiError::bad_request(format!(
                "{section} still holds the template's {placeholder}: confirm or replace it before signing"
            )));
        }
    }
    Ok(())
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

/// The signer, their key opened: `pin`, or this session's unlock.
async fn signer(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    pin: Option<&str>,
    at: i64,
) -> Result<finalise::Signer, ApiError> {
    let session = auth::session_key(headers).ok_or_else(ApiError::unauthorized)?;
    let identity = crate::signing::identity_for_signing(state, user, &session, pin).await?;
    Ok(finalise::Signer { user_id: user.id, name: user.display_name.clone(), at, identity })
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
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    require_reader(&user)?;
    let all = versions(db, id).await?;
    let draft = all.iter().rev().find(|v| v.state == "draft").ok_or_else(|| ApiError::conflict("no draft to sign"))?.clone();
    if !may_edit(&user, &request, &draft) {
        return Err(ApiError::forbidden("signing a report you do not hold"));
    }
    assign::require_credentialed(db, &user, &request, "signing reports").await?;
    require_one_patient(&request)?;
    ready_to_sign(&draft)?;
    let now = now_ms();
    let author = signer(&state, &user, &headers, body.unwrap_or_default().pin.as_deref(), now).await?;
    let pdf = finalise::author_signs(&state, &request, &draft, &author).await?;
    // At a single-signature site this signature makes the report final
    // (below); otherwise it awaits the reviewer as preliminary.
    let single = single_signature(&state, request.site_id).await?;
    // The version and its request change together, or neither does.
    let mut tx = db.pool().begin().await.map_err(ApiError::database)?;
    let signed = sqlx::query(
        "UPDATE reports SET state = ?, author_id = ?, author_signed_at = ?, author_pdf_key = ?, author_pdf_sha256 = ?, verify_token = ?,
           updated_at = ?
         WHERE id = ? AND state = 'draft' AND updated_at = ?",
    )
    .bind(if single { "draft" } else { "preliminary" })
    .bind(user.id)
    .bind(now)
    .bind(&pdf.key)
    .bind(&pdf.sha256)
    .bind(&pdf.token)
    .bind(now)
    .bind(draft.id)
    .bind(draft.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::database)?
    .rows_affected();
    if signed == 0 {
        return Err(ApiError::conflict("the draft was changed or signed while it was being signed: review it and sign again"));
    }
    if !single && draft.kind == "report" {
        let change = Change {
            from: &[RequestState::Reading, RequestState::Assigned],
            held_by: Some(user.id),
            to: RequestState::Preliminary,
            by: Some(user.id),
            note: Some("signed by the reporting doctor"),
            holder: Holder { assigned_to: None, locked_until: Some(None) },
        };
        if !transition_in(&mut tx, id, change).await? {
            return Err(ApiError::conflict("the request is no longer yours to sign (its lock lapsed and it moved on); nothing was signed"));
        }
    }
    tx.commit().await.map_err(ApiError::database)?;
    if single {
        let draft = super::version_by_id(db, draft.id).await?.ok_or_else(|| ApiError::not_found("report"))?;
        return make_final(&state, &user, &request, &draft, pdf, None).await;
    }
    let report = super::version_by_id(db, draft.id).await?;
    Ok(Json(report).into_response())
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
    /// The `updated_at` of the version the reviewer read: a version
    /// changed since (returned and signed again) is not the one they
    /// approve.
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
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    user.require(Role::Reviewer, "co-signing reports")?;
    assign::require_credentialed(db, &user, &request, "co-signing reports").await?;
    require_one_patient(&request)?;
    let review = body.map(|b| b.0).unwrap_or_default();
    let all = versions(db, id).await?;
    let pending = all.iter().rev().find(|v| v.state == "preliminary").ok_or_else(|| ApiError::conflict("no report awaits review"))?.clone();
    if pending.author_id == Some(user.id) {
        return Err(ApiError::forbidden("co-signing your own report (the reviewer is another doctor)"));
    }
    if review.base_updated_at.is_some_and(|base| base != pending.updated_at) {
        return Err(ApiError::conflict("the report changed after you read it: read it again before signing"));
    }
    let mut edited = pending.clone();
    for (field, revised) in
        [(&mut edited.method, review.method), (&mut edited.findings, review.findings), (&mut edited.conclusion, review.conclusion)]
    {
        if let Some(text) = revised {
            *field = text;
        }
    }
    let revised = (edited.method.trim(), edited.findings.trim(), edited.conclusion.trim())
        != (pending.method.trim(), pending.findings.trim(), pending.conclusion.trim());
    if revised {
        ready_to_sign(&edited)?;
    }
    let now = now_ms();
    let reviewer = signer(&state, &user, &headers, review.pin.as_deref(), now).await?;
    let pdf = if revised {
        let author = (pending.author_name.as_deref().unwrap_or_default(), pending.author_signed_at.unwrap_or(now));
        finalise::editor_signs(&state, &request, &edited, author, &reviewer).await?
    } else {
        let (key, sha256, token): (Option<String>, Option<String>, Option<String>) =
            sqlx::query_as("SELECT author_pdf_key, author_pdf_sha256, verify_token FROM reports WHERE id = ?")
                .bind(pending.id)
                .fetch_one(db.pool())
                .await
                .map_err(ApiError::database)?;
        let (Some(key), Some(sha256), Some(token)) = (key, sha256, token) else {
            return Err(ApiError::conflict(
                "the reporting doctor's signed document is missing (signed before per-signer signatures): return it to its author to sign again",
            ));
        };
        let author_pdf = finalise::load(&state, &key, &sha256, &token).await?;
        finalise::reviewer_cosigns(&state, &request, &pending, author_pdf, &reviewer).await?
    };
    make_final(&state, &user, &request, if revised { &edited } else { &pending }, pdf, Some(reviewer)).await
}

/// Marks the version final with its signed PDF (superseding what it
/// amends; with the reviewer's revised text, if any), moves the request
/// on, and files the report into the study.
async fn make_final(
    state: &AppState,
    user: &CurrentUser,
    request: &ReadRequest,
    report: &ReportVersion,
    pdf: finalise::SignedPdf,
    reviewer: Option<finalise::Signer>,
) -> Result<Response, ApiError> {
    let db = state.archive.database();
    let now = now_ms();
    let author_name = report.author_name.clone().unwrap_or_default();
    let superseded = match report.supersedes {
        Some(previous) => super::version_by_id(db, previous).await?,
        None => None,
    };
    let mut tx = db.pool().begin().await.map_err(ApiError::database)?;
    let changed = sqlx::query(
        "UPDATE reports SET state = 'final', reviewer_id = ?, reviewer_signed_at = ?, pdf_key = ?, pdf_sha256 = ?, verify_token = ?,
           method = ?, findings = ?, conclusion = ?, edited_by_reviewer = (method IS NOT ? OR findings IS NOT ? OR conclusion IS NOT ?),
           updated_at = ?
         WHERE id = ? AND state = ? AND updated_at = ?",
    )
    .bind(reviewer.as_ref().map(|r| r.user_id))
    .bind(reviewer.as_ref().map(|r| r.at))
    .bind(&pdf.key)
    .bind(&pdf.sha256)
    .bind(&pdf.token)
    .bind(&report.method)
    .bind(&report.findings)
    .bind(&report.conclusion)
    .bind(&report.method)
    .bind(&report.findings)
    .bind(&report.conclusion)
    .bind(now)
    .bind(report.id)
    // Exactly the version that was signed: a return, a save or another
    // signature meanwhile leaves it unchanged and this one refused.
    .bind(&report.state)
    .bind(report.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::database)?
    .rows_affected();
    if changed == 0 {
        return Err(ApiError::conflict(
            "the report changed while it was being signed (returned, saved or signed meanwhile); nothing was made final",
        ));
    }
    if report.kind == "amendment"
        && let Some(previous) = &superseded
    {
        sqlx::query("UPDATE reports SET state = 'superseded', updated_at = ? WHERE id = ? AND state = 'final'")
            .bind(now)
            .bind(previous.id)
            .execute(&mut *tx)
            .await
            .map_err(ApiError::database)?;
    }
    let (to, from, note) = match report.kind.as_str() {
        "amendment" => (RequestState::Amended, vec![RequestState::Final, RequestState::Amended], "amended version final"),
        "addendum" => (request.state, vec![request.state], "addendum final"),
        // Co-signed: from awaiting review; single signature: from reading.
        _ if reviewer.is_some() => (RequestState::Final, vec![RequestState::Preliminary], "report final"),
        _ => (RequestState::Final, vec![RequestState::Reading, RequestState::Assigned], "report final"),
    };
    // The report and its request change together, or neither does.
    let change = Change {
        from: &from,
        held_by: None,
        to,
        by: Some(user.id),
        note: Some(note),
        holder: Holder { assigned_to: None, locked_until: Some(None) },
    };
    if !transition_in(&mut tx, request.id, change).await? {
        return Err(ApiError::conflict("the request changed while the report was being made final; nothing was changed"));
    }
    tx.commit().await.map_err(ApiError::database)?;
    tracing::info!(request = request.id, version = report.version, "report final and signed");

    let verifier = reviewer.as_ref().map_or(author_name.clone(), |r| r.name.clone());
    let filed = finalise::file_into_study(state, request, report, &pdf, superseded.and_then(|s| s.verify_token), (verifier, now)).await;
    let filed = match filed {
        Ok((sr, doc)) => serde_json::json!({ "sr_sop_instance_uid": sr, "pdf_sop_instance_uid": doc }),
        Err(e) => {
            tracing::error!(request = request.id, error = %e.reason, "the final report could not be filed into its study");
            serde_json::json!({ "error": e.reason })
        }
    };
    let report = super::version_by_id(db, report.id).await?;
    Ok(Json(serde_json::json!({ "report": report, "filed_into_study": filed })).into_response())
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
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    user.require(Role::Reviewer, "returning reports")?;
    assign::require_credentialed(db, &user, &request, "returning reports").await?;
    let all = versions(db, id).await?;
    let pending = all.iter().rev().find(|v| v.state == "preliminary").ok_or_else(|| ApiError::conflict("no report awaits review"))?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("a returned report says what to change"));
    }
    auth::confirm_password(&state, &user, &body.password, "returning the report").await?;
    sqlx::query("UPDATE reports SET state = 'draft', author_signed_at = NULL, updated_at = ? WHERE id = ? AND state = 'preliminary'")
        .bind(now_ms())
        .bind(pending.id)
        .execute(db.pool())
        .await
        .map_err(ApiError::database)?;
    if pending.kind == "report" {
        let author = pending.author_id.unwrap_or_default();
        let until = now_ms() + state.config.lock_secs as i64 * 1000;
        transition(
            db,
            request.id,
            Change {
                from: &[RequestState::Preliminary],
                held_by: None,
                to: RequestState::Reading,
                by: Some(user.id),
                note: Some(&format!("returned to the author: {}", body.reason)),
                holder: Holder::to(author, until),
            },
        )
        .await?;
    }
    Ok(Json(super::version_by_id(db, pending.id).await?).into_response())
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
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    assign::require_credentialed(db, &user, &request, "amending reports").await?;
    let all = versions(db, id).await?;
    if working(&all).is_some() {
        return Err(ApiError::conflict("a version is already being written or reviewed"));
    }
    let last = current_final(&all).ok_or_else(|| ApiError::conflict("only a final report is amended"))?;
    let (method, findings, conclusion) = match body.kind.as_str() {
        "amendment" => (last.method.clone(), last.findings.clone(), last.conclusion.clone()),
        "addendum" => (String::new(), String::new(), String::new()),
        other => return Err(ApiError::bad_request(format!("kind must be addendum or amendment, found {other:?}"))),
    };
    auth::confirm_password(&state, &user, &body.password, "opening an addendum or amendment").await?;
    // An amended version prints the same key images unless changed; an addendum none.
    let key_images = if body.kind == "amendment" { last.key_images.clone() } else { Vec::new() };
    let draft = Draft {
        kind: &body.kind,
        template: &last.template,
        method: &method,
        findings: &findings,
        conclusion: &conclusion,
        key_images: &key_images,
    };
    let report_id = insert_draft(db, id, user.id, Some(last.id), draft).await?;
    Ok((StatusCode::CREATED, Json(super::version_by_id(db, report_id).await?)).into_response())
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
    let db = state.archive.database();
    let request = visible_request(db, &user, id).await?;
    let all = versions(db, id).await?;
    let report = match q.version {
        Some(v) => all.iter().find(|r| r.version == v && (r.state == "final" || r.state == "superseded")),
        None => current_final(&all),
    }
    .ok_or_else(|| ApiError::not_found("signed report"))?;
    let column = match q.stage.as_deref() {
        None | Some("final") => "pdf_key",
        Some("author") => "author_pdf_key",
        Some(other) => return Err(ApiError::bad_request(format!("stage is final or author, found {other:?}"))),
    };
    let key: Option<String> = sqlx::query_scalar(&format!("SELECT {column} FROM reports WHERE id = ?"))
        .bind(report.id)
        .fetch_one(db.pool())
        .await
        .map_err(ApiError::database)?;
    let key = ObjectKey::new(key.ok_or_else(|| ApiError::not_found("signed report"))?)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let bytes = tokio::fs::read(state.archive.store().path_of(&key))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the signed report cannot be read: {e}")))?;
    if user.has(Role::SiteUser) {
        sqlx::query("INSERT INTO report_downloads (report_id, user_id, at) VALUES (?, ?, ?)")
            .bind(report.id)
            .bind(user.id)
            .bind(now_ms())
            .execute(db.pool())
            .await
            .map_err(ApiError::database)?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    let stage = if column == "author_pdf_key" { "-author" } else { "" };
    let filename = format!("report-{}-v{}{stage}.pdf", request.id, report.version);
    let disposition = if q.inline { "inline" } else { "attachment" };
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&format!("{disposition}; filename=\"{filename}\"")).expect("ascii"));
    Ok((headers, bytes).into_response())
}

/// `GET /api/requests/{id}/report/qr`: the newest final version's
/// verification QR code (SVG), as printed on its form.
pub async fn verification_qr(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let db = state.archive.database();
    visible_request(db, &user, id).await?;
    let all = versions(db, id).await?;
    let token = current_final(&all).and_then(|v| v.verify_token.clone()).ok_or_else(|| ApiError::not_found("signed report"))?;
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
    let db = state.archive.database();
    visible_request(db, &user, id).await?;
    user.require(Role::Admin, "revoking reports")?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("a revocation needs a reason"));
    }
    let changed = sqlx::query(
        "UPDATE reports SET revoked = 1, revoked_reason = ?, updated_at = ? WHERE request_id = ? AND version = ?
           AND state IN ('final', 'superseded') AND revoked = 0",
    )
    .bind(body.reason.trim())
    .bind(now_ms())
    .bind(id)
    .bind(body.version)
    .execute(db.pool())
    .await
    .map_err(ApiError::database)?
    .rows_affected();
    if changed == 0 {
        return Err(ApiError::conflict(format!("version {} is not a signed, unrevoked report of request {id}", body.version)));
    }
    tracing::warn!(request = id, version = body.version, user = %user.username, "signed report revoked");
    let all = versions(db, id).await?;
    Ok(Json(all.into_iter().find(|v| v.version == body.version)).into_response())
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
    let request = visible_request(state.archive.database(), &user, id).await?;
    let finding = super::critical::flag(&state, &user, &request, &body.note).await?;
    Ok((StatusCode::CREATED, Json(finding)).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct CriticalQuery {
    #[serde(default)]
    open: bool,
}

/// `GET /api/critical?open=true`
pub async fn list_critical(State(state): State<AppState>, user: CurrentUser, Query(q): Query<CriticalQuery>) -> Result<Response, ApiError> {
    Ok(Json(super::critical::list(&state, &user, q.open).await?).into_response())
}

/// `POST /api/critical/{id}/acknowledge`
pub async fn acknowledge_critical(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, ApiError> {
    Ok(Json(super::critical::acknowledge(&state, &user, id).await?).into_response())
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
    let db = state.archive.database();
    let row = sqlx::query(
        "SELECT rp.request_id, rp.version, rp.kind, rp.state, rp.revoked, rp.pdf_sha256, a.display_name, rp.author_signed_at,
                v.display_name, rp.reviewer_signed_at, r.patient_name, si.name, rp.revoked_reason, rp.edited_by_reviewer,
                rp.author_pdf_sha256
         FROM reports rp JOIN read_requests r ON r.id = rp.request_id JOIN sites si ON si.id = r.site_id
         LEFT JOIN users a ON a.id = rp.author_id LEFT JOIN users v ON v.id = rp.reviewer_id
         WHERE rp.verify_token = ?",
    )
    .bind(&token)
    .fetch_optional(db.pool())
    .await
    .map_err(ApiError::database)?
    .ok_or_else(|| ApiError::not_found("report"))?;
    let state_text: String = row.get(3);
    let revoked: bool = row.get(4);
    let status = if revoked {
        "revoked"
    } else if state_text == "superseded" {
        "superseded"
    } else if state_text != "final" {
        "not_final"
    } else {
        "valid"
    };
    // Revised by the reviewer: the reporting doctor signed the draft (its
    // own document, whose hash is given), the reviewer this text.
    let edited: bool = row.get(13);
    let (author_role, reviewer_role) = if edited {
        ("报告医师（签署初稿）", "审核医师（修改并签署本版）")
    } else {
        ("报告医师", "审核医师")
    };
    let mut author =
        serde_json::json!({ "role": author_role, "name": row.get::<Option<String>, _>(6), "signed_at": row.get::<Option<i64>, _>(7) });
    if edited {
        author["draft_sha256"] = row.get::<Option<String>, _>(14).into();
    }
    let mut signers = vec![author];
    if let Some(name) = row.get::<Option<String>, _>(8) {
        signers.push(serde_json::json!({ "role": reviewer_role, "name": name, "signed_at": row.get::<Option<i64>, _>(9) }));
    }
    let request_id: i64 = row.get(0);
    let version: i64 = row.get(1);
    let body = serde_json::json!({
        "report_id": format!("R{request_id}-{version}"),
        "version": version,
        "kind": row.get::<String, _>(2),
        "status": status,
        "hospital": row.get::<String, _>(11),
        "patient_initials": initials(&row.get::<Option<String>, _>(10).unwrap_or_default()),
        "signers": signers,
        "document_sha256": row.get::<Option<String>, _>(5),
        "revoked_reason": row.get::<Option<String>, _>(12),
        "edited_by_reviewer": edited,
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
    let verdict = match status {
        "valid" => "✔ 报告有效",
        "superseded" => "⚠ 此版本已被更正报告替代",
        "not_final" => "⏳ 报告尚未审核，未生效",
        _ => "✖ 报告已撤销",
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
