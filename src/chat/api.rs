//! The chat's HTTP side: the WebSocket upgrade, and a room's history and posting without a
//! socket. Handlers only parse and shape; posting is [`super::post`], the socket
//! [`super::socket`].

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{ChatMessage, MessageBody, BACKLOG, MAX_FRAME_BYTES};
use super::moderation::{self, MuteMinutes};
use super::{require_team, socket, store, PostError};
use crate::app::AppState;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::community::domain::{Problems, MAX_PAGE};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, post_message))
        .routes(routes!(mute_user, unmute_user))
        .routes(routes!(delete_message))
        .route("/api/teams/{team}/chat", get(open_socket))
}

/// `GET /api/teams/{team}/chat`: upgrades to the room's WebSocket (see [`super::socket`]).
/// 404 for an unknown team, 429 when this process has [`super::hub::MAX_SOCKETS`] open, 401
/// for an `Authorization` header with a bad token (no header: a reader, who may sign in with
/// an `auth` frame).
async fn open_socket(
    State(state): State<AppState>,
    viewer: MaybeAuthUser,
    Path(team): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    require_team(&state, &team).await?;
    let user = match viewer.0 {
        Some(auth) => Some(
            socket::Viewer::load(&state, auth.id)
                .await?
                .ok_or(AppError::Unauthorized)?,
        ),
        None => None,
    };
    let slot = state.chat.open_socket().ok_or(AppError::TooManyRequests)?;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |ws| socket::serve(ws, state, team, user, slot)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryPage {
    /// Only messages older than this message id (to page back).
    #[param(schema_with = before_schema, required = false)]
    before: Option<i64>,
    /// At most this many messages, 1-100 (default 50).
    #[param(schema_with = crate::community::domain::page_limit_schema, required = false)]
    limit: Option<i64>,
}

fn before_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::described(
        crate::openapi::text::integer(1, i64::MAX),
        "Only messages older than this message id (to page back).",
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatMessageList {
    /// Newest first.
    pub messages: Vec<ChatMessage>,
}

/// A team room's messages, newest first.
#[utoipa::path(get, path = "/api/teams/{team}/chat/messages", tag = "chat",
    params(("team" = String, Path), HistoryPage),
    responses((status = 200, body = ChatMessageList), (status = 404), (status = 422)))]
async fn list_messages(
    State(state): State<AppState>,
    Path(team): Path<String>,
    ApiQuery(page): ApiQuery<HistoryPage>,
) -> Result<Json<ChatMessageList>> {
    let limit = page.limit.unwrap_or(BACKLOG);
    let mut problems = Problems::default();
    if !(1..=MAX_PAGE).contains(&limit) {
        problems.add("limit", format!("must be between 1 and {MAX_PAGE}"));
    }
    if page.before.is_some_and(|id| id < 1) {
        problems.add("before", "must be a message id");
    }
    problems.finish()?;
    require_team(&state, &team).await?;
    let rows = store::page(&state.db, &team, page.before, limit).await?;
    Ok(Json(ChatMessageList {
        messages: rows.into_iter().map(ChatMessage::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMessageBody {
    message: NewMessage,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMessage {
    #[schema(schema_with = super::domain::message_schema, required = true)]
    body: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatMessageBody {
    pub message: ChatMessage,
}

/// Post to a team room without a socket; the room's sockets get it as if it came from one.
#[utoipa::path(post, path = "/api/teams/{team}/chat/messages", tag = "chat",
    params(("team" = String, Path)), request_body = NewMessageBody,
    responses((status = 201, body = ChatMessageBody), (status = 401),
        (status = 403, description = "the caller is muted"), (status = 404),
        (status = 422), (status = 429)),
    security(("token" = [])))]
async fn post_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(team): Path<String>,
    ApiJson(input): ApiJson<NewMessageBody>,
) -> Result<(StatusCode, Json<ChatMessageBody>)> {
    let body = MessageBody::parse(input.message.body.as_deref())
        .map_err(|msg| AppError::invalid("body", msg))?;
    require_team(&state, &team).await?;
    match super::post(&state, &team, auth.id, &body).await {
        Ok(message) => Ok((StatusCode::CREATED, Json(ChatMessageBody { message }))),
        Err(PostError::RateLimited(_)) => Err(AppError::TooManyRequests),
        Err(PostError::Muted(_)) => Err(AppError::Forbidden),
        Err(PostError::Failed(err)) => Err(err),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MuteBody {
    mute: MuteInput,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MuteInput {
    /// 1 to 10,080 (a week).
    #[schema(schema_with = minutes_schema, required = true)]
    #[serde(default, deserialize_with = "crate::http::whole_or_null")]
    minutes: Option<i64>,
}

fn minutes_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::integer(1, super::moderation::MAX_MUTE_MINUTES)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Muted {
    pub username: String,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String)]
    pub until: chrono::DateTime<chrono::Utc>,
}

/// Admins: mute a user in every chat room for a while (they can still read); muting again
/// replaces the earlier mute. A muted user's posts get 403 (`POST`) or a `muted` error frame.
#[utoipa::path(put, path = "/api/admin/chat/mutes/{username}", tag = "admin",
    params(("username" = String, Path)), request_body = MuteBody,
    responses((status = 200, body = Muted), (status = 401), (status = 403), (status = 404),
        (status = 422)),
    security(("token" = [])))]
async fn mute_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(username): Path<String>,
    ApiJson(input): ApiJson<MuteBody>,
) -> Result<Json<Muted>> {
    crate::admin::require_admin(&state, &auth).await?;
    let minutes =
        MuteMinutes::parse(input.mute.minutes).map_err(|msg| AppError::invalid("minutes", msg))?;
    let until = moderation::mute(&state.db, &username, minutes, auth.id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    Ok(Json(Muted { username, until }))
}

/// Admins: lift a user's chat mute (nothing happens if there is none).
#[utoipa::path(delete, path = "/api/admin/chat/mutes/{username}", tag = "admin",
    params(("username" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("token" = [])))]
async fn unmute_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(username): Path<String>,
) -> Result<StatusCode> {
    crate::admin::require_admin(&state, &auth).await?;
    if moderation::unmute(&state.db, &username).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("user"))
    }
}

/// Admins: delete a chat message. It leaves the history, and open pages of its room get a
/// `deleted` frame and remove it.
#[utoipa::path(delete, path = "/api/admin/chat/messages/{id}", tag = "admin",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("token" = [])))]
async fn delete_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    crate::admin::require_admin(&state, &auth).await?;
    if moderation::delete_message(&state, id, auth.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("message"))
    }
}
