//! Study stability: when has a study stopped arriving?
//!
//! DICOM has no "end of study" message. A study with no new instance for the
//! stability delay is marked complete and a [`JobPayload::StudyComplete`] job is
//! queued for the pipeline and the worklist. An instance arriving later
//! reopens the study, and it completes (and is queued) again.

use std::time::Duration;

use sqlx::Row;

use crate::db::{Database, DbError, now_ms};
use crate::jobs::JobPayload;

impl Database {
    /// Marks studies quiet for `quiet` as complete and queues their jobs, in one
    /// transaction. Returns their UIDs.
    pub async fn complete_quiet_studies(&self, quiet: Duration) -> Result<Vec<String>, DbError> {
        let now = now_ms();
        let cutoff = now - quiet.as_millis() as i64;
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query(
            "UPDATE studies SET status = 'complete', completed_at = $1
             WHERE status = 'receiving' AND last_received_at <= $2 RETURNING study_uid",
        )
        .bind(now)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        let uids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        for uid in &uids {
            crate::jobs::enqueue_in(&mut tx, &JobPayload::StudyComplete { study_uid: uid.clone() }, now).await?;
        }
        tx.commit().await?;
        Ok(uids)
    }
}

/// Checks for quiet studies until `stop` resolves. Checks four times per
/// stability delay (at least every 250 ms, at most every 5 s).
pub async fn run_stability_monitor(db: Database, quiet: Duration, stop: impl std::future::Future<Output = ()>) {
    let period = (quiet / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        match db.complete_quiet_studies(quiet).await {
            Ok(uids) => {
                for uid in uids {
                    tracing::info!(study_uid = %uid, "study complete");
                }
            }
            Err(e) => tracing::warn!(error = %e, "study stability check failed"),
        }
    }
}
