//! Making a report final: the signed PDF (rendered, signed by each doctor
//! with their own key, stored durably) and the report filed back into its
//! study as DICOM (Basic Text SR + Encapsulated PDF) through the archive.
//!
//! Signing happens before the state changes: if the font or a key is
//! missing the report stays preliminary and the reviewer is told why.

use sqlx::Row;
use telediag_archive::db::now_ms;
use telediag_archive::person_name::display;
use telediag_archive::store::{BlobStore, ObjectKey};
use telediag_archive::{Database, Origin};
use telediag_reports::dicom::{SignedReport, StudyContext};
use telediag_reports::form::{PrintedSigner, ReportForm, Tracing};
use telediag_reports::{SignatureRequest, SigningIdentity, Timestamp};

use super::ReportVersion;
use crate::AppState;
use crate::error::ApiError;
use crate::requests::ReadRequest;

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
}

/// The user's signing identity; issued by the centre's CA on first use.
pub async fn signing_identity(state: &AppState, user_id: i64, display_name: &str) -> Result<SigningIdentity, ApiError> {
    let db = state.archive.database();
    let row = sqlx::query("SELECT key_der, cert_der, chain_der FROM signing_identities WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await
        .map_err(ApiError::database)?;
    if let Some(row) = row {
        let chain: Option<Vec<u8>> = row.get(2);
        return SigningIdentity::from_der(row.get(0), row.get(1), chain.as_deref().unwrap_or(&[]))
            .map_err(|e| internal("the stored signing identity is unusable", e));
    }
    let identity = state.ca.issue(display_name, &format!("user-{user_id}")).map_err(|e| internal("issuing a certificate", e))?;
    store_identity(db, user_id, &identity, "centre-ca").await?;
    tracing::info!(user_id, fingerprint = %identity.fingerprint(), "signing certificate issued by the centre CA");
    Ok(identity)
}

/// Keeps `identity` as the user's, replacing any earlier one.
pub async fn store_identity(db: &Database, user_id: i64, identity: &SigningIdentity, source: &str) -> Result<(), ApiError> {
    let der = identity.to_der().map_err(|e| internal("encoding the signing identity", e))?;
    sqlx::query(
        "INSERT INTO signing_identities (user_id, cert_der, chain_der, key_der, source, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET cert_der = excluded.cert_der, chain_der = excluded.chain_der,
           key_der = excluded.key_der, source = excluded.source, created_at = excluded.created_at",
    )
    .bind(user_id)
    .bind(der.certificate)
    .bind(der.chain)
    .bind(der.key)
    .bind(source)
    .bind(now_ms())
    .execute(db.pool())
    .await
    .map_err(ApiError::database)?;
    Ok(())
}

/// The study's indexed facts a report prints and the DICOM export repeats,
/// and its description.
pub async fn study_context(db: &Database, study_uid: &str) -> Result<(StudyContext, Option<String>), ApiError> {
    let uid = telediag_archive::StudyUid::parse(study_uid).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (study, _) = db.study_summary(&uid).await?.ok_or_else(|| ApiError::not_found("study"))?;
    Ok((
        StudyContext {
            study_uid: study.study_uid,
            patient_name: study.patient_name.unwrap_or_default(),
            patient_id: study.patient_id,
            patient_sex: study.patient_sex.unwrap_or_default(),
            patient_birth_date: study.patient_birth_date.unwrap_or_default(),
            accession_number: study.accession_number.unwrap_or_default(),
            study_date: study.study_date.unwrap_or_default(),
            study_time: study.study_time.unwrap_or_default(),
            referring_physician: study.referring_physician.unwrap_or_default(),
            institution: study.institution.unwrap_or_default(),
        },
        study.description,
    ))
}

fn dicom_date_shown(date: &str) -> String {
    if date.len() == 8 { format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]) } else { date.to_owned() }
}

fn dicom_time_shown(time: &str) -> String {
    if time.len() >= 4 { format!("{}:{}", &time[..2], &time[2..4]) } else { time.to_owned() }
}

/// Sex as printed: 男 / 女.
pub fn sex_shown(sex: &str) -> String {
    match sex.trim() {
        "M" => "男".into(),
        "F" => "女".into(),
        "O" => "其他".into(),
        other => other.into(),
    }
}

/// A report's title line by modality.
pub fn title_for(modality: Option<&str>) -> String {
    match modality {
        Some("ECG") => "心电图诊断报告单".into(),
        Some("US") => "超声检查报告单".into(),
        Some(m) => format!("{m} 检查报告单"),
        None => "检查报告单".into(),
    }
}

