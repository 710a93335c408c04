//! Articles: list (with filters, search and cursor), feed, read, create, update, delete,
//! favourite. Create and update also take a cover picture and find the pictures the body
//! embeds (see [`super::images`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{self, Category, Problems};
use super::images::{self, ArticleImage};
use super::store::articles::{self as store, ArticleChanges, ArticleFilter, NewArticle};
use super::Profile;
use crate::app::AppState;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, ApiQuery};
use crate::openapi::text;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_articles, create_article))
        .routes(routes!(feed))
        .routes(routes!(get_article, update_article, delete_article))
        .routes(routes!(favorite, unfavorite))
}

/// An article as the API shows it. Reads are shaped by the database into exactly these
/// fields (see `store::articles::select_articles`), hence `Deserialize`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Article {
    /// Internal id: used for cursors and view counts, never shown.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// Present on single-article responses; lists omit it (RealWorld since 2024-08).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub tag_list: Vec<String>,
    pub category: String,
    pub view_count: i64,
    #[serde(serialize_with = "super::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "super::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub favorited: bool,
    pub favorites_count: i64,
    /// The cover picture (an upload), or null.
    #[serde(default)]
    pub cover_image: Option<ArticleImage>,
    /// The uploads the body embeds, in order. Like `body`, on single-article responses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<ArticleImage>>,
    pub author: Profile,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleBody {
    pub article: Article,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticleList {
    pub articles: Vec<Article>,
    /// All articles matching the filters, not just this page.
    pub articles_count: i64,
    /// Pass as `before` to get the next page; stable while new articles arrive. Null on the
    /// last page.
    pub next_cursor: Option<i64>,
}

/// Adds the views counted in memory but not yet flushed, so a reader sees their own view.
fn with_pending_views(state: &AppState, mut article: Article) -> Article {
    article.view_count += state.views.unflushed(article.id);
    article
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only articles with this tag.
    #[param(pattern = r"^[^\u0000]*$")]
    tag: Option<String>,
    /// Only articles by this username.
    #[param(pattern = r"^[^\u0000]*$")]
    author: Option<String>,
    /// Only articles this username favourited.
    #[param(pattern = r"^[^\u0000]*$")]
    favorited: Option<String>,
    /// Only this board (empty: every board).
    #[param(schema_with = category_filter_schema, required = false)]
    category: Option<String>,
    /// Full-text search over title, description and body (works for Korean).
    #[param(schema_with = search_schema, required = false)]
    q: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(schema_with = domain::page_limit_schema, required = false)]
    limit: Option<i64>,
    /// Articles to skip (default 0).
    #[param(schema_with = domain::offset_schema, required = false)]
    offset: Option<i64>,
    /// Cursor: only articles older than this `nextCursor`.
    #[param(schema_with = cursor_schema, required = false)]
    before: Option<i64>,
}

fn category_filter_schema() -> utoipa::openapi::schema::Object {
    let mut schema = domain::category_schema();
    if let Some(keys) = &mut schema.enum_values {
        keys.push("".into());
    }
    text::described(schema, "Only this board (empty: every board).")
}

fn search_schema() -> utoipa::openapi::schema::Object {
    text::described(
        text::optional(domain::MAX_TITLE),
        "Full-text search over title, description and body (works for Korean).",
    )
}

