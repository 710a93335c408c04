//! SQL for articles, tags, favourites and view counts.
//!
//! Lists are ordered by id, newest first: ids only grow, so the order is total and a cursor
//! (`before` = the last id seen) pages correctly even while new articles are inserted.

use super::users::now;
use crate::community::articles::Article;
use crate::db::group_commit::BatchedWrite;
use crate::db::{Backend, Db};
use crate::error::{AppError, Result};
use crate::{on_read, on_write};

/// Binds `$args` in order onto the query `$query`.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(value) => query.bind(value),
                Arg::Int(value) => query.bind(value),
            };
        }
        query
    }};
}

/// How a backend spells what the article read needs: object constructor, ordered array
/// aggregate, the tag list as JSON, a timestamp as RFC 3339 with milliseconds and `Z`, and a
/// condition as a JSON boolean.
struct JsonDialect {
    object: &'static str,
    aggregate: &'static str,
    tag_list: &'static str,
    stamp: &'static str,
    boolean: fn(&str) -> String,
}

const SQLITE_JSON: JsonDialect = JsonDialect {
    object: "json_object",
    aggregate: "json_group_array(json(page.obj) ORDER BY page.id DESC)",
    tag_list: "json(a.tag_list)",
    stamp: "strftime('%Y-%m-%dT%H:%M:%fZ', {})",
    boolean: |cond| format!("json(CASE WHEN {cond} THEN 'true' ELSE 'false' END)"),
};

const POSTGRES_JSON: JsonDialect = JsonDialect {
    object: "json_build_object",
    aggregate: "json_agg(page.obj ORDER BY page.id DESC)::text",
    tag_list: "a.tag_list::json",
    stamp: "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
    boolean: |cond| format!("({cond})"),
};

/// The statement that reads articles already shaped as the API's JSON: one row, one text
/// column holding a JSON array of article objects, newest first.
///
/// Why the database shapes the JSON: sqlx's SQLite driver hands every row across a channel
/// from the connection's worker thread, with a wake-up per row; for a page of 20 articles
/// that per-row cost dominated the whole request (see docs/benchmarks.md). One aggregated row
/// costs one hand-over. The object keys are exactly the fields of [`Article`], which
/// deserialises them, so the shape is still defined in one place. The two dialects differ
/// only in function names ([`JsonDialect`]).
fn select_articles(
    statement: &mut Statement,
    backend: Backend,
    with_body: bool,
    viewer_id: i64,
    rest: impl FnOnce(&mut Statement) -> String,
) -> String {
    let JsonDialect {
        object,
        aggregate,
        tag_list: as_json,
        stamp,
        boolean,
    } = match backend {
        Backend::Sqlite => SQLITE_JSON,
        Backend::Postgres => POSTGRES_JSON,
    };
    let (favorited, following) = if viewer_id == 0 {
        // An anonymous viewer follows and favours nothing: skip both lookups per row.
        (boolean("1 = 0"), boolean("1 = 0"))
    } else {
        let viewer = statement.param(Arg::Int(viewer_id));
        (
            boolean(&format!(
                "EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = {viewer})"
            )),
            boolean(&format!(
                "EXISTS(SELECT 1 FROM follows fo WHERE fo.followee_id = a.author_id AND fo.follower_id = {viewer})"
            )),
        )
    };
    let body = if with_body { "'body', a.body, " } else { "" };
    let created = stamp.replace("{}", "a.created_at");
    let updated = stamp.replace("{}", "a.updated_at");
    let rest = rest(statement);
    format!(
        "SELECT COALESCE((SELECT {aggregate} FROM ( \
           SELECT a.id, {object}('id', a.id, 'slug', a.slug, 'title', a.title, \
             'description', a.description, {body}'tagList', {as_json}, 'category', a.category, \
             'viewCount', a.view_count, 'createdAt', {created}, 'updatedAt', {updated}, \
             'favorited', {favorited}, 'favoritesCount', a.favorites_count, \
             'author', {object}('username', u.username, 'bio', u.bio, 'image', u.image, \
               'team', u.team, 'following', {following})) AS obj \
           FROM articles a JOIN users u ON u.id = a.author_id {rest}) page), '[]')"
    )
}

/// Runs an article statement and deserialises its JSON array.
async fn fetch_articles(db: &Db, sql: &str, args: Vec<Arg>) -> Result<Vec<Article>> {
    let json: String = on_read!(db, pool => bind_args!(sqlx::query_scalar::<_, String>(sql), args)
        .fetch_one(pool)
        .await)?;
    parse_articles(&json)
}

fn parse_articles(json: &str) -> Result<Vec<Article>> {
    serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("article JSON from the database did not parse: {e}").into())
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

/// A query parameter of a dynamically assembled statement. Only these two types occur, so
/// binding stays a simple match inside [`on_read!`].
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text assembled from fixed fragments, with `$N` placeholders numbered as parameters are
/// added. User input only ever travels as a parameter, never in the text.
#[derive(Default)]
struct Statement {
    args: Vec<Arg>,
}

