//! SQL for reviews and their hashtags.
//!
//! A review's hashtags come back with it as one space-separated column (hashtags never hold
//! spaces), aggregated by the database, so a page of reviews is one statement. The
//! aggregate is the one place the dialects differ: `group_concat` (SQLite) against
//! `string_agg` (PostgreSQL).

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use crate::catalog::domain::{Hashtag, Page, Rating};
use crate::db::{now, Backend, Db};
use crate::error::Result;
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct ReviewRow {
    pub id: i64,
    pub store_id: i64,
    pub store_name: String,
    pub store_stadium: String,
    pub rating: i64,
    pub body: String,
    /// Space-separated, in no particular order; `None` when there are none.
    pub hashtags: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub author_username: String,
    pub author_bio: Option<String>,
    pub author_image: Option<String>,
    pub author_team: Option<String>,
    pub following: bool,
}

/// `viewer` is the placeholder of the viewer's id (0 for anonymous), for `following`.
fn select_reviews(backend: Backend, viewer: &str) -> String {
    let hashtags = match backend {
        Backend::Sqlite => "group_concat(h.tag, ' ')",
        Backend::Postgres => "string_agg(h.tag, ' ')",
    };
    format!(
        "SELECT r.id, r.store_id, s.name AS store_name, s.stadium AS store_stadium, r.rating, r.body, \
           (SELECT {hashtags} FROM review_hashtags h WHERE h.review_id = r.id) AS hashtags, \
           r.created_at, r.updated_at, \
           u.username AS author_username, u.bio AS author_bio, u.image AS author_image, \
           u.team AS author_team, \
           EXISTS(SELECT 1 FROM follows fo WHERE fo.followee_id = r.author_id AND fo.follower_id = {viewer}) AS following \
         FROM reviews r JOIN stores s ON s.id = r.store_id JOIN users u ON u.id = r.author_id"
    )
}

/// Absent filters match every review.
const FILTER: &str = "WHERE ($1 IS NULL OR r.store_id = $1) \
    AND ($2 IS NULL OR EXISTS(SELECT 1 FROM review_hashtags h WHERE h.review_id = r.id AND h.tag = $2))";

#[derive(Debug, Clone)]
pub struct ReviewFilter {
    pub store_id: Option<i64>,
    pub hashtag: Option<Hashtag>,
    pub page: Page,
}

/// One page of reviews, most recently written first, and how many match the filter in all.
pub async fn list(db: &Db, filter: &ReviewFilter, viewer_id: i64) -> Result<(Vec<ReviewRow>, i64)> {
    let page_sql = format!(
        "{} {FILTER} ORDER BY r.updated_at DESC, r.id DESC LIMIT $4 OFFSET $5",
        select_reviews(db.backend(), "$3")
    );
    let count_sql = format!("SELECT COUNT(*) FROM reviews r {FILTER}");
    let tag = filter.hashtag.as_ref().map(Hashtag::as_str);
    let rows = on_read!(db, pool => sqlx::query_as::<_, ReviewRow>(&page_sql)
        .bind(filter.store_id)
        .bind(tag)
        .bind(viewer_id)
        .bind(filter.page.limit)
        .bind(filter.page.offset)
        .fetch_all(pool)
        .await)?;
    let total = on_read!(db, pool => sqlx::query_scalar::<_, i64>(&count_sql)
        .bind(filter.store_id)
        .bind(tag)
        .fetch_one(pool)
        .await)?;
    Ok((rows, total))
}

pub async fn by_id(db: &Db, review_id: i64, viewer_id: i64) -> Result<Option<ReviewRow>> {
    let sql = format!("{} WHERE r.id = $2", select_reviews(db.backend(), "$1"));
    Ok(on_read!(db, pool => sqlx::query_as::<_, ReviewRow>(&sql)
        .bind(viewer_id)
        .bind(review_id)
        .fetch_optional(pool)
        .await)?)
}

/// What [`write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created(i64),
    /// The author had reviewed this store before; that review (same id) now holds the new
    /// rating, body and hashtags.
    Replaced(i64),
}

pub struct NewReview<'a> {
    pub store_id: i64,
    pub author_id: i64,
    pub rating: Rating,
    pub body: &'a str,
    pub hashtags: &'a [Hashtag],
}

/// Writes the author's review of the store, replacing an earlier one, with its hashtags, in
/// one transaction.
pub async fn write(db: &Db, review: NewReview<'_>) -> Result<Written> {
    let at = now();
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        // Insert, or else update: each statement sees the latest committed state, so a
        // concurrent first review by the same author turns this one into a replacement,
        // and a concurrent delete of the old one into a creation (hence the second round).
        let mut written = None;
        for _ in 0..2 {
            let created = sqlx::query_scalar::<_, i64>(
                "INSERT INTO reviews (store_id, author_id, rating, body, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (store_id, author_id) DO NOTHING RETURNING id")
                .bind(review.store_id)
                .bind(review.author_id)
                .bind(review.rating.get())
                .bind(review.body)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(id) = created {
                written = Some(Written::Created(id));
                break;
            }
            let replaced = sqlx::query_scalar::<_, i64>(
                "UPDATE reviews SET rating = $3, body = $4, updated_at = $5 \
                 WHERE store_id = $1 AND author_id = $2 RETURNING id")
                .bind(review.store_id)
                .bind(review.author_id)
                .bind(review.rating.get())
                .bind(review.body)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(id) = replaced {
                sqlx::query("DELETE FROM review_hashtags WHERE review_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                written = Some(Written::Replaced(id));
                break;
            }
        }
        let written = written.ok_or_else(|| {
            anyhow::anyhow!("the review was deleted and re-created concurrently twice")
        })?;
        let (Written::Created(id) | Written::Replaced(id)) = written;
        for tag in review.hashtags {
            sqlx::query("INSERT INTO review_hashtags (review_id, tag) VALUES ($1, $2)")
                .bind(id)
                .bind(tag.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(written)
    })
}

/// The author of a review of the given store, for permission checks.
pub async fn author_of(db: &Db, store_id: i64, review_id: i64) -> Result<Option<i64>> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT author_id FROM reviews WHERE store_id = $1 AND id = $2")
        .bind(store_id)
        .bind(review_id)
        .fetch_optional(pool)
        .await)?)
}

/// Deletes a review; its hashtags go with it (`ON DELETE CASCADE`).
pub async fn delete(db: &Db, review_id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query("DELETE FROM reviews WHERE id = $1")
        .bind(review_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
