//! SQLite reads run directly on Tokio's blocking threads (rusqlite), for the hottest reads.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and passes each statement,
//! each row and the end of each result across channels, with a task wake-up for each. For the
//! article list, profiled under load, those hand-offs and the task switches they cause were
//! about 30 % of all samples and SQLite's own work a few percent (docs/benchmarks.md). Here a
//! read is one hop: the closure runs on a blocking thread with a pooled read-only connection
//! (r2d2) and hands its result back once.
//!
//! Only reads use this path, on connections opened read-only; every write still goes through
//! sqlx's single writer (and its group commit), so the one-writer rule of [`super::Db`] holds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;
use rusqlite::OpenFlags;

/// A pool of read-only rusqlite connections to one SQLite file. Cheap to clone.
#[derive(Clone)]
pub struct DirectReads {
    pool: Arc<r2d2::Pool<SqliteConnectionManager>>,
    /// One permit per connection, taken before a blocking thread is: callers beyond the pool
    /// wait as tasks, not as blocking threads parked inside r2d2.
    permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for DirectReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReads")
            .field("connections", &self.pool.max_size())
            .finish()
    }
}

/// Statements each connection keeps prepared (rusqlite's per-connection cache).
const CACHED_STATEMENTS: usize = 64;

impl DirectReads {
    /// Opens up to `size` read-only connections to the database file at `path`, which must
    /// exist (the writer creates it). Settings are those of sqlx's read pool.
    pub fn open(path: &Path, size: u32) -> anyhow::Result<Self> {
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .with_init(|conn| {
                conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
                conn.busy_timeout(Duration::from_secs(10))?;
                conn.execute_batch("PRAGMA cache_size = -16000; PRAGMA temp_store = memory;")
            });
        let pool = r2d2::Pool::builder()
            .max_size(size)
            // Connections are opened as needed, not all at start.
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            // A local file cannot drop a connection; checking each checkout would cost a call.
            .test_on_check_out(false)
            .build(manager)
            .with_context(|| format!("while opening {} for direct reads", path.display()))?;
        Ok(Self {
            pool: Arc::new(pool),
            permits: Arc::new(tokio::sync::Semaphore::new(size as usize)),
        })
    }

    /// Runs `sql` (parameters written `$1`, `$2`, …, bound from `params` in that order) and
    /// returns its first row as `row` reads it, or `None` when there is none.
    pub async fn query_row<T, F>(
        &self,
        sql: String,
        params: Vec<Value>,
        row: F,
    ) -> anyhow::Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let permit = self.permits.clone().acquire_owned().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.get().context("no SQLite read connection")?;
            let mut statement = conn.prepare_cached(&sql)?;
            anyhow::ensure!(
                statement.parameter_count() == params.len(),
                "the statement takes {} parameters, {} were given",
                statement.parameter_count(),
                params.len()
            );
            for (i, value) in params.into_iter().enumerate() {
                // Bound by name: `$n` is a named parameter to SQLite, numbered in the order
                // names first appear in the text, which need not be n.
                let name = format!("${}", i + 1);
                let index = statement
                    .parameter_index(&name)?
                    .with_context(|| format!("the statement has no parameter {name}"))?;
                statement.raw_bind_parameter(index, value)?;
            }
            let mut rows = statement.raw_query();
            match rows.next()? {
                Some(first) => Ok(Some(row(first)?)),
                None => Ok(None),
            }
        })
        .await
        .context("a direct SQLite read panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    async fn file_db() -> (tempfile::TempDir, Db, DirectReads) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url, 2).await.expect("sqlite");
        let Db::Sqlite {
            write,
            direct: Some(direct),
            ..
        } = &db
        else {
            panic!("a file database has a direct read path");
        };
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .execute(write)
            .await
            .expect("table");
        sqlx::query("INSERT INTO t (id, name) VALUES (1, 'one'), (2, 'two')")
            .execute(write)
            .await
            .expect("rows");
        let direct = direct.clone();
        (dir, db, direct)
    }

    #[tokio::test]
    async fn parameters_bind_by_their_number_not_by_where_they_first_appear() {
        let (_dir, _db, direct) = file_db().await;

        let name = direct
            .query_row(
                "SELECT name || $1 FROM t WHERE id = $2".into(),
                vec![Value::Text("!".into()), Value::Integer(2)],
                |row| row.get::<_, String>(0),
            )
            .await
            .expect("read");
        let swapped = direct
            .query_row(
                "SELECT name || $2 FROM t WHERE id = $1".into(),
                vec![Value::Integer(1), Value::Text("?".into())],
                |row| row.get::<_, String>(0),
            )
            .await
            .expect("read");

        assert_eq!(name.as_deref(), Some("two!"));
        assert_eq!(swapped.as_deref(), Some("one?"));
    }

    /// The `name` column `sql` reads with one integer parameter.
    async fn name_of(direct: &DirectReads, sql: &str, id: i64) -> Option<String> {
        direct
            .query_row(sql.into(), vec![Value::Integer(id)], |row| {
                row.get::<_, String>(0)
            })
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn a_read_sees_what_the_writer_committed_and_no_row_is_none() {
        let (_dir, db, direct) = file_db().await;
        let Db::Sqlite { write, .. } = &db else {
            unreachable!()
        };
        sqlx::query("INSERT INTO t (id, name) VALUES (3, 'three')")
            .execute(write)
            .await
            .expect("insert");

        let three = name_of(&direct, "SELECT name FROM t WHERE id = $1", 3).await;
        let none = name_of(&direct, "SELECT name FROM t WHERE id = $1", 99).await;

        assert_eq!(three.as_deref(), Some("three"));
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn a_wrong_number_of_parameters_or_a_write_is_an_error() {
        let (_dir, _db, direct) = file_db().await;

        let missing = direct
            .query_row("SELECT name FROM t WHERE id = $1".into(), vec![], |row| {
                row.get::<_, String>(0)
            })
            .await;
        let write = direct
            .query_row(
                "INSERT INTO t (id, name) VALUES (9, 'nine') RETURNING name".into(),
                vec![],
                |row| row.get::<_, String>(0),
            )
            .await;

        assert!(missing.is_err(), "an unbound parameter would read as NULL");
        assert!(write.is_err(), "direct connections are read-only");
    }
}
