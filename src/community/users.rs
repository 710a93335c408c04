//! Accounts: register, log in, read and update the current user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{self, Problems};
use super::double_option;
use super::store::users::{self as store, NewUser, TakenColumn, UserChanges, UserRow};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::client_ip::ClientIp;
use crate::error::{AppError, Result};
use crate::http::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(current_user, update_user))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub email: String,
    pub token: String,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    /// Key of the fan's KBO team, or null.
    pub team: Option<String>,
    /// `fan`, `store_owner` or `admin`.
    #[schema(schema_with = role_schema)]
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    pub user: User,
}

fn user_body(row: UserRow, token: String) -> UserBody {
    UserBody {
        user: User {
            email: row.email,
            token,
            username: row.username,
            bio: row.bio,
            image: row.image,
            team: row.team,
            role: row.role,
        },
    }
}

fn role_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::key(store::ROLES.map(String::from).to_vec())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    user: NewUserInput,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserInput {
    #[schema(schema_with = domain::username_schema, required = true)]
    username: Option<String>,
    #[schema(schema_with = domain::email_schema, required = true)]
    email: Option<String>,
    #[schema(schema_with = domain::password_schema, required = true)]
    password: Option<String>,
    /// Optional team key (see `GET /api/teams`); `""` or null for none.
    #[schema(schema_with = crate::demo::team_key_schema)]
    team: Option<String>,
}

/// Register a new user.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = RegisterBody,
    responses((status = 201, body = UserBody), (status = 422, description = "invalid or taken fields")))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<UserBody>)> {
    let input = body.user;
    let row = create_account(
        &state,
        input.username.as_deref(),
        input.email.as_deref(),
        input.password.as_deref(),
        input.team.as_deref(),
    )
    .await?;
    let token = state.tokens.issue(row.id)?;
    Ok((StatusCode::CREATED, Json(user_body(row, token))))
}

/// Registration's rules, shared by `POST /api/users` and the web UI's sign-up form: every
/// problem reported at once (422), then a `fan` with a hashed password.
pub async fn create_account(
    state: &AppState,
    username: Option<&str>,
    email: Option<&str>,
    password: Option<&str>,
    team: Option<&str>,
) -> Result<store::UserRow> {
    let mut problems = Problems::default();
    let username = problems.check("username", domain::parse_username(username));
    let email = problems.check("email", domain::parse_email(email));
    let password = problems.check("password", domain::parse_password(password));
    // A key is matched as sent: the document lists the keys, and " lg" is not one of them.
    let team = match team.filter(|t| !t.is_empty()) {
        Some(key) if !store::team_exists(&state.db, key).await? => {
            problems.add("team", "is not a KBO team key");
            None
        }
        other => other.map(str::to_string),
    };
    if let Some(username) = &username {
        if store::is_taken(&state.db, TakenColumn::Username, username, 0).await? {
            problems.add("username", "has already been taken");
        }
    }
    if let Some(email) = &email {
        if store::is_taken(&state.db, TakenColumn::Email, email, 0).await? {
            problems.add("email", "has already been taken");
        }
    }
    problems.finish()?;
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        unreachable!("problems.finish() returns early when a field is missing");
    };
    let password_hash = state.passwords.hash(password).await?;
    store::insert(
        &state.db,
        NewUser {
            username: &username,
            email: &email,
            password_hash: &password_hash,
            team: team.as_deref(),
            role: "fan",
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    user: LoginInput,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginInput {
    #[schema(schema_with = login_email_schema, required = true)]
    email: Option<String>,
    #[schema(schema_with = login_password_schema, required = true)]
    password: Option<String>,
}

/// Login looks an email up rather than parsing it: any visible text will do.
fn login_email_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::required(domain::MAX_EMAIL)
}

/// See [`login_password`].
fn login_password_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::pattern(crate::openapi::text::no_nul(), 1, domain::MAX_PASSWORD)
}

/// The password as typed: never trimmed (spaces are legitimate in passwords), only required
/// and bounded.
fn login_password(password: Option<String>) -> Result<String, String> {
    match password {
        None => Err("can't be empty".into()),
        Some(p) if p.is_empty() => Err("can't be empty".into()),
        Some(p) if p.chars().count() > domain::MAX_PASSWORD => Err(format!(
            "is too long (maximum is {} characters)",
            domain::MAX_PASSWORD
        )),
        Some(p) => Ok(p),
    }
}

