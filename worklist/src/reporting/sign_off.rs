//! A signature from request to record: the workflow checks who may sign
//! which version (`prepare_*`), the signer's PIN opens their key, the PDF
//! they were shown is signed and stored ([`finalise`]), and the workflow
//! records it only if the version is still the one signed (`record_*`).
//! A final version is then filed into its study.

use telediag_archive::db::now_ms;
use telediag_workflow::Actor;
use telediag_workflow::reports::{AuthorSigned, FinalReport, ReportVersion, ReviewAct, Revision};

use super::finalise::{self, SignedPdf, Signer};
use crate::AppState;
use crate::error::ApiError;

/// What a signature led to.
pub enum SignOff {
    /// Preliminary: the reviewer signs next.
    AwaitsReview(ReportVersion),
    /// Final, with where it was filed into the study (or why it was not).
    Final { report: ReportVersion, filed_into_study: serde_json::Value },
}

/// The signer now, their key opened by `pin` or by this session's unlock.
async fn signer(state: &AppState, actor: &Actor, session: &str, pin: Option<&str>, at: i64) -> Result<Signer, ApiError> {
    let identity = crate::signing::identity_for_signing(state, actor, session, pin).await?;
    Ok(Signer { user_id: actor.id, name: actor.display_name.clone(), at, identity })
}

/// The reporting doctor signs, with their own key, the document they see.
pub async fn sign(state: &AppState, actor: &Actor, session: &str, request_id: i64, pin: Option<&str>) -> Result<SignOff, ApiError> {
    let signing = state.workflow.prepare_author_signature(actor, request_id).await?;
    let now = now_ms();
    let author = signer(state, actor, session, pin, now).await?;
    let pdf = finalise::author_signs(state, &signing.request, &signing.draft, &author).await?;
    match state.workflow.record_author_signature(actor, &signing, &pdf.document(), now).await? {
        AuthorSigned::AwaitsReview(version) => Ok(SignOff::AwaitsReview(*version)),
        AuthorSigned::Final(report) => Ok(file(state, *report, &pdf).await),
    }
}

/// The reviewer signs: their signature added to the document the reporting
/// doctor signed, or, having revised the text, a new document signed by
/// them alone as its editor.
pub async fn review(
    state: &AppState,
    actor: &Actor,
    session: &str,
    request_id: i64,
    revision: Revision,
    pin: Option<&str>,
) -> Result<SignOff, ApiError> {
    let review = state.workflow.prepare_review(actor, request_id, revision).await?;
    let now = now_ms();
    let reviewer = signer(state, actor, session, pin, now).await?;
    let pdf = match &review.act {
        ReviewAct::Edit { edited } => {
            let pending = &review.pending;
            let author = (pending.author_name.as_deref().unwrap_or_default(), pending.author_signed_at.unwrap_or(now));
            finalise::editor_signs(state, &review.request, edited, author, &reviewer).await?
        }
        ReviewAct::CoSign { author_document } => {
            let author_pdf = finalise::load(state, author_document).await?;
            finalise::reviewer_cosigns(state, &review.request, &review.pending, author_pdf, &reviewer).await?
        }
    };
    let report = state.workflow.record_review(actor, &review, &pdf.document(), now).await?;
    Ok(file(state, report, &pdf).await)
}

/// Files a final version into its study (Basic Text SR + Encapsulated
/// PDF). A failure is logged and reported; the report stays final.
async fn file(state: &AppState, report: FinalReport, pdf: &SignedPdf) -> SignOff {
    let FinalReport { request, version, supersedes_token, verifier } = report;
    let filed = finalise::file_into_study(state, &request, &version, pdf, supersedes_token, verifier).await;
    let filed_into_study = match filed {
        Ok((sr, doc)) => serde_json::json!({ "sr_sop_instance_uid": sr, "pdf_sop_instance_uid": doc }),
        Err(e) => {
            tracing::error!(request = request.id, error = %e.reason, "the final report could not be filed into its study");
            serde_json::json!({ "error": e.reason })
        }
    };
    SignOff::Final { report: version, filed_into_study }
}
