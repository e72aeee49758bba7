//! The audit log (全程留痕): who read or changed what, when, from where.
//!
//! Every authenticated request is recorded by one middleware ([`record`])
//! after its handler ran: user, roles, site, the route and the object it
//! named, the outcome status and the client address. Logins and failed
//! logins are recorded by the login handler. Rows are append-only (triggers
//! refuse UPDATE and DELETE) and hash-chained: each row's hash covers the
//! previous row's hash and its own fields, so changing, removing or
//! inserting a row breaks [`verify`] from that row on.
//!
//! Appends go to one writer task per process, so the chain never forks; it
//! writes every entry waiting in one transaction (group commit), so the
//! log's fsync is shared by the requests that arrived together rather than
//! paid by each of them in turn (one at a time, it capped the whole HTTP
//! service near 60 requests a second). A request still answers only once
//! its row is committed.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use telediag_archive::Database;
use telediag_archive::db::now_ms;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;

/// The hash before the first row.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub roles: Option<String>,
    pub site_id: Option<i64>,
    /// E.g. `GET /api/requests/{id}` or `login`.
    pub action: String,
    /// The object the action named, e.g. `/api/requests/17`.
    pub object: String,
    /// HTTP status of the outcome.
    pub outcome: i64,
    pub client: Option<String>,
}

impl AuditEntry {
    /// The chained hash: SHA-256 over the previous hash and every field,
    /// each length-prefixed so no two rows serialise alike.
    fn hash(&self, previous: &str) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(previous.as_bytes());
        field(&self.at.to_be_bytes());
        field(self.user_id.map(|v| v.to_string()).unwrap_or_default().as_bytes());
        field(self.username.as_deref().unwrap_or("").as_bytes());
        field(self.roles.as_deref().unwrap_or("").as_bytes());
        field(self.site_id.map(|v| v.to_string()).unwrap_or_default().as_bytes());
        field(self.action.as_bytes());
        field(self.object.as_bytes());
        field(&self.outcome.to_be_bytes());
        field(self.client.as_deref().unwrap_or("").as_bytes());
        hex::encode(h.finalize())
    }

    pub fn for_user(user: Option<&CurrentUser>, action: String, object: String, outcome: u16, client: Option<String>) -> AuditEntry {
        AuditEntry {
            at: now_ms(),
            user_id: user.map(|u| u.id),
            username: user.map(|u| u.username.clone()),
            roles: user.map(|u| u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")),
            site_id: user.and_then(|u| u.site_id),
            action,
            object,
            outcome: i64::from(outcome),
            client,
        }
    }
}

/// The appender (cheap to clone; one writer per process).
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: tokio::sync::mpsc::UnboundedSender<(AuditEntry, tokio::sync::oneshot::Sender<Result<(), String>>)>,
}

/// Entries written in one transaction at most.
const BATCH: usize = 512;

impl AuditLog {
    /// Starts the writer (on the current tokio runtime).
    pub fn new(db: Database) -> AuditLog {
        let (queue, mut pending) = tokio::sync::mpsc::unbounded_channel::<(AuditEntry, tokio::sync::oneshot::Sender<Result<(), String>>)>();
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match pending.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let entries: Vec<&AuditEntry> = batch.iter().map(|(entry, _)| entry).collect();
                // A busy database is retried; the requests wait for their rows.
                let mut result = write_batch(&db, &entries).await.map_err(|e| e.to_string());
                for delay_ms in [50, 200, 1000, 3000] {
                    if result.is_ok() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                    result = write_batch(&db, &entries).await.map_err(|e| e.to_string());
                }
                if let Err(e) = &result {
                    tracing::error!(error = %e, entries = batch.len(), "cannot write audit entries");
                }
                for (_, done) in batch {
                    let _ = done.send(result.clone());
                }
            }
        });
        AuditLog { queue }
    }

    /// Appends `entry` to the chain; returns once it is committed.
    pub async fn append(&self, entry: &AuditEntry) -> Result<(), AuditError> {
        let (done, committed) = tokio::sync::oneshot::channel();
        self.queue.send((entry.clone(), done)).map_err(|_| AuditError::Closed)?;
        committed.await.map_err(|_| AuditError::WriterStopped)?.map_err(|e| AuditError::Database(e.to_string()))
    }
}

/// Why an entry could not be recorded: the request it records is refused
/// (503), never answered unaudited.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log is closed")]
    Closed,
    #[error("the audit writer stopped")]
    WriterStopped,
    #[error("audit log unavailable: {0}")]
    Database(String),
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

/// Chains and inserts `entries` in one transaction, after the last row.
async fn write_batch(db: &Database, entries: &[&AuditEntry]) -> Result<(), telediag_archive::DbError> {
    // The chain's lock is taken (waiting for it as long as the busy
    // timeout allows) before the last hash is read, so the chain stays one
    // line across processes. On SQLite a deferred transaction would read
    // first and fail at once with SQLITE_BUSY if another writer (the
    // indexer, say) committed in between: 503s under load.
    let mut tx = db.begin_exclusive("audit.chain").await?;
    let previous: Option<String> =
        sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetch_optional(&mut *tx).await?;
    let mut previous = previous.unwrap_or_else(|| GENESIS.to_owned());
    for entry in entries {
        let hash = entry.hash(&previous);
        sqlx::query(
            "INSERT INTO audit_log (at, user_id, username, roles, site_id, action, object, outcome, client, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(entry.at)
        .bind(entry.user_id)
        .bind(&entry.username)
        .bind(&entry.roles)
        .bind(entry.site_id)
        .bind(&entry.action)
        .bind(&entry.object)
        .bind(entry.outcome)
        .bind(&entry.client)
        .bind(&previous)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        previous = hash;
    }
    Ok(tx.commit().await?)
}

/// The chain's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainReport {
    pub intact: bool,
    pub rows: i64,
    /// The first row whose stored hashes do not match its content or its predecessor.
    pub first_broken_id: Option<i64>,
    pub reason: Option<String>,
}

