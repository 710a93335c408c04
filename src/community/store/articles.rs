//! SQL for articles, tags, favourites and view counts.
//!
//! Lists are ordered by id, newest first: ids only grow, so the order is total and a cursor
//! (`before` = the last id seen) pages correctly even while new articles are inserted.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::users::now;
use crate::db::{Backend, Db};
use crate::error::{AppError, Result};
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct ArticleRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// `None` in lists, which omit bodies (RealWorld since 2024-08).
    pub body: Option<String>,
    /// Sorted JSON array of tag names.
    pub tag_list: String,
    pub category: String,
    pub favorites_count: i64,
    pub view_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub author_id: i64,
    pub author_username: String,
    pub author_bio: Option<String>,
    pub author_image: Option<String>,
    pub author_team: Option<String>,
    pub favorited: bool,
    pub following: bool,
}

/// `$1` is always the viewer's id (0 for anonymous).
fn select_articles(with_body: bool) -> String {
    let body = if with_body {
        "a.body"
    } else {
        "CAST(NULL AS TEXT) AS body"
    };
    format!(
        "SELECT a.id, a.slug, a.title, a.description, {body}, a.tag_list, a.category, \
           a.favorites_count, a.view_count, a.created_at, a.updated_at, \
           u.id AS author_id, u.username AS author_username, u.bio AS author_bio, \
           u.image AS author_image, u.team AS author_team, \
           EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $1) AS favorited, \
           EXISTS(SELECT 1 FROM follows fo WHERE fo.followee_id = a.author_id AND fo.follower_id = $1) AS following \
         FROM articles a JOIN users u ON u.id = a.author_id"
    )
}

