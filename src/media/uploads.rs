//! Image uploads: `POST /api/uploads` stores the original at once and answers 202; a queued
//! job (`image.optimize`) makes the display image and thumbnail off the request path and
//! replaces the original with them. `GET /api/uploads/{id}` shows the status; the variants are
//! served under `/media/` with long-lived cache headers and ETags.
//!
//! The upload row and its job are written in one transaction, so a job exists exactly when
//! its upload does. The job is idempotent: it does nothing for an upload that is no longer
//! pending, writes variants under fixed keys (a rerun overwrites them with the same bytes),
//! and deletes the original only after the upload is marked ready.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::storage::Storage;
use super::store::{self, Ready, UploadRow};
use super::Limits;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::db::Db;
use crate::error::{AppError, Result};
use crate::queue::{Job, JobError, JobHandler, NewJob};

/// Job kind of the optimisation job (its queue is the `images_queue` setting).
pub const KIND: &str = "image.optimize";

pub fn router(upload_limit_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(upload_limit_bytes))
        .routes(routes!(get_upload))
}

/// Serves stored variants. Not part of the JSON API, so not in the OpenAPI document.
pub fn media_router() -> Router<AppState> {
    Router::new().route("/media/{id}/{file}", get(serve_variant))
}

fn original_key(id: &str) -> String {
    format!("{id}/original")
}
const VARIANTS: [&str; 2] = ["display.jpg", "thumb.jpg"];

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub id: String,
    /// `pending`, `ready` or `failed`.
    pub status: String,
    /// The image to show: the original while pending, the optimised display image once ready.
    pub url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// Format sniffed from the bytes: jpeg, png, gif or webp.
    pub format: String,
    pub original_bytes: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumbnail_width: Option<i64>,
    pub thumbnail_height: Option<i64>,
    pub display_bytes: Option<i64>,
    pub thumbnail_bytes: Option<i64>,
    /// Why optimisation failed, fit to show the uploader.
    pub error: Option<String>,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadBody {
    pub upload: Upload,
}

fn upload_json(row: UploadRow) -> UploadBody {
    let ready = row.status == "ready";
    let url = match row.status.as_str() {
        "ready" => Some(format!("/media/{}/display.jpg", row.id)),
        "pending" => Some(format!("/media/{}/original", row.id)),
        _ => None,
    };
    UploadBody {
        upload: Upload {
            url,
            thumbnail_url: ready.then(|| format!("/media/{}/thumb.jpg", row.id)),
            id: row.id,
            status: row.status,
            format: row.source_format,
            original_bytes: row.original_bytes,
            width: row.width,
            height: row.height,
            thumbnail_width: row.thumb_width,
            thumbnail_height: row.thumb_height,
            display_bytes: row.display_bytes,
            thumbnail_bytes: row.thumb_bytes,
            error: row.error,
            created_at: row.created_at,
        },
    }
}

/// Upload a picture (multipart field `file`). Answers at once with status `pending`; the
/// optimised variants follow from a queued job.
#[utoipa::path(post, path = "/api/uploads", tag = "uploads",
    request_body(content_type = "multipart/form-data", description = "field `file`: the picture"),
    responses((status = 202, body = UploadBody), (status = 401), (status = 413),
              (status = 422, description = "not an image, unsupported format, or no file field")),
    security(("token" = [])))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<UploadBody>)> {
    let bytes = loop {
        let field = multipart.next_field().await.map_err(multipart_error)?;
        let Some(field) = field else {
            return Err(AppError::invalid(
                "file",
                "is missing: send the picture in a multipart field named file",
            ));
        };
        if field.name() == Some("file") {
            break field.bytes().await.map_err(multipart_error)?;
        }
    };
    // The type comes from the bytes, never from the client's claims.
    let format = super::sniff(&bytes).map_err(|e| AppError::invalid("file", e.to_string()))?;

    let id = uuid::Uuid::now_v7().to_string();
    state.storage.put(&original_key(&id), &bytes).await?;
    let job = NewJob::new(
        &state.config.images_queue,
        KIND,
        serde_json::json!({ "upload": id }),
    );
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    if let Err(err) =
        store::insert_with_job(&state.db, &id, auth.id, format.as_str(), size, &job).await
    {
        // Nothing refers to the stored original: remove it rather than leak it.
        let _ = state.storage.delete(&original_key(&id)).await;
        return Err(err);
    }
    if let Some(wakeup) = &state.queue_wakeup {
        wakeup.wake();
    }
    let row = store::get(&state.db, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("upload {id} vanished after its insert"))?;
    Ok((StatusCode::ACCEPTED, Json(upload_json(row))))
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> AppError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else {
        AppError::BadRequest(err.body_text())
    }
}

