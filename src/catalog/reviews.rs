//! Reviews: 1-5 stars, a body and hashtags, one per fan and store. Writing again replaces
//! the fan's review (same id; 200 instead of 201). Hashtags are the given ones plus any
//! `#tag` written in the body, normalised (see [`super::domain::Hashtag`]), and searchable
//! across stores.
//!
//! The rules of writing one are [`write()`], called by the API handler here and by the web's
//! review form (`web::shop`), so neither keeps a copy.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{self, Hashtag, Page, Problems, Rating};
use super::repo::reviews::{self as repo, NewReview, ReviewFilter, ReviewRow, Written};
use super::repo::stores as store_repo;
use crate::admin::require_admin;
use crate::app::AppState;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::community::domain::bounded_text;
use crate::community::{timestamp, Profile};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_store_reviews, write_review))
        .routes(routes!(delete_review))
        .routes(routes!(search_reviews))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: i64,
    /// 1-5 stars.
    pub rating: i64,
    pub body: String,
    /// Normalised, without `#`, alphabetical.
    pub hashtags: Vec<String>,
    pub created_at: String,
    /// When the review was last written (a replacement moves it; `createdAt` stays).
    pub updated_at: String,
    pub author: Profile,
    pub store: ReviewedStore,
}

/// Which store a review is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewedStore {
    pub id: i64,
    pub name: String,
    pub stadium: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewBody {
    pub review: Review,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewList {
    pub reviews: Vec<Review>,
    /// All reviews matching the filter, not just this page.
    pub reviews_count: i64,
}

fn review(row: ReviewRow) -> Review {
    let mut hashtags: Vec<String> = row
        .hashtags
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    hashtags.sort();
    Review {
        id: row.id,
        rating: row.rating,
        body: row.body,
        hashtags,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
        author: Profile {
            username: row.author_username,
            bio: row.author_bio,
            image: row.author_image,
            team: row.author_team,
            following: row.following,
        },
        store: ReviewedStore {
            id: row.store_id,
            name: row.store_name,
            stadium: row.store_stadium,
        },
    }
}

async fn page_of(
    state: &AppState,
    filter: ReviewFilter,
    viewer_id: i64,
) -> Result<Json<ReviewList>> {
    let (rows, total) = repo::list(&state.db, &filter, viewer_id).await?;
    Ok(Json(ReviewList {
        reviews: rows.into_iter().map(review).collect(),
        reviews_count: total,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-100 (default 20).
    #[param(schema_with = crate::community::domain::page_limit_schema, required = false)]
    limit: Option<i64>,
    /// Reviews to skip (default 0).
    #[param(schema_with = crate::community::domain::offset_schema, required = false)]
    offset: Option<i64>,
}

/// A store's reviews, most recently written first.
#[utoipa::path(get, path = "/api/stores/{id}/reviews", tag = "catalogue",
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = ReviewList), (status = 404), (status = 422)),
    security((), ("token" = [])))]
async fn list_store_reviews(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(store_id): Path<i64>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ReviewList>> {
    let mut problems = Problems::default();
    let page = Page::parse(&mut problems, query.limit, query.offset);
    problems.finish()?;
    if !store_repo::exists(&state.db, store_id).await? {
        return Err(AppError::NotFound("store"));
    }
    let filter = ReviewFilter {
        store_id: Some(store_id),
        hashtag: None,
        page,
    };
    page_of(&state, filter, viewer.viewer_id()).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Only reviews with this hashtag (`#` optional; `맛집`, `#Beer` = `beer`).
    #[param(schema_with = hashtag_filter_schema, required = false)]
    hashtag: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(schema_with = crate::community::domain::page_limit_schema, required = false)]
    limit: Option<i64>,
    /// Reviews to skip (default 0).
    #[param(schema_with = crate::community::domain::offset_schema, required = false)]
    offset: Option<i64>,
}

fn hashtag_filter_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::Object::builder()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(domain::hashtag_pattern(true)))
        .description(Some(
            "Only reviews with this hashtag (`#` optional; `맛집`, `#Beer` = `beer`).",
        ))
        .build()
}

fn review_body_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::nullable(domain::MAX_REVIEW_BODY)
}

/// Reviews across all stores, most recently written first, optionally by hashtag.
#[utoipa::path(get, path = "/api/reviews", tag = "catalogue", params(SearchQuery),
    responses((status = 200, body = ReviewList), (status = 400), (status = 422, description = "bad paging or hashtag")),
    security((), ("token" = [])))]
