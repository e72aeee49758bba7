//! Group commit: many associations' index writes in one transaction.
//!
//! Every stored object waits for its index row before it is acknowledged, so
//! the index is never behind what senders were told. With one writer and many
//! associations, each commit (and its fsync) would serialise them; instead one
//! task takes every request waiting at that moment, writes them in a single
//! transaction (each in its own savepoint, so one bad row fails alone), and
//! answers all of them when it commits.

use sqlx::Acquire;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Database, DbError};
use crate::index::{InstanceRecord, insert_instance};

/// Most rows in one transaction.
const MAX_BATCH: usize = 256;

struct Request {
    record: InstanceRecord,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the group-commit task (cheap to clone).
#[derive(Clone)]
pub(crate) struct Indexer {
    tx: mpsc::Sender<Request>,
}

impl Indexer {
    pub(crate) fn start(db: Database) -> Indexer {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(db, rx));
        Indexer { tx }
    }

    /// Indexes `record`; returns once it is committed.
    pub(crate) async fn index(&self, record: InstanceRecord) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.tx.send(Request { record, done }).await.map_err(|_| "the indexer has stopped".to_owned())?;
        answer.await.map_err(|_| "the indexer stopped before committing".to_owned())?
    }
}

async fn run(db: Database, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let results = commit(&db, &batch).await;
        for (request, result) in batch.drain(..).zip(results) {
            let _ = request.done.send(result);
        }
    }
}

async fn commit(db: &Database, batch: &[Request]) -> Vec<Result<(), String>> {
    let attempt = async {
        let mut tx = db.pool().begin().await?;
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let mut savepoint = (&mut *tx).begin().await?;
            match insert_instance(&mut savepoint, &request.record).await {
                Ok(()) => {
                    savepoint.commit().await?;
                    results.push(Ok(()));
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    tracing::error!(
                        sop_instance_uid = %request.record.sop_instance_uid,
                        error = %e,
                        "index row rejected"
                    );
                    results.push(Err(format!("index write failed: {e}")));
                }
            }
        }
        tx.commit().await?;
        Ok::<_, DbError>(results)
    };
    match attempt.await {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, rows = batch.len(), "index commit failed");
            batch.iter().map(|_| Err(format!("index database unavailable: {e}"))).collect()
        }
    }
}