/// The previews of the key images (PNG or JPEG as the pipeline made them);
/// an image without a preview yet is left out rather than delaying the report.
async fn key_image_bytes(state: &AppState, sops: &[String]) -> Vec<Vec<u8>> {
    use telediag_archive::derived::DerivedKind;
    let mut images = Vec::new();
    for sop in sops.iter().take(4) {
        let Ok(uid) = telediag_archive::SopInstanceUid::parse(sop) else { continue };
        let Ok(Some(record)) = state.archive.database().derived(&uid, DerivedKind::Preview).await else { continue };
        let Some(key) = record.object_key.and_then(|k| ObjectKey::new(k).ok()) else { continue };
        if let Ok(bytes) = tokio::fs::read(state.archive.store().path_of(&key)).await {
            images.push(bytes);
        }
    }
    images
}

/// A signed, stored report.
#[derive(Debug, Clone)]
pub struct SignedPdf {
    pub token: String,
    pub key: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// Renders and signs the final PDF of `report` (signed by `author`, and by
/// `reviewer` when two-level), and stores it durably.
pub async fn sign_and_store(
    state: &AppState,
    request: &ReadRequest,
    report: &ReportVersion,
    author: (i64, String, i64),
    reviewer: Option<(i64, String, i64)>,
    supersedes_version: Option<i64>,
) -> Result<SignedPdf, ApiError> {
    let db = state.archive.database();
    let font = state.font.clone().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no CJK font for reports: install fonts-wqy-microhei or set worklist.report_font",
        )
    })?;
    let study_uid = request.study_uid.as_deref().ok_or_else(|| ApiError::conflict("a report needs the study's images"))?;
    let (ctx, description) = study_context(db, study_uid).await?;
    let offset = state.config.utc_offset_minutes;
    let token = crate::auth::new_token()[..32].to_owned();
    let now = Timestamp::new(now_ms(), offset);
    let version_note = match (report.kind.as_str(), supersedes_version) {
        ("amendment", Some(v)) => Some(format!("更正报告（第 {} 版），替代第 {v} 版", report.version)),
        ("addendum", _) => Some(format!("补充报告（第 {} 版）", report.version)),
        _ => None,
    };
    // An ECG's page is printed at its true size on a page of its own (a
    // ruler on the paper measures true intervals); images are key images.
    let images = key_image_bytes(state, &report.key_images).await;
    let (key_images, tracings) = if request.modality.as_deref() == Some("ECG") {
        use telediag_ecg::render::{PAGE_H, PAGE_W, SPEED_MM_PER_S};
        let tracing = |image| Tracing {
            image,
            width_mm: PAGE_W as f32,
            height_mm: PAGE_H as f32,
            caption: format!("12 导联心电图 · {SPEED_MM_PER_S} mm/s · 10 mm/mV"),
        };
        (Vec::new(), images.into_iter().map(tracing).collect())
    } else {
        (images, Vec::new())
    };
    let form = ReportForm {
        centre_name: state.config.centre_name.clone(),
        hospital_name: request.site.clone(),
        title: title_for(request.modality.as_deref()),
        patient_name: request.patient_name.as_deref().map_or_else(|| display(&ctx.patient_name), display),
        sex: sex_shown(request.patient_sex.as_deref().unwrap_or(&ctx.patient_sex)),
        age: request.patient_age.clone().unwrap_or_default(),
        patient_id: request.patient_id.clone().unwrap_or_else(|| ctx.patient_id.clone()),
        department: request.department.clone().unwrap_or_default(),
        inpatient_number: request.inpatient_number.clone().unwrap_or_default(),
        bed_number: request.bed_number.clone().unwrap_or_default(),
        exam_number: request.accession_number.clone().unwrap_or_else(|| ctx.accession_number.clone()),
        requesting_physician: request.requesting_physician.as_deref().map_or_else(|| display(&ctx.referring_physician), display),
        exam_name: request.requested_exam.clone().or(description).unwrap_or_default(),
        exam_date: dicom_date_shown(&ctx.study_date),
        exam_time: dicom_time_shown(&ctx.study_time),
        clinical_history: request.clinical_history.clone().unwrap_or_default(),
        method: report.method.clone(),
        findings: report.findings.clone(),
        conclusion: report.conclusion.clone(),
        critical: report.critical,
        version_note,
        reporting_doctor: Some(PrintedSigner { name: author.1.clone(), signed_at: Timestamp::new(author.2, offset) }),
        reviewing_doctor: reviewer.as_ref().map(|r| PrintedSigner { name: r.1.clone(), signed_at: Timestamp::new(r.2, offset) }),
        report_date: now,
        printed_at: now,
        key_images,
        tracings,
        report_id: format!("R{}-{}", request.id, report.version),
        verify_url: format!("{}/verify/{token}", state.config.public_url.trim_end_matches('/')),
    };
    let author_identity = signing_identity(state, author.0, &author.1).await?;
    let reviewer_identity = match &reviewer {
        Some(r) => Some(signing_identity(state, r.0, &r.1).await?),
        None => None,
    };
    let centre = state.config.centre_name.clone();
    let (author_name, author_at) = (author.1.clone(), author.2);
    let reviewer_part = reviewer.map(|r| (r.1, r.2)).zip(reviewer_identity);
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let pdf = telediag_reports::form::render(&form, &font).map_err(|e| e.to_string())?;
        let mut signed = telediag_reports::sign_pdf(
            &pdf,
            &SignatureRequest {
                identity: &author_identity,
                field_name: "报告医师",
                signer_name: &author_name,
                reason: "报告医师签名",
                location: &centre,
                time: Timestamp::new(author_at, offset),
            },
        )
        .map_err(|e| e.to_string())?;
        if let Some(((name, at), identity)) = reviewer_part {
            signed = telediag_reports::sign_pdf(
                &signed,
                &SignatureRequest {
                    identity: &identity,
                    field_name: "审核医师",
                    signer_name: &name,
                    reason: "审核医师签名",
                    location: &centre,
                    time: Timestamp::new(at, offset),
                },
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(signed)
    })
    .await
    .map_err(|e| internal("signing", e))?
    .map_err(|e| internal("making the signed PDF", e))?;

    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let key = format!("reports/site-{}/request-{}/v{}-{token}.pdf", request.site_id, request.id, report.version);
    let object_key = ObjectKey::new(key.clone()).map_err(|e| internal("report key", e))?;
    let staged = state.archive.scratch_dir().join(format!("report-{token}"));
    let store = state.archive.store().clone();
    let to_write = bytes.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        std::fs::write(&staged, &to_write).map_err(|e| e.to_string())?;
        let published = store.publish(&object_key, &staged).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&staged);
        published
    })
    .await
    .map_err(|e| internal("storing the report", e))?
    .map_err(|e| internal("storing the report", e))?;
    Ok(SignedPdf { token, key, sha256, bytes })
}

