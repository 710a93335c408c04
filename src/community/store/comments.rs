//! SQL for comments.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use crate::db::now;
use crate::db::Db;
use crate::error::Result;
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct CommentRow {
    pub id: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub author_id: i64,
    pub author_username: String,
    pub author_bio: Option<String>,
    pub author_image: Option<String>,
    pub author_team: Option<String>,
    pub following: bool,
    /// The top-level comment this one replies to (replies are one level deep).
    pub parent_id: Option<i64>,
}

/// `$1` is the viewer's id (0 for anonymous).
const SELECT_COMMENTS: &str = "SELECT c.id, c.body, c.created_at, c.updated_at, c.parent_id, \
      u.id AS author_id, u.username AS author_username, u.bio AS author_bio, \
      u.image AS author_image, u.team AS author_team, \
      EXISTS(SELECT 1 FROM follows fo WHERE fo.followee_id = c.author_id AND fo.follower_id = $1) AS following \
    FROM comments c JOIN users u ON u.id = c.author_id";

/// Comments of an article, newest first.
pub async fn list(
    db: &Db,
    article_id: i64,
    viewer_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<CommentRow>> {
    let page = crate::db::page_clause(limit, offset, "$3");
    let sql = format!("{SELECT_COMMENTS} WHERE c.article_id = $2 ORDER BY c.id DESC {page}");
    Ok(on_read!(db, pool => {
        let query = sqlx::query_as::<_, CommentRow>(&sql)
            .bind(viewer_id)
            .bind(article_id);
        let query = if offset == 0 { query } else { query.bind(offset) };
        query.fetch_all(pool).await
    })?)
}

pub async fn by_id(
    db: &Db,
    article_id: i64,
    comment_id: i64,
    viewer_id: i64,
) -> Result<Option<CommentRow>> {
    let sql = format!("{SELECT_COMMENTS} WHERE c.article_id = $2 AND c.id = $3");
    Ok(on_read!(db, pool => sqlx::query_as::<_, CommentRow>(&sql)
        .bind(viewer_id)
        .bind(article_id)
        .bind(comment_id)
        .fetch_optional(pool)
        .await)?)
}

pub async fn insert(db: &Db, article_id: i64, author_id: i64, body: &str) -> Result<i64> {
    let now = now();
    Ok(on_write!(db, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO comments (article_id, author_id, body, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id")
        .bind(article_id)
        .bind(author_id)
        .bind(body)
        .bind(now)
        .fetch_one(pool)
        .await)?)
}

/// The author of a comment on the given article, for permission checks.
pub async fn author_of(db: &Db, article_id: i64, comment_id: i64) -> Result<Option<i64>> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT author_id FROM comments WHERE article_id = $1 AND id = $2")
        .bind(article_id)
        .bind(comment_id)
        .fetch_optional(pool)
        .await)?)
}

pub async fn update(db: &Db, comment_id: i64, body: &str) -> Result<()> {
    on_write!(db, pool => sqlx::query("UPDATE comments SET body = $2, updated_at = $3 WHERE id = $1")
        .bind(comment_id)
        .bind(body)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(db: &Db, comment_id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query("DELETE FROM comments WHERE id = $1").bind(comment_id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds a reply to the top-level comment `parent_id` of the same article. `Ok(None)` when
/// there is no such comment there, or it is itself a reply (replies are one level deep).
pub async fn insert_reply(
    db: &Db,
    article_id: i64,
    author_id: i64,
    parent_id: i64,
    body: &str,
) -> Result<Option<i64>> {
    let now = now();
    // One statement, so the parent cannot turn into a reply or vanish between check and write.
    Ok(on_write!(db, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO comments (article_id, author_id, body, created_at, updated_at, parent_id) \
         SELECT $1, $2, $3, $4, $4, p.id FROM comments p \
         WHERE p.id = $5 AND p.article_id = $1 AND p.parent_id IS NULL \
         RETURNING id")
        .bind(article_id)
        .bind(author_id)
        .bind(body)
        .bind(now)
        .bind(parent_id)
        .fetch_optional(pool)
        .await)?)
}

/// How many comments each of these articles has (articles without any are left out).
pub async fn counts(db: &Db, article_ids: &[i64]) -> Result<Vec<(i64, i64)>> {
    if article_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Ids are integers from our own rows: listing them inline is safe and keeps one
    // statement text per page size for both backends.
    let ids = article_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT article_id, COUNT(*) FROM comments WHERE article_id IN ({ids}) GROUP BY article_id"
    );
    Ok(on_read!(db, pool => sqlx::query_as::<_, (i64, i64)>(&sql).fetch_all(pool).await)?)
}
