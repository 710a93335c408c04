//! SQL for web sessions. Rows are found by the SHA-256 of the cookie's token, never by the
//! token itself, and joined to `users` so a session of a deleted account finds nothing.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;
use crate::{on_read, on_write};

/// A live session and the bits of its user every page header shows.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub expires_at: DateTime<Utc>,
    pub username: String,
    pub team: Option<String>,
    pub team_name_ko: Option<String>,
    pub team_name_en: Option<String>,
    pub team_color: Option<String>,
    pub image: Option<String>,
    /// `fan`, `store_owner` or `admin`.
    pub role: String,
}

pub async fn insert(
    db: &Db,
    token_hash: &str,
    user_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    on_write!(db, pool => sqlx::query(
        "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The session with this token hash, if it has not expired.
pub async fn find(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT s.id, s.user_id, s.expires_at, u.username, u.team, u.image, u.role, \
           t.name_ko AS team_name_ko, t.name_en AS team_name_en, t.color AS team_color \
         FROM web_sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN teams t ON t.key = u.team \
         WHERE s.token_hash = $1 AND s.expires_at > $2")
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
}

pub async fn extend(db: &Db, id: i64, expires_at: DateTime<Utc>) -> Result<()> {
    on_write!(db, pool => sqlx::query("UPDATE web_sessions SET expires_at = $2 WHERE id = $1")
        .bind(id)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(db: &Db, token_hash: &str) -> Result<()> {
    on_write!(db, pool => sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Drops expired rows; run at each login, so the table holds live sessions and a day's
/// worth of leftovers at most, without a background task.
pub async fn delete_expired(db: &Db, now: DateTime<Utc>) -> Result<u64> {
    Ok(
        on_write!(db, pool => sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?,
    )
}