fn cursor_schema() -> utoipa::openapi::schema::Object {
    text::described(
        text::id(),
        "Cursor: only articles older than this `nextCursor`.",
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-100 (default 20).
    #[param(schema_with = domain::page_limit_schema, required = false)]
    limit: Option<i64>,
    /// Articles to skip (default 0).
    #[param(schema_with = domain::offset_schema, required = false)]
    offset: Option<i64>,
    /// Cursor: only articles older than this `nextCursor`.
    #[param(schema_with = cursor_schema, required = false)]
    before: Option<i64>,
}

/// Checks paging parameters, recording problems; returns (limit, offset).
fn paging(problems: &mut Problems, limit: Option<i64>, offset: Option<i64>) -> (i64, i64) {
    let limit = limit.unwrap_or(domain::DEFAULT_PAGE);
    let offset = offset.unwrap_or(0);
    if !(1..=domain::MAX_PAGE).contains(&limit) {
        problems.add(
            "limit",
            format!("must be between 1 and {}", domain::MAX_PAGE),
        );
    }
    if offset < 0 {
        problems.add("offset", "must not be negative");
    }
    (limit, offset)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

async fn page(
    state: &AppState,
    filter: ArticleFilter,
    viewer_id: i64,
) -> Result<Json<ArticleList>> {
    let _consistent = state.views.read_gate().await;
    let page = store::list(&state.db, &filter, viewer_id).await?;
    Ok(Json(ArticleList {
        articles: page
            .articles
            .into_iter()
            .map(|a| with_pending_views(state, a))
            .collect(),
        articles_count: page.total,
        next_cursor: page.next_cursor,
    }))
}

/// Articles, newest first, optionally filtered.
#[utoipa::path(get, path = "/api/articles", tag = "articles", params(ListQuery),
    responses((status = 200, body = ArticleList), (status = 422, description = "bad paging or category")),
    security((), ("token" = [])))]
async fn list_articles(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ArticleList>> {
    let mut problems = Problems::default();
    let (limit, offset) = paging(&mut problems, query.limit, query.offset);
    // Keys are matched as sent, as the document lists them.
    let category = match query.category.filter(|key| !key.is_empty()) {
        Some(key) => problems
            .check("category", Category::parse(&key))
            .map(|c| c.key().to_string()),
        None => None,
    };
    if let Some(q) = &query.q {
        problems.check("q", domain::bounded_text(q, domain::MAX_TITLE));
    }
    let search = non_empty(query.q);
    problems.finish()?;
    let filter = ArticleFilter {
        tag: non_empty(query.tag),
        author: non_empty(query.author),
        favorited_by: non_empty(query.favorited),
        category,
        feed_of: None,
        search,
        before_id: query.before,
        limit,
        offset,
    };
    page(&state, filter, viewer.viewer_id()).await
}

/// Articles by the users the caller follows, newest first.
#[utoipa::path(get, path = "/api/articles/feed", tag = "articles", params(PageQuery),
    responses((status = 200, body = ArticleList), (status = 401)), security(("token" = [])))]
async fn feed(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ArticleList>> {
    let mut problems = Problems::default();
    let (limit, offset) = paging(&mut problems, query.limit, query.offset);
    problems.finish()?;
    let filter = ArticleFilter {
        feed_of: Some(auth.id),
        before_id: query.before,
        limit,
        offset,
        ..ArticleFilter::default()
    };
    page(&state, filter, auth.id).await
}

/// One article, with its body. Counts a view.
#[utoipa::path(get, path = "/api/articles/{slug}", tag = "articles", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleBody), (status = 404)),
    security((), ("token" = [])))]
async fn get_article(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(slug): Path<String>,
) -> Result<Json<ArticleBody>> {
    let _consistent = state.views.read_gate().await;
    let mut article = store::by_slug(&state.db, &slug, viewer.viewer_id())
        .await?
        .ok_or(AppError::NotFound("article"))?;
    article.view_count += state.views.record(article.id);
    Ok(Json(ArticleBody { article }))
}

