//! Cookie sessions for the web UI, and the CSRF check every form goes through.
//!
//! - The session cookie holds 32 random bytes (hex); the database keeps only their SHA-256
//!   (`web_sessions`), so logging out (deleting the row) revokes the session everywhere.
//!   Expiry slides: a session used with less than `web_session_days - 1 day` left is pushed
//!   back to the full length and its cookie re-sent (at most one write a day per session).
//! - Cookies are `HttpOnly` and `SameSite=Lax`; with HTTPS (`env = production`, or a
//!   `public_url` starting with `https://`) they are also `Secure` and named with the
//!   `__Host-` prefix, which pins them to this host and path `/`.
//! - CSRF: a synchronizer token bound to the session, `HMAC-SHA256(key, session token)`, so it
//!   needs no storage and dies with the session. Anonymous visitors get a random visitor
//!   cookie to bind to instead, which protects the login and register forms (login CSRF).
//!   [`context`] checks every unsafe request to a web route: the token comes in the form's
//!   `csrf` field or the `X-CSRF-Token` header; without it the answer is a 403 page.

pub mod store;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Duration;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::i18n::Lang;
use super::PageError;
use crate::app::AppState;
use crate::config::{Config, Environment};
use crate::db::now;
use crate::error::{AppError, Result};

/// The header page scripts send the CSRF token in (read from the page's `csrf-token` meta).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field forms send it in.
pub const CSRF_FIELD: &str = "csrf";

/// How cookies are named and flagged on this deployment.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    secure: bool,
}

impl CookiePolicy {
    pub fn from_config(config: &Config) -> Self {
        let https = config
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"));
        Self {
            secure: config.env == Environment::Production || https,
        }
    }

    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-session"
        } else {
            "session"
        }
    }

    pub fn visitor_name(self) -> &'static str {
        if self.secure {
            "__Host-visitor"
        } else {
            "visitor"
        }
    }

    /// A cookie for the whole site with this policy's flags.
    pub fn cookie(self, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(cookie::time::Duration::seconds(max_age.num_seconds()))
            .build()
    }

    /// The cookie that tells the browser to forget `name`.
    pub fn removal(self, name: &'static str) -> Cookie<'static> {
        self.cookie(name, String::new(), Duration::zero())
    }
}

/// The signed-in user of a page, from the session cookie. Extracting it from a request
/// without a live session answers with a redirect to the login page.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub id: i64,
    pub username: String,
    pub team: Option<String>,
    pub team_name: Option<(String, String)>,
    pub team_color: Option<String>,
    pub image: Option<String>,
    /// `fan`, `store_owner` or `admin`, read with the session on every request, so a role
    /// taken away applies at once.
    pub role: String,
}

impl WebUser {
    /// Whether the header links to the owner's pages (`/owner`). Which stores they may manage
    /// is still decided per store ([`crate::catalog::check_manager`]).
    pub fn is_store_owner(&self) -> bool {
        self.role == "store_owner"
    }

    /// May see `/admin` and delete anyone's articles, comments and chat messages.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    /// The team's name in the page's language.
    pub fn team_label(&self, lang: &Lang) -> Option<&str> {
        self.team_name.as_ref().map(|(ko, en)| match lang {
            Lang::Ko => ko.as_str(),
            Lang::En => en.as_str(),
        })
    }
}

/// The signed-in user, if any.
#[derive(Debug, Clone)]
pub struct MaybeWebUser(pub Option<WebUser>);