/// A hash to verify against when the email is unknown, so that a login for a missing account
/// takes as long as one with a wrong password and does not reveal which accounts exist.
static DUMMY_HASH: OnceCell<String> = OnceCell::const_new();

/// Log in; rate-limited per account and per client address (429 past the limit).
#[utoipa::path(post, path = "/api/users/login", tag = "users", request_body = LoginBody,
    responses((status = 200, body = UserBody), (status = 401, description = "wrong email or password"),
              (status = 422, description = "missing fields"), (status = 429, description = "too many attempts")))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<UserBody>> {
    let mut problems = Problems::default();
    let email = problems.check(
        "email",
        domain::required_text(body.user.email.as_deref(), domain::MAX_EMAIL),
    );
    let password = problems.check("password", login_password(body.user.password));
    problems.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        unreachable!("problems.finish() returns early when a field is missing");
    };
    let email = email.to_lowercase();
    state.login_limiter.check(&email, client)?;

    let user = store::find_by_email(&state.db, &email).await?;
    let stored_hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => DUMMY_HASH
            .get_or_try_init(|| state.passwords.hash("not-a-real-password".into()))
            .await?
            .clone(),
    };
    let matches = state.passwords.verify(password, stored_hash).await?;
    match user {
        Some(user) if matches => {
            let token = state.tokens.issue(user.id)?;
            Ok(Json(user_body(user, token)))
        }
        _ => Err(AppError::BadCredentials),
    }
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/user", tag = "users",
    responses((status = 200, body = UserBody), (status = 401)), security(("token" = [])))]
async fn current_user(State(state): State<AppState>, auth: AuthUser) -> Result<Json<UserBody>> {
    let row = store::find_by_id(&state.db, auth.id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok(Json(user_body(row, auth.token)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserBody {
    user: UpdateUserInput,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateUserInput {
    // `null` cannot clear these, so it is told apart from absence and refused.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = domain::username_schema, required = false)]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = domain::email_schema, required = false)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = domain::password_schema, required = false)]
    password: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = bio_schema, required = false)]
    bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = image_schema, required = false)]
    image: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::demo::team_key_schema, required = false)]
    team: Option<Option<String>>,
}

fn bio_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::nullable(domain::MAX_BIO)
}

fn image_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::nullable(domain::MAX_IMAGE_URL)
}

/// Update the logged-in user. Absent fields stay; `null` clears bio, image and team, and is
/// refused (422) for username, email and password, which cannot be cleared.
#[utoipa::path(put, path = "/api/user", tag = "users", request_body = UpdateUserBody,
    responses((status = 200, body = UserBody), (status = 401), (status = 422)), security(("token" = [])))]
async fn update_user(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> Result<Json<UserBody>> {
    let input = body.user;
    let mut problems = Problems::default();
    let mut changes = UserChanges::default();
    if let Some(name) = input.username {
        changes.username = problems.check("username", domain::parse_username(name.as_deref()));
    }
    if let Some(email) = input.email {
        changes.email = problems.check("email", domain::parse_email(email.as_deref()));
    }
    let password = match input.password {
        Some(password) => problems.check("password", domain::parse_password(password.as_deref())),
        None => None,
    };
    if let Some(bio) = input.bio {
        changes.bio = problems.check(
            "bio",
            domain::parse_optional(bio.as_deref().unwrap_or(""), domain::MAX_BIO),
        );
    }
    if let Some(image) = input.image {
        changes.image = problems.check(
            "image",
            domain::parse_optional(image.as_deref().unwrap_or(""), domain::MAX_IMAGE_URL),
        );
    }
    if let Some(team) = input.team {
        let key = team.as_deref().filter(|t| !t.is_empty());
        match key {
            Some(key) if !store::team_exists(&state.db, key).await? => {
                problems.add("team", "is not a KBO team key")
            }
            _ => changes.team = Some(key.map(str::to_string)),
        }
    }
    // The suite re-sends the user's own email: uniqueness excludes the user themself.
    if let Some(name) = &changes.username {
        if store::is_taken(&state.db, TakenColumn::Username, name, auth.id).await? {
            problems.add("username", "has already been taken");
        }
    }
    if let Some(email) = &changes.email {
        if store::is_taken(&state.db, TakenColumn::Email, email, auth.id).await? {
            problems.add("email", "has already been taken");
        }
    }
    problems.finish()?;
    if let Some(password) = password {
        changes.password_hash = Some(state.passwords.hash(password).await?);
    }
    let row = store::update(&state.db, auth.id, changes)
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok(Json(user_body(row, auth.token)))
}
