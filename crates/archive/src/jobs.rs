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

use crate::db::{Database, DbError, Engine, now_ms};

/// What a job is for, and what it needs: the archive's queue owns the
/// contract, so every producer and consumer agrees on it at compile time.
/// Stored as the `kind` column and the fields as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum JobPayload {
    /// A study has had no new instance for the stability delay.
    StudyComplete { study_uid: String },
    /// A stored object version awaits its thumbnail and preview.
    InstanceRender { sop_instance_uid: String, object_key: String },
}

/// A job's kind, as the `kind` column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    StudyComplete,
    InstanceRender,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::StudyComplete => "study.complete",
            JobKind::InstanceRender => "instance.render",
        }
    }
}

impl JobPayload {
    pub fn kind(&self) -> JobKind {
        match self {
            JobPayload::StudyComplete { .. } => JobKind::StudyComplete,
            JobPayload::InstanceRender { .. } => JobKind::InstanceRender,
        }
    }

    /// The JSON stored in the `payload` column.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job payload serialises")
    }

    /// Reads a stored payload of `kind`; a payload that is not what its
    /// kind needs is an error naming what was expected and found.
    fn parse(kind: &str, json: &str) -> Result<JobPayload, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Study {
            study_uid: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Render {
            sop_instance_uid: String,
            object_key: String,
        }
        let wrong = |e: serde_json::Error| format!("a {kind} job's payload {json:?} does not parse: {e}");
        match kind {
            "study.complete" => {
                serde_json::from_str::<Study>(json).map(|p| JobPayload::StudyComplete { study_uid: p.study_uid }).map_err(wrong)
            }
            "instance.render" => serde_json::from_str::<Render>(json)
                .map(|p| JobPayload::InstanceRender { sop_instance_uid: p.sop_instance_uid, object_key: p.object_key })
                .map_err(wrong),
            other => Err(format!("expected a job kind of study.complete or instance.render, found {other:?}")),
        }
    }
}

/// Queues `payload` to run at `at`, within a caller's transaction (the
/// index's write that makes the job due).
pub(crate) async fn enqueue_in(connection: &mut sqlx::AnyConnection, payload: &JobPayload, at: i64) -> Result<(), DbError> {
    sqlx::query("INSERT INTO jobs (kind, payload, run_after, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(payload.kind().as_str())
        .bind(payload.to_json())
        .bind(at)
        .bind(at)
        .bind(at)
        .execute(connection)
        .await?;
    Ok(())
}

/// Marks a job done if `lease` still holds it, within a caller's
/// transaction or on a connection; false when the lease was lost.
pub(crate) async fn mark_done(connection: &mut sqlx::AnyConnection, lease: Lease) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, updated_at = $1
         WHERE id = $2 AND attempts = $3 AND state = 'running'",
    )
    .bind(now_ms())
    .bind(lease.job_id)
    .bind(lease.attempt)
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One claim of one job: the job and which claim of it this is. A worker
/// whose lease ran out while it worked — stalled, cut off from the
/// database — may finish after another worker has claimed the job again;
/// its completion or failure then changes nothing, because every claim
/// counts `attempts` up and only the current claim's `attempts` matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub job_id: i64,
    pub attempt: i64,
}

/// Whether a completion or failure was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Recorded,
    /// The lease had run out and the job was claimed again (or settled by
    /// whoever claimed it): this outcome was dropped.
    LeaseLost,
}

impl Settled {
    fn from_applied(applied: bool) -> Settled {
        if applied { Settled::Recorded } else { Settled::LeaseLost }
    }
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub payload: JobPayload,
    /// How many times it has been claimed, this time included.
    pub attempts: i64,
    /// When it was queued, in milliseconds since the Unix epoch: how long its
    /// result has been awaited.
    pub queued_at_ms: i64,
}

impl Job {
    /// This claim of the job, which its completion or failure names.
    pub fn lease(&self) -> Lease {
        Lease { job_id: self.id, attempt: self.attempts }
    }
}

