//! SQL for articles, tags, favourites, view counts and the uploads articles use.
//!
//! Lists are ordered by id, newest first: ids only grow, so the order is total and a cursor
//! (`before` = the last id seen) pages correctly even while new articles are inserted.
//!
//! An article's cover comes with it in the same statement, through a left join on
//! `article_uploads` (at most one cover per article, by a unique index) and `uploads`, so a
//! list stays one query however many covers it shows. The statements read the cover's id and
//! status; `community::images` turns them into URLs. The body's pictures are read the same
//! way, as an aggregate subquery, on single-article reads only (like the body).

use crate::community::articles::Article;
use crate::community::images::{ArticleImage, ImageChanges, StoredImage};
use crate::community::Profile;
use crate::db::group_commit::BatchedWrite;
use crate::db::now;
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

/// The statement that reads articles, newest first, in the form that is cheapest for the
/// backend; both end as [`Article`] values, and both are generated from one column list
/// ([`ARTICLE_COLUMNS`]), so the shape is defined once.
///
/// - SQLite: one row, one text column holding the page as a JSON array shaped by the
///   database. sqlx's SQLite driver hands every row across a channel from the connection's
///   worker thread, with a wake-up per row; for a page of 20 articles that per-row cost
///   dominated the request. One aggregated row costs one hand-over.
/// - PostgreSQL: plain rows decoded by sqlx. Building JSON inside PostgreSQL cost it 2.3×
///   the CPU of returning rows (measured with pgbench, see docs/benchmarks.md), and there is
///   no per-row hand-over to save.
fn select_articles(
    statement: &mut Statement,
    table: &str,
    backend: Backend,
    with_body: bool,
    viewer_id: i64,
    rest: impl FnOnce(&mut Statement) -> String,
) -> String {
    let (favorited, following) = if viewer_id == 0 {
        // An anonymous viewer follows and favours nothing: skip both lookups per row.
        ("1 = 0".to_string(), "1 = 0".to_string())
    } else {
        let viewer = statement.param(Arg::Int(viewer_id));
        (
            format!("EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = {viewer})"),
            format!("EXISTS(SELECT 1 FROM follows fo WHERE fo.followee_id = a.author_id AND fo.follower_id = {viewer})"),
        )
    };
    let rest = rest(statement);
    let column = |c: &Column| -> Option<(&'static str, String)> {
        let expr = match c.source {
            Source::Plain(expr) => expr.to_string(),
            Source::Body if with_body => "a.body".to_string(),
            Source::Images if with_body => match backend {
                Backend::Sqlite => format!("json(({BODY_IMAGES_SQLITE}))"),
                Backend::Postgres => format!("({BODY_IMAGES_POSTGRES})"),
            },
            Source::Body | Source::Images => return None,
            Source::Favorited => favorited.clone(),
            Source::Following => following.clone(),
            Source::Cover => match backend {
                // One value: {"id", "status"} or null.
                Backend::Sqlite => "json(CASE WHEN c.id IS NULL THEN NULL \
                    ELSE json_object('id', c.id, 'status', c.status) END)"
                    .to_string(),
                // Two plain columns, read by `article_from_pg_row`.
                Backend::Postgres => "c.id AS \"coverId\", c.status AS \"coverStatus\"".into(),
            },
        };
        Some((c.key, expr))
    };
    match backend {
        Backend::Sqlite => {
            let json_pair = |(key, expr): (&str, String)| {
                let value = match key {
                    "tagList" => format!("json({expr})"),
                    "createdAt" | "updatedAt" => format!("strftime('%Y-%m-%dT%H:%M:%fZ', {expr})"),
                    "favorited" | "following" => {
                        format!("json(CASE WHEN {expr} THEN 'true' ELSE 'false' END)")
                    }
                    _ => expr,
                };
                format!("'{key}', {value}")
            };
            let article: Vec<String> = ARTICLE_COLUMNS
                .iter()
                .filter_map(column)
                .map(json_pair)
                .collect();
            let author: Vec<String> = AUTHOR_COLUMNS
                .iter()
                .filter_map(column)
                .map(json_pair)
                .collect();
            format!(
                "SELECT COALESCE((SELECT json_group_array(json(page.obj) ORDER BY page.id DESC) FROM ( \
                   SELECT a.id, json_object({}, 'author', json_object({})) AS obj \
                   FROM {table} a {ARTICLE_JOINS} {rest}) page), '[]')",
                article.join(", "),
                author.join(", "),
            )
        }
        Backend::Postgres => {
            let columns: Vec<String> = ARTICLE_COLUMNS
                .iter()
                .chain(AUTHOR_COLUMNS)
                .filter_map(column)
                .map(|(key, expr)| match key {
                    "tagList" => format!("{expr}::json AS tag_list"),
                    "coverImage" => expr, // already two aliased columns
                    _ => format!("{expr} AS \"{key}\""),
                })
                .collect();
            format!(
                "SELECT {} FROM {table} a {ARTICLE_JOINS} {rest}",
                columns.join(", ")
            )
        }
    }
}