const ENTRY_COLUMNS: &str = "id, at, user_id, username, roles, site_id, action, object, outcome, client, prev_hash, hash";

fn entry_from_row(r: &sqlx::any::AnyRow) -> (i64, AuditEntry, String, String) {
    (
        r.get(0),
        AuditEntry {
            at: r.get(1),
            user_id: r.get(2),
            username: r.get(3),
            roles: r.get(4),
            site_id: r.get(5),
            action: r.get(6),
            object: r.get(7),
            outcome: r.get(8),
            client: r.get(9),
        },
        r.get(10),
        r.get(11),
    )
}

/// Recomputes the whole chain.
pub async fn verify(db: &Database) -> Result<ChainReport, ApiError> {
    use futures_util::TryStreamExt;
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY id");
    let mut rows = sqlx::query(&sql).fetch(db.pool());
    let mut previous = GENESIS.to_owned();
    let mut count = 0;
    while let Some(row) = rows.try_next().await.map_err(ApiError::database)? {
        let (id, entry, prev_hash, hash) = entry_from_row(&row);
        count += 1;
        let reason = if prev_hash != previous {
            Some("its previous-hash is not the hash of the row before it (a row was removed or inserted)")
        } else if entry.hash(&previous) != hash {
            Some("its content does not match its hash (the row was altered)")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Ok(ChainReport { intact: false, rows: count, first_broken_id: Some(id), reason: Some(reason.into()) });
        }
        previous = hash;
    }
    Ok(ChainReport { intact: true, rows: count, first_broken_id: None, reason: None })
}

/// Filters of the audit query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    pub user: Option<String>,
    /// Substring of the action or object.
    pub contains: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: Option<i64>,
}

/// A stored entry with its id.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEntry {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub hash: String,
}

pub async fn query(db: &Database, q: &AuditQuery) -> Result<Vec<StoredEntry>, ApiError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log
         WHERE ($1 IS NULL OR username = $1) AND ($2 IS NULL OR instr(action, $2) > 0 OR instr(object, $2) > 0)
           AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4)
         ORDER BY id DESC LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(&q.user)
        .bind(&q.contains)
        .bind(q.from)
        .bind(q.to)
        .bind(q.limit.unwrap_or(200).clamp(1, 10_000))
        .fetch_all(db.pool())
        .await
        .map_err(ApiError::database)?;
    Ok(rows
        .iter()
        .map(|r| {
            let (id, entry, _, hash) = entry_from_row(r);
            StoredEntry { id, entry, hash }
        })
        .collect())
}

/// Middleware: resolves the caller once (handlers reuse it) and records
/// every authenticated request after it ran. Health and the public
/// verification page carry no patient data and no caller; failed logins are
/// recorded by the login handler itself.
pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let user = crate::auth::resolve(&state, request.headers()).await;
    request.extensions_mut().insert(crate::auth::Caller(user.clone()));
    let action = format!(
        "{} {}",
        request.method(),
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "(no route)".into())
    );
    let object = request.uri().path().to_owned();
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let response = next.run(request).await;
    if let Ok(Some(user)) = user {
        let entry = AuditEntry::for_user(Some(&user), action, object, response.status().as_u16(), client);
        if let Err(e) = state.audit.append(&entry).await {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: 1,
            user_id: Some(2),
            username: Some("u".into()),
            roles: Some("admin".into()),
            site_id: None,
            action: action.into(),
            object: "/x".into(),
            outcome: 200,
            client: None,
        }
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let base = entry("GET /x");
        let h = base.hash(GENESIS);
        assert_ne!(h, base.hash(&h), "the previous hash counts");
        assert_ne!(h, entry("GET /y").hash(GENESIS));
        assert_ne!(h, AuditEntry { outcome: 404, ..base.clone() }.hash(GENESIS));
        assert_ne!(h, AuditEntry { client: Some("10.0.0.1".into()), ..base.clone() }.hash(GENESIS));
        // Moving characters between fields is not the same row.
        let a = AuditEntry { username: Some("ab".into()), roles: Some("c".into()), ..base.clone() };
        let b = AuditEntry { username: Some("a".into()), roles: Some("bc".into()), ..base };
        assert_ne!(a.hash(GENESIS), b.hash(GENESIS));
    }

    /// Hundreds of requests appending at once share commits and still make
    /// one unbroken chain, in the order the writer took them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_make_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("index.db").display());
        let db = Database::open(&url, telediag_archive::Durability::Full).await.unwrap();
        let log = AuditLog::new(db.clone());
        let tasks: Vec<_> = (0..300)
            .map(|n| {
                let log = log.clone();
                tokio::spawn(async move { log.append(&entry(&format!("GET /x/{n}"))).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let report = verify(&db).await.unwrap();
        assert!(report.intact, "{report:?}");
        assert_eq!(report.rows, 300);
    }
}
