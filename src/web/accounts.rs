//! Accounts in the browser: register, log in, log out, choose a language, and the API token
//! a page script asks for. The checks are the API's own (`community::domain` parsers, the
//! `users` store, the login rate limiter); only the answers differ: pages and redirects.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use chrono::Duration;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::forms::{field_errors, form_error, FieldError, PageForm, PageQuery};
use super::i18n::{Lang, LANG_COOKIE};
use super::layout::Layout;
use super::pages::{render, team_links, TeamLink};
use super::session::{self, safe_next, CookiePolicy, MaybeWebUser};
use super::PageError;
use crate::app::AppState;
use crate::community::domain;
use crate::community::store::users;
use crate::error::AppError;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub title: String,
    pub next: String,
    pub email: String,
    pub errors: Vec<FieldError>,
}

/// `GET /login`
pub async fn login_page(
    layout: Layout,
    PageQuery(query): PageQuery<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    if layout.user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let title = layout.t("login.title").into_owned();
    Ok(render(&LoginPage {
        layout,
        title,
        next,
        email: String::new(),
        errors: Vec::new(),
    })?
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// A hash to verify against when the email is unknown, so that a login for a missing account
/// takes as long as one with a wrong password and does not reveal which accounts exist.
static DUMMY_HASH: OnceCell<String> = OnceCell::const_new();

/// `POST /login`: the API's checks and rate limit; a session and a redirect to `next`.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    layout: Layout,
    jar: CookieJar,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_lowercase();
    let again = |layout: Layout, status: StatusCode, errors: Vec<FieldError>| {
        let title = layout.t("login.title").into_owned();
        let page = render(&LoginPage {
            layout,
            title,
            next: next.clone(),
            email: email.clone(),
            errors,
        })?;
        Ok::<_, PageError>((status, page).into_response())
    };
    if email.is_empty() || form.password.is_empty() || email.len() > domain::MAX_EMAIL {
        let errors = form_error(layout.lang, "login.missing");
        return again(layout, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    state.login_limiter.check(&email, peer.ip())?;
    let user = users::find_by_email(&state.db, &email).await?;
    let stored_hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => DUMMY_HASH
            .get_or_try_init(|| state.passwords.hash("not-a-real-password".into()))
            .await?
            .clone(),
    };
    let matches = state.passwords.verify(form.password, stored_hash).await?;
    match user {
        Some(user) if matches => {
            let cookie = session::start(&state, user.id).await?;
            Ok((jar.add(cookie), Redirect::to(&next)).into_response())
        }
        _ => {
            let errors = form_error(layout.lang, "login.wrong");
            again(layout, StatusCode::UNAUTHORIZED, errors)
        }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub layout: Layout,
    pub title: String,
    pub username: String,
    pub email: String,
    pub team: String,
    pub teams: Vec<TeamLink>,
    pub errors: Vec<FieldError>,
}

/// `GET /register`
pub async fn register_page(
    State(state): State<AppState>,
    layout: Layout,
) -> Result<Response, PageError> {
    if layout.user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let title = layout.t("register.title").into_owned();
    let teams = team_links(&state, layout.lang).await?;
    Ok(render(&RegisterPage {
        layout,
        title,
        username: String::new(),
        email: String::new(),
        team: String::new(),
        teams,
        errors: Vec::new(),
    })?
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    team: String,
}

/// `POST /register`: the API's rules; a session and the home page.
pub async fn register(
    State(state): State<AppState>,
    layout: Layout,
    jar: CookieJar,
    PageForm(form): PageForm<RegisterForm>,
) -> Result<Response, PageError> {
    match create_account(&state, &form).await {
        Ok(user_id) => {
            let cookie = session::start(&state, user_id).await?;
            Ok((jar.add(cookie), Redirect::to("/")).into_response())
        }
        Err(error) => {
            let errors = field_errors(layout.lang, error)?;
            let title = layout.t("register.title").into_owned();
            let teams = team_links(&state, layout.lang).await?;
            let page = render(&RegisterPage {
                layout,
                title,
                username: form.username,
                email: form.email,
                team: form.team,
                teams,
                errors,
            })?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// The API's registration rules (`POST /api/users`), for a form: every problem at once.
async fn create_account(state: &AppState, form: &RegisterForm) -> Result<i64, AppError> {
    let row = crate::community::users::create_account(
        state,
        Some(&form.username),
        Some(&form.email),
        Some(&form.password),
        Some(&form.team),
    )
    .await?;
    Ok(row.id)
}

/// `POST /logout`: deletes the session (revoking it everywhere) and forgets the cookie.
pub async fn logout(State(state): State<AppState>, jar: CookieJar) -> Result<Response, PageError> {
    let removal = session::end(&state, &jar).await?;
    Ok((jar.add(removal), Redirect::to("/")).into_response())
}

/// `POST /session/token` (with the `X-CSRF-Token` header): an API token for the signed-in
/// user, for a page script to call the JSON API with. 401 without a session.
pub async fn api_token(
    State(state): State<AppState>,
    MaybeWebUser(user): MaybeWebUser,
) -> Result<Response, AppError> {
    let user = user.ok_or(AppError::Unauthorized)?;
    let token = state.tokens.issue(user.id)?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "token": token, "username": user.username })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct BackQuery {
    back: Option<String>,
}

/// `GET /lang/{ko|en}`: remembers the choice for a year and goes back to the page. A plain
/// link (no CSRF token) on purpose: choosing a language changes nothing but the display.
pub async fn choose_language(
    State(state): State<AppState>,
    Path(code): Path<String>,
    PageQuery(query): PageQuery<BackQuery>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let lang = Lang::parse(&code)
        .filter(|l| l.code() == code)
        .ok_or(AppError::NotFound("language"))?;
    let policy = CookiePolicy::from_config(&state.config);
    let cookie = policy.cookie(LANG_COOKIE, lang.code().to_string(), Duration::days(365));
    let back = safe_next(query.back.as_deref());
    Ok((jar.add(cookie), Redirect::to(&back)).into_response())
}
