//! Who is in a room now: the signed-in users with a socket open on it, in any server process.
//!
//! Presence rides the same path as messages ([`super::hub`]): the database holds it (the
//! `chat_presence` table, a row per process, room and user), and a change is announced like a
//! message, as `NOTIFY ballpark_chat 'presence:<team>'` on PostgreSQL (each process then
//! re-reads the room's list and hands it to its sockets) or directly on SQLite (one process).
//!
//! Two decisions a newcomer must know:
//! - **A process counts its own sockets in memory** and writes only when a user's first socket
//!   in a room opens or their last one closes, so a user with three tabs is one row and tabs
//!   coming and going do not write.
//! - **A process that dies cannot delete its rows**, so every process refreshes its rows every
//!   [`HEARTBEAT`] and rows older than [`EXPIRY`] do not count (and are deleted). A crashed
//!   process's users thus leave the list within about [`EXPIRY`]. Readers (no account) are not
//!   listed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{now, Db};
use crate::error::Result;
use crate::{on_read, on_write};

/// How often a process refreshes its presence rows.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// Rows not refreshed for this long belong to a process that is gone.
pub const EXPIRY: Duration = Duration::from_secs(90);
/// Most users a presence list names (alphabetically first); a bigger room still works.
pub const MAX_LISTED: i64 = 200;

/// A user in a room, with the team they support (for their colour and badge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct Present {
    pub username: String,
    pub team: Option<String>,
}

/// This process's open sockets per (room, user).
pub struct LocalCounts {
    /// A random id for this process, the `process` column of its rows.
    process: String,
    sockets: Mutex<HashMap<(String, i64), usize>>,
}

impl LocalCounts {
    pub fn new() -> Self {
        LocalCounts {
            process: uuid::Uuid::new_v4().to_string(),
            sockets: Mutex::new(HashMap::new()),
        }
    }

    pub fn process(&self) -> &str {
        &self.process
    }

    /// Counts one more socket of `user_id` in `team`; `true` if it is their first there.
    pub fn enter(&self, team: &str, user_id: i64) -> bool {
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let count = sockets.entry((team.to_string(), user_id)).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one socket fewer; `true` if it was their last there.
    pub fn exit(&self, team: &str, user_id: i64) -> bool {
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let key = (team.to_string(), user_id);
        match sockets.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                sockets.remove(&key);
                true
            }
            None => false,
        }
    }
}

impl Default for LocalCounts {
    fn default() -> Self {
        Self::new()
    }
}

fn expired_before() -> chrono::DateTime<chrono::Utc> {
    now() - chrono::Duration::from_std(EXPIRY).unwrap_or(chrono::Duration::seconds(90))
}

/// Records that `user_id` is in `team` through `process`.
pub async fn insert(db: &Db, process: &str, team: &str, user_id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query(
        "INSERT INTO chat_presence (process, team, user_id, seen_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (process, team, user_id) DO UPDATE SET seen_at = excluded.seen_at")
        .bind(process)
        .bind(team)
        .bind(user_id)
        .bind(now())
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Records that `user_id` left `team` on `process`.
pub async fn delete(db: &Db, process: &str, team: &str, user_id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query(
        "DELETE FROM chat_presence WHERE process = $1 AND team = $2 AND user_id = $3")
        .bind(process)
        .bind(team)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Refreshes `process`'s rows and deletes expired ones (of processes that are gone).
pub async fn heartbeat(db: &Db, process: &str) -> Result<()> {
    on_write!(db, pool => sqlx::query("UPDATE chat_presence SET seen_at = $1 WHERE process = $2")
        .bind(now())
        .bind(process)
        .execute(pool)
        .await
        .map(|_| ()))?;
    on_write!(db, pool => sqlx::query("DELETE FROM chat_presence WHERE seen_at < $1")
        .bind(expired_before())
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The users in `team` now, by name, at most [`MAX_LISTED`].
pub async fn in_room(db: &Db, team: &str) -> Result<Vec<Present>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, Present>(
        "SELECT DISTINCT u.username, u.team FROM chat_presence p JOIN users u ON u.id = p.user_id \
         WHERE p.team = $1 AND p.seen_at >= $2 ORDER BY u.username LIMIT $3")
        .bind(team)
        .bind(expired_before())
        .bind(MAX_LISTED)
        .fetch_all(pool)
        .await)?)
}

/// Announces a change of `team`'s presence to every process (PostgreSQL only; see
/// [`super::hub`]).
pub async fn announce(pool: &sqlx::PgPool, team: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(super::hub::PG_CHANNEL)
        .bind(format!("{}{team}", super::hub::PRESENCE_PREFIX))
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_written_on_their_first_socket_and_removed_on_their_last() {
        let counts = LocalCounts::new();
        assert!(counts.enter("lg", 1));
        assert!(!counts.enter("lg", 1));
        assert!(counts.enter("kia", 1));
        assert!(!counts.exit("lg", 1));
        assert!(counts.exit("lg", 1));
        assert!(!counts.exit("lg", 1));
    }
}
