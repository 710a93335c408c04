//! Fan-out: how a new message reaches every socket of its room, in this process and in the
//! others.
//!
//! Each room (team) has a [`broadcast`] channel in each process; a socket subscribes to its
//! room's. What feeds the channels depends on the database:
//! - **SQLite** is one process: the post that stored a message publishes it after the commit.
//! - **PostgreSQL** may have many server processes. A post sends `NOTIFY ballpark_chat` with the
//!   message id in its own transaction (so only committed messages are announced); every
//!   process LISTENs ([`run`]), reads the message and publishes it, its own posts included.
//!   After the listening connection is lost and comes back, the process re-reads the messages
//!   it may have missed (ids after the newest it saw, less a window for ids that committed out
//!   of order) and publishes them again; sockets drop ids they have already sent. The listener
//!   holds one of the pool's connections (`database_max_connections`) for as long as it runs.
//!
//! Deletions (an admin removing a message) go the same way: on PostgreSQL the delete sends
//! `NOTIFY ballpark_chat 'deleted:<team>:<id>'` in its transaction; on SQLite it is published
//! directly. Sockets send a `deleted` frame and the page removes the line. A deletion
//! announced while a listener was reconnecting is not caught up: that room's open pages keep
//! the line until they reload (the history no longer has it).
//!
//! Presence ([`super::presence`]) goes the same way: a room's list of users is kept per room
//! in a [`watch`] channel (sockets only need the latest), re-read from the database when a
//! change is announced (`NOTIFY ballpark_chat 'presence:<team>'` on PostgreSQL, directly on
//! SQLite), every [`presence::HEARTBEAT`], and after the listener reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::domain::{ChatMessage, PostLimiter, MESSAGES_PER_MINUTE, MESSAGE_BURST};
use super::presence::{self, LocalCounts, Present};
use super::store;
use crate::db::Db;

/// The PostgreSQL notification channel new message ids are announced on.
pub const PG_CHANNEL: &str = "ballpark_chat";
/// A notification on [`PG_CHANNEL`] starting with this announces a change of a room's
/// presence (the team key follows); any other payload is a message id.
pub const PRESENCE_PREFIX: &str = "presence:";
/// A notification on [`PG_CHANNEL`] starting with this announces a deleted message
/// (`deleted:<team>:<id>`).
pub const DELETED_PREFIX: &str = "deleted:";
/// Sockets open at once per process; more are refused with 429 before the upgrade.
pub const MAX_SOCKETS: usize = 4096;
/// Messages a room's channel holds for a socket that has not sent them yet; a socket further
/// behind (a slow client) re-reads the room's recent messages from the database instead.
const ROOM_CAPACITY: usize = 256;
/// How far below the newest id seen a catch-up re-reads (PostgreSQL hands out ids before
/// commit, so a lower id can commit later).
const CATCH_UP_WINDOW: i64 = 64;
/// Most messages one catch-up publishes.
const CATCH_UP_LIMIT: i64 = 1000;

/// This process's rooms, socket slots and posting limits. Cheap to clone.
#[derive(Clone)]
pub struct ChatHub {
    inner: Arc<Inner>,
}

/// What a room's sockets are told.
#[derive(Debug, Clone)]
pub enum RoomEvent {
    /// A new message.
    Message(Arc<ChatMessage>),
    /// The message with this id was deleted (by an admin).
    Deleted(i64),
}

/// A room's channels in this process.
struct Room {
    messages: broadcast::Sender<RoomEvent>,
    present: watch::Sender<Arc<Vec<Present>>>,
}

struct Inner {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    /// This process's sockets per room and user, for presence.
    counts: LocalCounts,
    sockets: Arc<Semaphore>,
    limiter: PostLimiter,
    /// Closes every socket when the server starts shutting down.
    shutdown: CancellationToken,
}

