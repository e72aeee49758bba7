//! Reports on read requests: versions, their states, and every change of
//! them — drafts, the reporting doctor's signature, the reviewer's, return
//! to the author, addenda and amendments, revocation.
//!
//! ```text
//! draft ──author signs──► preliminary ──reviewer signs (as is, or revised)──► final ──amendment final──► superseded
//!   ▲                          │
//!   └──── returned (退回修改) ──┘          single-signature site: draft ──author signs──► final
//! ```
//!
//! A request's report is a list of versions. Version 1 is drafted by the
//! request's reader; the reporting doctor (报告医师) signs it and a
//! reviewer (审核医师, a different person) co-signs it. Once final a
//! version never changes: an addendum or amended version is a new version
//! with the same sign-off.
//!
//! Signing is two steps around the caller's cryptography: `prepare_*`
//! checks who may sign what and returns the exact version to sign;
//! `record_*` writes the signature only if that version is still the one
//! stored (`state` and `updated_at` unchanged), together with its request's
//! new state, in one transaction. The PDFs themselves are made by the
//! caller; this module records their keys and hashes.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use telediag_archive::db::now_ms;

use crate::Workflow;
use crate::actor::{Actor, Role};
use crate::error::{Result, WorkflowError};
use crate::requests::{Change, Holder, ReadRequest, RequestState, transition_in};

/// Marks text a template wrote for the doctor to confirm or replace. A
/// report still holding one cannot be signed ([`placeholder_in`]).
pub const TO_CONFIRM: &str = "（请医师确认）";
/// A value a template could not fill.
pub const BLANK: &str = "＿＿";

/// The first template placeholder left in `text`, if any.
pub fn placeholder_in(text: &str) -> Option<&'static str> {
    [TO_CONFIRM, BLANK].into_iter().find(|p| text.contains(p))
}

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// Being written; only its author (the request's holder) sees and edits it.
    Draft,
    /// Signed by the reporting doctor; awaiting the reviewer.
    Preliminary,
    /// Signed by everyone it needs; never changes again.
    Final,
    /// A final version an amendment replaced.
    Superseded,
}

impl ReportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportState::Draft => "draft",
            ReportState::Preliminary => "preliminary",
            ReportState::Final => "final",
            ReportState::Superseded => "superseded",
        }
    }
    pub fn parse(s: &str) -> Option<ReportState> {
        [ReportState::Draft, ReportState::Preliminary, ReportState::Final, ReportState::Superseded].into_iter().find(|st| st.as_str() == s)
    }
    /// Signed by everyone it needed (a site may download it).
    pub fn is_signed(self) -> bool {
        matches!(self, ReportState::Final | ReportState::Superseded)
    }
}

/// What a version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// The request's report (version 1).
    Report,
    /// Adds to the final report without replacing it (补充报告).
    Addendum,
    /// Replaces the final report once final itself (更正报告).
    Amendment,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Report => "report",
            ReportKind::Addendum => "addendum",
            ReportKind::Amendment => "amendment",
        }
    }
    pub fn parse(s: &str) -> Option<ReportKind> {
        [ReportKind::Report, ReportKind::Addendum, ReportKind::Amendment].into_iter().find(|k| k.as_str() == s)
    }
}

/// One version of a request's report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportVersion {
    pub id: i64,
    pub request_id: i64,
    pub version: i64,
    pub kind: ReportKind,
    pub state: ReportState,
    pub template: String,
    pub method: String,
    pub findings: String,
    pub conclusion: String,
    pub critical: bool,
    /// Instances of the study whose previews are printed on the form (at most four).
    pub key_images: Vec<String>,
    pub author_id: Option<i64>,
    pub author_name: Option<String>,
    pub author_signed_at: Option<i64>,
    pub reviewer_id: Option<i64>,
    pub reviewer_name: Option<String>,
    pub reviewer_signed_at: Option<i64>,
    /// The id of the version an addendum or amendment follows.
    pub supersedes: Option<i64>,
    /// That version's number.
    pub supersedes_version: Option<i64>,
    pub pdf_sha256: Option<String>,
    /// Set once signed: the verification page's token.
    pub verify_token: Option<String>,
    /// Withdrawn by an admin (wrong patient, wrong study), with the reason.
    pub revoked: bool,
    pub revoked_reason: Option<String>,
    /// The reviewer revised the text and signed it alone, as its editor.
    pub edited_by_reviewer: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ReportVersion {
    /// The three sections, as compared for a revision.
    fn text(&self) -> (&str, &str, &str) {
        (self.method.trim(), self.findings.trim(), self.conclusion.trim())
    }

    /// Refuses a version whose findings or conclusion are empty, or that
    /// still holds a template's placeholder.
    fn ready_to_sign(&self) -> Result<()> {
        if self.conclusion.trim().is_empty() || self.findings.trim().is_empty() {
            return Err(WorkflowError::invalid("a report is signed with its findings (检查所见) and conclusion (检查结论) written"));
        }
        for (section, text) in [("检查方法", &self.method), ("检查所见", &self.findings), ("检查结论", &self.conclusion)] {
            if let Some(placeholder) = placeholder_in(text) {
                return Err(WorkflowError::invalid(format!(
                    "{section} still holds the template's {placeholder}: confirm or replace it before signing"
                )));
            }
        }
        Ok(())
    }
}

