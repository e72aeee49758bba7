//! The first draft of a request's report: the template that fits its
//! modality, body part and requested exam; for an ECG, one filled from the
//! pipeline's measurements, printing the tracing unless the doctor removes it.

use telediag_archive::derived::DerivedKind;
use telediag_workflow::ReadRequest;
use telediag_workflow::reports::NewDraft;

use crate::AppState;
use crate::templates;

/// The study's (first) waveform instance.
async fn ecg_instance(state: &AppState, study_uid: &str) -> Option<String> {
    state.archive.database().first_waveform_instance(study_uid).await.ok()?
}

async fn ecg_analysis(state: &AppState, study_uid: &str) -> Option<telediag_ecg::AnalysisSummary> {
    let db = state.archive.database();
    let sop = ecg_instance(state, study_uid).await?;
    let sop = telediag_archive::SopInstanceUid::parse(&sop).ok()?;
    let record = db.derived(&sop, DerivedKind::EcgMeasurements).await.ok()??;
    let bytes = state.archive.read_small_object(&record.object_key?).await.ok()?;
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
    let body_part = state.archive.database().study_body_part(study_uid).await.ok().flatten();
    templates::for_study(request.modality.as_deref(), body_part.as_deref(), request.requested_exam.as_deref())
}

/// The first draft of `request`'s report.
pub async fn first_draft(state: &AppState, request: &ReadRequest) -> NewDraft {
    let template = template_for(state, request).await;
    // An ECG report prints its tracing unless the doctor removes it.
    let key_images: Vec<String> = match (request.modality.as_deref(), request.study_uid.as_deref()) {
        (Some("ECG"), Some(study)) => ecg_instance(state, study).await.into_iter().collect(),
        _ => Vec::new(),
    };
    NewDraft { template: template.id, method: template.method, findings: template.findings, conclusion: template.conclusion, key_images }
}
