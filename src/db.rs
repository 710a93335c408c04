//! The database handle: SQLite (the embedded default) or PostgreSQL, chosen by URL at start.
//!
//! ## Why one SQL text for both backends
//! sqlx's compile-checked `query!` macros bind to a single database type, and a repository
//! trait with a module per backend would write every query twice. Instead every query is a
//! runtime query (`sqlx::query_as` into a `FromRow` struct) written in the SQL both dialects
//! share: `$1` placeholders (SQLite accepts them), `RETURNING`, `ON CONFLICT`, `EXISTS`.
//! The [`on_read!`] and [`on_write!`] macros compile the same code once per backend, so the
//! type checker sees each instantiation. Where the dialects really differ (full-text search,
//! schema) the difference is explicit: a [`Backend`] match or a migration folder per backend.
//!
//! ## Why SQLite has two pools
//! SQLite allows one writer at a time. Readers get a pool of read-only connections (WAL lets
//! them run while a write is in progress); writes go through a pool of exactly one connection,
//! so writers queue in-process instead of failing with `SQLITE_BUSY` on lock upgrades.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// The `LIMIT` and `OFFSET` of a page, for statements PostgreSQL should plan once.
///
/// PostgreSQL plans a prepared statement anew on every execution when its `LIMIT` or `OFFSET`
/// is a parameter: the cached generic plan must guess them (a tenth of the rows), so it never
/// costs out as cheaply as a plan for the real values. For a page of 20 articles, planning
/// took 0.5 ms and running 0.15 ms (see docs/benchmarks.md). So the page size is written into
/// the text, and the offset too when it is 0 (first pages and cursor pages); a later offset
/// stays the parameter `offset_param`, which the caller binds only when `offset` is not 0, so
/// paging deep by offset does not fill sqlx's per-connection statement cache with one
/// statement per offset. Both numbers are integers: nothing can be injected.
pub fn page_clause(limit: i64, offset: i64, offset_param: &str) -> String {
    if offset == 0 {
        format!("LIMIT {limit}")
    } else {
        format!("LIMIT {limit} OFFSET {offset_param}")
    }
}

/// The time the application writes into rows: UTC, truncated to milliseconds, which is what
/// the API prints and what both databases store exactly (so a value read back compares equal).
pub fn now() -> DateTime<Utc> {
    to_millis(Utc::now())
}

/// `time` truncated to milliseconds (see [`now`]).
pub fn to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub mod direct;
pub mod group_commit;

use direct::DirectReads;
use group_commit::GroupCommit;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        /// Batches hot writes into shared commits (see [`group_commit`]).
        group: GroupCommit,
        /// The hottest reads, run on blocking threads without sqlx's per-row hand-offs (see
        /// [`direct`]); `None` for an in-memory database, which other connections cannot see.
        direct: Option<DirectReads>,
    },
    Postgres {
        pool: PgPool,
        /// Shares one statement and commit among enqueues made on their own at the same
        /// moment (see [`crate::queue::store::PgEnqueuer`]); the PostgreSQL counterpart of
        /// the SQLite group commit, kept here because it belongs to the pool it writes with.
        enqueuer: crate::queue::store::PgEnqueuer,
    },
}

/// Runs `$body` with `$pool` bound to a pool that may serve reads.
#[macro_export]
macro_rules! on_read {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { read: $pool, .. } => $body,
            $crate::db::Db::Postgres { pool: $pool, .. } => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to a pool that may write.
#[macro_export]
macro_rules! on_write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { write: $pool, .. } => $body,
            $crate::db::Db::Postgres { pool: $pool, .. } => $body,
        }
    };
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, max_connections).await
        } else {
            let options =
                PgConnectOptions::from_str(url).context("while parsing the PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("while connecting to PostgreSQL")?;
            let enqueuer = crate::queue::store::PgEnqueuer::start(pool.clone());
            Ok(Db::Postgres { pool, enqueuer })
        }
    }

    async fn connect_sqlite(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        let options = SqliteConnectOptions::from_str(url)
            .context("while parsing the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode is durable against application crashes; a power loss may
            // lose the last transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("cache_size", "-16000")
            .pragma("temp_store", "memory");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("while creating {}", parent.display()))?;
            }
        }
        let file = options.get_filename().to_path_buf();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .context("while opening the SQLite database")?;
        let read = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await
            .context("while opening the SQLite database for reading")?;
        let group = GroupCommit::start(write.clone());
        let direct = if file.as_os_str().is_empty() || file == std::path::Path::new(":memory:") {
            None
        } else {
            Some(DirectReads::open(&file, max_connections)?)
        };
        Ok(Db::Sqlite {
            read,
            write,
            group,
            direct,
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Applies the backend's migrations (embedded in the binary at compile time).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await,
            Db::Postgres { pool, .. } => sqlx::migrate!("migrations/postgres").run(pool).await,
        }
        .context("while applying database migrations")
    }

    /// Cheap round trip for the readiness probe.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_read!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres { pool, .. } => pool.close().await,
        }
    }
}
