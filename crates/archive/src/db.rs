//! The index database: connection, engine settings, migrations.
//!
//! SQLite is the default so the centre runs on a laptop with nothing
//! installed; it runs in WAL mode, where a commit is durable against a crash
//! of the process. `synchronous = FULL` (the default here) also makes it
//! durable against power loss, at the cost of one fsync of the log per commit.
//! PostgreSQL, chosen by a `postgres://` URL, is for centres whose gateways,
//! workers and web processes run on several machines.
//!
//! Both are reached through sqlx's `Any` driver, so every statement is
//! written once: `$1`-style parameters (which SQLite reads too), types both
//! engines share (BIGINT, TEXT, bytes), `ON CONFLICT` upserts, `RETURNING`.
//! The schema is kept twice, `migrations/sqlite` and `migrations/postgres`,
//! one file per migration in each, so they stay in step.
//!
//! Writes that are redone when lost — job leases and completions, derived-object
//! records, and index rows, whose staging links the ingest protocol keeps until
//! they are durable — go through a second set of connections that commit
//! without that fsync ([`Database::redoable`]); [`Database::sync_point`] makes
//! all of them durable at once. While a CT series arrives, that is one fsync a
//! second instead of five per instance, each of which the disk would otherwise
//! serve before the next instance's data.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;

/// A pool of connections to whichever engine `database_url` names.
pub type Pool = sqlx::AnyPool;
/// A transaction on either engine.
pub type Transaction<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Which database engine holds the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded, one file: the default.
    Sqlite,
    /// A server shared by every gateway, worker and web process.
    Postgres,
}

impl Engine {
    fn of(url: &str) -> Option<Engine> {
        if url.starts_with("sqlite:") {
            Some(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Engine::Postgres)
        } else {
            None
        }
    }
}

/// Errors of the index database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the index database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database_url must start with sqlite: or postgres://, found {0:?}")]
    UnknownEngine(String),
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
    engine: Engine,
    pool: Pool,
    /// The same database, committing without waiting for the log's fsync
    /// (SQLite `synchronous = NORMAL`, PostgreSQL `synchronous_commit = off`).
    redoable: Pool,
    /// One connection whose commits wait for the log's fsync whatever the
    /// configured durability, for [`Database::sync_point`].
    syncing: Pool,
    /// PostgreSQL only: connections that each hold one open transaction
    /// with an advisory lock ([`Database::advisory_lock`]), apart from the
    /// others so that locks held cannot starve the commits that release them.
    locking: Option<Pool>,
}

/// A lock shared by every process on the database, held until
/// [`AdvisoryLock::release`] or drop (and by the server until the holder's
/// connection ends, so a killed process holds nothing).
#[derive(Debug)]
pub struct AdvisoryLock(Transaction<'static>);

impl AdvisoryLock {
    /// Fails if the lock is no longer held: its connection to the server
    /// ended (a restart, a network cut), and with it the lock.
    pub async fn confirm(&mut self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&mut *self.0).await?;
        Ok(())
    }

    /// Releases the lock now. Dropping it releases it too, a moment later,
    /// when its connection goes back to the pool.
    pub async fn release(self) {
        let _ = self.0.rollback().await;
    }
}

/// Advisory locks one process holds at once at most (one connection each);
/// more wait for one to be released.
const LOCKS_HELD: u32 = 32;

/// A stable 64-bit advisory-lock key for a lock's name (FNV-1a).
fn advisory_key(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    hash as i64
}

