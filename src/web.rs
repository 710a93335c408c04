//! The server-rendered web UI: pages built from the same store functions the JSON API uses,
//! with askama templates (`templates/`, HTML-escaped by default) and no client framework.
//!
//! What it covers: reading the community (articles by board, tag, search; one article with
//! its comments), accounts (register, log in, log out, settings), writing (articles,
//! comments and replies, favourites, follows), the stadiums, their stores and menus, ordering
//! from a store (cart, pay, a live order page, "my orders"; [`shop`]), reviews with stars and
//! hashtags, and a chat room per team; store owners' pages ([`owner`]: live incoming orders,
//! menu and stock to edit); for admins, the queue dashboard and moderation ([`admin`]).
//!
//! ## The foundation pages build on
//! - **Sessions** ([`session`]): `POST /login` and `POST /register` start a server-side
//!   session (`web_sessions`, only a hash of the cookie's token stored; `POST /logout`
//!   deletes it). The cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` + `__Host-` over
//!   HTTPS; its expiry slides. A handler takes [`session::WebUser`] (redirects to the login
//!   page when nobody is signed in) or [`session::MaybeWebUser`].
//! - **CSRF** ([`session::context`], a middleware on every route here): any request other
//!   than GET/HEAD/OPTIONS must carry the page's token, in a form's `csrf` field
//!   (`<input type="hidden" name="csrf" value="{{ layout.csrf }}">`) or the `X-CSRF-Token`
//!   header; otherwise it gets a 403 page. New forms need nothing else.
//! - **The JSON API stays header-only** (`Authorization: Token …`); it never reads the
//!   session cookie, so it needs no CSRF defence of its own. A page script that must call
//!   the API as the signed-in user (uploads, chat) asks `POST /session/token` (with the
//!   `X-CSRF-Token` header from the page's `<meta name="csrf-token">`) for an API token and
//!   keeps it in memory (`assets/web/app.js`: `ballpark.apiToken()`). Pages put no token in
//!   their HTML. Such a token lives `jwt_ttl_hours`; logging out does not recall one already
//!   handed to a script.
//! - **Language** ([`i18n`]): Korean or English per request (the `lang` cookie, then
//!   `Accept-Language`, then Korean), carried in [`layout::Layout`], which every page
//!   struct has as its `layout` field: `{{ layout.t("key") }}` in templates, strings in
//!   `src/web/locales/{ko,en}.yml`. Times: `{{ layout.when(at) }}` (relative while recent,
//!   else Korea time).
//! - **Errors** are pages ([`PageError`]): a handler returns `Result<_, PageError>` and `?`
//!   turns any [`AppError`] into an HTML page with its status. Query strings go through
//!   [`forms::PageQuery`], so a bad one is a 400 page, never the API's JSON. Answers made
//!   outside the handlers (no route, wrong method, a bad path segment, the timeout, a body
//!   over the limit) become pages too ([`errors::pages_for_errors`]), on every path but the
//!   machines' (`/api`, probes, metrics, media, `/session/token`).
//!
//! Two decisions a newcomer must know:
//! - **Pages are thin views over the stores.** A handler reads through `community::store`,
//!   `catalog::repo` or `chat::store` and fills a template struct; there is no SQL here
//!   except the sessions' own table ([`session::store`]), and no second copy of a rule.
//! - **User content never reaches a page unescaped**, except an article body, which is Markdown
//!   rendered and then sanitised ([`markdown`]). Every page is sent with a Content Security
//!   Policy that allows scripts and styles from this server only (no inline ones).

