//! The one error type handlers return, and how it becomes an HTTP response.
//!
//! Client errors carry a message meant for the client, in the RealWorld shape
//! `{"errors":{"field":["message"]}}`. Server errors are logged with their full cause chain
//! and answered with a generic message: internals never leak, but every error body carries
//! the request id (`requestId`) so a user's report can be matched to the log line.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::current_request_id;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request could not be parsed at all (malformed JSON, bad query string).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: authentication is required, or the token is missing, malformed or expired.
    #[error("authentication required")]
    Unauthorized,
    /// 401: a login with an unknown email or a wrong password (deliberately not saying which).
    #[error("email or password is invalid")]
    BadCredentials,
    /// 403: authenticated, but not allowed to touch this resource.
    #[error("forbidden")]
    Forbidden,
    /// 404: the named resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 402: the payment gateway declined the charge.
    #[error("the payment was declined: {0}")]
    PaymentDeclined(String),
    /// 409: the request conflicts with the resource's state (sold out, already cancelled).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: a body was sent with a content type other than JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 415: the body is not of the one content type this endpoint reads, which it names.
    #[error("unsupported media type: expected {0}")]
    ExpectedMediaType(&'static str),
    /// 422: the request parsed but its content is invalid; field → messages.
    #[error("validation failed")]
    Unprocessable(BTreeMap<String, Vec<String>>),
    /// 429: too many attempts; retry later.
    #[error("too many requests")]
    TooManyRequests,
    /// 429 with the wait the limiter computed, sent as `Retry-After` (whole seconds, at least 1).
    #[error("too many requests: retry in {} s", retry_after_secs(.0))]
    RateLimited(std::time::Duration),
    /// 500: anything else. Logged in full, answered generically.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A 422 about one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(field.to_string(), vec![message.into()]);
        AppError::Unprocessable(errors)
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType | AppError::ExpectedMediaType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests | AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn client_errors(&self) -> BTreeMap<String, Vec<String>> {
        let body = |msg: String| BTreeMap::from([("body".to_string(), vec![msg])]);
        match self {
            AppError::Unprocessable(errors) => errors.clone(),
            AppError::Internal(_) => body("internal server error".into()),
            other => body(other.to_string()),
        }
    }
}

/// The body of every error answer, client or server error alike.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The field at fault (`body` for the request as a whole) → what is wrong with it.
    #[schema(example = json!({"title": ["can't be empty"]}))]
    pub errors: BTreeMap<String, Vec<String>>,
    /// This request's id, also in the `x-request-id` header and on the server's log lines.
    pub request_id: String,
}

impl ErrorBody {
    /// One message about the request as a whole, for the current request.
    pub fn about_body(message: impl Into<String>) -> Self {
        ErrorBody {
            errors: BTreeMap::from([("body".to_string(), vec![message.into()])]),
            request_id: current_request_id(),
        }
    }
}

/// A wait in whole seconds, rounded up and at least 1, as `Retry-After` wants it.
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Internal(anyhow::Error::new(err))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let request_id = current_request_id();
        if let AppError::Internal(err) = &self {
            tracing::error!(request_id = %request_id, error = format!("{err:#}"), "request failed");
        }
        let mut response = (
            status,
            Json(ErrorBody {
                errors: self.client_errors(),
                request_id,
            }),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = match &self {
                AppError::RateLimited(wait) => retry_after_secs(wait),
                _ => 60,
            };
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Token"),
            );
        }
        response
    }
}
