//! SQL for uploads.
//!
//! Each status change that causes more work enqueues that work in the same transaction (the
//! outbox rule): the upload row with its `image.optimize` job, and the move to `ready` with
//! its `image.webp` job.

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow};

use crate::db::Db;
use crate::error::Result;
use crate::queue::{self, NewJob};
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct UploadRow {
    pub id: String,
    pub owner_id: i64,
    pub status: String,
    pub source_format: String,
    pub original_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumb_width: Option<i64>,
    pub thumb_height: Option<i64>,
    pub display_bytes: Option<i64>,
    pub thumb_bytes: Option<i64>,
    /// Set once the `image.webp` job has written the WebP variants.
    pub display_webp_bytes: Option<i64>,
    pub thumb_webp_bytes: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, owner_id, status, source_format, original_bytes, width, height, \
    thumb_width, thumb_height, display_bytes, thumb_bytes, display_webp_bytes, thumb_webp_bytes, \
    error, created_at, updated_at";

const INSERT: &str = "INSERT INTO uploads (id, owner_id, status, source_format, original_bytes, \
    created_at, updated_at) VALUES ($1, $2, 'pending', $3, $4, $5, $5)";

/// Records a pending upload and enqueues its optimisation job in one transaction: the job
/// exists if and only if the upload does.
pub async fn insert_with_job(
    db: &Db,
    id: &str,
    owner_id: i64,
    source_format: &str,
    original_bytes: i64,
    job: &NewJob,
) -> Result<()> {
    let now = crate::db::now();
    macro_rules! insert {
        ($conn:expr) => {
            sqlx::query(INSERT)
                .bind(id)
                .bind(owner_id)
                .bind(source_format)
                .bind(original_bytes)
                .bind(now)
                .execute(&mut *$conn)
                .await?
        };
    }
    match db {
        Db::Sqlite { write, .. } => {
            let mut conn = write.acquire().await?;
            let mut tx = conn.begin().await?;
            insert!(tx);
            queue::enqueue_sqlite(&mut tx, job).await?;
            tx.commit().await?;
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            insert!(tx);
            queue::enqueue_postgres(&mut tx, job).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<UploadRow>> {
    let sql = format!("SELECT {COLUMNS} FROM uploads WHERE id = $1");
    Ok(
        on_read!(db, pool => sqlx::query_as::<_, UploadRow>(&sql).bind(id).fetch_optional(pool).await)?,
    )
}

/// Who owns each of `ids` and in what state it is: `(id, owner_id, status)` for those that
/// exist, in no particular order.
pub async fn owners(db: &Db, ids: &[String]) -> Result<Vec<(String, i64, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT id, owner_id, status FROM uploads WHERE id IN ({})",
        placeholders.join(", ")
    );
    Ok(on_read!(db, pool => {
        let mut query = sqlx::query_as::<_, (String, i64, String)>(&sql);
        for id in ids {
            query = query.bind(id);
        }
        query.fetch_all(pool).await
    })?)
}

/// What the optimisation job found.
pub struct Ready {
    pub width: i64,
    pub height: i64,
    pub thumb_width: i64,
    pub thumb_height: i64,
    pub display_bytes: i64,
    pub thumb_bytes: i64,
}

/// Marks a pending upload ready and enqueues `then` (the WebP job) in the same transaction.
/// Returns `false`, enqueueing nothing, if it was no longer pending (a redelivered job finding
/// the work already done).
pub async fn mark_ready(db: &Db, id: &str, ready: &Ready, then: &NewJob) -> Result<bool> {
    macro_rules! update {
        ($conn:expr) => {
            sqlx::query(
                "UPDATE uploads SET status = 'ready', width = $2, height = $3, thumb_width = $4, \
                   thumb_height = $5, display_bytes = $6, thumb_bytes = $7, updated_at = $8 \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(ready.width)
            .bind(ready.height)
            .bind(ready.thumb_width)
            .bind(ready.thumb_height)
            .bind(ready.display_bytes)
            .bind(ready.thumb_bytes)
            .bind(crate::db::now())
            .execute(&mut *$conn)
            .await?
            .rows_affected()
        };
    }
    let done = match db {
        Db::Sqlite { write, .. } => {
            let mut conn = write.acquire().await?;
            let mut tx = conn.begin().await?;
            let done = update!(tx) == 1;
            if done {
                queue::enqueue_sqlite(&mut tx, then).await?;
            }
            tx.commit().await?;
            done
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            let done = update!(tx) == 1;
            if done {
                queue::enqueue_postgres(&mut tx, then).await?;
            }
            tx.commit().await?;
            done
        }
    };
    Ok(done)
}

/// Records the WebP variants of a ready upload. A second run (a redelivered job) changes
/// nothing: the sizes are written once.
pub async fn mark_webp_done(db: &Db, id: &str, display_bytes: i64, thumb_bytes: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query(
        "UPDATE uploads SET display_webp_bytes = $2, thumb_webp_bytes = $3, updated_at = $4 \
         WHERE id = $1 AND status = 'ready' AND display_webp_bytes IS NULL")
        .bind(id)
        .bind(display_bytes)
        .bind(thumb_bytes)
        .bind(crate::db::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn mark_failed(db: &Db, id: &str, reason: &str) -> Result<()> {
    on_write!(db, pool => sqlx::query(
        "UPDATE uploads SET status = 'failed', error = $2, updated_at = $3 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(reason)
        .bind(crate::db::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
