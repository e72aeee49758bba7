//! A durable job queue in the index database.
//!
//! Jobs are claimed with a lease: a worker that dies leaves its job to be
//! claimed again when the lease runs out, so a restart resumes unfinished work.
//! Every job therefore runs at least once; claims, completions and failures
//! commit without their own fsync (`Database::redoable`), because one lost in a
//! power cut only means a job runs again.
//! On SQLite the claim is one `UPDATE … RETURNING` (SQLite has one writer, so
//! two claims cannot take the same row); the PostgreSQL form of the same claim
//! selects the row `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use sqlx::Row;

use crate::db::{Database, DbError, now_ms};

/// Job kinds written by the archive.
pub mod kinds {
    /// A study has had no new instance for the stability delay.
    /// Payload: `{"study_uid": "..."}`.
    pub const STUDY_COMPLETE: &str = "study.complete";
    /// A stored object version awaits its thumbnail and preview.
    /// Payload: `{"sop_instance_uid": "...", "object_key": "..."}`.
    pub const INSTANCE_RENDER: &str = "instance.render";
}

/// Marks job `id` done, within a caller's transaction or on a connection.
pub(crate) async fn mark_done(connection: &mut sqlx::SqliteConnection, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, updated_at = ? WHERE id = ?")
        .bind(now_ms())
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    /// How many times it has been claimed, this time included.
    pub attempts: i64,
    /// When it was queued, in milliseconds since the Unix epoch: how long its
    /// result has been awaited.
    pub queued_at_ms: i64,
}

impl Database {
    /// Queues a job to run now.
    pub async fn enqueue_job(&self, kind: &str, payload: &serde_json::Value) -> Result<i64, DbError> {
        let now = now_ms();
        Ok(sqlx::query_scalar("INSERT INTO jobs (kind, payload, run_after, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id")
            .bind(kind)
            .bind(payload.to_string())
            .bind(now)
            .bind(now)
            .bind(now)
            .fetch_one(self.pool())
            .await?)
    }

    /// Claims the oldest ready job of one of `kinds` for `lease`.
    pub async fn claim_job(&self, kinds: &[&str], worker: &str, lease: Duration) -> Result<Option<Job>, DbError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let placeholders = vec!["?"; kinds.len()].join(", ");
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?, updated_at = ?
             WHERE id = (SELECT id FROM jobs WHERE kind IN ({placeholders})
                           AND ((state = 'queued' AND run_after <= ?) OR (state = 'running' AND locked_until < ?))
                         ORDER BY run_after, id LIMIT 1)
             RETURNING id, kind, payload, attempts, created_at"
        );
        let mut query = sqlx::query(&sql).bind(worker).bind(now + lease.as_millis() as i64).bind(now);
        for kind in kinds {
            query = query.bind(*kind);
        }
        // Stepped to the end, not stopped after the first row: an autocommit
        // `UPDATE … RETURNING` commits only when it finishes, and a commit
        // that fails (disk full) must fail the claim rather than hand out a
        // lease that was never written and keep the write lock meanwhile.
        let row = query.bind(now).bind(now).fetch_all(self.redoable()).await?.into_iter().next();
        Ok(row.map(|r| Job {
            id: r.get(0),
            kind: r.get(1),
            payload: serde_json::from_str(r.get::<&str, _>(2)).unwrap_or(serde_json::Value::Null),
            attempts: r.get(3),
            queued_at_ms: r.get(4),
        }))
    }

    /// Marks a claimed job done.
    pub async fn complete_job(&self, id: i64) -> Result<(), DbError> {
        let mut connection = self.redoable().acquire().await?;
        mark_done(&mut connection, id).await
    }

    /// Records a failure; the job runs again after `retry_in`, or is left
    /// failed when `None`.
    pub async fn fail_job(&self, id: i64, error: &str, retry_in: Option<Duration>) -> Result<(), DbError> {
        let now = now_ms();
        let (state, run_after) = match retry_in {
            Some(delay) => ("queued", now + delay.as_millis() as i64),
            None => ("failed", now),
        };
        sqlx::query(
            "UPDATE jobs SET state = ?, run_after = ?, last_error = ?, locked_by = NULL, locked_until = NULL,
               updated_at = ? WHERE id = ?",
        )
        .bind(state)
        .bind(run_after)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(self.redoable())
        .await?;
        Ok(())
    }

    /// Jobs of `kind` by state, for operators and tests.
    pub async fn count_jobs(&self, kind: &str, state: &str) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = ?")
            .bind(kind)
            .bind(state)
            .fetch_one(self.pool())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Durability;

    async fn temp_db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("index.db").display());
        let db = Database::open(&url, Durability::Normal).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn a_job_is_claimed_once_and_reclaimed_after_its_lease() {
        let (_dir, db) = temp_db().await;
        let id = db.enqueue_job("t", &serde_json::json!({"n": 1})).await.unwrap();
        let job = db.claim_job(&["t"], "w1", Duration::from_millis(50)).await.unwrap().unwrap();
        assert_eq!((job.id, job.attempts), (id, 1));
        assert_eq!(job.payload["n"], 1);
        assert!(db.claim_job(&["t"], "w2", Duration::from_secs(5)).await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let again = db.claim_job(&["t"], "w2", Duration::from_secs(5)).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (id, 2));
        db.complete_job(id).await.unwrap();
        assert!(db.claim_job(&["t"], "w3", Duration::from_secs(5)).await.unwrap().is_none());
        assert_eq!(db.count_jobs("t", "done").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn concurrent_claims_never_share_a_job() {
        let (_dir, db) = temp_db().await;
        for n in 0..20 {
            db.enqueue_job("t", &serde_json::json!({"n": n})).await.unwrap();
        }
        let mut handles = Vec::new();
        for w in 0..8 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = db.claim_job(&["t"], &format!("w{w}"), Duration::from_secs(60)).await.unwrap() {
                    mine.push(job.id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(before, 20);
        assert_eq!(all.len(), 20);
    }
}