impl Statement {
    /// Adds a parameter and returns its placeholder.
    fn param(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// The WHERE clause for `filter`, with only the filters that are set, so the planner sees
    /// a plain query (the tag index for `tag`, a rowid scan when unfiltered).
    fn filters(&mut self, backend: Backend, filter: &ArticleFilter, with_cursor: bool) -> String {
        let mut conditions = Vec::new();
        if let Some(author) = &filter.author {
            let p = self.param(Arg::Text(author.clone()));
            conditions.push(format!(
                "a.author_id = (SELECT id FROM users WHERE username = {p})"
            ));
        }
        if let Some(tag) = &filter.tag {
            let p = self.param(Arg::Text(tag.clone()));
            conditions.push(format!(
                "a.id IN (SELECT at.article_id FROM article_tags at \
                 JOIN tags t ON t.id = at.tag_id WHERE t.name = {p})"
            ));
        }
        if let Some(user) = &filter.favorited_by {
            let p = self.param(Arg::Text(user.clone()));
            conditions.push(format!(
                "a.id IN (SELECT fa.article_id FROM favorites fa \
                 JOIN users fu ON fu.id = fa.user_id WHERE fu.username = {p})"
            ));
        }
        if let Some(category) = &filter.category {
            let p = self.param(Arg::Text(category.clone()));
            conditions.push(format!("a.category = {p}"));
        }
        if let Some(follower) = filter.feed_of {
            let p = self.param(Arg::Int(follower));
            conditions.push(format!(
                "a.author_id IN (SELECT followee_id FROM follows WHERE follower_id = {p})"
            ));
        }
        if let (true, Some(before)) = (with_cursor, filter.before_id) {
            let p = self.param(Arg::Int(before));
            conditions.push(format!("a.id < {p}"));
        }
        if let Some(query) = &filter.search {
            conditions.push(self.search(backend, query));
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    }

    /// Full-text search, per backend. SQLite's FTS5 trigram index needs at least three
    /// characters; shorter queries (common in Korean: 직관) fall back to a substring scan.
    /// PostgreSQL's pg_trgm GIN index serves `ILIKE` for three characters or more, and
    /// PostgreSQL falls back to a scan by itself below that.
    fn search(&mut self, backend: Backend, query: &str) -> String {
        let pattern = crate::community::domain::like_pattern(query);
        match backend {
            Backend::Postgres => {
                let p = self.param(Arg::Text(pattern));
                format!("(a.title || ' ' || a.description || ' ' || a.body) ILIKE {p}")
            }
            Backend::Sqlite if query.chars().count() >= 3 => {
                // A quoted FTS5 string is matched as a literal phrase; quotes inside are doubled.
                let phrase = format!("\"{}\"", query.replace('"', "\"\""));
                let p = self.param(Arg::Text(phrase));
                format!("a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH {p})")
            }
            Backend::Sqlite => {
                let p = self.param(Arg::Text(pattern));
                format!(
                    "(a.title LIKE {p} ESCAPE '\\' OR a.description LIKE {p} ESCAPE '\\' \
                     OR a.body LIKE {p} ESCAPE '\\')"
                )
            }
        }
    }
}

/// A page of articles.
pub struct Page {
    pub articles: Vec<Article>,
    /// All articles matching the filter, ignoring cursor and paging (`articlesCount`).
    pub total: i64,
    /// The cursor for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// One page of articles, the total matching the filter, and the cursor of the next page (one
/// extra row is read to know whether there is one).
pub async fn list(db: &Db, filter: &ArticleFilter, viewer_id: i64) -> Result<Page> {
    let backend = db.backend();
    // Count and page in one statement: one round trip to the database instead of two.
    let mut statement = Statement::default();
    let count_clause = statement.filters(backend, filter, false);
    let page_sql = select_articles(&mut statement, backend, false, viewer_id, |st| {
        let clause = st.filters(backend, filter, true);
        let limit = st.param(Arg::Int(filter.limit + 1));
        let offset = st.param(Arg::Int(filter.offset));
        format!("{clause} ORDER BY a.id DESC LIMIT {limit} OFFSET {offset}")
    });
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM articles a {count_clause}) AS total, ({page_sql}) AS page"
    );
    let (total, json): (i64, String) = on_read!(db, pool => bind_args!(sqlx::query_as::<_, (i64, String)>(&sql), statement.args)
        .fetch_one(pool)
        .await)?;
    let mut articles = parse_articles(&json)?;
    let limit = usize::try_from(filter.limit).unwrap_or(0);
    let next_cursor = if articles.len() > limit {
        articles.truncate(limit);
        articles.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Page {
        articles,
        total,
        next_cursor,
    })
}

pub async fn by_slug(db: &Db, slug: &str, viewer_id: i64) -> Result<Option<Article>> {
    let mut statement = Statement::default();
    let sql = select_articles(&mut statement, db.backend(), true, viewer_id, |st| {
        let p = st.param(Arg::Text(slug.to_string()));
        format!("WHERE a.slug = {p}")
    });
    Ok(fetch_articles(db, &sql, statement.args)
        .await?
        .into_iter()
        .next())
}

/// The id, author and title of an article, for permission checks before a write.
pub async fn owner(db: &Db, slug: &str) -> Result<Option<(i64, i64, String)>> {
    Ok(
        on_read!(db, pool => sqlx::query_as::<_, (i64, i64, String)>(
        "SELECT id, author_id, title FROM articles WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await)?,
    )
}

#[derive(Debug, Clone)]
pub struct NewArticle {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub body: String,
    pub tags: Vec<String>,
    pub category: String,
    pub author_id: i64,
}

const INSERT_ARTICLE: &str = "INSERT INTO articles \
    (slug, title, description, body, tag_list, category, author_id, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (slug) DO NOTHING RETURNING id";

/// Binds a [`NewArticle`] to [`INSERT_ARTICLE`] (the same for both backends).
macro_rules! bind_new_article {
    ($article:expr, $tag_json:expr) => {
        sqlx::query_scalar::<_, i64>(INSERT_ARTICLE)
            .bind(&$article.slug)
            .bind(&$article.title)
            .bind(&$article.description)
            .bind(&$article.body)
            .bind($tag_json)
            .bind(&$article.category)
            .bind($article.author_id)
            .bind(now())
    };
}

/// Inserts the article; its tags are indexed by a trigger (see the migrations), so this is one
/// statement. On SQLite it goes through group commit, so concurrent posts share commits.
/// Returns `Ok(None)` if the slug is taken (the caller picks another).
pub async fn insert(db: &Db, article: NewArticle) -> Result<Option<i64>> {
    let tag_json = serde_json::to_string(&article.tags).map_err(anyhow::Error::from)?;
    match db {
        Db::Sqlite { group, .. } => {
            let (reply, outcome) = tokio::sync::oneshot::channel();
            let write = Box::new(InsertArticle {
                article,
                tag_json,
                result: None,
                reply,
            });
            if group.submit(write).await.is_err() {
                return Err(anyhow::anyhow!("the database is shutting down").into());
            }
            outcome
                .await
                .map_err(|_| anyhow::anyhow!("the group-commit task ended"))?
        }
        Db::Postgres(pool) => Ok(bind_new_article!(article, &tag_json)
            .fetch_optional(pool)
            .await?),
    }
}

/// An article insert waiting to share a SQLite commit.
struct InsertArticle {
    article: NewArticle,
    tag_json: String,
    result: Option<Result<Option<i64>, sqlx::Error>>,
    reply: tokio::sync::oneshot::Sender<Result<Option<i64>>>,
}

#[async_trait::async_trait]
impl BatchedWrite for InsertArticle {
    async fn run(&mut self, conn: &mut sqlx::SqliteConnection) {
        let result = bind_new_article!(self.article, &self.tag_json)
            .fetch_optional(&mut *conn)
            .await;
        self.result = Some(result);
    }

    fn finish(self: Box<Self>, commit_error: Option<&sqlx::Error>) {
        let outcome = match (commit_error, self.result) {
            (Some(err), _) => Err(anyhow::anyhow!("committing the batch failed: {err}").into()),
            (None, Some(result)) => result.map_err(AppError::from),
            (None, None) => Err(anyhow::anyhow!("the batched insert never ran").into()),
        };
        // The caller may have gone (request cancelled); the article is stored regardless.
        let _ = self.reply.send(outcome);
    }
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

/// Applies the changes in one statement (a trigger re-indexes changed tags). `Ok(false)` if
/// the new slug is taken (the caller picks another).
pub async fn update(db: &Db, id: i64, changes: &ArticleChanges) -> Result<bool> {
    let tag_json = match &changes.tags {
        Some(tags) => Some(serde_json::to_string(tags).map_err(anyhow::Error::from)?),
        None => None,
    };
    let updated = on_write!(db, pool => sqlx::query(
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
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
    match updated {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
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

/// Adds buffered view counts in one transaction. `take` is called only once the write
/// connection is held, so whatever it locks is held for the write itself and not while
/// queueing behind other writers; it returns a guard kept until the commit, and the counts.
pub async fn add_views<G, F, Fut>(db: &Db, take: F) -> Result<(G, Vec<(i64, i64)>)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = (G, Vec<(i64, i64)>)>,
{
    on_write!(db, pool => {
        let mut conn = pool.acquire().await?;
        let (guard, batch) = take().await;
        if !batch.is_empty() {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for (id, count) in &batch {
                sqlx::query("UPDATE articles SET view_count = view_count + $2 WHERE id = $1")
                    .bind(id)
                    .bind(count)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok((guard, batch))
    })
}
