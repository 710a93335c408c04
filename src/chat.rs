//! Live chat: one room per KBO team, over WebSockets, with the history kept in the database.
//!
//! - `GET /api/teams/{team}/chat` upgrades to a WebSocket. Anyone may read; posting needs an
//!   account, given as the `Authorization` header or, from a browser (which cannot set headers
//!   on a WebSocket), as a first `{"type":"auth","token":…}` frame, so tokens stay out of URLs
//!   and access logs. The wire format is in [`domain`] ([`domain::ClientFrame`],
//!   [`domain::ServerFrame`]); the socket loop is [`socket`].
//! - `GET /api/teams/{team}/chat/messages` pages back through a room's history;
//!   `POST` posts without a socket ([`api`]).
//! - Admins mute users and delete messages ([`moderation`]); a deleted message keeps its row,
//!   emptied, and open rooms are told with a `deleted` frame ([`hub`]).
//!
//! Two decisions a newcomer must know:
//! - **The database is the source of truth, the hub only a fan-out.** A message is stored
//!   before anyone sees it; a socket opening (or re-opening) reads the room's recent messages
//!   first, so a client that was away loses nothing it could page back to. How a stored
//!   message reaches the sockets of every process is [`hub`]'s concern (PostgreSQL
//!   `LISTEN/NOTIFY`; SQLite is one process). Who is in a room now ([`presence`]) is kept and
//!   spread the same way, and sent to sockets as `presence` frames.
//! - **Limits are per process and explicit** ([`domain`], [`hub`]): 500 characters a message,
//!   16 KiB a frame, 30 messages a minute per user with bursts of 5, 4,096 sockets, the
//!   50 most recent messages on connecting; a socket that stops answering pings is closed.

pub mod api;
pub mod domain;
pub mod hub;
pub mod metrics;
pub mod moderation;
pub mod presence;
pub mod socket;
pub mod store;

use domain::{ChatMessage, MessageBody};

use crate::app::AppState;
use crate::error::{AppError, Result};

pub use api::router;
pub use hub::ChatHub;

/// 404 unless `team` is a team key.
pub async fn require_team(state: &AppState, team: &str) -> Result<()> {
    if crate::community::store::users::team_exists(&state.db, team).await? {
        Ok(())
    } else {
        Err(AppError::NotFound("team"))
    }
}

/// What refused a post.
#[derive(Debug)]
pub enum PostError {
    /// The user posts too fast; they may again after this long.
    RateLimited(std::time::Duration),
    /// An admin muted the user until then ([`moderation`]).
    Muted(chrono::DateTime<chrono::Utc>),
    Failed(AppError),
}

impl From<AppError> for PostError {
    fn from(err: AppError) -> Self {
        PostError::Failed(err)
    }
}

/// Stores a message from `author_id` in `team`'s room (checked by the caller) and hands it to
/// the room's sockets (see [`hub`]); the same path for sockets and `POST`.
pub async fn post(
    state: &AppState,
    team: &str,
    author_id: i64,
    body: &MessageBody,
) -> Result<ChatMessage, PostError> {
    if let Some(until) = moderation::muted_until(&state.db, author_id).await? {
        return Err(PostError::Muted(until));
    }
    let figures = metrics::ChatMetrics::new(&state.metrics);
    if let Err(wait) = state.chat.limiter().check(author_id) {
        figures.rate_limited();
        return Err(PostError::RateLimited(wait));
    }
    let id = store::insert(&state.db, team, author_id, body.as_str()).await?;
    figures.posted();
    let message: ChatMessage = store::by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("message"))?
        .into();
    state.chat.committed(&state.db, &message);
    Ok(message)
}