impl ChatHub {
    pub fn new(shutdown: CancellationToken) -> Self {
        ChatHub {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                counts: LocalCounts::new(),
                sockets: Arc::new(Semaphore::new(MAX_SOCKETS)),
                limiter: PostLimiter::new(MESSAGES_PER_MINUTE, MESSAGE_BURST),
                shutdown,
            }),
        }
    }

    fn room(&self, team: &str) -> Arc<Room> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(team.to_string())
            .or_insert_with(|| {
                Arc::new(Room {
                    messages: broadcast::channel(ROOM_CAPACITY).0,
                    present: watch::channel(Arc::new(Vec::new())).0,
                })
            })
            .clone()
    }

    /// The rooms that exist in this process (someone opened a socket on them).
    fn room_keys(&self) -> Vec<String> {
        let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.keys().cloned().collect()
    }

    /// New messages of `team` from now on. Rooms are team keys, checked before this is
    /// called, so there are at most as many rooms as teams.
    pub fn subscribe(&self, team: &str) -> broadcast::Receiver<RoomEvent> {
        self.room(team).messages.subscribe()
    }

    /// The users in `team`, as they change.
    pub fn watch_presence(&self, team: &str) -> watch::Receiver<Arc<Vec<Present>>> {
        self.room(team).present.subscribe()
    }

    /// Hands a committed message to the sockets of its room in this process.
    fn publish(&self, message: ChatMessage) {
        // No socket in the room is not an error.
        let room = self.room(&message.team);
        let _ = room.messages.send(RoomEvent::Message(Arc::new(message)));
    }

    /// Tells the sockets of `team`'s room in this process that message `id` is gone.
    fn publish_deleted(&self, team: &str, id: i64) {
        let _ = self.room(team).messages.send(RoomEvent::Deleted(id));
    }

    /// Re-reads who is in `team` and hands the list to the room's sockets in this process. A
    /// team no socket here opened is skipped (it has no room here).
    pub async fn refresh_presence(&self, db: &Db, team: &str) {
        if !self.room_keys().iter().any(|key| key == team) {
            return;
        }
        match presence::in_room(db, team).await {
            Ok(users) => {
                self.room(team).present.send_if_modified(|current| {
                    let changed = **current != users;
                    if changed {
                        *current = Arc::new(users);
                    }
                    changed
                });
            }
            Err(err) => tracing::error!(error = %err, team, "chat: cannot read who is in a room"),
        }
    }

    async fn refresh_every_room(&self, db: &Db) {
        for team in self.room_keys() {
            self.refresh_presence(db, &team).await;
        }
    }

    /// A socket of `user_id` opened on `team`: the first one makes them present.
    pub async fn arrive(&self, db: &Db, team: &str, user_id: i64) {
        if self.inner.counts.enter(team, user_id) {
            let stored = presence::insert(db, self.inner.counts.process(), team, user_id).await;
            self.presence_changed(db, team, stored).await;
        }
    }

    /// A socket of `user_id` on `team` closed: the last one makes them leave.
    pub async fn depart(&self, db: &Db, team: &str, user_id: i64) {
        if self.inner.counts.exit(team, user_id) {
            let stored = presence::delete(db, self.inner.counts.process(), team, user_id).await;
            self.presence_changed(db, team, stored).await;
        }
    }

    /// After a presence write: on SQLite, re-read the room here; on PostgreSQL, announce it so
    /// that every process (this one through its listener) re-reads it.
    async fn presence_changed(&self, db: &Db, team: &str, stored: crate::error::Result<()>) {
        if let Err(err) = stored {
            tracing::error!(error = %err, team, "chat: cannot record presence");
            return;
        }
        match db {
            Db::Sqlite { .. } => self.refresh_presence(db, team).await,
            Db::Postgres { pool, .. } => {
                if let Err(err) = presence::announce(pool, team).await {
                    tracing::error!(error = %err, team, "chat: cannot announce presence");
                }
            }
        }
    }

    /// Called after a post in this process committed `message`: on SQLite (one process) it
    /// is published here and now; on PostgreSQL the listener publishes it when its
    /// notification arrives, in this process as in every other, so nothing is done here.
    pub fn committed(&self, db: &Db, message: &ChatMessage) {
        if let Db::Sqlite { .. } = db {
            self.publish(message.clone());
        }
    }

    /// Called after message `id` of `team` was deleted: as [`Self::committed`], published
    /// here on SQLite, by the listener (which the delete notified) on PostgreSQL.
    pub fn deleted(&self, db: &Db, team: &str, id: i64) {
        if let Db::Sqlite { .. } = db {
            self.publish_deleted(team, id);
        }
    }

    /// A slot for one more socket, or `None` when [`MAX_SOCKETS`] are open.
    pub fn open_socket(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.sockets.clone().try_acquire_owned().ok()
    }

    pub fn limiter(&self) -> &PostLimiter {
        &self.inner.limiter
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

/// The hub's background work until `stop`: pruning the posting limiter, keeping this
/// process's presence rows fresh and, on PostgreSQL, listening for the messages of every
/// process.
pub async fn run(hub: ChatHub, db: Db, stop: CancellationToken) {
    let prune = {
        let (hub, stop, db) = (hub.clone(), stop.clone(), db.clone());
        async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(60));
            let mut heartbeat = tokio::time::interval(presence::HEARTBEAT);
            loop {
                tokio::select! {
                    _ = ticker.tick() => hub.limiter().prune(),
                    _ = heartbeat.tick() => {
                        if let Err(err) = presence::heartbeat(&db, hub.inner.counts.process()).await {
                            tracing::error!(error = %err, "chat: cannot refresh presence");
                        }
                        // Picks up processes that went away without a word.
                        hub.refresh_every_room(&db).await;
                    }
                    _ = stop.cancelled() => break,
                }
            }
        }
    };
    match &db {
        Db::Postgres { pool, .. } => {
            let pool = pool.clone();
            tokio::join!(prune, listen(&hub, &db, &pool, &stop));
        }
        Db::Sqlite { .. } => prune.await,
    }
}

