//! The index database: connection, pragmas, migrations.
//!
//! SQLite is the default so the centre runs on a laptop with nothing
//! installed; it runs in WAL mode, where a commit is durable against a crash
//! of the process. `synchronous = FULL` (the default here) also makes it
//! durable against power loss, at the cost of one fsync of the log per commit.
//!
//! Writes that are redone when lost — job leases and completions, derived-object
//! records, and index rows, whose staging links the ingest protocol keeps until
//! they are durable — go through a second set of connections that commit
//! without that fsync ([`Database::redoable`]); [`Database::sync_point`] makes
//! all of them durable at once. While a CT series arrives, that is one fsync a
//! second instead of five per instance, each of which the disk would otherwise
//! serve before the next instance's data.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Errors of the index database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the index database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate the index database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("index database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
}

/// How hard commits are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync on every commit: survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a crash of the process, not of the machine.
    Normal,
}

/// The index database handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    /// The same database, committing with `synchronous = NORMAL`.
    redoable: SqlitePool,
    /// One connection committing with `synchronous = FULL` whatever the
    /// configured durability, for [`Database::sync_point`].
    syncing: SqlitePool,
}

/// Milliseconds since the Unix epoch: how the index stores times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Fills the name groups QIDO matches on (migration 0009) for patients
/// indexed before they existed: once, as later rows get them at insert.
async fn split_patient_names(pool: &SqlitePool) -> Result<(), DbError> {
    let unsplit: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM patients WHERE name IS NOT NULL
           AND name_alphabetic IS NULL AND name_ideographic IS NULL AND name_phonetic IS NULL",
    )
    .fetch_all(pool)
    .await?;
    if unsplit.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for (id, name) in unsplit {
        let [alphabetic, ideographic, phonetic] = crate::person_name::groups(&name);
        sqlx::query("UPDATE patients SET name_alphabetic = ?, name_ideographic = ?, name_phonetic = ? WHERE id = ?")
            .bind(alphabetic)
            .bind(ideographic)
            .bind(phonetic)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Database {
    /// Opens (creating if missing) and migrates the database at `url`, e.g.
    /// `sqlite://data/index.db`.
    pub async fn open(url: &str, durability: Durability) -> Result<Database, DbError> {
        let open_err = |source| DbError::Open { url: url.to_owned(), source };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await.map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        split_patient_names(&pool).await?;
        let redoable = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(open_err)?;
        let syncing = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.synchronous(SqliteSynchronous::Full))
            .await
            .map_err(open_err)?;
        Ok(Database { pool, redoable, syncing })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Connections for writes that may be lost in a power cut because they
    /// are redone (see the module docs); their commits are visible at once.
    pub(crate) fn redoable(&self) -> &SqlitePool {
        &self.redoable
    }

    /// Makes every commit so far durable, those on [`Database::redoable`]
    /// included: one small commit with `synchronous = FULL` (its fsync of the
    /// write-ahead log covers every frame before it, whichever connection
    /// wrote them). In `Durability::Normal` that is still the case: the
    /// sync point always fsyncs.
    pub(crate) async fn sync_point(&self) -> Result<(), DbError> {
        sqlx::query("INSERT OR REPLACE INTO sync_points (id, at) VALUES (1, ?)").bind(now_ms()).execute(&self.syncing).await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
