//! Critical findings (危急值): flagged by a reading doctor, shown to the
//! site at once, and acknowledged by a named user of that site, with the
//! time. Notifying the site's webhook is the caller's; its outcome is
//! recorded here.

use serde::Serialize;
use sqlx::Row;
use telediag_archive::db::now_ms;

use crate::Workflow;
use crate::actor::{Actor, Role, Scope};
use crate::error::{Result, WorkflowError};

/// A critical finding as shown.
#[derive(Debug, Clone, Serialize)]
pub struct CriticalFinding {
    pub id: i64,
    pub request_id: i64,
    pub site_id: i64,
    pub note: String,
    pub flagged_by: String,
    pub flagged_at: i64,
    /// `delivered`, `failed: <reason>`, or null when the site has no webhook.
    pub webhook_status: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
}

/// A finding just flagged, and where its site wants to be told.
#[derive(Debug, Clone)]
pub struct Flagged {
    pub finding: CriticalFinding,
    /// The site's webhook URL, if it set one.
    pub webhook: Option<String>,
}

const COLUMNS: &str =
    "c.id, c.request_id, c.site_id, c.note, f.display_name, c.flagged_at, c.webhook_status, a.display_name, c.acknowledged_at
    FROM critical_findings c JOIN users f ON f.id = c.flagged_by LEFT JOIN users a ON a.id = c.acknowledged_by";

fn from_row(r: &sqlx::any::AnyRow) -> CriticalFinding {
    CriticalFinding {
        id: r.get(0),
        request_id: r.get(1),
        site_id: r.get(2),
        note: r.get(3),
        flagged_by: r.get(4),
        flagged_at: r.get(5),
        webhook_status: r.get(6),
        acknowledged_by: r.get(7),
        acknowledged_at: r.get(8),
    }
}

impl Workflow {
    /// Flags a critical finding on request `request_id`; the working
    /// version carries the flag onto its printed form.
    pub async fn flag_critical(&self, actor: &Actor, request_id: i64, note: &str) -> Result<Flagged> {
        let request = self.request(actor, request_id).await?;
        if !(actor.is_reader() || actor.has(Role::Reviewer)) {
            return Err(WorkflowError::forbidden("flagging critical findings"));
        }
        self.require_credentialed(actor, &request, "flagging critical findings").await?;
        let note = note.trim();
        if note.is_empty() {
            return Err(WorkflowError::invalid("a critical finding needs a note saying what was found"));
        }
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO critical_findings (request_id, site_id, note, flagged_by, flagged_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(request.id)
        .bind(request.site_id)
        .bind(note)
        .bind(actor.id)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE reports SET critical = 1 WHERE request_id = $1 AND state IN ('draft', 'preliminary')")
            .bind(request.id)
            .execute(&mut *tx)
            .await?;
        let webhook: Option<String> =
            sqlx::query_scalar("SELECT critical_webhook FROM sites WHERE id = $1").bind(request.site_id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        tracing::warn!(request = request.id, site_id = request.site_id, critical = id, "critical finding flagged");
        Ok(Flagged { finding: self.critical_finding(actor, id).await?, webhook: webhook.filter(|u| !u.is_empty()) })
    }

    /// Records how telling the site's webhook went.
    pub async fn record_webhook_status(&self, id: i64, status: &str) -> Result<()> {
        sqlx::query("UPDATE critical_findings SET webhook_status = $1 WHERE id = $2").bind(status).bind(id).execute(self.pool()).await?;
        Ok(())
    }

    /// A critical finding, if `actor` may see it.
    pub async fn critical_finding(&self, actor: &Actor, id: i64) -> Result<CriticalFinding> {
        let sql = format!("SELECT {COLUMNS} WHERE c.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        let finding = row.as_ref().map(from_row).ok_or_else(|| WorkflowError::not_found("critical finding"))?;
        if actor.sees_site(finding.site_id)? { Ok(finding) } else { Err(WorkflowError::not_found("critical finding")) }
    }

    /// Critical findings `actor` may see, newest first; `open` keeps the unacknowledged.
    pub async fn critical_findings(&self, actor: &Actor, open: bool) -> Result<Vec<CriticalFinding>> {
        let site = match actor.scope()? {
            Scope::Site(site) => Some(site),
            Scope::AllSites => None,
        };
        let sql =
            format!("SELECT {COLUMNS} WHERE ($1 IS NULL OR c.site_id = $1) AND ($2 = 0 OR c.acknowledged_at IS NULL) ORDER BY c.id DESC");
        let rows = sqlx::query(&sql).bind(site).bind(i64::from(open)).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// A user of the finding's site acknowledges it (once).
    pub async fn acknowledge_critical(&self, actor: &Actor, id: i64) -> Result<CriticalFinding> {
        let finding = self.critical_finding(actor, id).await?;
        if !actor.has(Role::SiteUser) || actor.site_id != Some(finding.site_id) {
            return Err(WorkflowError::forbidden("acknowledging critical findings (a user of the site does)"));
        }
        let changed = sqlx::query(
            "UPDATE critical_findings SET acknowledged_by = $1, acknowledged_at = $2 WHERE id = $3 AND acknowledged_at IS NULL",
        )
        .bind(actor.id)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(WorkflowError::conflict(format!(
                "critical finding {id} was acknowledged already by {}",
                finding.acknowledged_by.unwrap_or_default()
            )));
        }
        tracing::info!(critical = id, user = %actor.username, "critical finding acknowledged");
        self.critical_finding(actor, id).await
    }
}
