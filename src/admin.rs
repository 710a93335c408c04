//! Admin endpoints: what operators need to see and fix the queue. Only users whose role is
//! `admin` may call them (set with `ballpark user set-role <username> admin`).
//!
//! The browser has the same and more at `/admin` ([`crate::web::admin`]); chat moderation's
//! endpoints are in [`crate::chat::api`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::community::domain::MAX_PAGE;
use crate::community::store::users as user_store;
use crate::error::{AppError, Result};
use crate::http::ApiQuery;
use crate::queue::{self, RetryDead};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_stats))
        .routes(routes!(dead_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(discard_job))
}

/// 403 unless the caller is an admin.
pub(crate) async fn require_admin(state: &AppState, auth: &AuthUser) -> Result<()> {
    let user = user_store::find_by_id(&state.db, auth.id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    if user.role == "admin" {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDepth {
    pub queue: String,
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatsBody {
    pub queues: Vec<QueueDepth>,
}

/// Jobs queued, running and dead, per queue.
#[utoipa::path(get, path = "/api/admin/queue", tag = "admin",
    responses((status = 200, body = QueueStatsBody), (status = 401), (status = 403)),
    security(("token" = [])))]
async fn queue_stats(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<QueueStatsBody>> {
    require_admin(&state, &auth).await?;
    let queues = queue::stats(&state.db)
        .await?
        .into_iter()
        .map(|s| QueueDepth {
            queue: s.queue,
            queued: s.queued,
            running: s.running,
            dead: s.dead,
        })
        .collect();
    Ok(Json(QueueStatsBody { queues }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// The queue to look at.
    #[param(pattern = r"^[^\u0000]*$")]
    queue: String,
    /// At most this many, 1-100 (default 50).
    #[param(schema_with = crate::community::domain::page_limit_schema, required = false)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadJob {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadJobList {
    pub jobs: Vec<DeadJob>,
}

/// Dead jobs of a queue (attempts used up, or failed permanently), newest first, with their
/// last error.
#[utoipa::path(get, path = "/api/admin/jobs/dead", tag = "admin", params(DeadQuery),
    responses((status = 200, body = DeadJobList), (status = 401), (status = 403), (status = 422)),
    security(("token" = [])))]
async fn dead_jobs(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<DeadQuery>,
) -> Result<Json<DeadJobList>> {
    require_admin(&state, &auth).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let jobs = queue::list_dead(&state.db, &query.queue, limit)
        .await?
        .into_iter()
        .map(|job| DeadJob {
            id: job.id,
            queue: job.queue,
            kind: job.kind,
            payload: job.payload,
            attempts: job.attempts,
            last_error: job.last_error,
            created_at: job.created_at,
        })
        .collect();
    Ok(Json(DeadJobList { jobs }))
}

/// Put a dead job back in its queue with fresh attempts.
#[utoipa::path(post, path = "/api/admin/jobs/{id}/retry", tag = "admin", params(("id" = i64, Path)),
    responses((status = 202), (status = 401), (status = 403), (status = 404, description = "no dead job with this id"),
              (status = 422, description = "another pending job holds its dedup key")),
    security(("token" = [])))]
async fn retry_job(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    require_admin(&state, &auth).await?;
    match queue::retry_dead(&state.db, id).await? {
        RetryDead::Requeued => {
            if let Some(wakeup) = &state.queue_wakeup {
                wakeup.wake();
            }
            Ok(StatusCode::ACCEPTED)
        }
        RetryDead::NotDead => Err(AppError::NotFound("dead job")),
        RetryDead::Duplicate => Err(AppError::invalid(
            "id",
            "another pending job holds the same dedup key",
        )),
    }
}

/// Delete a dead job for good (only dead jobs: queued and running ones belong to the workers).
#[utoipa::path(delete, path = "/api/admin/jobs/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404, description = "no dead job with this id")),
    security(("token" = [])))]
async fn discard_job(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    require_admin(&state, &auth).await?;
    if queue::discard_dead(&state.db, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("dead job"))
    }
}
