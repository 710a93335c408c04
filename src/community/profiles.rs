//! Profiles and follows.

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::users::{self as store, ProfileRow};
use super::{Profile, ProfileBody};
use crate::app::AppState;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::{AppError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_profile))
        .routes(routes!(follow, unfollow))
}

fn profile_body(row: ProfileRow) -> ProfileBody {
    ProfileBody {
        profile: Profile {
            username: row.username,
            bio: row.bio,
            image: row.image,
            team: row.team,
            following: row.following,
        },
    }
}

async fn find(state: &AppState, username: &str, viewer_id: i64) -> Result<ProfileRow> {
    store::profile(&state.db, username, viewer_id)
        .await?
        .ok_or(AppError::NotFound("profile"))
}

/// A user's public profile.
#[utoipa::path(get, path = "/api/profiles/{username}", tag = "profiles",
    params(("username" = String, Path)),
    responses((status = 200, body = ProfileBody), (status = 404)),
    security((), ("token" = [])))]
async fn get_profile(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(username): Path<String>,
) -> Result<Json<ProfileBody>> {
    Ok(Json(profile_body(
        find(&state, &username, viewer.viewer_id()).await?,
    )))
}

/// Follow a user. Following twice is not an error.
#[utoipa::path(post, path = "/api/profiles/{username}/follow", tag = "profiles",
    params(("username" = String, Path)),
    responses((status = 200, body = ProfileBody), (status = 401), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn follow(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(username): Path<String>,
) -> Result<Json<ProfileBody>> {
    let target = find(&state, &username, auth.id).await?;
    if target.id == auth.id {
        return Err(AppError::invalid("username", "you cannot follow yourself"));
    }
    store::follow(&state.db, auth.id, target.id).await?;
    Ok(Json(profile_body(ProfileRow {
        following: true,
        ..target
    })))
}

/// Stop following a user.
#[utoipa::path(delete, path = "/api/profiles/{username}/follow", tag = "profiles",
    params(("username" = String, Path)),
    responses((status = 200, body = ProfileBody), (status = 401), (status = 404)),
    security(("token" = [])))]
async fn unfollow(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(username): Path<String>,
) -> Result<Json<ProfileBody>> {
    let target = find(&state, &username, auth.id).await?;
    store::unfollow(&state.db, auth.id, target.id).await?;
    Ok(Json(profile_body(ProfileRow {
        following: false,
        ..target
    })))
}