/// LISTENs on [`PG_CHANNEL`] and publishes each announced message, reconnecting (and catching
/// up) when the connection is lost.
async fn listen(hub: &ChatHub, db: &Db, pool: &sqlx::PgPool, stop: &CancellationToken) {
    // The newest message id this process has seen; `None` until it has a baseline, so that a
    // first connection (or one after a failed read) never re-delivers old messages.
    let mut newest: Option<i64> = None;
    loop {
        let mut listener = match connect(pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "chat: cannot LISTEN; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
        catch_up(hub, db, &mut newest).await;
        hub.refresh_every_room(db).await;
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = stop.cancelled() => return,
            };
            match received {
                Ok(Some(notification)) if notification.payload().starts_with(PRESENCE_PREFIX) => {
                    let team = &notification.payload()[PRESENCE_PREFIX.len()..];
                    hub.refresh_presence(db, team).await;
                }
                Ok(Some(notification)) if notification.payload().starts_with(DELETED_PREFIX) => {
                    let rest = &notification.payload()[DELETED_PREFIX.len()..];
                    match rest
                        .rsplit_once(':')
                        .map(|(team, id)| (team, id.parse::<i64>()))
                    {
                        Some((team, Ok(id))) => hub.publish_deleted(team, id),
                        _ => tracing::warn!(
                            payload = notification.payload(),
                            "chat: ignoring a malformed deletion notice"
                        ),
                    }
                }
                Ok(Some(notification)) => match notification.payload().parse::<i64>() {
                    Ok(id) => match store::by_id(db, id).await {
                        Ok(Some(row)) => {
                            newest = Some(newest.map_or(id, |seen| seen.max(id)));
                            hub.publish(row.into());
                        }
                        // Deleted with its author in between: nothing to show.
                        Ok(None) => {}
                        Err(err) => {
                            tracing::error!(error = %err, id, "chat: cannot read a message")
                        }
                    },
                    Err(_) => tracing::warn!(
                        payload = notification.payload(),
                        "chat: ignoring a notification that is not a message id"
                    ),
                },
                // The connection was lost. Reconnect here rather than in the listener's next
                // call: the outer loop LISTENs first and then catches up, so a message that
                // commits in between is announced or re-read, never neither.
                Ok(None) => {
                    tracing::warn!("chat: the LISTEN connection was lost; reconnecting");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "chat: LISTEN failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(PG_CHANNEL).await?;
    Ok(listener)
}

/// Publishes the messages committed since (about) `newest` again; sockets skip those they
/// have sent. Without a baseline yet, only takes the newest id as it is now.
async fn catch_up(hub: &ChatHub, db: &Db, newest: &mut Option<i64>) {
    let Some(seen) = *newest else {
        match store::last_id(db).await {
            Ok(id) => *newest = Some(id),
            Err(err) => tracing::error!(error = %err, "chat: cannot read the newest message id"),
        }
        return;
    };
    let after = seen.saturating_sub(CATCH_UP_WINDOW).max(0);
    match store::after(db, after, CATCH_UP_LIMIT).await {
        Ok(rows) => {
            for row in rows {
                *newest = Some(newest.map_or(row.id, |seen| seen.max(row.id)));
                hub.publish(row.into());
            }
        }
        Err(err) => tracing::error!(error = %err, "chat: catching up failed"),
    }
}
