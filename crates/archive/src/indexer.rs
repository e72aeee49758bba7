//! Group commit: many associations' index writes in one transaction, and the
//! sync points that make them durable.
//!
//! Every stored object waits for its index row before its association is
//! released, so the index is never behind what senders were told. With one
//! writer and many associations, a commit per row would serialise them;
//! instead one task takes every request waiting at that moment, writes them in
//! a single transaction (each in its own savepoint, so one bad row fails
//! alone), and answers all of them when it commits.
//!
//! Those commits are not fsynced one by one ([`Database::redoable`]): a row
//! lost in a power cut is written again at the next start from the object's
//! staging link, which is therefore kept until a sync point has made its row
//! durable — at most [`SYNC_DELAY`] after the commit, or sooner when
//! [`MAX_UNSYNCED`] links wait, and on [`Indexer::sync`].

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Acquire;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::db::{Database, DbError};
use crate::index::{InstanceRecord, insert_instance};

/// Most rows in one transaction.
const MAX_BATCH: usize = 256;
/// Longest a committed row waits for its sync point.
const SYNC_DELAY: Duration = Duration::from_secs(1);
/// Staging links that trigger a sync point before the delay is up.
const MAX_UNSYNCED: usize = 1024;

struct Request {
    record: InstanceRecord,
    /// The object's staging link, removed once its row is durable.
    staged: PathBuf,
    done: oneshot::Sender<Result<(), String>>,
}

enum Message {
    /// Boxed: a request is some 750 bytes, a sync point a pointer.
    Index(Box<Request>),
    /// Answered after a sync point covering every commit before it.
    Sync(oneshot::Sender<()>),
}

/// Handle to the group-commit task (cheap to clone).
#[derive(Clone)]
pub(crate) struct Indexer {
    tx: mpsc::Sender<Message>,
}

impl Indexer {
    pub(crate) fn start(db: Database) -> Indexer {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(db, rx));
        Indexer { tx }
    }

    /// Indexes `record`; returns once it is committed (visible to queries).
    /// `staged` is removed once the row is also durable.
    pub(crate) async fn index(&self, record: InstanceRecord, staged: PathBuf) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.tx.send(Message::Index(Box::new(Request { record, staged, done }))).await.map_err(|_| "the indexer has stopped".to_owned())?;
        answer.await.map_err(|_| "the indexer stopped before committing".to_owned())?
    }

    /// Returns once every row committed so far is durable and its staging
    /// link removed (or, if the database cannot sync, left for recovery).
    pub(crate) async fn sync(&self) {
        let (done, answer) = oneshot::channel();
        if self.tx.send(Message::Sync(done)).await.is_ok() {
            let _ = answer.await;
        }
    }
}

async fn run(db: Database, mut rx: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut unsynced = Unsynced::default();
    loop {
        let message = match unsynced.deadline() {
            None => rx.recv().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(message) => message,
                Err(_elapsed) => {
                    unsynced.sync(&db).await;
                    continue;
                }
            },
        };
        let mut sync_requested = None;
        match message {
            None => break,
            Some(Message::Sync(done)) => sync_requested = Some(done),
            Some(Message::Index(first)) => {
                batch.push(*first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Message::Index(request)) => batch.push(*request),
                        Ok(Message::Sync(done)) => {
                            sync_requested = Some(done);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        if !batch.is_empty() {
            let records: Vec<&InstanceRecord> = batch.iter().map(|request| &request.record).collect();
            let results = commit(&db, &records).await;
            for (request, result) in batch.drain(..).zip(results) {
                if result.is_ok() {
                    unsynced.add(request.staged);
                }
                let _ = request.done.send(result);
            }
        }
        if sync_requested.is_some() || unsynced.links.len() >= MAX_UNSYNCED {
            unsynced.sync(&db).await;
        }
        if let Some(done) = sync_requested {
            let _ = done.send(());
        }
    }
    unsynced.sync(&db).await;
}

/// Staging links of committed rows not yet known durable.
#[derive(Default)]
struct Unsynced {
    links: Vec<PathBuf>,
    since: Option<Instant>,
}

impl Unsynced {
    fn add(&mut self, staged: PathBuf) {
        self.since.get_or_insert_with(Instant::now);
        self.links.push(staged);
    }

    fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + SYNC_DELAY)
    }

    /// A sync point, then the links go. If the database cannot sync, they
    /// stay (and are tried again): recovery indexes them at the next start.
    async fn sync(&mut self, db: &Database) {
        if self.links.is_empty() {
            return;
        }
        if let Err(e) = db.sync_point().await {
            tracing::error!(error = %e, rows = self.links.len(), "index sync point failed; staging links kept");
            self.since = Some(Instant::now());
            return;
        }
        let links = std::mem::take(&mut self.links);
        self.since = None;
        let _ = tokio::task::spawn_blocking(move || {
            for link in links {
                let _ = std::fs::remove_file(link);
            }
        })
        .await;
    }
}

impl Database {
    /// Indexes `records` as the group commit does (one transaction, a
    /// savepoint each, so one bad row fails alone), without waiting for
    /// durability: the direct import path, for bulk loads of objects
    /// already in the store and for the index-growth benchmark
    /// (`examples/index_growth.rs`). [`Database::make_durable`] then makes
    /// every commit so far durable at once.
    pub async fn index_records(&self, records: &[&InstanceRecord]) -> Vec<Result<(), String>> {
        commit(self, records).await
    }

    /// Makes every commit so far durable (one sync point; see
    /// [`Database::index_records`]).
    pub async fn make_durable(&self) -> Result<(), DbError> {
        self.sync_point().await
    }
}

async fn commit(db: &Database, batch: &[&InstanceRecord]) -> Vec<Result<(), String>> {
    let attempt = async {
        let mut tx = db.redoable().begin().await?;
        if let [record] = batch {
            // One row (a lone sender): the transaction is its savepoint, two
            // round trips to SQLite's thread fewer.
            let result = insert_instance(&mut tx, record).await;
            if result.is_ok() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            return Ok(vec![row_outcome(record, result)]);
        }
        let mut results = Vec::with_capacity(batch.len());
        for record in batch {
            let mut savepoint = (&mut *tx).begin().await?;
            let result = insert_instance(&mut savepoint, record).await;
            if result.is_ok() {
                savepoint.commit().await?;
            } else {
                savepoint.rollback().await?;
            }
            results.push(row_outcome(record, result));
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

/// A row's outcome for its sender; a rejected row is logged.
fn row_outcome(record: &InstanceRecord, result: Result<(), DbError>) -> Result<(), String> {
    result.map_err(|e| {
        tracing::error!(sop_instance_uid = %record.sop_instance_uid, error = %e, "index row rejected");
        format!("index write failed: {e}")
    })
}
