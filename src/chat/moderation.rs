//! Moderation by admins: muting, and deleting a message.
//!
//! Muting stops a user from posting in every room for a while; they can still read. The mute is checked by [`super::post`], the one path sockets and `POST` share, so no way
//! of posting skips it. Mutes live in the database (`chat_mutes`), so every process sees them.

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::db::{now, Db};
use crate::error::Result;
use crate::{on_read, on_write};

/// Longest mute, in minutes (a week); longer means removing the account, not muting it.
pub const MAX_MUTE_MINUTES: i64 = 7 * 24 * 60;

/// How long a mute lasts: 1 to [`MAX_MUTE_MINUTES`] minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuteMinutes(i64);

impl MuteMinutes {
    pub fn parse(raw: Option<i64>) -> Result<MuteMinutes, String> {
        match raw {
            Some(minutes) if (1..=MAX_MUTE_MINUTES).contains(&minutes) => Ok(MuteMinutes(minutes)),
            _ => Err(format!(
                "must be a whole number of minutes from 1 to {MAX_MUTE_MINUTES}"
            )),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Mutes `username` for `minutes` from now (replacing an earlier mute); `None` if there is no
/// such user, else when the mute ends.
pub async fn mute(
    db: &Db,
    username: &str,
    minutes: MuteMinutes,
    by: i64,
) -> Result<Option<DateTime<Utc>>> {
    let at = now();
    let until = at + chrono::Duration::minutes(minutes.get());
    let muted = on_write!(db, pool => sqlx::query(
        "INSERT INTO chat_mutes (user_id, until, muted_by, created_at) \
         SELECT id, $2, $3, $4 FROM users WHERE username = $1 \
         ON CONFLICT (user_id) DO UPDATE SET until = excluded.until, \
           muted_by = excluded.muted_by, created_at = excluded.created_at")
        .bind(username)
        .bind(until)
        .bind(by)
        .bind(at)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok((muted > 0).then_some(until))
}

/// Lifts `username`'s mute; `false` if there is no such user.
pub async fn unmute(db: &Db, username: &str) -> Result<bool> {
    on_write!(db, pool => sqlx::query(
        "DELETE FROM chat_mutes WHERE user_id IN (SELECT id FROM users WHERE username = $1)")
        .bind(username)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS(SELECT 1 FROM users WHERE username = $1)")
        .bind(username)
        .fetch_one(pool)
        .await)?)
}

/// When `user_id`'s mute ends, if they are muted now.
pub async fn muted_until(db: &Db, user_id: i64) -> Result<Option<DateTime<Utc>>> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, DateTime<Utc>>(
        "SELECT until FROM chat_mutes WHERE user_id = $1 AND until > $2")
        .bind(user_id)
        .bind(now())
        .fetch_optional(pool)
        .await)?)
}

/// A mute in force.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActiveMute {
    pub username: String,
    pub until: DateTime<Utc>,
}

/// The mutes in force now, ending soonest first (the moderation page).
pub async fn active(db: &Db) -> Result<Vec<ActiveMute>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, ActiveMute>(
        "SELECT u.username, m.until FROM chat_mutes m JOIN users u ON u.id = m.user_id \
         WHERE m.until > $1 ORDER BY m.until, u.username")
        .bind(now())
        .fetch_all(pool)
        .await)?)
}

/// Deletes message `id` from the history and from the open pages of its room (a `deleted`
/// frame, see [`super::hub`]); `false` if there is no such message. The caller checks that
/// `by` is an admin.
pub async fn delete_message(state: &AppState, id: i64, by: i64) -> Result<bool> {
    match super::store::delete(&state.db, id, by).await? {
        Some(team) => {
            state.chat.deleted(&state.db, &team, id);
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_lengths_outside_a_minute_to_a_week_are_refused() {
        assert!(MuteMinutes::parse(None).is_err());
        assert!(MuteMinutes::parse(Some(0)).is_err());
        assert!(MuteMinutes::parse(Some(MAX_MUTE_MINUTES + 1)).is_err());
        assert_eq!(MuteMinutes::parse(Some(60)).unwrap().get(), 60);
    }
}