/// An upload's status and, once ready, its variants.
#[utoipa::path(get, path = "/api/uploads/{id}", tag = "uploads", params(("id" = String, Path)),
    responses((status = 200, body = UploadBody), (status = 404)))]
async fn get_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UploadBody>> {
    let row = store::get(&state.db, &id)
        .await?
        .ok_or(AppError::NotFound("upload"))?;
    Ok(Json(upload_json(row)))
}

/// Serves a stored variant. Variants never change once written (a new picture is a new
/// upload), so they are cacheable for a year; the ETag lets a client revalidate cheaply.
async fn serve_variant(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let is_original = file == "original";
    if !(is_original || VARIANTS.contains(&file.as_str())) || uuid::Uuid::parse_str(&id).is_err() {
        return Err(AppError::NotFound("media"));
    }
    let key = format!("{id}/{file}");
    let bytes = state
        .storage
        .get(&key)
        .await?
        .ok_or(AppError::NotFound("media"))?;
    let etag = format!("\"{:016x}\"", fnv1a(&bytes));
    let cache = if is_original {
        // The original is replaced once the job finishes: do not let caches keep it.
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let content_type = if is_original {
        super::sniff(&bytes)
            .map(|f| format!("image/{}", f.as_str()))
            .unwrap_or_else(|_| "application/octet-stream".into())
    } else {
        "image/jpeg".into()
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache.to_string()),
            (header::ETAG, etag),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// A fast, stable content hash for ETags (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// The `image.optimize` job.
pub struct OptimizeImage {
    pub db: Db,
    pub storage: Storage,
    pub limits: Limits,
    /// Caps images decoded at once: each holds a decoded picture in memory.
    pub permits: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl JobHandler for OptimizeImage {
    async fn handle(&self, job: &Job) -> Result<(), JobError> {
        let id = job.payload["upload"]
            .as_str()
            .ok_or_else(|| JobError::permanent("the job names no upload"))?;
        let Some(row) = store::get(&self.db, id).await.map_err(JobError::retry)? else {
            return Ok(()); // deleted meanwhile: nothing to do
        };
        if row.status != "pending" {
            return Ok(()); // done by an earlier delivery
        }
        let Some(original) = self.storage.get(&original_key(id)).await? else {
            store::mark_failed(&self.db, id, "the uploaded file is missing")
                .await
                .map_err(JobError::retry)?;
            return Ok(());
        };
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(JobError::retry)?;
        let limits = self.limits.clone();
        let span = tracing::Span::current();
        let optimized = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(|| super::optimize(&original, &limits))
        })
        .await
        .map_err(|e| JobError::retry(format!("the image task failed: {e}")))?;
        let out = match optimized {
            Ok(out) => out,
            Err(err) => {
                // Bad input is final: say why on the upload, and do not retry.
                store::mark_failed(&self.db, id, &err.to_string())
                    .await
                    .map_err(JobError::retry)?;
                return Ok(());
            }
        };
        self.storage
            .put(&format!("{id}/display.jpg"), &out.display_jpeg)
            .await?;
        self.storage
            .put(&format!("{id}/thumb.jpg"), &out.thumb_jpeg)
            .await?;
        let ready = Ready {
            width: out.width.into(),
            height: out.height.into(),
            thumb_width: out.thumb_width.into(),
            thumb_height: out.thumb_height.into(),
            display_bytes: out.display_jpeg.len() as i64,
            thumb_bytes: out.thumb_jpeg.len() as i64,
        };
        store::mark_ready(&self.db, id, &ready)
            .await
            .map_err(JobError::retry)?;
        // The optimised display image replaces the original.
        self.storage.delete(&original_key(id)).await?;
        Ok(())
    }
}