const REPORT_COLUMNS: &str = "rp.id, rp.request_id, rp.version, rp.kind, rp.state, rp.template, rp.method, rp.findings,
    rp.conclusion, rp.critical, rp.author_id, a.display_name, rp.author_signed_at, rp.reviewer_id, v.display_name,
    rp.reviewer_signed_at, rp.supersedes, rp.pdf_sha256, rp.verify_token, rp.created_at, rp.updated_at, rp.key_images,
    rp.revoked, rp.revoked_reason, rp.edited_by_reviewer, (SELECT s.version FROM reports s WHERE s.id = rp.supersedes)";
const REPORT_FROM: &str = "FROM reports rp LEFT JOIN users a ON a.id = rp.author_id LEFT JOIN users v ON v.id = rp.reviewer_id";

fn version_from_row(r: &sqlx::any::AnyRow) -> Result<ReportVersion> {
    let unknown = |column: &str, text: &str| WorkflowError::Unavailable(format!("reports.{column} holds {text:?}, not a known value"));
    let kind: &str = r.get(3);
    let state: &str = r.get(4);
    Ok(ReportVersion {
        id: r.get(0),
        request_id: r.get(1),
        version: r.get(2),
        kind: ReportKind::parse(kind).ok_or_else(|| unknown("kind", kind))?,
        state: ReportState::parse(state).ok_or_else(|| unknown("state", state))?,
        template: r.get(5),
        method: r.get(6),
        findings: r.get(7),
        conclusion: r.get(8),
        critical: r.get::<i64, _>(9) != 0,
        key_images: serde_json::from_str(r.get::<&str, _>(21)).unwrap_or_default(),
        author_id: r.get(10),
        author_name: r.get(11),
        author_signed_at: r.get(12),
        reviewer_id: r.get(13),
        reviewer_name: r.get(14),
        reviewer_signed_at: r.get(15),
        supersedes: r.get(16),
        supersedes_version: r.get(25),
        pdf_sha256: r.get(17),
        verify_token: r.get(18),
        revoked: r.get::<i64, _>(22) != 0,
        revoked_reason: r.get(23),
        edited_by_reviewer: r.get::<i64, _>(24) != 0,
        created_at: r.get(19),
        updated_at: r.get(20),
    })
}

/// The version being worked on (a draft or awaiting review), if any.
pub fn working(versions: &[ReportVersion]) -> Option<&ReportVersion> {
    versions.iter().rev().find(|v| matches!(v.state, ReportState::Draft | ReportState::Preliminary))
}

/// The version a site sees as "the" report: the newest final one.
pub fn current_final(versions: &[ReportVersion]) -> Option<&ReportVersion> {
    versions.iter().rev().find(|v| v.state == ReportState::Final)
}

/// The text and images a new version starts from.
#[derive(Debug, Clone, Default)]
pub struct NewDraft {
    /// The template's id (for the panel's template menu).
    pub template: String,
    pub method: String,
    pub findings: String,
    pub conclusion: String,
    pub key_images: Vec<String>,
}

/// What opening a request's report found or made.
#[derive(Debug, Clone)]
pub enum Opened {
    /// The version already being written or reviewed.
    Existing(ReportVersion),
    /// A first draft, just made.
    Created(ReportVersion),
}

/// An autosave of the draft: the sections and key images given replace
/// the stored ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftEdit {
    pub method: Option<String>,
    pub findings: Option<String>,
    pub conclusion: Option<String>,
    /// SOP Instance UIDs of the study's images to print on the form (at most four).
    pub key_images: Option<Vec<String>>,
    /// The `updated_at` the client last saw: a save over someone else's newer text is refused.
    pub base_updated_at: Option<i64>,
}

/// A signed PDF as stored by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    /// The object key in the store.
    pub key: String,
    pub sha256: String,
    /// The verification page's token printed on it (its QR code).
    pub token: String,
}

/// The reporting doctor's signature, checked and ready: the exact version
/// to sign, and whether it makes the report final at once.
#[derive(Debug, Clone)]
pub struct AuthorSignature {
    pub request: ReadRequest,
    pub draft: ReportVersion,
    /// The site takes one signature: the author's makes it final.
    pub single_signature: bool,
}