impl Database {
    /// Queues a job to run now.
    pub async fn enqueue_job(&self, payload: &JobPayload) -> Result<i64, DbError> {
        let now = now_ms();
        Ok(sqlx::query_scalar(
            "INSERT INTO jobs (kind, payload, run_after, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(payload.kind().as_str())
        .bind(payload.to_json())
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Claims the oldest ready job of one of `kinds` for `lease`. A job
    /// whose payload does not parse is marked failed with the reason (it
    /// would fail every time) and the next one is claimed.
    pub async fn claim_job(&self, kinds: &[JobKind], worker: &str, lease: Duration) -> Result<Option<Job>, DbError> {
        loop {
            let Some((id, kind, json, attempts, queued_at_ms)) = self.claim_row(kinds, worker, lease).await? else { return Ok(None) };
            match JobPayload::parse(&kind, &json) {
                Ok(payload) => return Ok(Some(Job { id, payload, attempts, queued_at_ms })),
                Err(reason) => {
                    tracing::error!(job = id, %reason, "job refused");
                    self.fail_job(Lease { job_id: id, attempt: attempts }, &reason, None).await?;
                }
            }
        }
    }

    async fn claim_row(
        &self,
        kinds: &[JobKind],
        worker: &str,
        lease: Duration,
    ) -> Result<Option<(i64, String, String, i64, i64)>, DbError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let kind_list: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
        // PostgreSQL: concurrent workers skip a row another is claiming
        // rather than wait for it; SQLite has one writer at a time anyway.
        let skip_locked = match self.engine() {
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2, updated_at = $3
             WHERE id = (SELECT id FROM jobs WHERE kind IN ({})
                           AND ((state = 'queued' AND run_after <= $3) OR (state = 'running' AND locked_until < $3))
                         ORDER BY run_after, id LIMIT 1{skip_locked})
             RETURNING id, kind, payload, attempts, created_at",
            kind_list.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(worker).bind(now + lease.as_millis() as i64).bind(now);
        for kind in kinds {
            query = query.bind(kind.as_str());
        }
        // Stepped to the end, not stopped after the first row: an autocommit
        // `UPDATE … RETURNING` commits only when it finishes, and a commit
        // that fails (disk full) must fail the claim rather than hand out a
        // lease that was never written and keep the write lock meanwhile.
        let row = query.fetch_all(self.redoable()).await?.into_iter().next();
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
    }

    /// Marks a claimed job done, unless its lease was lost meanwhile.
    pub async fn complete_job(&self, lease: Lease) -> Result<Settled, DbError> {
        let mut connection = self.redoable().acquire().await?;
        Ok(Settled::from_applied(mark_done(&mut connection, lease).await?))
    }

    /// Records a failure, unless the lease was lost meanwhile; the job runs
    /// again after `retry_in`, or is left failed when `None`.
    pub async fn fail_job(&self, lease: Lease, error: &str, retry_in: Option<Duration>) -> Result<Settled, DbError> {
        let now = now_ms();
        let (state, run_after) = match retry_in {
            Some(delay) => ("queued", now + delay.as_millis() as i64),
            None => ("failed", now),
        };
        let failed = sqlx::query(
            "UPDATE jobs SET state = $1, run_after = $2, last_error = $3, locked_by = NULL, locked_until = NULL,
               updated_at = $4 WHERE id = $5 AND attempts = $6 AND state = 'running'",
        )
        .bind(state)
        .bind(run_after)
        .bind(error)
        .bind(now)
        .bind(lease.job_id)
        .bind(lease.attempt)
        .execute(self.redoable())
        .await?;
        Ok(Settled::from_applied(failed.rows_affected() == 1))
    }

    /// Jobs of `kind` by state, for operators and tests.
    pub async fn count_jobs(&self, kind: JobKind, state: &str) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1 AND state = $2")
            .bind(kind.as_str())
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

    fn study(n: usize) -> JobPayload {
        JobPayload::StudyComplete { study_uid: format!("1.2.3.{n}") }
    }

    #[tokio::test]
    async fn a_job_is_claimed_once_and_reclaimed_after_its_lease() {
        let (_dir, db) = temp_db().await;
        let id = db.enqueue_job(&study(1)).await.unwrap();
        let kinds = [JobKind::StudyComplete];
        let job = db.claim_job(&kinds, "w1", Duration::from_millis(50)).await.unwrap().unwrap();
        assert_eq!((job.id, job.attempts), (id, 1));
        assert_eq!(job.payload, study(1));
        assert!(db.claim_job(&kinds, "w2", Duration::from_secs(5)).await.unwrap().is_none());
        assert!(db.claim_job(&[JobKind::InstanceRender], "w2", Duration::from_secs(5)).await.unwrap().is_none(), "kinds are kept apart");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let again = db.claim_job(&kinds, "w2", Duration::from_secs(5)).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (id, 2));
        assert_eq!(db.complete_job(job.lease()).await.unwrap(), Settled::LeaseLost, "w1's lease ran out: w2 holds the job");
        assert_eq!(db.fail_job(job.lease(), "late", None).await.unwrap(), Settled::LeaseLost);
        assert_eq!(db.count_jobs(JobKind::StudyComplete, "running").await.unwrap(), 1, "w2's claim stands");
        assert_eq!(db.complete_job(again.lease()).await.unwrap(), Settled::Recorded);
        assert!(db.claim_job(&kinds, "w3", Duration::from_secs(5)).await.unwrap().is_none());
        assert_eq!(db.count_jobs(JobKind::StudyComplete, "done").await.unwrap(), 1);
        assert_eq!(db.complete_job(again.lease()).await.unwrap(), Settled::LeaseLost, "a job is settled once");
    }

    #[tokio::test]
    async fn a_payload_that_does_not_parse_fails_its_job_with_the_reason() {
        let (_dir, db) = temp_db().await;
        for payload in [r#"{"sop_instance_uid":"1.2"}"#, "not json", r#"{"study_uid":7}"#] {
            sqlx::query("INSERT INTO jobs (kind, payload, run_after, created_at, updated_at) VALUES ($1, $2, 0, 0, 0)")
                .bind(if payload.contains("sop") { "instance.render" } else { "study.complete" })
                .bind(payload)
                .execute(db.pool())
                .await
                .unwrap();
        }
        let good = db.enqueue_job(&study(2)).await.unwrap();
        let claimed = db.claim_job(&[JobKind::StudyComplete, JobKind::InstanceRender], "w", Duration::from_secs(5)).await.unwrap();
        assert_eq!(claimed.map(|j| (j.id, j.payload)), Some((good, study(2))), "the malformed ones are skipped");
        let reasons: Vec<String> =
            sqlx::query_scalar("SELECT last_error FROM jobs WHERE state = 'failed' ORDER BY id").fetch_all(db.pool()).await.unwrap();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].contains("instance.render") && reasons[0].contains("object_key"), "{reasons:?}");
        assert!(reasons[2].contains("study_uid"), "{reasons:?}");
    }

    #[tokio::test]
    async fn concurrent_claims_never_share_a_job() {
        let (_dir, db) = temp_db().await;
        for n in 0..20 {
            db.enqueue_job(&study(n)).await.unwrap();
        }
        let mut handles = Vec::new();
        for w in 0..8 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = db.claim_job(&[JobKind::StudyComplete], &format!("w{w}"), Duration::from_secs(60)).await.unwrap() {
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
