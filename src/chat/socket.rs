//! One chat socket: sends the room's recent messages, then new ones as they come, and posts
//! what its user sends, until the client goes, stops answering pings, or the server shuts
//! down (close code 1001).
//!
//! The socket subscribes to its room before it reads the recent messages, so a message stored
//! in between is not lost; it may arrive twice (in the backlog and live), and so may one
//! re-published by a catch-up ([`super::hub`]): each socket remembers the ids it has sent
//! lately and skips them.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::domain::{ChatMessage, ClientFrame, MessageBody, ServerFrame, BACKLOG};
use super::hub::RoomEvent;
use super::presence::Present;
use super::{store, PostError};
use crate::app::AppState;
use crate::error::{AppError, Result};

/// How often the server pings; a client silent for [`SILENCE_LIMIT`] is gone.
const PING_EVERY: Duration = Duration::from_secs(25);
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// Ids a socket remembers having sent, to skip repeats.
const REMEMBERED: usize = 512;

/// Who a socket posts as.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub id: i64,
    pub username: String,
}

impl Viewer {
    /// The account behind a verified token; `None` if it was deleted since.
    pub async fn load(state: &AppState, id: i64) -> Result<Option<Viewer>> {
        Ok(crate::community::store::users::find_by_id(&state.db, id)
            .await?
            .map(|user| Viewer {
                id: user.id,
                username: user.username,
            }))
    }
}

/// The ids a socket sent lately, oldest forgotten first.
struct Sent {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl Sent {
    fn new() -> Self {
        Sent {
            order: VecDeque::with_capacity(REMEMBERED),
            ids: HashSet::with_capacity(REMEMBERED),
        }
    }

    /// `false` if `id` was sent already.
    fn record(&mut self, id: i64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

/// Why the loop stopped sending.
struct Gone;

struct Session {
    ws: WebSocket,
    state: AppState,
    team: String,
    user: Option<Viewer>,
    sent: Sent,
}

impl Session {
    async fn send(&mut self, frame: &ServerFrame<'_>) -> Result<(), Gone> {
        let text = serde_json::to_string(frame).map_err(|_| Gone)?;
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| Gone)
    }

    async fn error(
        &mut self,
        code: &str,
        message: &str,
        retry: Option<Duration>,
    ) -> Result<(), Gone> {
        let retry_after_ms = retry.map(|wait| wait.as_millis().max(1) as u64);
        self.send(&ServerFrame::Error {
            code,
            message,
            retry_after_ms,
        })
        .await
    }

    /// The room's most recent messages, oldest first, minus those sent already.
    async fn recent(&mut self) -> Result<Vec<ChatMessage>> {
        let mut rows = store::page(&self.state.db, &self.team, None, BACKLOG).await?;
        rows.reverse();
        Ok(rows
            .into_iter()
            .filter(|row| self.sent.record(row.id))
            .map(ChatMessage::from)
            .collect())
    }

    async fn deliver(&mut self, message: &ChatMessage) -> Result<(), Gone> {
        if self.sent.record(message.id) {
            self.send(&ServerFrame::Message { message }).await?;
        }
        Ok(())
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Gone> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(err) => {
                let message = format!("not a chat frame: {err}");
                return self.error("bad_frame", &message, None).await;
            }
        };
        match frame {
            ClientFrame::Auth { token } => {
                let viewer = match self.state.tokens.verify(&token) {
                    Ok(id) => Viewer::load(&self.state, id).await.ok().flatten(),
                    Err(_) => None,
                };
                match viewer {
                    Some(viewer) => {
                        let previous = self.user.replace(viewer.clone());
                        if previous.as_ref().map(|p| p.id) != Some(viewer.id) {
                            let (db, chat) = (&self.state.db, &self.state.chat);
                            if let Some(previous) = previous {
                                chat.depart(db, &self.team, previous.id).await;
                            }
                            chat.arrive(db, &self.team, viewer.id).await;
                        }
                        self.send(&ServerFrame::Authenticated {
                            username: &viewer.username,
                        })
                        .await
                    }
                    None => {
                        self.error("unauthorized", "the token is invalid or expired", None)
                            .await
                    }
                }
            }
            ClientFrame::Send { body } => {
                let Some(user) = self.user.clone() else {
                    return self
                        .error("unauthorized", "sign in (an auth frame) to post", None)
                        .await;
                };
                let body = match MessageBody::parse(body.as_deref()) {
                    Ok(body) => body,
                    Err(problem) => {
                        return self
                            .error("invalid", &format!("body {problem}"), None)
                            .await
                    }
                };
                // Like a token on the HTTP API, a socket's sign-in lasts only as long as the
                // account: posting as a deleted user would fail on its foreign key.
                match crate::community::store::users::exists(&self.state.db, user.id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.user = None;
                        return self
                            .error("unauthorized", "the account no longer exists", None)
                            .await;
                    }
                    Err(err) => {
                        if let AppError::Internal(cause) = &err {
                            tracing::error!(
                                error = format!("{cause:#}"),
                                "chat: checking the poster failed"
                            );
                        }
                        return self
                            .error("failed", "the message could not be posted", None)
                            .await;
                    }
                }
                match super::post(&self.state, &self.team, user.id, &body).await {
                    // The sender gets its message through the room, like everyone else.
                    Ok(_) => Ok(()),
                    Err(PostError::RateLimited(wait)) => {
                        self.error(
                            "rate_limited",
                            "too many messages; wait a moment",
                            Some(wait),
                        )
                        .await
                    }
                    Err(PostError::Muted(until)) => {
                        let message = format!("you are muted until {}", until.to_rfc3339());
                        self.error("muted", &message, None).await
                    }
                    Err(PostError::Failed(err)) => {
                        if let AppError::Internal(cause) = &err {
                            tracing::error!(error = format!("{cause:#}"), "chat: posting failed");
                        }
                        self.error("failed", "the message could not be posted", None)
                            .await
                    }
                }
            }
        }
    }
}