/// The reviewer's revision of the text, if any, and the version they read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Revision {
    pub method: Option<String>,
    pub findings: Option<String>,
    pub conclusion: Option<String>,
    /// The `updated_at` of the version the reviewer read: a version changed
    /// since (returned and signed again) is not the one they approve.
    pub base_updated_at: Option<i64>,
}

/// The reviewer's signature, checked and ready.
#[derive(Debug, Clone)]
pub struct ReviewSignature {
    pub request: ReadRequest,
    /// The version awaiting review, as the reporting doctor signed it.
    pub pending: ReportVersion,
    /// How the review ends: co-signing the author's document, or signing
    /// the revised text as its editor.
    pub act: ReviewAct,
}

/// What the reviewer signs.
#[derive(Debug, Clone)]
pub enum ReviewAct {
    /// The text unchanged: a revision added to the reporting doctor's signed document.
    CoSign { author_document: SignedDocument },
    /// The text revised (审核修改): a new document, signed by the reviewer alone.
    Edit { edited: Box<ReportVersion> },
}

/// A version just made final: what the caller files into the study.
#[derive(Debug, Clone)]
pub struct FinalReport {
    pub request: ReadRequest,
    pub version: ReportVersion,
    /// The verification token of the version an amendment replaced.
    pub supersedes_token: Option<String>,
    /// Who verified it (the reviewer, or the author at a single-signature
    /// site) and when, as the DICOM export records it.
    pub verifier: (String, i64),
}

/// What the reporting doctor's signature led to.
#[derive(Debug, Clone)]
pub enum AuthorSigned {
    AwaitsReview(Box<ReportVersion>),
    Final(Box<FinalReport>),
}

/// Which signed document of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The document as finally signed (the one the verification page hashes).
    Final,
    /// The one the reporting doctor signed (before the reviewer's
    /// signature, or the draft a reviewer then revised).
    Author,
}

/// What the public verification page says of a token.
#[derive(Debug, Clone)]
pub struct Verification {
    pub request_id: i64,
    pub version: i64,
    pub kind: ReportKind,
    pub status: VerificationStatus,
    pub hospital: String,
    pub patient_name: Option<String>,
    pub author_name: Option<String>,
    pub author_signed_at: Option<i64>,
    pub reviewer_name: Option<String>,
    pub reviewer_signed_at: Option<i64>,
    pub document_sha256: Option<String>,
    /// The hash of the draft the reporting doctor signed, when the reviewer revised it.
    pub author_document_sha256: Option<String>,
    pub revoked_reason: Option<String>,
    pub edited_by_reviewer: bool,
}

/// Whether a printed report is the one in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    Valid,
    Superseded,
    NotFinal,
    Revoked,
}

/// Writing reports is for readers (radiologists and ECG doctors).
fn require_reader(actor: &Actor) -> Result<()> {
    if actor.is_reader() { Ok(()) } else { Err(WorkflowError::forbidden("writing reports (readers do)")) }
}

/// Who may write the working draft: the request's holder for the report,
/// the author for an addendum or amendment.
fn may_edit(actor: &Actor, request: &ReadRequest, draft: &ReportVersion) -> bool {
    if draft.kind == ReportKind::Report { request.assigned_to == Some(actor.id) } else { draft.author_id == Some(actor.id) }
}

impl Workflow {
    /// Every version of a request's report, oldest first.
    async fn versions(&self, request_id: i64) -> Result<Vec<ReportVersion>> {
        let sql = format!("SELECT {REPORT_COLUMNS} {REPORT_FROM} WHERE rp.request_id = $1 ORDER BY rp.version");
        let rows = sqlx::query(&sql).bind(request_id).fetch_all(self.pool()).await?;
        rows.iter().map(version_from_row).collect()
    }

