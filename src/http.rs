//! Small HTTP pieces every module uses: the request id that follows a request through logs
//! and error bodies, and a JSON extractor whose rejections speak the API's error format.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
    let body = serde_json::json!({
        "errors": { "body": [reason] },
        "requestId": current_request_id(),
    });
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
/// well-formed JSON of the wrong shape (missing fields, wrong types).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
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