pub mod accounts;
pub mod admin;
pub mod community;
pub mod errors;
pub mod forms;
pub mod i18n;
pub mod layout;
pub mod markdown;
pub mod orders;
pub mod owner;
pub mod pages;
pub mod session;
pub mod shop;

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
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

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/articles/{slug}", get(pages::article))
        .route("/teams/{team}", get(pages::team))
        .route("/stadiums", get(pages::stadiums))
        .route("/stadiums/{key}", get(pages::stadium))
        .route("/login", get(accounts::login_page).post(accounts::login))
        .route(
            "/register",
            get(accounts::register_page).post(accounts::register),
        )
        .route("/logout", post(accounts::logout))
        .route("/session/token", post(accounts::api_token))
        .route("/lang/{code}", get(accounts::choose_language))
        .route(
            "/editor",
            get(community::new_article).post(community::create_article),
        )
        .route(
            "/editor/{slug}",
            get(community::edit_article).post(community::update_article),
        )
        .route("/articles/{slug}/delete", post(community::delete_article))
        .route("/articles/{slug}/favorite", post(community::favorite))
        .route("/articles/{slug}/comments", post(community::add_comment))
        .route(
            "/articles/{slug}/comments/{id}/edit",
            post(community::edit_comment),
        )
        .route(
            "/articles/{slug}/comments/{id}/delete",
            post(community::delete_comment),
        )
        .route("/profiles/{username}", get(community::profile))
        .route("/profiles/{username}/follow", post(community::follow))
        .route(
            "/settings",
            get(community::settings).post(community::save_settings),
        )
        .route("/static/site.css", get(stylesheet))
        .route("/static/chat.js", get(chat_script))
        .route("/static/app.js", get(app_script))
        .route("/orders", get(orders::mine))
        .merge(shop::routes())
        .merge(owner::routes())
        .merge(admin::routes())
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::context,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The stylesheet and the scripts are compiled in; an hour of caching is enough for files
/// that change with each release.
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

async fn app_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/web/app.js"),
    )
}

/// A page handler's error: the API's [`AppError`], shown as an HTML page with its status, in
/// the request's language.
pub struct PageError {
    error: AppError,
    /// A message key that says more than the error's kind (e.g. the CSRF refusal).
    message_key: Option<&'static str>,
    /// A status no [`AppError`] stands for (axum's 405, the timeout's 408), set by
    /// [`errors::pages_for_errors`] when it turns such an answer into a page.
    status: Option<axum::http::StatusCode>,
}

impl PageError {
    /// The refusal of a form or script request without the page's CSRF token.
    pub fn csrf() -> Self {
        PageError {
            error: AppError::Forbidden,
            message_key: Some("error.csrf"),
            status: None,
        }
    }

    /// The page for an error answer that has only a status (one made outside our handlers).
    pub fn for_status(status: axum::http::StatusCode) -> Self {
        use axum::http::StatusCode as S;
        let (error, key) = match status {
            S::NOT_FOUND => (AppError::NotFound("page"), "error.not_found"),
            S::FORBIDDEN => (AppError::Forbidden, "error.forbidden"),
            S::TOO_MANY_REQUESTS => (AppError::TooManyRequests, "error.too_many"),
            S::PAYLOAD_TOO_LARGE => (AppError::PayloadTooLarge, "error.too_large"),
            S::METHOD_NOT_ALLOWED => (
                AppError::BadRequest(String::new()),
                "error.method_not_allowed",
            ),
            S::REQUEST_TIMEOUT => (AppError::BadRequest(String::new()), "error.timeout"),
            s if s.is_server_error() => (
                AppError::Internal(anyhow::anyhow!("{s} from below the handlers")),
                "error.internal",
            ),
            _ => (AppError::BadRequest(String::new()), "error.bad_request"),
        };
        PageError {
            error,
            message_key: Some(key),
            status: Some(status),
        }
    }

    /// A 400 page for a query string or form that cannot be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        PageError::from(AppError::BadRequest(detail.into()))
    }
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        PageError {
            error,
            message_key: None,
            status: None,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.error.status_code());
        let request_id = current_request_id();
        let layout = layout::Layout::for_error();
        let message = match (&self.error, self.message_key) {
            (AppError::PayloadTooLarge, None) => layout.t("error.too_large").into_owned(),
            (_, Some(key)) => layout.t(key).into_owned(),
            (AppError::Internal(err), None) => {
                tracing::error!(request_id = %request_id, error = format!("{err:#}"), "page failed");
                layout.t("error.internal").into_owned()
            }
            (AppError::NotFound(_), None) => layout.t("error.not_found").into_owned(),
            (AppError::Forbidden, None) => layout.t("error.forbidden").into_owned(),
            (AppError::TooManyRequests, None) => layout.t("error.too_many").into_owned(),
            (AppError::BadRequest(detail), None) => {
                format!("{} ({detail})", layout.t("error.bad_request"))
            }
            (other, None) => other.to_string(),
        };
        let page = pages::ErrorPage {
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            message,
            request_id,
            layout,
        };
        let mut response = match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        };
        if status == axum::http::StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}