/// Re-reads an article after a write, for the response.
async fn reload(state: &AppState, slug: &str, viewer_id: i64) -> Result<Json<ArticleBody>> {
    let _consistent = state.views.read_gate().await;
    let article = store::by_slug(&state.db, slug, viewer_id)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    Ok(Json(ArticleBody {
        article: with_pending_views(state, article),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewArticleBody {
    article: NewArticleInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewArticleInput {
    #[schema(schema_with = title_schema, required = true)]
    title: Option<String>,
    #[schema(schema_with = description_schema, required = true)]
    description: Option<String>,
    #[schema(schema_with = body_schema, required = true)]
    body: Option<String>,
    #[serde(default)]
    #[schema(schema_with = domain::tags_schema, required = false)]
    tag_list: Vec<String>,
    /// Board key (default `free`).
    #[schema(schema_with = domain::nullable_category_schema)]
    category: Option<String>,
    /// Id of one of the author's uploads to show as the cover.
    cover_image: Option<String>,
}

fn title_schema() -> utoipa::openapi::schema::Object {
    text::required(domain::MAX_TITLE)
}

fn description_schema() -> utoipa::openapi::schema::Object {
    text::required(domain::MAX_DESCRIPTION)
}

fn body_schema() -> utoipa::openapi::schema::Object {
    text::required(domain::MAX_BODY)
}

fn nullable_title_schema() -> utoipa::openapi::schema::Object {
    text::or_null(title_schema())
}

fn nullable_description_schema() -> utoipa::openapi::schema::Object {
    text::or_null(description_schema())
}

fn nullable_body_schema() -> utoipa::openapi::schema::Object {
    text::or_null(body_schema())
}

fn nullable_tags_schema() -> utoipa::openapi::schema::Array {
    let mut tags = domain::tags_schema();
    tags.schema_type = utoipa::openapi::schema::SchemaType::from_iter([
        utoipa::openapi::schema::Type::Array,
        utoipa::openapi::schema::Type::Null,
    ]);
    tags
}

/// Slugs carry a random suffix, so a collision is rare; a few tries make it impossible in
/// practice without a read-before-write race.
const SLUG_ATTEMPTS: usize = 5;

/// Create an article.
#[utoipa::path(post, path = "/api/articles", tag = "articles", request_body = NewArticleBody,
    responses((status = 201, body = ArticleBody), (status = 401), (status = 422)), security(("token" = [])))]
async fn create_article(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<NewArticleBody>,
) -> Result<(StatusCode, Json<ArticleBody>)> {
    let input = body.article;
    let mut problems = Problems::default();
    let title = problems.check(
        "title",
        domain::required_text(input.title.as_deref(), domain::MAX_TITLE),
    );
    let description = problems.check(
        "description",
        domain::required_text(input.description.as_deref(), domain::MAX_DESCRIPTION),
    );
    let text = problems.check(
        "body",
        domain::required_text(input.body.as_deref(), domain::MAX_BODY),
    );
    let tags = problems.check("tagList", domain::parse_tags(&input.tag_list));
    let category = match input.category.as_deref() {
        Some(key) => problems.check("category", Category::parse(key)),
        None => Some(Category::Free),
    };
    let images = images::check(
        &state.db,
        auth.id,
        &mut problems,
        Some(input.cover_image.as_deref()),
        text.as_deref(),
    )
    .await?;
    problems.finish()?;
    let (Some(title), Some(description), Some(text), Some(tags), Some(category)) =
        (title, description, text, tags, category)
    else {
        unreachable!("problems.finish() returns early when a field is invalid");
    };

    let mut new = NewArticle {
        slug: domain::slugify(&title),
        title,
        description,
        body: text,
        tags,
        category: category.key().to_string(),
        author_id: auth.id,
        images,
    };
    for _ in 0..SLUG_ATTEMPTS {
        if let Some(article) = store::create(&state.db, new.clone()).await? {
            return Ok((StatusCode::CREATED, Json(ArticleBody { article })));
        }
        new.slug = domain::slugify(&new.title);
    }
    Err(anyhow::anyhow!("no free slug after {SLUG_ATTEMPTS} attempts").into())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateArticleBody {
    article: UpdateArticleInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateArticleInput {
    /// Absent or null: unchanged.
    #[schema(schema_with = nullable_title_schema)]
    title: Option<String>,
    #[schema(schema_with = nullable_description_schema)]
    description: Option<String>,
    #[schema(schema_with = nullable_body_schema)]
    body: Option<String>,
    #[schema(schema_with = nullable_tags_schema)]
    tag_list: Option<Vec<String>>,
    #[schema(schema_with = domain::nullable_category_schema)]
    category: Option<String>,
    /// An upload id sets the cover, null removes it, absent keeps it.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    cover_image: Option<Option<String>>,
}

/// Loads the article's id and checks that `user_id` wrote it: 404 before 403.
/// Returns the article's id and current title.
async fn owned_article(state: &AppState, slug: &str, user_id: i64) -> Result<(i64, String)> {
    let (id, author_id, title) = store::owner(&state.db, slug)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    if author_id != user_id {
        return Err(AppError::Forbidden);
    }
    Ok((id, title))
}

/// Update an article (author only). A new title gives a new slug.
#[utoipa::path(put, path = "/api/articles/{slug}", tag = "articles", params(("slug" = String, Path)),
    request_body = UpdateArticleBody,
    responses((status = 200, body = ArticleBody), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn update_article(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<UpdateArticleBody>,
) -> Result<Json<ArticleBody>> {
    let (id, current_title) = owned_article(&state, &slug, auth.id).await?;
    let input = body.article;
    let mut problems = Problems::default();
    let mut changes = ArticleChanges::default();
    if let Some(title) = input.title.as_deref() {
        changes.title = problems.check(
            "title",
            domain::required_text(Some(title), domain::MAX_TITLE),
        );
    }
    if let Some(description) = input.description.as_deref() {
        changes.description = problems.check(
            "description",
            domain::required_text(Some(description), domain::MAX_DESCRIPTION),
        );
    }
    if let Some(text) = input.body.as_deref() {
        changes.body = problems.check("body", domain::required_text(Some(text), domain::MAX_BODY));
    }
    if let Some(tags) = &input.tag_list {
        changes.tags = problems.check("tagList", domain::parse_tags(tags));
    }
    if let Some(key) = input.category.as_deref() {
        changes.category = problems
            .check("category", Category::parse(key))
            .map(|c| c.key().to_string());
    }
    changes.images = images::check(
        &state.db,
        auth.id,
        &mut problems,
        input.cover_image.as_ref().map(Option::as_deref),
        changes.body.as_deref(),
    )
    .await?;
    problems.finish()?;
    // Clients re-send the title on every save: only a different title makes a new slug, so
    // links to the article survive edits of its body.
    let retitled = changes.title.as_ref().is_some_and(|t| *t != current_title);

    for _ in 0..SLUG_ATTEMPTS {
        changes.slug = retitled.then(|| domain::slugify(changes.title.as_deref().unwrap_or("")));
        if store::update(&state.db, id, &changes).await? {
            let new_slug = changes.slug.as_deref().unwrap_or(&slug);
            return reload(&state, new_slug, auth.id).await;
        }
    }
    Err(anyhow::anyhow!("no free slug after {SLUG_ATTEMPTS} attempts").into())
}

/// Delete an article (its author, or an admin: `community::moderation`).
#[utoipa::path(delete, path = "/api/articles/{slug}", tag = "articles", params(("slug" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)), security(("token" = [])))]
async fn delete_article(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(slug): Path<String>,
) -> Result<StatusCode> {
    let (id, author_id, _) = store::owner(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    let actor = super::moderation::Actor::load(&state.db, auth.id).await?;
    if !super::moderation::may_delete(author_id, actor) {
        return Err(AppError::Forbidden);
    }
    store::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_favorite(
    state: AppState,
    auth: AuthUser,
    slug: String,
    favorite: bool,
) -> Result<Json<ArticleBody>> {
    let (id, _, _) = store::owner(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    store::set_favorite(&state.db, auth.id, id, favorite).await?;
    reload(&state, &slug, auth.id).await
}

/// Favourite an article.
#[utoipa::path(post, path = "/api/articles/{slug}/favorite", tag = "articles", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleBody), (status = 401), (status = 404)), security(("token" = [])))]
async fn favorite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(slug): Path<String>,
) -> Result<Json<ArticleBody>> {
    set_favorite(state, auth, slug, true).await
}

/// Remove a favourite.
#[utoipa::path(delete, path = "/api/articles/{slug}/favorite", tag = "articles", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleBody), (status = 401), (status = 404)), security(("token" = [])))]
async fn unfavorite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(slug): Path<String>,
) -> Result<Json<ArticleBody>> {
    set_favorite(state, auth, slug, false).await
}
