//! SQL for chat messages.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use crate::db::{now, Db};
use crate::error::Result;
use crate::on_read;

/// A message with what a client shows of its author.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub team: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub author_username: String,
    pub author_image: Option<String>,
    pub author_team: Option<String>,
}

const SELECT_MESSAGES: &str = "SELECT m.id, m.team, m.body, m.created_at, \
      u.username AS author_username, u.image AS author_image, u.team AS author_team \
    FROM chat_messages m JOIN users u ON u.id = m.author_id WHERE m.deleted_at IS NULL";

/// The newest `limit` messages of `team` older than `before` (all when `None`), newest first.
pub async fn page(db: &Db, team: &str, before: Option<i64>, limit: i64) -> Result<Vec<MessageRow>> {
    let sql =
        format!("{SELECT_MESSAGES} AND m.team = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3");
    Ok(on_read!(db, pool => sqlx::query_as::<_, MessageRow>(&sql)
        .bind(team)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// One message by id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<MessageRow>> {
    let sql = format!("{SELECT_MESSAGES} AND m.id = $1");
    Ok(on_read!(db, pool => sqlx::query_as::<_, MessageRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// Messages of every room with an id above `after`, oldest first, at most `limit`: what a
/// process's live fan-out may have missed while its PostgreSQL listener was reconnecting.
pub async fn after(db: &Db, after: i64, limit: i64) -> Result<Vec<MessageRow>> {
    let sql = format!("{SELECT_MESSAGES} AND m.id > $1 ORDER BY m.id LIMIT $2");
    Ok(on_read!(db, pool => sqlx::query_as::<_, MessageRow>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// The highest message id (0 when there is none).
pub async fn last_id(db: &Db) -> Result<i64> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MAX(id) FROM chat_messages")
        .fetch_one(pool)
        .await)?
    .unwrap_or(0))
}

/// Stores a message; on PostgreSQL the same transaction announces it to every server process
/// (`NOTIFY ballpark_chat`, delivered at commit, so never for a message that was rolled back).
/// Returns the new message's id.
pub async fn insert(db: &Db, team: &str, author_id: i64, body: &str) -> Result<i64> {
    const INSERT: &str = "INSERT INTO chat_messages (team, author_id, body, created_at) \
        VALUES ($1, $2, $3, $4) RETURNING id";
    let created_at = now();
    match db {
        Db::Sqlite { write, .. } => Ok(sqlx::query_scalar(INSERT)
            .bind(team)
            .bind(author_id)
            .bind(body)
            .bind(created_at)
            .fetch_one(write)
            .await?),
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(INSERT)
                .bind(team)
                .bind(author_id)
                .bind(body)
                .bind(created_at)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::hub::PG_CHANNEL)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(id)
        }
    }
}

/// Deletes message `id` (by admin `by`): its row stays, emptied and marked `deleted_at`, so its
/// id is never given to a new message (SQLite reuses the highest rowid once its row is gone,
/// and sockets and pages skip ids they have shown). On PostgreSQL the same transaction
/// announces the deletion (`NOTIFY ballpark_chat 'deleted:<team>:<id>'`). Returns the
/// message's room, `None` if there was no such message (or it was deleted already).
pub async fn delete(db: &Db, id: i64, by: i64) -> Result<Option<String>> {
    const DELETE: &str = "UPDATE chat_messages SET body = '', deleted_at = $2, deleted_by = $3 \
        WHERE id = $1 AND deleted_at IS NULL RETURNING team";
    let at = now();
    match db {
        Db::Sqlite { write, .. } => Ok(sqlx::query_scalar(DELETE)
            .bind(id)
            .bind(at)
            .bind(by)
            .fetch_optional(write)
            .await?),
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            let team: Option<String> = sqlx::query_scalar(DELETE)
                .bind(id)
                .bind(at)
                .bind(by)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(team) = &team {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(super::hub::PG_CHANNEL)
                    .bind(format!("{}{team}:{id}", super::hub::DELETED_PREFIX))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(team)
        }
    }
}

/// The newest `limit` messages of every room, newest first (the moderation page).
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<MessageRow>> {
    let sql = format!("{SELECT_MESSAGES} ORDER BY m.id DESC LIMIT $1");
    Ok(on_read!(db, pool => sqlx::query_as::<_, MessageRow>(&sql)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}
