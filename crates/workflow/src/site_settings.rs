//! A site's reading policy: how its requests reach readers (pool or
//! automatic assignment), whether one signature suffices, and where its
//! critical findings are announced. Kept as columns of `sites` (migration
//! 0003); this module is the only code that reads or writes them.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::{Result, WorkflowError};
use crate::{AssignmentMode, Workflow};

/// One site's reading policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteSettings {
    pub site_id: i64,
    pub assignment_mode: AssignmentMode,
    pub single_signature: bool,
    pub critical_webhook: Option<String>,
}

/// A change to a site's reading policy: what is `None` stays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettingsChange {
    pub assignment_mode: Option<AssignmentMode>,
    pub single_signature: Option<bool>,
    /// An `http://` URL, or "" to remove it.
    pub critical_webhook: Option<String>,
}

impl Workflow {
    /// Every site's reading policy.
    pub async fn site_settings(&self) -> Result<Vec<SiteSettings>> {
        let rows = sqlx::query("SELECT id, assignment_mode, single_signature, critical_webhook FROM sites ORDER BY id")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let mode: String = r.get(1);
                Ok(SiteSettings {
                    site_id: r.get(0),
                    assignment_mode: AssignmentMode::parse(&mode).ok_or_else(|| {
                        WorkflowError::Unavailable(format!("site {} has an unknown assignment mode {mode:?}", r.get::<i64, _>(0)))
                    })?,
                    single_signature: r.get::<i64, _>(2) != 0,
                    critical_webhook: r.get(3),
                })
            })
            .collect()
    }

    /// Changes site `site_id`'s reading policy.
    pub async fn change_site_settings(&self, site_id: i64, change: &SiteSettingsChange) -> Result<()> {
        if let Some(url) = change.critical_webhook.as_deref()
            && !url.is_empty()
            && !url.starts_with("http://")
        {
            return Err(WorkflowError::invalid(format!("critical_webhook must be an http:// URL, found {url:?}")));
        }
        let changed = sqlx::query(
            "UPDATE sites SET assignment_mode = COALESCE($1, assignment_mode), single_signature = COALESCE($2, single_signature),
                critical_webhook = CASE WHEN $3 = 1 THEN NULLIF($4, '') ELSE critical_webhook END WHERE id = $5",
        )
        .bind(change.assignment_mode.map(|m| m.as_str()))
        .bind(change.single_signature.map(i64::from))
        .bind(i64::from(change.critical_webhook.is_some()))
        .bind(&change.critical_webhook)
        .bind(site_id)
        .execute(self.db.pool())
        .await?;
        if changed.rows_affected() == 0 {
            return Err(WorkflowError::not_found("site"));
        }
        Ok(())
    }
}