/// What every article read joins to the articles `a`: the author, and the cover upload if
/// there is one (the unique index `article_uploads_one_cover` keeps this at one row per
/// article).
const ARTICLE_JOINS: &str = "JOIN users u ON u.id = a.author_id \
    LEFT JOIN article_uploads ac ON ac.article_id = a.id AND ac.role = 'cover' \
    LEFT JOIN uploads c ON c.id = ac.upload_id";

/// The body's uploads as a JSON array of `{"id", "status"}`, in body order.
const BODY_IMAGES_SQLITE: &str =
    "SELECT json_group_array(json_object('id', bu.id, 'status', bu.status) \
      ORDER BY ab.position) \
    FROM article_uploads ab JOIN uploads bu ON bu.id = ab.upload_id \
    WHERE ab.article_id = a.id AND ab.role = 'body'";
const BODY_IMAGES_POSTGRES: &str =
    "SELECT COALESCE(json_agg(json_build_object('id', bu.id, 'status', bu.status) \
      ORDER BY ab.position), '[]'::json) \
    FROM article_uploads ab JOIN uploads bu ON bu.id = ab.upload_id \
    WHERE ab.article_id = a.id AND ab.role = 'body'";

/// Where a column of [`Article`] comes from.
enum Source {
    Plain(&'static str),
    /// Only on single-article reads.
    Body,
    Favorited,
    Following,
    /// The cover upload, from the joined `c`.
    Cover,
    /// The body's uploads; only on single-article reads.
    Images,
}

struct Column {
    /// The JSON key (SQLite) and column alias (PostgreSQL), as [`Article`] names it.
    key: &'static str,
    source: Source,
}

const fn col(key: &'static str, expr: &'static str) -> Column {
    Column {
        key,
        source: Source::Plain(expr),
    }
}

const ARTICLE_COLUMNS: &[Column] = &[
    col("id", "a.id"),
    col("slug", "a.slug"),
    col("title", "a.title"),
    col("description", "a.description"),
    Column {
        key: "body",
        source: Source::Body,
    },
    col("tagList", "a.tag_list"),
    col("category", "a.category"),
    col("viewCount", "a.view_count"),
    col("createdAt", "a.created_at"),
    col("updatedAt", "a.updated_at"),
    Column {
        key: "favorited",
        source: Source::Favorited,
    },
    col("favoritesCount", "a.favorites_count"),
    Column {
        key: "coverImage",
        source: Source::Cover,
    },
    Column {
        key: "images",
        source: Source::Images,
    },
];

const AUTHOR_COLUMNS: &[Column] = &[
    col("username", "u.username"),
    col("bio", "u.bio"),
    col("image", "u.image"),
    col("team", "u.team"),
    Column {
        key: "following",
        source: Source::Following,
    },
];

/// Runs an article statement from [`select_articles`].
async fn fetch_articles(db: &Db, sql: &str, args: Vec<Arg>) -> Result<Vec<Article>> {
    match db {
        Db::Sqlite { .. } => parse_json(&sqlite_text(db, sql, args).await?),
        Db::Postgres { pool, .. } => {
            let rows = bind_args!(sqlx::query(sql), args).fetch_all(pool).await?;
            rows.iter().map(article_from_pg_row).collect()
        }
    }
}

/// The one text column of a one-row SQLite read, on the direct path when the database has one
/// (see [`crate::db::direct`]), else through sqlx's read pool.
async fn sqlite_text(db: &Db, sql: &str, args: Vec<Arg>) -> Result<String> {
    match db {
        Db::Sqlite {
            direct: Some(direct),
            ..
        } => {
            let params = args
                .into_iter()
                .map(|arg| match arg {
                    Arg::Text(text) => rusqlite::types::Value::Text(text),
                    Arg::Int(int) => rusqlite::types::Value::Integer(int),
                })
                .collect();
            direct
                .query_row(sql.to_string(), params, |row| row.get::<_, String>(0))
                .await?
                .ok_or_else(|| anyhow::anyhow!("a one-row SQLite read returned no row").into())
        }
        Db::Sqlite { read, .. } => Ok(bind_args!(sqlx::query_scalar::<_, String>(sql), args)
            .fetch_one(read)
            .await?),
        Db::Postgres { .. } => Err(anyhow::anyhow!("a SQLite read on PostgreSQL").into()),
    }
}

/// The SQLite list statement's one value: the total and the page.
#[derive(serde::Deserialize)]
struct CountedPage {
    total: i64,
    articles: Vec<Article>,
}

/// Articles (or a [`CountedPage`]) from JSON the database shaped.
fn parse_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("article JSON from the database did not parse: {e}").into())
}

