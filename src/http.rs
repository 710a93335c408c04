//! Small HTTP pieces every module uses: the request id that follows a request through logs
//! and error bodies, and a JSON extractor whose rejections speak the API's error format.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use tower_http::request_id::RequestId;

use crate::error::AppError;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, or `-` outside of one.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".to_string())
}

/// Middleware: makes the request id (set by tower-http's `SetRequestIdLayer`) visible to
/// error responses built anywhere below, without threading it through every function.
pub async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_string();
    REQUEST_ID.scope(id, next.run(request)).await
}

/// Middleware: gives error responses produced outside our handlers (axum's 405 for a wrong
/// method, its plain-text 400 for an unparsable path segment, the timeout's 408) the same
/// JSON error shape, with the request id, as every other error. Our own error bodies, JSON
/// from the API and HTML pages from the web UI, pass through.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let ours = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge.into_response();
    }
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = crate::error::ErrorBody::about_body(reason);
    let mut replacement = (status, axum::Json(body)).into_response();
    if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
        replacement
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    replacement
}

/// `axum::Json`, but a rejected body answers in the API's error format with the right status:
/// 400 for malformed JSON, 415 for another content type, 413 over the body limit, 422 for
/// well-formed JSON of the wrong shape (missing fields, wrong types) or holding a NUL
/// character in any string (see [`reject_nul`] for why).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| json_rejection(rejection.into()))?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        if let Some(field) = nul_in_json(&bytes) {
            return Err(AppError::invalid(&field, NUL_MESSAGE));
        }
        Ok(ApiJson(value))
    }
}

/// What axum's `Json` accepts: `application/json` or `application/*+json`.
fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        })
}

pub const NUL_MESSAGE: &str = "must not contain a NUL character";

/// The field of a valid JSON document that holds a NUL (`\u0000`) in its name or value, as
/// `user.email` or `article.tagList[1]`. JSON can only spell a NUL as that escape, so bodies
/// without it (nearly all) are cleared by a byte search without a second parse.
pub fn nul_in_json(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let document = serde_json::from_slice::<serde_json::Value>(bytes).ok()?;
    nul_field(&document, String::new())
}

fn nul_field(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let name = |path: &str| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(name(&path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_field(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                // Naming a field by its NUL-carrying key would echo the NUL back.
                Some(name(&path))
            } else {
                nul_field(item, field)
            }
        }),
        _ => None,
    }
}

/// Middleware on the whole router: refuses a NUL character (`%00`) in the path (404: no
/// resource is named with one) or in the query string (422, naming the parameter).
///
/// PostgreSQL cannot store a NUL in text and fails the statement (a 500), and SQLite treats a
/// NUL as the end of a pattern (`?q=%00` matched every article). No input of ours has a use
/// for NUL, so it is refused here, before any extractor, once for every route (API, web
/// pages, media); JSON bodies are checked by [`ApiJson`] and chat frames by their parser.
pub async fn reject_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if percent_decode_str(uri.path()).any(|byte| byte == 0) {
        return AppError::NotFound("resource").into_response();
    }
    if let Some(query) = uri.query() {
        let bad = form_urlencoded::parse(query.as_bytes())
            .find(|(name, value)| name.contains('\0') || value.contains('\0'));
        if let Some((name, _)) = bad {
            let field = if name.contains('\0') { "query" } else { &name };
            return AppError::invalid(field, NUL_MESSAGE).into_response();
        }
    }
    next.run(request).await
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(err) => AppError::invalid("body", err.body_text()),
        JsonRejection::JsonSyntaxError(err) => AppError::BadRequest(err.body_text()),
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        other => AppError::BadRequest(other.body_text()),
    }
}

/// A JSON number that is whole, as `i64`: `3` or `3.0`. JSON Schema's `integer` (what the
/// document declares) admits both, so the server must too; `3.5` and out-of-range numbers
/// are not whole.
pub fn whole_number(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let float = value.as_f64()?;
        // Only where f64 holds every whole number exactly (2^53): beyond it, a literal out of
        // i64's range (which serde_json reads as a float) could round into it.
        let in_range = float.abs() <= 9_007_199_254_740_992.0;
        (float.fract() == 0.0 && in_range).then_some(float as i64)
    })
}

/// `#[serde(deserialize_with)]` for an `i64` field that takes any whole JSON number.
pub fn whole<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
    whole_number(&value)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {value}")))
}

/// [`whole`] for an `Option<i64>` field (null or absent is `None`).
pub fn whole_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    whole_number(&value)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {value}")))
}

/// `axum::extract::Query` with rejections as 400 in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> AppError {
    AppError::BadRequest(rejection.body_text())
}
