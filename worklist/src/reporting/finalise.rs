//! Making a report final: the signed PDF (rendered, signed by each doctor
//! with their own key, stored durably) and the report filed back into its
//! study as DICOM (Basic Text SR + Encapsulated PDF) through the archive.
//!
//! Signing happens before the state changes: if the font or a key is
//! missing the report stays preliminary and the reviewer is told why.

use telediag_archive::db::now_ms;
use telediag_archive::person_name::display;
use telediag_archive::store::ObjectKey;
use telediag_archive::{Database, Origin};
use telediag_reports::dicom::{SignedReport, StudyContext};
use telediag_reports::form::{PrintedSigner, ReportForm, Tracing};
use telediag_reports::{ReportFont, SignatureRequest, SigningIdentity, Timestamp};

use telediag_workflow::ReadRequest;
use telediag_workflow::reports::{ReportKind, ReportVersion, SignedDocument};

use crate::AppState;
use crate::error::ApiError;

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
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
        let Some(key) = record.object_key else { continue };
        if let Ok(bytes) = state.archive.read_small_object(&key).await {
            images.push(bytes);
        }
    }
    images
}

/// A signed, stored report.
#[derive(Debug, Clone)]
pub struct SignedPdf {
    /// The verification page's token, printed on the form as its QR code.
    pub token: String,
    pub key: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

impl SignedPdf {
    /// What the workflow records of it.
    pub fn document(&self) -> SignedDocument {
        SignedDocument { key: self.key.clone(), sha256: self.sha256.clone(), token: self.token.clone() }
    }
}

/// A doctor signing now, with the key they unlocked with their PIN.
pub struct Signer {
    pub user_id: i64,
    pub name: String,
    pub at: i64,
    pub identity: SigningIdentity,
}

/// Who the form prints as having written and reviewed it.
struct Printed {
    author: PrintedSigner,
    reviewer: Option<PrintedSigner>,
    /// Said under the title, e.g. that the reviewer revised the text.
    note: Option<String>,
}

fn no_font() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "no CJK font for reports: install fonts-wqy-microhei or set worklist.report_font",
    )
}