fn article_from_pg_row(row: &sqlx::postgres::PgRow) -> Result<Article> {
    use sqlx::Row;
    let tags: sqlx::types::Json<Vec<String>> = row.try_get("tag_list")?;
    Ok(Article {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        body: row.try_get("body").ok(),
        tag_list: tags.0,
        category: row.try_get("category")?,
        view_count: row.try_get("viewCount")?,
        created_at: row.try_get("createdAt")?,
        updated_at: row.try_get("updatedAt")?,
        favorited: row.try_get("favorited")?,
        favorites_count: row.try_get("favoritesCount")?,
        cover_image: match row.try_get::<Option<String>, _>("coverId")? {
            Some(id) => Some(ArticleImage::from(StoredImage {
                id,
                status: row.try_get("coverStatus")?,
            })),
            None => None,
        },
        images: row
            .try_get::<sqlx::types::Json<Vec<StoredImage>>, _>("images")
            .ok()
            .map(|images| images.0.into_iter().map(ArticleImage::from).collect()),
        author: Profile {
            username: row.try_get("username")?,
            bio: row.try_get("bio")?,
            image: row.try_get("image")?,
            team: row.try_get("team")?,
            following: row.try_get("following")?,
        },
    })
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

    /// `LIMIT`/`OFFSET` for a page, binding the offset only when it is not 0 (see
    /// [`crate::db::page_clause`]).
    fn page(&mut self, limit: i64, offset: i64) -> String {
        let offset_param = if offset == 0 {
            String::new()
        } else {
            self.param(Arg::Int(offset))
        };
        crate::db::page_clause(limit, offset, &offset_param)
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
            // Tags are stored in this form (see `tag_key`), so the index lookup stays exact.
            let p = self.param(Arg::Text(crate::community::domain::tag_key(tag)));
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

/// The statement counting the articles `clause` (from [`Statement::filters`]) matches: with
/// no filter, the database's own running count (`article_count`, kept by triggers; see the
/// migrations), which does not grow with the table; else a count of the matching rows.
///
/// Measured on PostgreSQL with 19,000 articles (docs/benchmarks.md): the list at 1,451 req/s
/// counting rows, 6,148 req/s reading the counter, and article inserts as fast with the
/// counter's trigger as without it.
fn count_articles(clause: &str) -> String {
    if clause.is_empty() {
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM article_count".into()
    } else {
        format!("SELECT COUNT(*) FROM articles a {clause}")
    }
}

/// One page of articles, the total matching the filter, and the cursor of the next page (one
/// extra row is read to know whether there is one).
pub async fn list(db: &Db, filter: &ArticleFilter, viewer_id: i64) -> Result<Page> {
    let backend = db.backend();
    let page = |statement: &mut Statement| {
        select_articles(statement, "articles", backend, false, viewer_id, |st| {
            let clause = st.filters(backend, filter, true);
            let page = st.page(filter.limit + 1, filter.offset);
            format!("{clause} ORDER BY a.id DESC {page}")
        })
    };
    let (mut articles, total) = match db {
        Db::Sqlite { .. } => {
            // Count and page in one statement, one text value: one hand-over.
            let mut statement = Statement::default();
            let count_clause = statement.filters(backend, filter, false);
            let page_sql = page(&mut statement);
            // Joined as text: `json_object` would parse the page's JSON again to embed it.
            let sql = format!(
                "SELECT '{{\"total\":' || ({}) || ',\"articles\":' || ({page_sql}) || '}}'",
                count_articles(&count_clause)
            );
            let json = sqlite_text(db, &sql, statement.args).await?;
            let page: CountedPage = parse_json(&json)?;
            (page.articles, page.total)
        }
        Db::Postgres { pool, .. } => {
            // One statement: the count is an uncorrelated scalar subquery (the inner `a`
            // shadows the outer one), which PostgreSQL evaluates once, as an InitPlan, and
            // repeats on every row. One round trip and one pooled connection per page.
            let mut statement = Statement::default();
            let count_clause = statement.filters(backend, filter, false);
            let page_sql = page(&mut statement);
            let sql = format!(
                "SELECT page.*, ({}) AS total FROM ({page_sql}) page ORDER BY page.id DESC",
                count_articles(&count_clause)
            );
            let rows = bind_args!(sqlx::query(&sql), statement.args)
                .fetch_all(pool)
                .await?;
            let total = match rows.first() {
                Some(row) => sqlx::Row::try_get::<i64, _>(row, "total")?,
                // An empty page (past the end, or a cursor past the last match) carries no
                // count: ask for it alone.
                None => {
                    let mut count = Statement::default();
                    let count_sql = count_articles(&count.filters(backend, filter, false));
                    bind_args!(sqlx::query_scalar::<_, i64>(&count_sql), count.args)
                        .fetch_one(pool)
                        .await?
                }
            };
            let articles = rows
                .iter()
                .map(article_from_pg_row)
                .collect::<Result<Vec<_>>>()?;
            (articles, total)
        }
    };
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
    let sql = select_articles(
        &mut statement,
        "articles",
        db.backend(),
        true,
        viewer_id,
        |st| {
            let p = st.param(Arg::Text(slug.to_string()));
            format!("WHERE a.slug = {p}")
        },
    );
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
    /// Its cover and the uploads its body embeds (checked by `community::images`).
    pub images: ImageChanges,
}

/// Writes the upload links that `$changes` ([`ImageChanges`]) sets for article `$id` on
/// `$conn`, inside the caller's transaction or savepoint. Same SQL on both backends.
macro_rules! write_images {
    ($conn:expr, $id:expr, $changes:expr) => {{
        let changes: &ImageChanges = $changes;
        let id: i64 = $id;
        let roles = [
            (
                "cover",
                changes.cover.as_ref().map(|c| c.iter().collect::<Vec<_>>()),
            ),
            (
                "body",
                changes.body.as_ref().map(|b| b.iter().collect::<Vec<_>>()),
            ),
        ];
        for (role, uploads) in roles {
            let Some(uploads) = uploads else { continue };
            sqlx::query("DELETE FROM article_uploads WHERE article_id = $1 AND role = $2")
                .bind(id)
                .bind(role)
                .execute(&mut *$conn)
                .await?;
            for (position, upload) in uploads.into_iter().enumerate() {
                sqlx::query(
                    "INSERT INTO article_uploads (article_id, upload_id, role, position) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(upload.as_str())
                .bind(role)
                .bind(position as i32)
                .execute(&mut *$conn)
                .await?;
            }
        }
    }};
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
        Db::Postgres { pool, .. } if article.images.is_empty() => {
            Ok(bind_new_article!(article, &tag_json)
                .fetch_optional(pool)
                .await?)
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            let id = bind_new_article!(article, &tag_json)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(id) = id {
                write_images!(tx, id, &article.images);
            }
            tx.commit().await?;
            Ok(id)
        }
    }
}

/// Inserts the article and reads it back as its author sees it. `Ok(None)` if the slug is
/// taken (the caller picks another).
///
/// On PostgreSQL an article without pictures is one statement: the insert in a CTE, read
/// through the same column list as every other article read (the tag trigger runs inside
/// it). Otherwise it is [`insert`] and then [`by_slug`].
pub async fn create(db: &Db, article: NewArticle) -> Result<Option<Article>> {
    if let (Db::Postgres { pool, .. }, true) = (db, article.images.is_empty()) {
        let tag_json = serde_json::to_string(&article.tags).map_err(anyhow::Error::from)?;
        let mut statement = Statement::default();
        let select = select_articles(
            &mut statement,
            "inserted",
            Backend::Postgres,
            true,
            article.author_id,
            |_| String::new(),
        );
        // The insert's values are numbered after the parameters `select` took (the viewer).
        let first = statement.args.len() + 1;
        let [slug, title, description, body, tags, category, author, at] =
            std::array::from_fn(|i| format!("${}", first + i));
        let sql = format!(
            "WITH inserted AS (INSERT INTO articles \
               (slug, title, description, body, tag_list, category, author_id, created_at, updated_at) \
             VALUES ({slug}, {title}, {description}, {body}, {tags}, {category}, {author}, {at}, {at}) \
             ON CONFLICT (slug) DO NOTHING RETURNING *) {select}"
        );
        let query = bind_args!(sqlx::query(&sql), statement.args)
            .bind(&article.slug)
            .bind(&article.title)
            .bind(&article.description)
            .bind(&article.body)
            .bind(&tag_json)
            .bind(&article.category)
            .bind(article.author_id)
            .bind(now());
        let row = query.fetch_optional(pool).await?;
        return row.as_ref().map(article_from_pg_row).transpose();
    }
    let (slug, author_id) = (article.slug.clone(), article.author_id);
    match insert(db, article).await? {
        Some(_) => by_slug(db, &slug, author_id).await,
        None => Ok(None),
    }
}

/// An article insert waiting to share a SQLite commit.
struct InsertArticle {
    article: NewArticle,
    tag_json: String,
    result: Option<Result<Option<i64>, sqlx::Error>>,
    reply: tokio::sync::oneshot::Sender<Result<Option<i64>>>,
}

impl InsertArticle {
    async fn insert_with_images(
        &self,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<Option<i64>, sqlx::Error> {
        let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
        let id = bind_new_article!(self.article, &self.tag_json)
            .fetch_optional(&mut *savepoint)
            .await?;
        if let Some(id) = id {
            write_images!(savepoint, id, &self.article.images);
        }
        savepoint.commit().await?;
        Ok(id)
    }
}

#[async_trait::async_trait]
impl BatchedWrite for InsertArticle {
    async fn run(&mut self, conn: &mut sqlx::SqliteConnection) {
        let result = if self.article.images.is_empty() {
            bind_new_article!(self.article, &self.tag_json)
                .fetch_optional(&mut *conn)
                .await
        } else {
            // A savepoint, so that the article and its links are kept or undone together
            // without failing the other writes of the batch.
            self.insert_with_images(conn).await
        };
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
    /// A new cover and/or the uploads a new body embeds.
    pub images: ImageChanges,
}

/// Applies the changes in one transaction: one statement for the article (a trigger
/// re-indexes changed tags), and the upload links if the cover or body changed. `Ok(false)`
/// if the new slug is taken (the caller picks another).
pub async fn update(db: &Db, id: i64, changes: &ArticleChanges) -> Result<bool> {
    let tag_json = match &changes.tags {
        Some(tags) => Some(serde_json::to_string(tags).map_err(anyhow::Error::from)?),
        None => None,
    };
    on_write!(db, pool => {
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
            .bind(now())
            .execute(&mut *tx)
            .await;
        match updated {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        write_images!(tx, id, &changes.images);
        tx.commit().await?;
        Ok::<_, AppError>(true)
    })
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

/// How the web UI's boards can order a list (the API lists newest first only).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ArticleOrder {
    #[default]
    Newest,
    MostViewed,
    MostCommented,
}

impl ArticleOrder {
    /// The ORDER BY of each order; ties go to the newer article, so pages never overlap.
    fn sql(self) -> &'static str {
        match self {
            ArticleOrder::Newest => "a.id DESC",
            ArticleOrder::MostViewed => "a.view_count DESC, a.id DESC",
            ArticleOrder::MostCommented => {
                "(SELECT COUNT(*) FROM comments cc WHERE cc.article_id = a.id) DESC, a.id DESC"
            }
        }
    }
}

/// One numbered page (`filter.limit` and `filter.offset`; the cursor is ignored) in `order`,
/// and the total matching the filter. Two steps: the page's ids in order (a narrow query the
/// sort can use indexes for), then those articles through the usual statement, put back in
/// that order.
///
/// `fans_of` keeps articles whose author supports that team (the team pages).
pub async fn list_ordered(
    db: &Db,
    filter: &ArticleFilter,
    order: ArticleOrder,
    fans_of: Option<&str>,
    viewer_id: i64,
) -> Result<(Vec<Article>, i64)> {
    let backend = db.backend();
    let with_team = |st: &mut Statement, clause: String| match fans_of {
        None => clause,
        Some(team) => {
            let p = st.param(Arg::Text(team.to_string()));
            let condition = format!("a.author_id IN (SELECT id FROM users WHERE team = {p})");
            if clause.is_empty() {
                format!("WHERE {condition}")
            } else {
                format!("{clause} AND {condition}")
            }
        }
    };
    let mut ids_statement = Statement::default();
    let clause = ids_statement.filters(backend, filter, false);
    let clause = with_team(&mut ids_statement, clause);
    let page = ids_statement.page(filter.limit, filter.offset);
    let ids_sql = format!(
        "SELECT a.id FROM articles a {clause} ORDER BY {} {page}",
        order.sql()
    );
    let mut count = Statement::default();
    let count_clause = count.filters(backend, filter, false);
    let count_sql = count_articles(&with_team(&mut count, count_clause));
    let ids: Vec<i64> = on_read!(db, pool => bind_args!(sqlx::query_scalar::<_, i64>(&ids_sql), ids_statement.args)
        .fetch_all(pool)
        .await)?;
    let total: i64 = on_read!(db, pool => bind_args!(sqlx::query_scalar::<_, i64>(&count_sql), count.args)
        .fetch_one(pool)
        .await)?;
    if ids.is_empty() {
        return Ok((Vec::new(), total));
    }
    let mut statement = Statement::default();
    let sql = select_articles(
        &mut statement,
        "articles",
        backend,
        false,
        viewer_id,
        |st| {
            let placeholders: Vec<String> = ids.iter().map(|id| st.param(Arg::Int(*id))).collect();
            format!(
                "WHERE a.id IN ({}) ORDER BY a.id DESC",
                placeholders.join(", ")
            )
        },
    );
    let mut articles = fetch_articles(db, &sql, statement.args).await?;
    articles.sort_by_key(|a| ids.iter().position(|id| *id == a.id));
    Ok((articles, total))
}
