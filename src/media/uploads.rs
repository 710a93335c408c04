//! Image uploads: `POST /api/uploads` stores the original at once and answers 202; queued
//! jobs ([`super::jobs`]) make the JPEG display image and thumbnail off the request path,
//! replace the original with them, and then add WebP versions of both.
//! `GET /api/uploads/{id}` shows the status; the variants are served under `/media/` with
//! long-lived cache headers and ETags.
//!
//! The upload row and its first job are written in one transaction, so a job exists exactly
//! when its upload does.
//!
//! Every `/media/` response says `X-Content-Type-Options: nosniff`: the original is served
//! with the type sniffed from its bytes, and a browser must not second-guess it into HTML.

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::files::{self, image_urls, key, DISPLAY_WEBP, ORIGINAL, THUMB_WEBP, VARIANTS};
use super::store::{self, UploadRow};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{AppError, Result};

pub fn router(upload_limit_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(upload_limit_bytes))
        .routes(routes!(get_upload))
}

/// Serves stored variants. Not part of the JSON API, so not in the OpenAPI document.
pub fn media_router() -> Router<AppState> {
    Router::new()
        .route("/media/{id}/{file}", get(serve_variant))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

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
    /// The display image as WebP (same size as the JPEG); null until the WebP job is done.
    pub webp_url: Option<String>,
    pub thumbnail_webp_url: Option<String>,
    pub display_webp_bytes: Option<i64>,
    pub thumbnail_webp_bytes: Option<i64>,
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
    let (url, thumbnail_url) = image_urls(&row.id, &row.status);
    let webp = row.display_webp_bytes.is_some();
    UploadBody {
        upload: Upload {
            url,
            thumbnail_url,
            webp_url: webp.then(|| files::url(&row.id, DISPLAY_WEBP)),
            thumbnail_webp_url: webp.then(|| files::url(&row.id, THUMB_WEBP)),
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
            display_webp_bytes: row.display_webp_bytes,
            thumbnail_webp_bytes: row.thumb_webp_bytes,
            error: row.error,
            created_at: row.created_at,
        },
    }
}

/// The multipart form of an upload, as the document declares it (the handler reads the
/// parts as they stream in; see `upload`).
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // for the document: `additionalProperties: false`
#[allow(dead_code)]
pub struct UploadForm {
    /// The picture: JPEG, PNG, WebP or GIF, within `upload_limit_bytes` and the pixel
    /// limit.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

/// Upload a picture (multipart field `file`). Answers at once with status `pending`; the
/// optimised variants follow from a queued job.
#[utoipa::path(post, path = "/api/uploads", tag = "uploads",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = UploadBody), (status = 401), (status = 413),
              (status = 415, description = "the body is not multipart/form-data"),
              (status = 429, description = "upload_rate_per_minute used up; see Retry-After"),
              (status = 422, description = "not an image, unsupported format, or no file field")),
    security(("token" = [])))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadBody>)> {
    // The only rejection is a content type that is not multipart/form-data with a boundary.
    let mut multipart = multipart
        .map_err(|_| AppError::ExpectedMediaType("multipart/form-data with a `file` field"))?;
    // Before the body is read: a refused upload costs neither storage nor an image job.
    state
        .upload_limiter
        .check(auth.id)
        .map_err(AppError::RateLimited)?;
    let field = multipart.next_field().await.map_err(multipart_error)?;
    let Some(field) = field else {
        return Err(AppError::invalid(
            "file",
            "is missing: send the picture in a multipart field named file",
        ));
    };
    // One field, as the document declares it (`additionalProperties: false`).
    if field.name() != Some("file") {
        return Err(AppError::invalid(
            "body",
            "has a field other than file: send only the picture, named file",
        ));
    }
    let bytes = field.bytes().await.map_err(multipart_error)?;
    if multipart
        .next_field()
        .await
        .map_err(multipart_error)?
        .is_some()
    {
        return Err(AppError::invalid(
            "body",
            "has a field other than file: send only the picture, named file",
        ));
    }
    // The type comes from the bytes, never from the client's claims.
    let format = super::sniff(&bytes).map_err(|e| AppError::invalid("file", e.to_string()))?;

    let id = uuid::Uuid::now_v7().to_string();
    state.storage.put(&key(&id, ORIGINAL), &bytes).await?;
    let job = super::jobs::optimize_job(&state.config.images_queue, &id);
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    if let Err(err) =
        store::insert_with_job(&state.db, &id, auth.id, format.as_str(), size, &job).await
    {
        // Nothing refers to the stored original: remove it rather than leak it.
        let _ = state.storage.delete(&key(&id, ORIGINAL)).await;
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

/// 413 when the body went over the upload limit, else 400 with multer's reason.
///
/// axum recognises the limit only when its error is one level down; a chunked body read
/// through both tower-http's `RequestBodyLimit` and the extractor's own limit nests it
/// deeper (axum reports it as a 500 "failed to read stream"), so the whole chain is searched.
fn multipart_error(err: axum::extract::multipart::MultipartError) -> AppError {
    let over_limit = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .any(|e| e.is::<http_body_util::LengthLimitError>());
    if over_limit || err.status() == StatusCode::PAYLOAD_TOO_LARGE {
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
    let is_original = file == ORIGINAL;
    if !(is_original || VARIANTS.contains(&file.as_str())) || uuid::Uuid::parse_str(&id).is_err() {
        return Err(AppError::NotFound("media"));
    }
    let bytes = state
        .storage
        .get(&key(&id, &file))
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
    } else if file.ends_with(".webp") {
        "image/webp".into()
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
