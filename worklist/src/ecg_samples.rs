//! `GET /api/instances/{uid}/ecg-samples`: a stored ECG's leads as the
//! browser draws them. The web application draws the tracing itself, on a
//! millimetre grid at the paper speed and gain the doctor chooses, with
//! calipers that snap to samples; for that it needs the samples, not a
//! picture. They are read from the archived DICOM waveform by the same
//! reader the analysis uses, so what the doctor measures on screen is what
//! the centre measured.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use telediag_archive::SopInstanceUid;

use crate::AppState;
use crate::auth::{CurrentUser, Scope};
use crate::error::ApiError;

/// The largest stored ECG read whole into memory: a 24-hour, 12-lead Holter
/// at 1 kHz in 16 bits is about 2 GB, a resting ECG some hundred KB.
const MAX_ECG_OBJECT: i64 = 64 * 1024 * 1024;

#[derive(Serialize)]
struct Samples {
    sampling_rate_hz: f64,
    /// Samples per lead (every lead has as many).
    samples_per_lead: usize,
    acquired: Option<String>,
    format: &'static str,
    /// The cart's format when the stored ECG is the centre's conversion.
    received_as: Option<&'static str>,
    leads: Vec<LeadSamples>,
    /// What the reader noticed (low sampling rate, leads derived, …).
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct LeadSamples {
    label: String,
    /// Computed from other leads (III, aVR, aVL, aVF on 8-lead carts).
    derived: bool,
    /// Microvolts, rounded to whole µV (carts store steps of 2.5–5 µV).
    microvolts: Vec<i32>,
}

pub async fn ecg_samples(State(state): State<AppState>, user: CurrentUser, Path(uid): Path<String>) -> Result<Response, ApiError> {
    let sop = SopInstanceUid::parse(&uid).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let stored = state.archive.database().instance_object(&sop).await?.ok_or_else(|| ApiError::not_found("instance"))?;
    if let Scope::Site(site) = user.scope()?
        && site != stored.site_id
    {
        return Err(ApiError::not_found("instance"));
    }
    if stored.size_bytes > MAX_ECG_OBJECT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the object is {} bytes; tracings are drawn for ECGs of at most {MAX_ECG_OBJECT} bytes", stored.size_bytes),
        ));
    }
    let archive = state.archive.clone();
    let record = tokio::task::spawn_blocking(move || -> Result<telediag_ecg::EcgRecord, ApiError> {
        let mut reader = archive
            .read_object(&stored.object_key)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the stored ECG cannot be read: {e}")))?;
        let mut bytes = Vec::with_capacity(stored.size_bytes.max(0) as usize);
        std::io::Read::read_to_end(&mut reader, &mut bytes)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the stored ECG cannot be read: {e}")))?;
        telediag_ecg::read_bytes(&bytes).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("not a readable ECG: {e}")))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the ECG failed: {e}")))??;
    tracing::info!(user = %user.username, sop_instance_uid = %sop, "ECG samples read");
    let samples = Samples {
        sampling_rate_hz: record.sampling_rate_hz,
        samples_per_lead: record.len(),
        acquired: record.acquired.clone(),
        format: record.format.name(),
        received_as: record.received_as.map(|f| f.name()),
        leads: record
            .leads
            .iter()
            .map(|l| LeadSamples {
                label: l.label.clone(),
                derived: l.derived,
                microvolts: l.samples_uv.iter().map(|v| v.round() as i32).collect(),
            })
            .collect(),
        warnings: record.warnings,
    };
    Ok(([(header::CACHE_CONTROL, "private, max-age=3600")], Json(samples)).into_response())
}