/// What [`context`] learnt about the request, for the extractors and the layout.
#[derive(Debug, Clone)]
pub struct WebContext {
    pub user: Option<WebUser>,
    pub lang: Lang,
    /// The CSRF token forms of this page must carry.
    pub csrf: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token bound to `binding` (a session or visitor token). The key is derived from
/// the JWT secret, so the token is unforgeable without the server's secret.
fn csrf_token(config: &Config, binding: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(config.jwt_secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"ballpark web csrf\0");
    mac.update(binding.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn csrf_matches(config: &Config, binding: &str, sent: &str) -> bool {
    let Ok(sent) = hex::decode(sent) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(config.jwt_secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"ballpark web csrf\0");
    mac.update(binding.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&sent).is_ok()
}

fn session_length(config: &Config) -> Duration {
    Duration::days(config.web_session_days)
}

/// Starts a session for `user_id`: stores its hash and returns the cookie to set.
pub async fn start(state: &AppState, user_id: i64) -> Result<Cookie<'static>> {
    let policy = CookiePolicy::from_config(&state.config);
    let token = random_token();
    let now = now();
    let length = session_length(&state.config);
    store::delete_expired(&state.db, now).await?;
    store::insert(&state.db, &hash_token(&token), user_id, now, now + length).await?;
    Ok(policy.cookie(policy.session_name(), token, length))
}

/// Ends the request's session, if any; returns the cookie removal to send.
pub async fn end(state: &AppState, jar: &CookieJar) -> Result<Cookie<'static>> {
    let policy = CookiePolicy::from_config(&state.config);
    if let Some(cookie) = jar.get(policy.session_name()) {
        store::delete(&state.db, &hash_token(cookie.value())).await?;
    }
    Ok(policy.removal(policy.session_name()))
}

struct Loaded {
    user: Option<WebUser>,
    binding: String,
    set_cookies: Vec<Cookie<'static>>,
}

/// Looks up the session cookie; slides its expiry; picks what CSRF tokens bind to.
async fn load(state: &AppState, jar: &CookieJar) -> Result<Loaded> {
    let policy = CookiePolicy::from_config(&state.config);
    let mut set_cookies = Vec::new();
    if let Some(cookie) = jar.get(policy.session_name()) {
        let token = cookie.value().to_string();
        let now = now();
        match store::find(&state.db, &hash_token(&token), now).await? {
            Some(row) => {
                let length = session_length(&state.config);
                if row.expires_at - now < length - Duration::days(1) {
                    store::extend(&state.db, row.id, now + length).await?;
                    set_cookies.push(policy.cookie(policy.session_name(), token.clone(), length));
                }
                let team_name = row.team_name_ko.zip(row.team_name_en);
                let user = WebUser {
                    id: row.user_id,
                    username: row.username,
                    team: row.team,
                    team_name,
                    team_color: row.team_color,
                    image: row.image,
                    role: row.role,
                };
                return Ok(Loaded {
                    user: Some(user),
                    binding: token,
                    set_cookies,
                });
            }
            // Revoked or expired: the browser should forget it.
            None => set_cookies.push(policy.removal(policy.session_name())),
        }
    }
    let binding = match jar.get(policy.visitor_name()) {
        Some(cookie) if cookie.value().len() == 64 => cookie.value().to_string(),
        _ => {
            let token = random_token();
            set_cookies.push(policy.cookie(
                policy.visitor_name(),
                token.clone(),
                Duration::days(365),
            ));
            token
        }
    };
    Ok(Loaded {
        user: None,
        binding,
        set_cookies,
    })
}

tokio::task_local! {
    /// The request's language, for error pages rendered where no [`super::Layout`] is at hand
    /// (a handler's `?`). Scoped to the request's task: not a process-wide setting.
    pub static REQUEST_LANG: Lang;
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// Middleware on every web route: loads the session and language into a [`WebContext`],
/// refuses unsafe requests without the right CSRF token, and sets the cookies the session
/// needs (a slid expiry, a new visitor token, the removal of a dead session).
pub async fn context(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let lang = Lang::of_request(request.headers(), &jar);
    REQUEST_LANG
        .scope(lang, async move {
            match guarded(&state, jar, lang, request, next).await {
                Ok(response) => response,
                Err(err) => err.into_response(),
            }
        })
        .await
}

async fn guarded(
    state: &AppState,
    jar: CookieJar,
    lang: Lang,
    request: Request,
    next: Next,
) -> Result<Response, PageError> {
    let loaded = load(state, &jar).await?;
    let mut request = request;
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        request = check_csrf(state, &loaded.binding, request).await?;
    }
    request.extensions_mut().insert(WebContext {
        user: loaded.user,
        lang,
        csrf: csrf_token(&state.config, &loaded.binding),
    });
    let mut response = next.run(request).await;
    for cookie in loaded.set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Passes the request on if its CSRF token (header, or the `csrf` field of a urlencoded
/// form, read here and put back for the handler) is the one bound to its session.
async fn check_csrf(
    state: &AppState,
    binding: &str,
    request: Request,
) -> Result<Request, PageError> {
    if let Some(sent) = header_token(request.headers()) {
        return if csrf_matches(&state.config, binding, &sent) {
            Ok(request)
        } else {
            Err(PageError::csrf())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(PageError::csrf());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, state.config.body_limit_bytes)
        .await
        .map_err(|_| PageError::from(AppError::PayloadTooLarge))?;
    let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let sent = axum::Form::<CsrfField>::from_request(probe, &())
        .await
        .ok()
        .and_then(|axum::Form(field)| field.csrf);
    match sent {
        Some(sent) if csrf_matches(&state.config, binding, &sent) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(PageError::csrf()),
    }
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl FromRequestParts<AppState> for WebContext {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, PageError> {
        parts
            .extensions
            .get::<WebContext>()
            .cloned()
            .ok_or_else(|| {
                PageError::from(AppError::Internal(anyhow::anyhow!(
                    "a web page handler runs without the session middleware"
                )))
            })
    }
}

impl FromRequestParts<AppState> for MaybeWebUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Ok(MaybeWebUser(
            WebContext::from_request_parts(parts, state).await?.user,
        ))
    }
}

/// Where to send a visitor who needs to log in: the login page, then back here.
pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        let to = format!("/login?next={}", super::pages::segment(&self.0));
        (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let context = WebContext::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        // A form post's own URL is not a page to come back to; its referring page is.
        let back = if parts.method == Method::GET {
            here
        } else {
            "/".to_string()
        };
        context
            .user
            .ok_or_else(|| LoginRedirect(back).into_response())
    }
}

/// The `next` of a login link, kept to a path on this site (an open redirect otherwise).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_is_valid_only_for_its_own_session() {
        let config = Config::default();
        let token = csrf_token(&config, "session-a");
        assert!(csrf_matches(&config, "session-a", &token));
        assert!(!csrf_matches(&config, "session-b", &token));
        assert!(!csrf_matches(&config, "session-a", "not hex"));
        assert!(!csrf_matches(&config, "session-a", ""));
    }

    #[test]
    fn login_redirects_stay_on_this_site() {
        assert_eq!(safe_next(Some("/articles/x?y=1")), "/articles/x?y=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_are_secure_and_host_prefixed_over_https() {
        let dev = CookiePolicy::from_config(&Config::default());
        let https = CookiePolicy::from_config(&Config {
            public_url: Some("https://ballpark.example".into()),
            ..Config::default()
        });

        let plain = dev.cookie(dev.session_name(), "t".into(), Duration::days(1));
        let secure = https.cookie(https.session_name(), "t".into(), Duration::days(1));

        assert_eq!(plain.name(), "session");
        assert_eq!(plain.secure(), Some(false));
        assert_eq!(plain.http_only(), Some(true));
        assert_eq!(plain.same_site(), Some(SameSite::Lax));
        assert_eq!(secure.name(), "__Host-session");
        assert_eq!(secure.secure(), Some(true));
        assert_eq!(secure.path(), Some("/"));
    }
}