/// The form of `report` with `printed` signers and the verification `token`.
async fn form_for(
    state: &AppState,
    request: &ReadRequest,
    report: &ReportVersion,
    printed: Printed,
    token: &str,
) -> Result<ReportForm, ApiError> {
    let db = state.archive.database();
    let study_uid = request.study_uid.as_deref().ok_or_else(|| ApiError::conflict("a report needs the study's images"))?;
    let (ctx, description) = study_context(db, study_uid).await?;
    let offset = state.config.utc_offset_minutes;
    let now = Timestamp::new(now_ms(), offset);
    let version_note = match (report.kind, report.supersedes_version) {
        (ReportKind::Amendment, Some(v)) => Some(format!("更正报告（第 {} 版），替代第 {v} 版", report.version)),
        (ReportKind::Addendum, _) => Some(format!("补充报告（第 {} 版）", report.version)),
        _ => None,
    };
    let version_note = match (version_note, printed.note) {
        (Some(a), Some(b)) => Some(format!("{a}；{b}")),
        (a, b) => a.or(b),
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
    Ok(ReportForm {
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
        reporting_doctor: Some(printed.author),
        reviewing_doctor: printed.reviewer,
        report_date: now,
        printed_at: now,
        key_images,
        tracings,
        report_id: format!("R{}-{}", request.id, report.version),
        verify_url: format!("{}/verify/{token}", state.config.public_url.trim_end_matches('/')),
    })
}

/// One signature to apply, owned so that it can move to a blocking thread.
struct Signing {
    identity: SigningIdentity,
    field: &'static str,
    name: String,
    reason: &'static str,
    location: String,
    time: Timestamp,
    stamp: Option<telediag_reports::form::SignatureStamp>,
    timestamper: std::sync::Arc<dyn telediag_reports::Timestamper>,
    /// Certificates and the CRL embedded after the signature (B-LT).
    validation: crate::signing::ValidationData,
}

impl Signing {
    async fn new(state: &AppState, signer: &Signer, field: &'static str, reason: &'static str) -> Result<Signing, ApiError> {
        Ok(Signing {
            identity: signer.identity.clone(),
            field,
            name: signer.name.clone(),
            reason,
            location: state.config.centre_name.clone(),
            time: Timestamp::new(signer.at, state.config.utc_offset_minutes),
            stamp: None,
            timestamper: state.timestamper.clone(),
            validation: crate::signing::validation_data(state, &signer.identity).await?,
        })
    }

    /// Signs `pdf` (PAdES B-T: timestamped) and appends the validation data
    /// a verifier needs offline (B-LT).
    fn apply(&self, pdf: &[u8]) -> Result<Vec<u8>, String> {
        let request = SignatureRequest {
            identity: &self.identity,
            field_name: self.field,
            signer_name: &self.name,
            reason: self.reason,
            location: &self.location,
            time: self.time,
            stamp: self.stamp.as_ref(),
            timestamper: Some(self.timestamper.as_ref()),
        };
        let signed = telediag_reports::sign_pdf(pdf, &request).map_err(|e| e.to_string())?;
        let crl = self.validation.crl()?;
        telediag_reports::add_validation_data(&signed, &self.validation.certificates, &[crl]).map_err(|e| e.to_string())
    }
}

/// Renders `form` and applies `signing`, off the async workers (tens of
/// milliseconds of CPU).
async fn render_and_sign(form: ReportForm, font: ReportFont, signing: Signing) -> Result<Vec<u8>, ApiError> {
    tokio::task::spawn_blocking(move || {
        let pdf = telediag_reports::form::render(&form, &font).map_err(|e| e.to_string())?;
        signing.apply(&pdf)
    })
    .await
    .map_err(|e| internal("signing", e))?
    .map_err(|e| internal("making the signed PDF", e))
}

/// The reporting doctor (报告医师) signs the form of `report` as they see
/// it: the reviewer's slot is left empty for the reviewer's own revision
/// (a single-signature site has none). Stored; its token is the version's
/// verification token from now on.
pub async fn author_signs(state: &AppState, request: &ReadRequest, report: &ReportVersion, author: &Signer) -> Result<SignedPdf, ApiError> {
    let font = state.font.clone().ok_or_else(no_font)?;
    let token = crate::auth::new_token()[..32].to_owned();
    let offset = state.config.utc_offset_minutes;
    let printed = Printed {
        author: PrintedSigner { name: author.name.clone(), signed_at: Timestamp::new(author.at, offset) },
        reviewer: None,
        note: None,
    };
    let form = form_for(state, request, report, printed, &token).await?;
    let bytes = render_and_sign(form, font, Signing::new(state, author, "报告医师", "报告医师签名").await?).await?;
    store(state, request, report, &token, "author", bytes).await
}

/// The reviewer (审核医师) co-signs the document the reporting doctor
/// signed, unchanged: their signature is a revision added to it, their
/// name and time drawn in the form's reviewer slot by its appearance.
pub async fn reviewer_cosigns(
    state: &AppState,
    request: &ReadRequest,
    report: &ReportVersion,
    author_pdf: SignedPdf,
    reviewer: &Signer,
) -> Result<SignedPdf, ApiError> {
    let font = state.font.clone().ok_or_else(no_font)?;
    let shown = PrintedSigner { name: reviewer.name.clone(), signed_at: Timestamp::new(reviewer.at, state.config.utc_offset_minutes) };
    let signing = Signing {
        stamp: Some(telediag_reports::form::reviewer_stamp(&font, &shown)),
        ..Signing::new(state, reviewer, "审核医师", "审核医师签名").await?
    };
    let signed = author_pdf.bytes;
    let bytes = tokio::task::spawn_blocking(move || signing.apply(&signed))
        .await
        .map_err(|e| internal("signing", e))?
        .map_err(|e| internal("co-signing the PDF", e))?;
    store(state, request, report, &author_pdf.token, "final", bytes).await
}

/// The reviewer revised the text (审核修改) and signs it as its editor:
/// a new document, signed by them alone, that prints the reporting doctor
/// as the author of the draft they signed (kept; see the verification page)
/// and the reviewer as the one who revised and signed this text.
pub async fn editor_signs(
    state: &AppState,
    request: &ReadRequest,
    edited: &ReportVersion,
    author: (&str, i64),
    reviewer: &Signer,
) -> Result<SignedPdf, ApiError> {
    let font = state.font.clone().ok_or_else(no_font)?;
    let token = crate::auth::new_token()[..32].to_owned();
    let offset = state.config.utc_offset_minutes;
    let printed = Printed {
        author: PrintedSigner { name: format!("{}（初稿）", author.0), signed_at: Timestamp::new(author.1, offset) },
        reviewer: Some(PrintedSigner { name: format!("{}（修改）", reviewer.name), signed_at: Timestamp::new(reviewer.at, offset) }),
        note: Some(format!("本版由审核医师{}修改并签名；报告医师签署的初稿见核验页", reviewer.name)),
    };
    let form = form_for(state, request, edited, printed, &token).await?;
    let bytes = render_and_sign(form, font, Signing::new(state, reviewer, "审核医师", "审核医师修改并签名").await?).await?;
    store(state, request, edited, &token, "edited", bytes).await
}

/// Keeps a signed PDF durably in the store.
async fn store(
    state: &AppState,
    request: &ReadRequest,
    report: &ReportVersion,
    token: &str,
    stage: &str,
    bytes: Vec<u8>,
) -> Result<SignedPdf, ApiError> {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let key = format!("reports/site-{}/request-{}/v{}-{stage}-{token}.pdf", request.site_id, request.id, report.version);
    let object_key = ObjectKey::new(key.clone()).map_err(|e| internal("report key", e))?;
    state.archive.keep(&object_key, bytes.clone()).await.map_err(|e| internal("storing the report", e))?;
    Ok(SignedPdf { token: token.to_owned(), key, sha256, bytes })
}

/// Reads back a stored signed PDF, checking it is the one recorded.
pub async fn load(state: &AppState, document: &SignedDocument) -> Result<SignedPdf, ApiError> {
    use sha2::Digest;
    let SignedDocument { key, sha256, token } = document;
    let bytes = state
        .archive
        .read_small_object(key)
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("the signed report cannot be read: {e}")))?;
    let found = hex::encode(sha2::Sha256::digest(&bytes));
    if found != *sha256 {
        return Err(internal("the stored signed report", format!("expected SHA-256 {sha256}, found {found}")));
    }
    Ok(SignedPdf { token: token.clone(), key: key.clone(), sha256: found, bytes })
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
        let stored = state
            .archive
            .import_bytes(bytes, &origin)
            .await
            .map_err(|e| internal(&format!("filing the report's {name} into the study"), e))?;
        stored.indexed.wait().await.map_err(|e| internal("indexing the report object", e))?;
        uids.push(stored.sop_instance_uid.to_string());
    }
    Ok((uids[0].clone(), uids[1].clone()))
}
