//! Comments on articles: list, add, edit (author only), delete (author only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{self, Problems};
use super::store::articles as article_store;
use super::store::comments::{self as store, CommentRow};
use super::{timestamp, Profile};
use crate::app::AppState;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, ApiQuery};

/// Comments per response at most; the default returns them all up to this cap.
pub const MAX_COMMENTS_PAGE: i64 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(edit_comment, delete_comment))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub body: String,
    pub author: Profile,
    /// The comment this one replies to, or null for a top-level comment.
    pub parent_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentBody {
    pub comment: Comment,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentList {
    pub comments: Vec<Comment>,
}

fn comment(row: CommentRow) -> Comment {
    Comment {
        id: row.id,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
        body: row.body,
        author: Profile {
            username: row.author_username,
            bio: row.author_bio,
            image: row.author_image,
            team: row.author_team,
            following: row.following,
        },
        parent_id: row.parent_id,
    }
}

async fn article_id(state: &AppState, slug: &str) -> Result<i64> {
    article_store::owner(&state.db, slug)
        .await?
        .map(|(id, _, _)| id)
        .ok_or(AppError::NotFound("article"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommentPage {
    /// At most this many comments, 1-500 (default 500).
    #[param(schema_with = limit_schema, required = false)]
    limit: Option<i64>,
    /// Comments to skip (default 0).
    #[param(schema_with = domain::offset_schema, required = false)]
    offset: Option<i64>,
}

fn limit_schema() -> utoipa::openapi::schema::Object {
    let schema = crate::openapi::text::integer(1, MAX_COMMENTS_PAGE);
    crate::openapi::text::described(
        schema,
        format!(
            "At most this many comments, 1 to {MAX_COMMENTS_PAGE} (default {MAX_COMMENTS_PAGE})."
        ),
    )
}

/// Comments of an article, newest first.
#[utoipa::path(get, path = "/api/articles/{slug}/comments", tag = "comments",
    params(("slug" = String, Path), CommentPage),
    responses((status = 200, body = CommentList), (status = 404)),
    security((), ("token" = [])))]
async fn list_comments(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(slug): Path<String>,
    ApiQuery(page): ApiQuery<CommentPage>,
) -> Result<Json<CommentList>> {
    let limit = page.limit.unwrap_or(MAX_COMMENTS_PAGE);
    let offset = page.offset.unwrap_or(0);
    let mut problems = Problems::default();
    if !(1..=MAX_COMMENTS_PAGE).contains(&limit) {
        problems.add(
            "limit",
            format!("must be between 1 and {MAX_COMMENTS_PAGE}"),
        );
    }
    if offset < 0 {
        problems.add("offset", "must not be negative");
    }
    problems.finish()?;
    let id = article_id(&state, &slug).await?;
    let rows = store::list(&state.db, id, viewer.viewer_id(), limit, offset).await?;
    Ok(Json(CommentList {
        comments: rows.into_iter().map(comment).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentInputBody {
    comment: CommentInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentInput {
    #[schema(schema_with = body_schema, required = true)]
    body: Option<String>,
    /// Reply to this top-level comment of the same article (replies are one level deep).
    #[serde(default, deserialize_with = "crate::http::whole_or_null")]
    parent_id: Option<i64>,
}

fn body_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::required(domain::MAX_COMMENT)
}

fn parse_body(input: CommentInputBody) -> Result<String> {
    domain::required_text(input.comment.body.as_deref(), domain::MAX_COMMENT)
        .map_err(|msg| AppError::invalid("body", msg))
}

async fn respond(
    state: &AppState,
    article_id: i64,
    comment_id: i64,
    viewer_id: i64,
) -> Result<Json<CommentBody>> {
    let row = store::by_id(&state.db, article_id, comment_id, viewer_id)
        .await?
        .ok_or(AppError::NotFound("comment"))?;
    Ok(Json(CommentBody {
        comment: comment(row),
    }))
}

/// Add a comment.
#[utoipa::path(post, path = "/api/articles/{slug}/comments", tag = "comments",
    params(("slug" = String, Path)), request_body = CommentInputBody,
    responses((status = 200, body = CommentBody), (status = 401), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn add_comment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(slug): Path<String>,
    ApiJson(input): ApiJson<CommentInputBody>,
) -> Result<Json<CommentBody>> {
    let parent_id = input.comment.parent_id;
    let text = parse_body(input)?;
    let article_id = article_id(&state, &slug).await?;
    let comment_id = match parent_id {
        None => store::insert(&state.db, article_id, auth.id, &text).await?,
        Some(parent) => store::insert_reply(&state.db, article_id, auth.id, parent, &text)
            .await?
            .ok_or_else(|| {
                AppError::invalid("parentId", "is not a top-level comment of this article")
            })?,
    };
    respond(&state, article_id, comment_id, auth.id).await
}

/// Finds the comment on the article and checks that `user_id` wrote it: 404 before 403.
async fn owned_comment(state: &AppState, slug: &str, comment_id: i64, user_id: i64) -> Result<i64> {
    let article_id = article_id(state, slug).await?;
    let author = store::author_of(&state.db, article_id, comment_id)
        .await?
        .ok_or(AppError::NotFound("comment"))?;
    if author != user_id {
        return Err(AppError::Forbidden);
    }
    Ok(article_id)
}

/// Edit a comment (author only).
#[utoipa::path(put, path = "/api/articles/{slug}/comments/{id}", tag = "comments",
    params(("slug" = String, Path), ("id" = i64, Path)), request_body = CommentInputBody,
    responses((status = 200, body = CommentBody), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn edit_comment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((slug, comment_id)): Path<(String, i64)>,
    ApiJson(input): ApiJson<CommentInputBody>,
) -> Result<Json<CommentBody>> {
    let article_id = owned_comment(&state, &slug, comment_id, auth.id).await?;
    let text = parse_body(input)?;
    store::update(&state.db, comment_id, &text).await?;
    respond(&state, article_id, comment_id, auth.id).await
}

/// Delete a comment (its author, or an admin: `community::moderation`).
#[utoipa::path(delete, path = "/api/articles/{slug}/comments/{id}", tag = "comments",
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)), security(("token" = [])))]
async fn delete_comment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((slug, comment_id)): Path<(String, i64)>,
) -> Result<StatusCode> {
    let article_id = article_id(&state, &slug).await?;
    let author = store::author_of(&state.db, article_id, comment_id)
        .await?
        .ok_or(AppError::NotFound("comment"))?;
    let actor = super::moderation::Actor::load(&state.db, auth.id).await?;
    if !super::moderation::may_delete(author, actor) {
        return Err(AppError::Forbidden);
    }
    store::delete(&state.db, comment_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