/// What a list asks for. Every filter is optional; they combine with AND.
#[derive(Debug, Default, Clone)]
pub struct ArticleFilter {
    pub tag: Option<String>,
    pub author: Option<String>,
    pub favorited_by: Option<String>,
    pub category: Option<String>,
    /// Only articles by authors this user follows (the feed).
    pub feed_of: Option<i64>,
    /// Free-text query over title, description and body.
    pub search: Option<String>,
    /// Cursor: only articles with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// The search predicate on `$8`, per backend. SQLite's FTS5 trigram index needs at least three
/// characters; shorter queries (common in Korean: 직관) fall back to a substring scan.
/// PostgreSQL's pg_trgm GIN index serves `ILIKE` for three characters or more and PostgreSQL
/// falls back to a scan by itself below that.
fn search_predicate(backend: Backend, search: Option<&str>) -> (&'static str, Option<String>) {
    let Some(query) = search else {
        return ("$8 IS NULL", None);
    };
    let pattern = crate::community::domain::like_pattern(query);
    match backend {
        Backend::Postgres => (
            "(a.title || ' ' || a.description || ' ' || a.body) ILIKE $8",
            Some(pattern),
        ),
        Backend::Sqlite if query.chars().count() >= 3 => (
            "a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH $8)",
            // A quoted FTS5 string is matched as a literal phrase; quotes inside are doubled.
            Some(format!("\"{}\"", query.replace('"', "\"\""))),
        ),
        Backend::Sqlite => (
            "(a.title LIKE $8 ESCAPE '\\' OR a.description LIKE $8 ESCAPE '\\' OR a.body LIKE $8 ESCAPE '\\')",
            Some(pattern),
        ),
    }
}

/// `$2`..`$8` filter; the text is the same for the page and the count so they always agree.
fn filter_clause(search: &str) -> String {
    format!(
        "WHERE ($2 IS NULL OR a.author_id = (SELECT id FROM users WHERE username = $2)) \
           AND ($3 IS NULL OR a.id IN (SELECT at.article_id FROM article_tags at \
                JOIN tags t ON t.id = at.tag_id WHERE t.name = $3)) \
           AND ($4 IS NULL OR a.id IN (SELECT fa.article_id FROM favorites fa \
                JOIN users fu ON fu.id = fa.user_id WHERE fu.username = $4)) \
           AND ($5 IS NULL OR a.category = $5) \
           AND ($6 IS NULL OR a.author_id IN (SELECT followee_id FROM follows WHERE follower_id = $6)) \
           AND ($7 IS NULL OR a.id < $7) \
           AND {search}"
    )
}

/// Links `$tags` to the article inside the open transaction `$tx`. A macro rather than a
/// function because it runs inside [`on_write!`], once per backend's transaction type.
macro_rules! link_tags {
    ($tx:expr, $article_id:expr, $tags:expr) => {
        for tag in $tags {
            // DO UPDATE (a no-op) rather than DO NOTHING so RETURNING yields the existing id.
            let tag_id = sqlx::query_scalar::<_, i64>(
                "INSERT INTO tags (name) VALUES ($1) \
                 ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(tag)
            .fetch_one(&mut *$tx)
            .await?;
            sqlx::query("INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind($article_id)
                .bind(tag_id)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// One page of articles and the total number matching the filter (ignoring the cursor and
/// paging, as `articlesCount` means).
pub async fn list(
    db: &Db,
    filter: &ArticleFilter,
    viewer_id: i64,
) -> Result<(Vec<ArticleRow>, i64)> {
    let (search, search_arg) = search_predicate(db.backend(), filter.search.as_deref());
    let clause = filter_clause(search);
    let page_sql = format!(
        "{} {clause} ORDER BY a.id DESC LIMIT $9 OFFSET $10",
        select_articles(false)
    );
    // `$1 = $1` keeps the viewer parameter referenced, so both statements take the same
    // parameters (SQLite numbers `$N` parameters by the names it sees in the text).
    let count_sql = format!("SELECT COUNT(*) FROM articles a {clause} AND $1 = $1");
    on_read!(db, pool => {
        let page = sqlx::query_as::<_, ArticleRow>(&page_sql)
            .bind(viewer_id)
            .bind(&filter.author)
            .bind(&filter.tag)
            .bind(&filter.favorited_by)
            .bind(&filter.category)
            .bind(filter.feed_of)
            .bind(filter.before_id)
            .bind(&search_arg)
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(pool);
        // The count ignores the cursor: $7 is bound as NULL for it.
        let count = sqlx::query_scalar::<_, i64>(&count_sql)
            .bind(viewer_id)
            .bind(&filter.author)
            .bind(&filter.tag)
            .bind(&filter.favorited_by)
            .bind(&filter.category)
            .bind(filter.feed_of)
            .bind(None::<i64>)
            .bind(&search_arg)
            .fetch_one(pool);
        let (page, count) = tokio::try_join!(page, count)?;
        Ok((page, count))
    })
}

pub async fn by_slug(db: &Db, slug: &str, viewer_id: i64) -> Result<Option<ArticleRow>> {
    let sql = format!("{} WHERE a.slug = $2", select_articles(true));
    Ok(
        on_read!(db, pool => sqlx::query_as::<_, ArticleRow>(&sql).bind(viewer_id).bind(slug).fetch_optional(pool).await)?,
    )
}

/// The id and author of an article, for permission checks before a write.
pub async fn owner(db: &Db, slug: &str) -> Result<Option<(i64, i64)>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, (i64, i64)>(
        "SELECT id, author_id FROM articles WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await)?)
}

pub struct NewArticle {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub body: String,
    pub tags: Vec<String>,
    pub category: String,
    pub author_id: i64,
}

/// Inserts the article and its tags in one transaction. Returns `Ok(None)` if the slug is
/// taken (the caller picks another).
pub async fn insert(db: &Db, article: &NewArticle) -> Result<Option<i64>> {
    let now = now();
    let tag_json = serde_json::to_string(&article.tags).map_err(anyhow::Error::from)?;
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO articles (slug, title, description, body, tag_list, category, author_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (slug) DO NOTHING RETURNING id")
            .bind(&article.slug)
            .bind(&article.title)
            .bind(&article.description)
            .bind(&article.body)
            .bind(&tag_json)
            .bind(&article.category)
            .bind(article.author_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = inserted else { return Ok(None) };
        link_tags!(tx, id, &article.tags);
        tx.commit().await?;
        Ok(Some(id))
    })
}

/// Fields to change; `None` keeps the current value.
#[derive(Default)]
pub struct ArticleChanges {
    pub slug: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Applies the changes. `Ok(false)` if the new slug is taken (the caller picks another).
pub async fn update(db: &Db, id: i64, changes: &ArticleChanges) -> Result<bool> {
    let tag_json = match &changes.tags {
        Some(tags) => Some(serde_json::to_string(tags).map_err(anyhow::Error::from)?),
        None => None,
    };
    let now = now();
    let result: Result<bool> = on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE articles SET slug = COALESCE($2, slug), title = COALESCE($3, title), \
               description = COALESCE($4, description), body = COALESCE($5, body), \
               category = COALESCE($6, category), tag_list = COALESCE($7, tag_list), updated_at = $8 \
             WHERE id = $1")
            .bind(id)
            .bind(&changes.slug)
            .bind(&changes.title)
            .bind(&changes.description)
            .bind(&changes.body)
            .bind(&changes.category)
            .bind(&tag_json)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match updated {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            other => { other?; }
        }
        if let Some(tags) = &changes.tags {
            sqlx::query("DELETE FROM article_tags WHERE article_id = $1").bind(id).execute(&mut *tx).await?;
            link_tags!(tx, id, tags);
        }
        tx.commit().await?;
        Ok(true)
    });
    result
}

pub async fn delete(db: &Db, id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query("DELETE FROM articles WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds or removes a favourite and keeps the denormalised count in step, in one transaction.
/// Favouriting twice (or unfavouriting what is not a favourite) changes nothing.
pub async fn set_favorite(db: &Db, user_id: i64, article_id: i64, favorite: bool) -> Result<()> {
    let (change_sql, delta) = if favorite {
        (
            "INSERT INTO favorites (user_id, article_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            1i64,
        )
    } else {
        (
            "DELETE FROM favorites WHERE user_id = $1 AND article_id = $2",
            -1i64,
        )
    };
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(change_sql).bind(user_id).bind(article_id).execute(&mut *tx).await?;
        if changed.rows_affected() == 1 {
            sqlx::query("UPDATE articles SET favorites_count = favorites_count + $2 WHERE id = $1")
                .bind(article_id)
                .bind(delta)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, AppError>(())
    })
}

/// Tags in use by at least one article, alphabetically.
pub async fn tags(db: &Db) -> Result<Vec<String>> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, String>(
        "SELECT t.name FROM tags t WHERE EXISTS (SELECT 1 FROM article_tags at WHERE at.tag_id = t.id) \
         ORDER BY t.name LIMIT 500")
        .fetch_all(pool)
        .await)?)
}

/// Adds buffered view counts in one transaction.
pub async fn add_views(db: &Db, counts: &[(i64, i64)]) -> Result<()> {
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        for (id, count) in counts {
            sqlx::query("UPDATE articles SET view_count = view_count + $2 WHERE id = $1")
                .bind(id)
                .bind(count)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, AppError>(())
    })
}