async fn search_reviews(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<ReviewList>> {
    let mut problems = Problems::default();
    let page = Page::parse(&mut problems, query.limit, query.offset);
    let hashtag = match query.hashtag.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => problems.check("hashtag", Hashtag::parse(raw)),
        _ => None,
    };
    problems.finish()?;
    let filter = ReviewFilter {
        store_id: None,
        hashtag,
        page,
    };
    page_of(&state, filter, viewer.viewer_id()).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewInputBody {
    review: ReviewInput,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewInput {
    /// 1-5 stars.
    #[schema(schema_with = domain::rating_schema, required = true)]
    rating: Option<Value>,
    /// Up to 2,000 characters; may be empty. `#tags` in it count as hashtags.
    #[schema(schema_with = review_body_schema)]
    body: Option<String>,
    /// Up to 10 in all (with those in the body), each 1-30 letters (a-z, Hangul), digits
    /// or `_`; a leading `#` is dropped and ASCII is lowercased.
    #[serde(default)]
    #[schema(schema_with = domain::hashtags_schema, required = false)]
    hashtags: Vec<String>,
}

/// Review a store: 201 for the caller's first review of it, 200 when it replaces their
/// earlier one. A store's owner may not review their own store (403).
#[utoipa::path(post, path = "/api/stores/{id}/reviews", tag = "catalogue", params(("id" = i64, Path)),
    request_body = ReviewInputBody,
    responses((status = 201, body = ReviewBody, description = "a new review"),
              (status = 200, body = ReviewBody, description = "replaced the caller's earlier review"),
              (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn write_review(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(store_id): Path<i64>,
    ApiJson(body): ApiJson<ReviewInputBody>,
) -> Result<(StatusCode, Json<ReviewBody>)> {
    let input = body.review;
    let draft = Draft {
        rating: input.rating.as_ref().and_then(crate::http::whole_number),
        body: input.body.as_deref().unwrap_or(""),
        hashtags: &input.hashtags,
    };
    let (written, row) = write(&state, auth.id, store_id, draft).await?;
    let status = match written {
        Written::Created(_) => StatusCode::CREATED,
        Written::Replaced(_) => StatusCode::OK,
    };
    Ok((
        status,
        Json(ReviewBody {
            review: review(row),
        }),
    ))
}

/// A review as a fan typed it (API body or web form), before the rules.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// `None` when missing or not a whole number.
    pub rating: Option<i64>,
    pub body: &'a str,
    /// Given explicitly; `#tags` in the body are added.
    pub hashtags: &'a [String],
}

/// The review rules in one place, for the API and the web form: the store must exist (404),
/// its owner may not review it (403), 1-5 stars, a bounded body, valid hashtags (422 with
/// every problem). Writes (or replaces) the author's review and returns it as stored.
pub async fn write(
    state: &AppState,
    author_id: i64,
    store_id: i64,
    draft: Draft<'_>,
) -> Result<(Written, ReviewRow)> {
    let access = store_repo::access(&state.db, store_id, author_id)
        .await?
        .ok_or(AppError::NotFound("store"))?;
    if access.owner_id == Some(author_id) {
        return Err(AppError::Forbidden);
    }
    let mut problems = Problems::default();
    let rating = problems.check(
        "rating",
        draft
            .rating
            .ok_or_else(|| "must be a whole number of stars from 1 to 5".to_string())
            .and_then(Rating::parse),
    );
    let text = problems.check(
        "body",
        bounded_text(draft.body, domain::MAX_REVIEW_BODY).map(|body| body.trim().to_string()),
    );
    let hashtags = problems.check(
        "hashtags",
        domain::review_hashtags(draft.hashtags, text.as_deref().unwrap_or("")),
    );
    problems.finish()?;
    let (Some(rating), Some(text), Some(hashtags)) = (rating, text, hashtags) else {
        unreachable!("problems.finish() returns early when a field is invalid");
    };
    let written = repo::write(
        &state.db,
        NewReview {
            store_id,
            author_id,
            rating,
            body: &text,
            hashtags: &hashtags,
        },
    )
    .await?;
    let id = match written {
        Written::Created(id) | Written::Replaced(id) => id,
    };
    let row = repo::by_id(&state.db, id, author_id)
        .await?
        .ok_or(AppError::NotFound("review"))?;
    Ok((written, row))
}

/// Delete a review (its author or an admin).
#[utoipa::path(delete, path = "/api/stores/{id}/reviews/{reviewId}", tag = "catalogue",
    params(("id" = i64, Path), ("reviewId" = i64, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("token" = [])))]
async fn delete_review(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((store_id, review_id)): Path<(i64, i64)>,
) -> Result<StatusCode> {
    let author_id = repo::author_of(&state.db, store_id, review_id)
        .await?
        .ok_or(AppError::NotFound("review"))?;
    if author_id != auth.id {
        require_admin(&state, &auth).await?;
    }
    repo::delete(&state.db, review_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
