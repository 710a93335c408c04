//! The server-rendered web UI: pages built from the same store functions the JSON API uses,
//! with askama templates (`templates/`, HTML-escaped by default) and no client framework.
//!
//! What it covers today: the community's articles (list by tag, one article with its
//! comments), the stadiums, their stores and menus, and a chat room per team. Reading needs
//! no account. The chat page's small script (`assets/web/chat.js`) opens the room's WebSocket
//! and signs in through the JSON API (`POST /api/users/login`), keeping the token in the tab's
//! `sessionStorage` only; writing articles and ordering are done through the API (or any
//! Conduit frontend) for now.
//!
//! Two decisions a newcomer must know:
//! - **Pages are thin views over the stores.** A handler reads through `community::store`,
//!   `catalog::repo` or `chat::store` and fills a template struct; there is no SQL here and no
//!   second copy of a rule.
//! - **User content never reaches a page unescaped**, except an article body, which is Markdown
//!   rendered and then sanitised ([`markdown`]). Every page is sent with a Content Security
//!   Policy that allows scripts from this server only.

pub mod markdown;
pub mod pages;

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::error::AppError;
use crate::http::current_request_id;

/// Scripts and styles from this server only; images also from anywhere over HTTPS (avatars are
/// URLs their owners chose); connections to this server (the chat's WebSocket).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' https: data:; \
    script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/articles/{slug}", get(pages::article))
        .route("/teams/{team}", get(pages::team))
        .route("/stadiums", get(pages::stadiums))
        .route("/stadiums/{key}", get(pages::stadium))
        .route("/stores/{id}", get(pages::store))
        .route("/static/site.css", get(stylesheet))
        .route("/static/chat.js", get(chat_script))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The stylesheet and the chat script are compiled in; an hour of caching is enough for
/// files that change with each release.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/web/site.css"),
    )
}

async fn chat_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/web/chat.js"),
    )
}

/// A page handler's error: the API's [`AppError`], shown as an HTML page with its status.
pub struct PageError(AppError);

impl From<AppError> for PageError {
    fn from(err: AppError) -> Self {
        PageError(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status_code();
        let request_id = current_request_id();
        let message = match &self.0 {
            AppError::Internal(err) => {
                tracing::error!(request_id = %request_id, error = format!("{err:#}"), "page failed");
                "Something went wrong on our side.".to_string()
            }
            AppError::NotFound(what) => format!("No such {what}."),
            other => other.to_string(),
        };
        let page = pages::ErrorPage {
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            message,
            request_id,
        };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}