    async fn version_by_id(&self, id: i64) -> Result<ReportVersion> {
        let sql = format!("SELECT {REPORT_COLUMNS} {REPORT_FROM} WHERE rp.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        version_from_row(&row.ok_or_else(|| WorkflowError::not_found("report"))?)
    }

    /// A request (that `actor` may see) and its report's versions; a site
    /// user sees signed versions only.
    pub async fn report(&self, actor: &Actor, request_id: i64) -> Result<(ReadRequest, Vec<ReportVersion>)> {
        let request = self.request(actor, request_id).await?;
        let mut versions = self.versions(request_id).await?;
        if actor.has(Role::SiteUser) {
            versions.retain(|v| v.state != ReportState::Draft);
        }
        Ok((request, versions))
    }

    /// The holder opens the report: the version being worked on, or a first
    /// draft made by `first_draft` (from a template; an ECG's from its
    /// measurements). Idempotent.
    pub async fn open_report(
        &self,
        actor: &Actor,
        request_id: i64,
        first_draft: impl AsyncFnOnce(&ReadRequest) -> NewDraft,
    ) -> Result<Opened> {
        let request = self.request(actor, request_id).await?;
        require_reader(actor)?;
        let all = self.versions(request_id).await?;
        if let Some(current) = working(&all) {
            if request.assigned_to == Some(actor.id) {
                self.touch(actor, &request).await?;
            }
            return Ok(Opened::Existing(current.clone()));
        }
        if !all.is_empty() {
            return Err(WorkflowError::conflict("the report is final: start an addendum or an amendment"));
        }
        self.touch(actor, &request).await?;
        let draft = first_draft(&request).await;
        let id = self.insert_draft(request_id, actor.id, ReportKind::Report, None, &draft).await?;
        Ok(Opened::Created(self.version_by_id(id).await?))
    }

    /// A new draft version by `author` (replacing `supersedes` once final, for amendments).
    async fn insert_draft(&self, request_id: i64, author: i64, kind: ReportKind, supersedes: Option<i64>, draft: &NewDraft) -> Result<i64> {
        let now = now_ms();
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM reports WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(self.pool())
            .await?;
        sqlx::query_scalar(
            "INSERT INTO reports (request_id, version, kind, state, template, method, findings, conclusion, key_images, author_id,
                supersedes, created_at, updated_at, critical)
             VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10, $11, $12,
                     CAST(EXISTS (SELECT 1 FROM critical_findings WHERE request_id = $13) AS INTEGER)) RETURNING id",
        )
        .bind(request_id)
        .bind(next)
        .bind(kind.as_str())
        .bind(&draft.template)
        .bind(&draft.method)
        .bind(&draft.findings)
        .bind(&draft.conclusion)
        .bind(serde_json::to_string(&draft.key_images).unwrap_or_else(|_| "[]".into()))
        .bind(author)
        .bind(supersedes)
        .bind(now)
        .bind(now)
        // A critical finding flagged before this version existed is on it too.
        .bind(request_id)
        .fetch_one(self.pool())
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => WorkflowError::conflict("another version was started at the same time"),
            other => other.into(),
        })
    }

    /// Checks that every key image is an instance of the request's study.
    async fn check_key_images(&self, request: &ReadRequest, images: &[String]) -> Result<()> {
        if images.len() > 4 {
            return Err(WorkflowError::invalid(format!("at most 4 key images are printed, found {}", images.len())));
        }
        for sop in images {
            let in_study: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies s ON s.id = se.study_ref
                 WHERE i.sop_instance_uid = $1 AND s.study_uid = $2 LIMIT 1",
            )
            .bind(sop)
            .bind(&request.study_uid)
            .fetch_optional(self.pool())
            .await?;
            if in_study.is_none() {
                return Err(WorkflowError::invalid(format!("key image {sop} is not an instance of this request's study")));
            }
        }
        Ok(())
    }

    /// Autosave of the draft by its writer; a save based on an older text
    /// than the stored one is refused.
    pub async fn save_draft(&self, actor: &Actor, request_id: i64, edit: &DraftEdit) -> Result<ReportVersion> {
        let request = self.request(actor, request_id).await?;
        require_reader(actor)?;
        let all = self.versions(request_id).await?;
        let draft = all
            .iter()
            .rev()
            .find(|v| v.state == ReportState::Draft)
            .ok_or_else(|| WorkflowError::conflict("no draft to save: open the report first"))?;
        if !may_edit(actor, &request, draft) {
            return Err(WorkflowError::forbidden("editing a report you do not hold"));
        }
        if draft.kind == ReportKind::Report {
            self.touch(actor, &request).await?;
        }
        if let Some(images) = &edit.key_images {
            self.check_key_images(&request, images).await?;
        }
        let now = now_ms().max(draft.updated_at + 1);
        let changed = sqlx::query(
            "UPDATE reports SET method = COALESCE($1, method), findings = COALESCE($2, findings), conclusion = COALESCE($3, conclusion),
                key_images = COALESCE($4, key_images), updated_at = $5 WHERE id = $6 AND state = 'draft' AND ($7 IS NULL OR updated_at = $8)",
        )
        .bind(&edit.method)
        .bind(&edit.findings)
        .bind(&edit.conclusion)
        .bind(edit.key_images.as_ref().map(|k| serde_json::to_string(k).unwrap_or_else(|_| "[]".into())))
        .bind(now)
        .bind(draft.id)
        .bind(edit.base_updated_at)
        .bind(edit.base_updated_at)
        .execute(self.pool())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(WorkflowError::conflict("the draft changed since you loaded it: reload before saving"));
        }
        self.version_by_id(draft.id).await
    }

    /// Checks that `actor` may sign the request's draft as its reporting
    /// doctor, and returns the version to sign.
    pub async fn prepare_author_signature(&self, actor: &Actor, request_id: i64) -> Result<AuthorSignature> {
        let request = self.request(actor, request_id).await?;
        require_reader(actor)?;
        let all = self.versions(request_id).await?;
        let draft =
            all.iter().rev().find(|v| v.state == ReportState::Draft).ok_or_else(|| WorkflowError::conflict("no draft to sign"))?.clone();
        if !may_edit(actor, &request, &draft) {
            return Err(WorkflowError::forbidden("signing a report you do not hold"));
        }
        self.require_credentialed(actor, &request, "signing reports").await?;
        request.require_one_patient()?;
        draft.ready_to_sign()?;
        let single_signature = sqlx::query_scalar::<_, i64>("SELECT single_signature FROM sites WHERE id = $1")
            .bind(request.site_id)
            .fetch_one(self.pool())
            .await?
            != 0;
        Ok(AuthorSignature { request, draft, single_signature })
    }

    /// Records the reporting doctor's signature of `signing.draft` (their
    /// signed `document`, made at `signed_at`): preliminary, or final at a
    /// single-signature site. The version, and its request's state, change
    /// in one transaction, and only if the draft is still the one signed.
    pub async fn record_author_signature(
        &self,
        actor: &Actor,
        signing: &AuthorSignature,
        document: &SignedDocument,
        signed_at: i64,
    ) -> Result<AuthorSigned> {
        let AuthorSignature { request, draft, single_signature } = signing;
        let mut tx = self.pool().begin().await?;
        if *single_signature {
            let finalised = Finalising { text: draft, base: draft, document, author: Some((actor.id, signed_at)), reviewer: None };
            let supersedes_token = self.finalise_in(&mut tx, actor, request, finalised).await?;
            tx.commit().await?;
            tracing::info!(request = request.id, version = draft.version, "report final with its one signature");
            return Ok(AuthorSigned::Final(Box::new(FinalReport {
                request: self.request(actor, request.id).await?,
                version: self.version_by_id(draft.id).await?,
                supersedes_token,
                verifier: (actor.display_name.clone(), signed_at),
            })));
        }
        let signed = sqlx::query(
            "UPDATE reports SET state = 'preliminary', author_id = $1, author_signed_at = $2, author_pdf_key = $3, author_pdf_sha256 = $4,
               verify_token = $5, updated_at = $6
             WHERE id = $7 AND state = 'draft' AND updated_at = $8",
        )
        .bind(actor.id)
        .bind(signed_at)
        .bind(&document.key)
        .bind(&document.sha256)
        .bind(&document.token)
        .bind(now_ms())
        .bind(draft.id)
        .bind(draft.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if signed == 0 {
            return Err(WorkflowError::conflict("the draft was changed or signed while it was being signed: review it and sign again"));
        }
        if draft.kind == ReportKind::Report {
            let change = Change {
                from: RequestState::HELD,
                held_by: Some(actor.id),
                to: RequestState::Preliminary,
                by: Some(actor.id),
                note: Some("signed by the reporting doctor"),
                holder: Holder::unlock(),
            };
            if !transition_in(&mut tx, request.id, change).await? {
                return Err(WorkflowError::conflict(
                    "the request is no longer yours to sign (its lock lapsed and it moved on); nothing was signed",
                ));
            }
        }
        tx.commit().await?;
        Ok(AuthorSigned::AwaitsReview(Box::new(self.version_by_id(draft.id).await?)))
    }

    /// Checks that `actor` may review the version awaiting review, and
    /// decides from `revision` whether they co-sign it or sign a revised
    /// text as its editor.
    pub async fn prepare_review(&self, actor: &Actor, request_id: i64, revision: Revision) -> Result<ReviewSignature> {
        let request = self.request(actor, request_id).await?;
        actor.require(Role::Reviewer, "co-signing reports")?;
        self.require_credentialed(actor, &request, "co-signing reports").await?;
        request.require_one_patient()?;
        let all = self.versions(request_id).await?;
        let pending = all
            .iter()
            .rev()
            .find(|v| v.state == ReportState::Preliminary)
            .ok_or_else(|| WorkflowError::conflict("no report awaits review"))?
            .clone();
        if pending.author_id == Some(actor.id) {
            return Err(WorkflowError::forbidden("co-signing your own report (the reviewer is another doctor)"));
        }
        if revision.base_updated_at.is_some_and(|base| base != pending.updated_at) {
            return Err(WorkflowError::conflict("the report changed after you read it: read it again before signing"));
        }
        let mut edited = pending.clone();
        for (field, revised) in [
            (&mut edited.method, revision.method),
            (&mut edited.findings, revision.findings),
            (&mut edited.conclusion, revision.conclusion),
        ] {
            if let Some(text) = revised {
                *field = text;
            }
        }
        if edited.text() != pending.text() {
            edited.ready_to_sign()?;
            return Ok(ReviewSignature { request, pending, act: ReviewAct::Edit { edited: Box::new(edited) } });
        }
        let (key, sha256, token): (Option<String>, Option<String>, Option<String>) =
            sqlx::query_as("SELECT author_pdf_key, author_pdf_sha256, verify_token FROM reports WHERE id = $1")
                .bind(pending.id)
                .fetch_one(self.pool())
                .await?;
        let (Some(key), Some(sha256), Some(token)) = (key, sha256, token) else {
            return Err(WorkflowError::conflict(
                "the reporting doctor's signed document is missing (signed before per-signer signatures): return it to its author to sign again",
            ));
        };
        Ok(ReviewSignature { request, pending, act: ReviewAct::CoSign { author_document: SignedDocument { key, sha256, token } } })
    }

    /// Records the reviewer's signature (their `document`, made at
    /// `signed_at`): the version becomes final with the text they signed,
    /// superseding what it amends, and the request moves on — together, and
    /// only if the version is still the one they reviewed.
    pub async fn record_review(
        &self,
        actor: &Actor,
        review: &ReviewSignature,
        document: &SignedDocument,
        signed_at: i64,
    ) -> Result<FinalReport> {
        let text = match &review.act {
            ReviewAct::CoSign { .. } => &review.pending,
            ReviewAct::Edit { edited } => edited,
        };
        let mut tx = self.pool().begin().await?;
        let finalised = Finalising { text, base: &review.pending, document, author: None, reviewer: Some((actor.id, signed_at)) };
        let supersedes_token = self.finalise_in(&mut tx, actor, &review.request, finalised).await?;
        tx.commit().await?;
        tracing::info!(request = review.request.id, version = review.pending.version, "report final and co-signed");
        Ok(FinalReport {
            request: self.request(actor, review.request.id).await?,
            version: self.version_by_id(review.pending.id).await?,
            supersedes_token,
            verifier: (actor.display_name.clone(), signed_at),
        })
    }

    /// Makes `f.base` final in `tx` with `f.text` and `f.document`;
    /// supersedes what it amends and moves the request on. Returns the
    /// superseded version's verification token.
    async fn finalise_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        actor: &Actor,
        request: &ReadRequest,
        f: Finalising<'_>,
    ) -> Result<Option<String>> {
        let now = now_ms();
        let (author_id, author_at) = (f.author.map(|a| a.0), f.author.map(|a| a.1));
        let (reviewer_id, reviewer_at) = (f.reviewer.map(|r| r.0), f.reviewer.map(|r| r.1));
        let author_document = f.author.map(|_| f.document);
        let changed = sqlx::query(
            "UPDATE reports SET state = 'final',
               author_id = COALESCE($1, author_id), author_signed_at = COALESCE($2, author_signed_at),
               author_pdf_key = COALESCE($3, author_pdf_key), author_pdf_sha256 = COALESCE($4, author_pdf_sha256),
               reviewer_id = $5, reviewer_signed_at = $6, pdf_key = $7, pdf_sha256 = $8, verify_token = $9,
               method = $10, findings = $11, conclusion = $12, edited_by_reviewer = CAST((method IS DISTINCT FROM $13 OR findings IS DISTINCT FROM $14 OR conclusion IS DISTINCT FROM $15) AS INTEGER),
               updated_at = $16
             WHERE id = $17 AND state = $18 AND updated_at = $19",
        )
        .bind(author_id)
        .bind(author_at)
        .bind(author_document.map(|d| &d.key))
        .bind(author_document.map(|d| &d.sha256))
        .bind(reviewer_id)
        .bind(reviewer_at)
        .bind(&f.document.key)
        .bind(&f.document.sha256)
        .bind(&f.document.token)
        .bind(&f.text.method)
        .bind(&f.text.findings)
        .bind(&f.text.conclusion)
        .bind(&f.text.method)
        .bind(&f.text.findings)
        .bind(&f.text.conclusion)
        .bind(now)
        .bind(f.base.id)
        // Exactly the version that was signed: a return, a save or another
        // signature meanwhile leaves it unchanged and this one refused.
        .bind(f.base.state.as_str())
        .bind(f.base.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(WorkflowError::conflict(
                "the report changed while it was being signed (returned, saved or signed meanwhile); nothing was made final",
            ));
        }
        let mut supersedes_token = None;
        if f.base.kind == ReportKind::Amendment
            && let Some(previous) = f.base.supersedes
        {
            supersedes_token = sqlx::query_scalar(
                "UPDATE reports SET state = 'superseded', updated_at = $1 WHERE id = $2 AND state = 'final' RETURNING verify_token",
            )
            .bind(now)
            .bind(previous)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
        }
        let (from, to, held_by, note): (&[RequestState], _, _, _) = match f.base.kind {
            ReportKind::Amendment => (&[RequestState::Final, RequestState::Amended], RequestState::Amended, None, "amended version final"),
            ReportKind::Addendum => (std::slice::from_ref(&request.state), request.state, None, "addendum final"),
            // Co-signed: from awaiting review.
            ReportKind::Report if f.reviewer.is_some() => (&[RequestState::Preliminary], RequestState::Final, None, "report final"),
            // Single signature: from the author's own reading.
            ReportKind::Report => (RequestState::HELD, RequestState::Final, Some(actor.id), "report final"),
        };
        let change = Change { from, held_by, to, by: Some(actor.id), note: Some(note), holder: Holder::unlock() };
        if !transition_in(tx, request.id, change).await? {
            return Err(WorkflowError::conflict("the request changed while the report was being made final; nothing was changed"));
        }
        Ok(supersedes_token)
    }

    /// The reviewer sends the version awaiting review back to its author
    /// (退回修改) with what to change: a draft again, and the request back
    /// in the author's hands, in one transaction.
    pub async fn return_to_author(&self, actor: &Actor, request_id: i64, reason: &str) -> Result<ReportVersion> {
        let request = self.request(actor, request_id).await?;
        self.check_return(actor, &request, reason).await?;
        let all = self.versions(request_id).await?;
        let pending = all
            .iter()
            .rev()
            .find(|v| v.state == ReportState::Preliminary)
            .ok_or_else(|| WorkflowError::conflict("no report awaits review"))?;
        let mut tx = self.pool().begin().await?;
        let returned = sqlx::query(
            "UPDATE reports SET state = 'draft', author_signed_at = NULL, updated_at = $1 WHERE id = $2 AND state = 'preliminary' AND updated_at = $3",
        )
        .bind(now_ms().max(pending.updated_at + 1))
        .bind(pending.id)
        .bind(pending.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if returned == 0 {
            return Err(WorkflowError::conflict("the report was signed or returned meanwhile"));
        }
        if pending.kind == ReportKind::Report {
            let author = pending.author_id.ok_or_else(|| WorkflowError::conflict("the report has no author to return it to"))?;
            let note = format!("returned to the author: {}", reason.trim());
            let change = Change {
                from: &[RequestState::Preliminary],
                held_by: None,
                to: RequestState::Reading,
                by: Some(actor.id),
                note: Some(&note),
                holder: Holder::to(author, self.policy.lock_until(now_ms())),
            };
            if !transition_in(&mut tx, request_id, change).await? {
                return Err(WorkflowError::conflict("the request changed meanwhile; nothing was returned"));
            }
        }
        tx.commit().await?;
        self.version_by_id(pending.id).await
    }

    /// Checks that `actor` may return the request's report with `reason`,
    /// before the caller asks for their password.
    pub async fn check_return(&self, actor: &Actor, request: &ReadRequest, reason: &str) -> Result<()> {
        actor.require(Role::Reviewer, "returning reports")?;
        self.require_credentialed(actor, request, "returning reports").await?;
        if reason.trim().is_empty() {
            return Err(WorkflowError::invalid("a returned report says what to change"));
        }
        Ok(())
    }

    /// Checks that `actor` may start a `kind` version after the final
    /// report, before the caller asks for their password.
    pub async fn check_amend(&self, actor: &Actor, request_id: i64, kind: ReportKind) -> Result<(ReadRequest, ReportVersion)> {
        let request = self.request(actor, request_id).await?;
        self.require_credentialed(actor, &request, "amending reports").await?;
        if kind == ReportKind::Report {
            return Err(WorkflowError::invalid("kind must be addendum or amendment, found \"report\""));
        }
        let all = self.versions(request_id).await?;
        if working(&all).is_some() {
            return Err(WorkflowError::conflict("a version is already being written or reviewed"));
        }
        let last = current_final(&all).ok_or_else(|| WorkflowError::conflict("only a final report is amended"))?.clone();
        Ok((request, last))
    }

    /// A new version after the final one: an addendum starts empty, an
    /// amendment from the final text and key images.
    pub async fn amend(&self, actor: &Actor, request_id: i64, kind: ReportKind) -> Result<ReportVersion> {
        let (_, last) = self.check_amend(actor, request_id, kind).await?;
        let draft = match kind {
            ReportKind::Amendment => NewDraft {
                template: last.template.clone(),
                method: last.method.clone(),
                findings: last.findings.clone(),
                conclusion: last.conclusion.clone(),
                key_images: last.key_images.clone(),
            },
            _ => NewDraft { template: last.template.clone(), ..NewDraft::default() },
        };
        let id = self.insert_draft(request_id, actor.id, kind, Some(last.id), &draft).await?;
        self.version_by_id(id).await
    }

    /// The stored key of a signed version's document (`version`, or the
    /// newest final one).
    pub async fn signed_document(
        &self,
        actor: &Actor,
        request_id: i64,
        version: Option<i64>,
        stage: Stage,
    ) -> Result<(ReadRequest, ReportVersion, String)> {
        let (request, all) = self.report(actor, request_id).await?;
        let report = match version {
            Some(v) => all.iter().find(|r| r.version == v && r.state.is_signed()),
            None => current_final(&all),
        }
        .ok_or_else(|| WorkflowError::not_found("signed report"))?
        .clone();
        let column = match stage {
            Stage::Final => "pdf_key",
            Stage::Author => "author_pdf_key",
        };
        let key: Option<String> =
            sqlx::query_scalar(&format!("SELECT {column} FROM reports WHERE id = $1")).bind(report.id).fetch_one(self.pool()).await?;
        let key = key.ok_or_else(|| WorkflowError::not_found("signed report"))?;
        Ok((request, report, key))
    }

    /// Records that `actor` downloaded `report` (the document was read for
    /// them): a site user's first download marks the request printed (已打印).
    pub async fn record_download(&self, actor: &Actor, report: &ReportVersion) -> Result<()> {
        if actor.has(Role::SiteUser) {
            sqlx::query("INSERT INTO report_downloads (report_id, user_id, at) VALUES ($1, $2, $3)")
                .bind(report.id)
                .bind(actor.id)
                .bind(now_ms())
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// An admin withdraws a signed version (wrong patient, wrong study).
    /// The document stays as signed; its verification page says revoked.
    pub async fn revoke(&self, actor: &Actor, request_id: i64, version: i64, reason: &str) -> Result<ReportVersion> {
        self.request(actor, request_id).await?;
        actor.require(Role::Admin, "revoking reports")?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(WorkflowError::invalid("a revocation needs a reason"));
        }
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE reports SET revoked = 1, revoked_reason = $1, updated_at = $2 WHERE request_id = $3 AND version = $4
               AND state IN ('final', 'superseded') AND revoked = 0 RETURNING id",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(request_id)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        let id = id.ok_or_else(|| {
            WorkflowError::conflict(format!("version {version} is not a signed, unrevoked report of request {request_id}"))
        })?;
        tracing::warn!(request = request_id, version, user = %actor.username, "signed report revoked");
        self.version_by_id(id).await
    }

    /// What a verification token says (public: no actor).
    pub async fn verification(&self, token: &str) -> Result<Option<Verification>> {
        let row = sqlx::query(
            "SELECT rp.request_id, rp.version, rp.kind, rp.state, rp.revoked, rp.pdf_sha256, a.display_name, rp.author_signed_at,
                    v.display_name, rp.reviewer_signed_at, r.patient_name, si.name, rp.revoked_reason, rp.edited_by_reviewer,
                    rp.author_pdf_sha256
             FROM reports rp JOIN read_requests r ON r.id = rp.request_id JOIN sites si ON si.id = r.site_id
             LEFT JOIN users a ON a.id = rp.author_id LEFT JOIN users v ON v.id = rp.reviewer_id
             WHERE rp.verify_token = $1",
        )
        .bind(token)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state = ReportState::parse(row.get::<&str, _>(3));
        let status = if row.get::<i64, _>(4) != 0 {
            VerificationStatus::Revoked
        } else {
            match state {
                Some(ReportState::Final) => VerificationStatus::Valid,
                Some(ReportState::Superseded) => VerificationStatus::Superseded,
                _ => VerificationStatus::NotFinal,
            }
        };
        let edited_by_reviewer = row.get::<i64, _>(13) != 0;
        Ok(Some(Verification {
            request_id: row.get(0),
            version: row.get(1),
            kind: ReportKind::parse(row.get::<&str, _>(2)).unwrap_or(ReportKind::Report),
            status,
            hospital: row.get(11),
            patient_name: row.get(10),
            author_name: row.get(6),
            author_signed_at: row.get(7),
            reviewer_name: row.get(8),
            reviewer_signed_at: row.get(9),
            document_sha256: row.get(5),
            author_document_sha256: if edited_by_reviewer { row.get(14) } else { None },
            revoked_reason: row.get(12),
            edited_by_reviewer,
        }))
    }
}

/// A version being made final: the text signed, the version it was read
/// as, the document, and who signed when.
struct Finalising<'a> {
    text: &'a ReportVersion,
    base: &'a ReportVersion,
    document: &'a SignedDocument,
    /// The author's signature, when it is the one that makes it final.
    author: Option<(i64, i64)>,
    reviewer: Option<(i64, i64)>,
}