/// Milliseconds since the Unix epoch: how the index stores times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Fills the name groups QIDO matches on (migration 0009) for patients
/// indexed before they existed: once, as later rows get them at insert.
async fn split_patient_names(pool: &Pool) -> Result<(), DbError> {
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
        sqlx::query("UPDATE patients SET name_alphabetic = $1, name_ideographic = $2, name_phonetic = $3 WHERE id = $4")
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

/// How each pool's connections commit (see the module docs).
#[derive(Clone, Copy)]
enum CommitMode {
    /// As configured: `Durability::Full` waits for the log's fsync.
    Configured(Durability),
    /// Without waiting for the log's fsync.
    Relaxed,
    /// Waiting for the log's fsync.
    Durable,
}

async fn connect(engine: Engine, url: &str, connections: u32, mode: CommitMode) -> Result<Pool, sqlx::Error> {
    let durable = match mode {
        CommitMode::Configured(d) => d == Durability::Full,
        CommitMode::Relaxed => false,
        CommitMode::Durable => true,
    };
    let settings: &'static [&'static str] = match (engine, durable) {
        // WAL: readers never wait for the writer; a commit is durable
        // against a process crash, and with FULL against power loss.
        (Engine::Sqlite, true) => {
            &["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 10000", "PRAGMA foreign_keys = ON"]
        }
        (Engine::Sqlite, false) => {
            &["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA busy_timeout = 10000", "PRAGMA foreign_keys = ON"]
        }
        (Engine::Postgres, true) => &["SET synchronous_commit = on"],
        (Engine::Postgres, false) => &["SET synchronous_commit = off"],
    };
    AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(15))
        .after_connect(move |connection, _| {
            Box::pin(async move {
                for setting in settings {
                    sqlx::query(setting).execute(&mut *connection).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// `url` with SQLite told to create the file when missing.
fn creating(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl Database {
    /// Opens (creating if missing) and migrates the database at `url`:
    /// `sqlite://data/index.db` or `postgres://user@host/db`.
    pub async fn open(url: &str, durability: Durability) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        let open_err = |source| DbError::Open { url: url.to_owned(), source };
        let engine = Engine::of(url).ok_or_else(|| DbError::UnknownEngine(url.to_owned()))?;
        let url = match engine {
            Engine::Sqlite => creating(url),
            Engine::Postgres => url.to_owned(),
        };
        let pool = connect(engine, &url, 8, CommitMode::Configured(durability)).await.map_err(open_err)?;
        match engine {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Engine::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        split_patient_names(&pool).await?;
        let redoable = connect(engine, &url, 4, CommitMode::Relaxed).await.map_err(open_err)?;
        let syncing = connect(engine, &url, 1, CommitMode::Durable).await.map_err(open_err)?;
        let locking = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(connect(engine, &url, LOCKS_HELD, CommitMode::Relaxed).await.map_err(open_err)?),
        };
        Ok(Database { engine, pool, redoable, syncing, locking })
    }

    /// Which engine this is, for the few statements the engines spell
    /// differently (locks, upserts of a singleton row).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Connections for writes that may be lost in a power cut because they
    /// are redone (see the module docs); their commits are visible at once.
    pub(crate) fn redoable(&self) -> &Pool {
        &self.redoable
    }

    /// Makes every commit so far durable, those on [`Database::redoable`]
    /// included: one small commit that waits for the log's fsync (which
    /// covers every record before it, whichever connection wrote them: so in
    /// SQLite's WAL, so in PostgreSQL's). In `Durability::Normal` that is
    /// still the case: the sync point always fsyncs.
    pub(crate) async fn sync_point(&self) -> Result<(), DbError> {
        sqlx::query("INSERT INTO sync_points (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at")
            .bind(now_ms())
            .execute(&self.syncing)
            .await?;
        Ok(())
    }

    /// A transaction that holds the write lock named `lock` from its start,
    /// for a read-then-write that must not interleave with another of its
    /// kind (a registration and an arrival of one exam; the audit chain's
    /// next link). SQLite: `BEGIN IMMEDIATE` (the database's one write
    /// lock); PostgreSQL: a transaction-scoped advisory lock on `lock`, held
    /// across every process sharing the database.
    pub async fn begin_exclusive(&self, lock: &'static str) -> Result<Transaction<'static>, DbError> {
        match self.engine {
            Engine::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Engine::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(advisory_key(lock)).execute(&mut *tx).await?;
                Ok(tx)
            }
        }
    }

    /// Waits for the lock named `name`, shared with every other process on
    /// a PostgreSQL database (a transaction-scoped advisory lock, held open).
    /// `None` on SQLite, whose database one server process owns: callers
    /// serialise within the process themselves.
    pub async fn advisory_lock(&self, name: &str) -> Result<Option<AdvisoryLock>, DbError> {
        let Some(locking) = &self.locking else { return Ok(None) };
        let mut tx = locking.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(advisory_key(name)).execute(&mut *tx).await?;
        Ok(Some(AdvisoryLock(tx)))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
