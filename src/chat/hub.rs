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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::domain::{ChatMessage, PostLimiter, MESSAGES_PER_MINUTE, MESSAGE_BURST};
use super::store;
use crate::db::Db;

/// The PostgreSQL notification channel new message ids are announced on.
pub const PG_CHANNEL: &str = "ballpark_chat";
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

struct Inner {
    rooms: Mutex<HashMap<String, broadcast::Sender<Arc<ChatMessage>>>>,
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
                sockets: Arc::new(Semaphore::new(MAX_SOCKETS)),
                limiter: PostLimiter::new(MESSAGES_PER_MINUTE, MESSAGE_BURST),
                shutdown,
            }),
        }
    }

    fn room(&self, team: &str) -> broadcast::Sender<Arc<ChatMessage>> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(team.to_string())
            .or_insert_with(|| broadcast::channel(ROOM_CAPACITY).0)
            .clone()
    }

    /// New messages of `team` from now on. Rooms are team keys, checked before this is
    /// called, so there are at most as many rooms as teams.
    pub fn subscribe(&self, team: &str) -> broadcast::Receiver<Arc<ChatMessage>> {
        self.room(team).subscribe()
    }

    /// Hands a committed message to the sockets of its room in this process.
    fn publish(&self, message: ChatMessage) {
        // No socket in the room is not an error.
        let _ = self.room(&message.team).send(Arc::new(message));
    }

    /// Called after a post in this process committed `message`: on SQLite (one process) it
    /// is published here and now; on PostgreSQL the listener publishes it when its
    /// notification arrives, in this process as in every other, so nothing is done here.
    pub fn committed(&self, db: &Db, message: &ChatMessage) {
        if let Db::Sqlite { .. } = db {
            self.publish(message.clone());
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

/// The hub's background work until `stop`: pruning the posting limiter and, on PostgreSQL,
/// listening for the messages of every process.
pub async fn run(hub: ChatHub, db: Db, stop: CancellationToken) {
    let prune = {
        let (hub, stop) = (hub.clone(), stop.clone());
        async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = ticker.tick() => hub.limiter().prune(),
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
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = stop.cancelled() => return,
            };
            match received {
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