/// Files the final report into its study: Basic Text SR and Encapsulated
/// PDF, stored and indexed like received objects. Returns their SOP UIDs.
pub async fn file_into_study(
    state: &AppState,
    request: &ReadRequest,
    report: &ReportVersion,
    pdf: &SignedPdf,
    supersedes_token: Option<String>,
    verifier: (String, i64),
) -> Result<(String, String), ApiError> {
    let db = state.archive.database();
    let study_uid = request.study_uid.as_deref().ok_or_else(|| ApiError::conflict("no study to file the report into"))?;
    let (ctx, _) = study_context(db, study_uid).await?;
    let offset = state.config.utc_offset_minutes;
    let signed = SignedReport {
        token: pdf.token.clone(),
        supersedes_token,
        title: title_for(request.modality.as_deref()),
        method: report.method.clone(),
        findings: report.findings.clone(),
        conclusion: report.conclusion.clone(),
        author: report.author_name.clone().unwrap_or_default(),
        author_signed_at: Timestamp::new(report.author_signed_at.unwrap_or(verifier.1), offset),
        verifier: verifier.0,
        verified_at: Timestamp::new(verifier.1, offset),
        organisation: state.config.centre_name.clone(),
        version: report.version as u32,
    };
    let sr = telediag_reports::dicom::basic_text_sr(&ctx, &signed).map_err(|e| internal("SR", e))?;
    let encapsulated = telediag_reports::dicom::encapsulated_pdf(&ctx, &signed, &pdf.bytes).map_err(|e| internal("Encapsulated PDF", e))?;
    let origin = Origin { site_id: request.site_id, calling_ae: None };
    let mut uids = Vec::new();
    for (name, bytes) in [("sr", sr), ("pdf", encapsulated)] {
        let path = state.archive.scratch_dir().join(format!("report-{}-{name}.dcm", pdf.token));
        tokio::fs::write(&path, &bytes).await.map_err(|e| internal("staging the report object", e))?;
        let stored = state.archive.import_file(&path, &origin).await;
        let _ = tokio::fs::remove_file(&path).await;
        let stored = stored.map_err(|e| internal("filing the report into the study", e))?;
        stored.indexed.wait().await.map_err(|e| internal("indexing the report object", e))?;
        uids.push(stored.sop_instance_uid.to_string());
    }
    Ok((uids[0].clone(), uids[1].clone()))
}
