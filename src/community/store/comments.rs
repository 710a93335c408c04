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
}

/// `$1` is the viewer's id (0 for anonymous).
const SELECT_COMMENTS: &str = "SELECT c.id, c.body, c.created_at, c.updated_at, \
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
    let sql =
        format!("{SELECT_COMMENTS} WHERE c.article_id = $2 ORDER BY c.id DESC LIMIT $3 OFFSET $4");
    Ok(on_read!(db, pool => sqlx::query_as::<_, CommentRow>(&sql)
        .bind(viewer_id)
        .bind(article_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await)?)
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
