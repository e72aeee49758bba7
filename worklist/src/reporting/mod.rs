//! Reports on read requests: drafts from templates, autosave, two-level
//! sign-off, addenda and amendments.
//!
//! A request's report is a list of versions. Version 1 is drafted by the
//! request's reader; the reporting doctor (报告医师) signs it — preliminary
//! — and a reviewer (审核医师, a different person) co-signs it — final. At
//! a single-signature site the first signature makes it final. Once final,
//! a report never changes: an addendum or an amended version is a new
//! version with the same sign-off; a final amendment marks the version it
//! replaces superseded. [`finalise`] makes the signed PDF and files it into
//! the study; [`critical`] handles critical findings.

pub mod critical;
pub mod finalise;
pub mod routes;

use serde::Serialize;
use sqlx::Row;
use telediag_archive::Database;
use telediag_archive::db::now_ms;

use crate::error::ApiError;

/// One version of a request's report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportVersion {
    pub id: i64,
    pub request_id: i64,
    pub version: i64,
    /// `report`, `addendum` or `amendment`.
    pub kind: String,
    /// `draft`, `preliminary`, `final` or `superseded`.
    pub state: String,
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
    pub supersedes: Option<i64>,
    pub pdf_sha256: Option<String>,
    /// Set once final: the verification page's token.
    pub verify_token: Option<String>,
    /// Withdrawn by an admin (wrong patient, wrong study), with the reason.
    pub revoked: bool,
    pub revoked_reason: Option<String>,
    /// The reviewer revised the text and signed it alone, as its editor.
    pub edited_by_reviewer: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const REPORT_COLUMNS: &str = "rp.id, rp.request_id, rp.version, rp.kind, rp.state, rp.template, rp.method, rp.findings,
    rp.conclusion, rp.critical, rp.author_id, a.display_name, rp.author_signed_at, rp.reviewer_id, v.display_name,
    rp.reviewer_signed_at, rp.supersedes, rp.pdf_sha256, rp.verify_token, rp.created_at, rp.updated_at, rp.key_images,
    rp.revoked, rp.revoked_reason, rp.edited_by_reviewer";
const REPORT_FROM: &str = "FROM reports rp LEFT JOIN users a ON a.id = rp.author_id LEFT JOIN users v ON v.id = rp.reviewer_id";

fn version_from_row(r: &sqlx::sqlite::SqliteRow) -> ReportVersion {
    ReportVersion {
        id: r.get(0),
        request_id: r.get(1),
        version: r.get(2),
        kind: r.get(3),
        state: r.get(4),
        template: r.get(5),
        method: r.get(6),
        findings: r.get(7),
        conclusion: r.get(8),
        critical: r.get(9),
        key_images: serde_json::from_str(r.get::<&str, _>(21)).unwrap_or_default(),
        author_id: r.get(10),
        author_name: r.get(11),
        author_signed_at: r.get(12),
        reviewer_id: r.get(13),
        reviewer_name: r.get(14),
        reviewer_signed_at: r.get(15),
        supersedes: r.get(16),
        pdf_sha256: r.get(17),
        verify_token: r.get(18),
        revoked: r.get(22),
        revoked_reason: r.get(23),
        edited_by_reviewer: r.get(24),
        created_at: r.get(19),
        updated_at: r.get(20),
    }
}

/// Every version of a request's report, oldest first.
pub async fn versions(db: &Database, request_id: i64) -> Result<Vec<ReportVersion>, ApiError> {
    let sql = format!("SELECT {REPORT_COLUMNS} {REPORT_FROM} WHERE rp.request_id = ? ORDER BY rp.version");
    let rows = sqlx::query(&sql).bind(request_id).fetch_all(db.pool()).await.map_err(ApiError::database)?;
    Ok(rows.iter().map(version_from_row).collect())
}

pub async fn version_by_id(db: &Database, id: i64) -> Result<Option<ReportVersion>, ApiError> {
    let sql = format!("SELECT {REPORT_COLUMNS} {REPORT_FROM} WHERE rp.id = ?");
    Ok(sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await.map_err(ApiError::database)?.as_ref().map(version_from_row))
}

/// The version being worked on (a draft or awaiting review), if any.
pub fn working(versions: &[ReportVersion]) -> Option<&ReportVersion> {
    versions.iter().rev().find(|v| v.state == "draft" || v.state == "preliminary")
}

/// The version a site sees as "the" report: the newest final one.
pub fn current_final(versions: &[ReportVersion]) -> Option<&ReportVersion> {
    versions.iter().rev().find(|v| v.state == "final")
}

/// What a new version starts from.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// `report`, `addendum` or `amendment`.
    pub kind: &'a str,
    pub template: &'a str,
    pub method: &'a str,
    pub findings: &'a str,
    pub conclusion: &'a str,
    pub key_images: &'a [String],
}

/// A new draft version by `author` (replacing `supersedes` once final, for amendments).
pub async fn insert_draft(db: &Database, request_id: i64, author: i64, supersedes: Option<i64>, draft: Draft<'_>) -> Result<i64, ApiError> {
    let now = now_ms();
    let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM reports WHERE request_id = ?")
        .bind(request_id)
        .fetch_one(db.pool())
        .await
        .map_err(ApiError::database)?;
    sqlx::query_scalar(
        "INSERT INTO reports (request_id, version, kind, state, template, method, findings, conclusion, key_images, author_id,
            supersedes, created_at, updated_at, critical)
         VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, ?,
                 EXISTS (SELECT 1 FROM critical_findings WHERE request_id = ?)) RETURNING id",
    )
    .bind(request_id)
    .bind(next)
    .bind(draft.kind)
    .bind(draft.template)
    .bind(draft.method)
    .bind(draft.findings)
    .bind(draft.conclusion)
    .bind(serde_json::to_string(draft.key_images).unwrap_or_else(|_| "[]".into()))
    .bind(author)
    .bind(supersedes)
    .bind(now)
    .bind(now)
    // A critical finding flagged before this version existed is on it too.
    .bind(request_id)
    .fetch_one(db.pool())
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => ApiError::conflict("another version was started at the same time"),
        other => ApiError::database(other),
    })
}