/// Runs one socket to its end; `_slot` holds its place among the process's sockets.
pub async fn serve(
    ws: WebSocket,
    state: AppState,
    team: String,
    user: Option<Viewer>,
    _slot: OwnedSemaphorePermit,
) {
    let _open = super::metrics::ChatMetrics::new(&state.metrics).socket_open();
    let shutdown = state.chat.shutdown().clone();
    let mut room = state.chat.subscribe(&team);
    let mut present = state.chat.watch_presence(&team);
    if let Some(user) = &user {
        state.chat.arrive(&state.db, &team, user.id).await;
    }
    let mut session = Session {
        ws,
        state,
        team,
        user,
        sent: Sent::new(),
    };
    let ended = run(&mut session, &mut room, &mut present, &shutdown).await;
    if let Some(user) = &session.user {
        session
            .state
            .chat
            .depart(&session.state.db, &session.team, user.id)
            .await;
    }
    if ended.is_ok() {
        let _ = session
            .ws
            .send(Message::Close(Some(CloseFrame {
                code: axum::extract::ws::close_code::AWAY,
                reason: "the server is shutting down".into(),
            })))
            .await;
    }
}

/// The socket loop; `Ok` means the server is shutting down, `Err` that the client is gone.
async fn run(
    session: &mut Session,
    room: &mut tokio::sync::broadcast::Receiver<RoomEvent>,
    present: &mut tokio::sync::watch::Receiver<Arc<Vec<Present>>>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<(), Gone> {
    let backlog = match session.recent().await {
        Ok(messages) => messages,
        Err(err) => {
            tracing::error!(error = %err, "chat: cannot read the room's recent messages");
            Vec::new()
        }
    };
    let team = session.team.clone();
    let username = session.user.as_ref().map(|u| u.username.clone());
    session
        .send(&ServerFrame::Hello {
            team: &team,
            username: username.as_deref(),
            messages: &backlog,
        })
        .await?;
    // The list may predate this room's first socket here: read it now.
    session
        .state
        .chat
        .refresh_presence(&session.state.db, &team)
        .await;
    let users = present.borrow_and_update().clone();
    session
        .send(&ServerFrame::Presence { users: &users })
        .await?;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            received = room.recv() => match received {
                Ok(RoomEvent::Message(message)) => session.deliver(&message).await?,
                Ok(RoomEvent::Deleted(id)) => session.send(&ServerFrame::Deleted { id }).await?,
                // This socket fell behind its room: what it missed is in the database.
                Err(RecvError::Lagged(_)) => {
                    let missed = session.recent().await.unwrap_or_default();
                    for message in &missed {
                        session.send(&ServerFrame::Message { message }).await?;
                    }
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            changed = present.changed() => {
                // The hub keeps every room's sender, so this ends only with the process.
                if changed.is_err() {
                    return Ok(());
                }
                let users = present.borrow_and_update().clone();
                session.send(&ServerFrame::Presence { users: &users }).await?;
            }
            frame = session.ws.recv() => {
                heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => session.on_text(text.as_str()).await?,
                    Some(Ok(Message::Binary(_))) => {
                        session.error("bad_frame", "frames are JSON text", None).await?
                    }
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => return Err(Gone),
                    Some(Err(err)) => {
                        let (code, reason) = refusal(err);
                        let close = CloseFrame { code, reason: reason.into() };
                        let _ = session.ws.send(Message::Close(Some(close))).await;
                        return Err(Gone);
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENCE_LIMIT {
                    return Err(Gone);
                }
                session.ws.send(Message::Ping(Vec::new().into())).await.map_err(|_| Gone)?;
            }
        }
    }
}

/// The close code and reason for a frame the WebSocket layer could not read: 1009 for one over
/// the size limit, 1002 for anything else that breaks the protocol.
fn refusal(err: axum::Error) -> (u16, &'static str) {
    use axum::extract::ws::close_code;
    match err.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => (close_code::SIZE, "the frame is over 16 KiB"),
        _ => (close_code::PROTOCOL, "the frame could not be read"),
    }
}
