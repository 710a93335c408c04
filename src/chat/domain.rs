//! Chat values parsed at the edge, the limits they enforce, and the wire format of the
//! socket (both directions).

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::MessageRow;
use crate::community::domain::required_text;

/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Largest frame a client may send (a message of 500 four-byte characters, JSON-escaped, fits
/// several times over); a larger one closes the socket with 1009 (message too big).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Messages a socket receives on connecting: the room's most recent ones.
pub const BACKLOG: i64 = 50;
/// Sustained rate of messages per user per process, and the burst allowed on top.
pub const MESSAGES_PER_MINUTE: u32 = 30;
pub const MESSAGE_BURST: u32 = 5;

/// The document's schema of [`MessageBody::parse`]: trimmed, something visible, no control
/// characters inside but line breaks and tabs, at most [`MAX_MESSAGE_CHARS`] as sent.
pub fn message_schema() -> utoipa::openapi::schema::Object {
    use crate::openapi::text::{CONTROL, WHITE_SPACE, ZERO_WIDTH};
    let inner = r"[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]";
    let pattern = format!(
        "^[{WHITE_SPACE}]*{inner}*[^{WHITE_SPACE}{ZERO_WIDTH}{CONTROL}]{inner}*[{WHITE_SPACE}]*$"
    );
    crate::openapi::text::pattern(pattern, 1, MAX_MESSAGE_CHARS)
}

/// A message body: trimmed, 1 to [`MAX_MESSAGE_CHARS`] characters, no control characters
/// other than line breaks and tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: Option<&str>) -> Result<MessageBody, String> {
        let body = required_text(raw, MAX_MESSAGE_CHARS)?;
        if body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err("may not contain control characters".into());
        }
        Ok(MessageBody(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Limits how fast each user posts, wherever they post from (sockets and `POST`), in this
/// process (GCRA, in memory; behind several processes the limit multiplies, as for logins).
pub struct PostLimiter(DefaultKeyedRateLimiter<i64>);

impl PostLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        PostLimiter(RateLimiter::keyed(
            Quota::per_minute(per_minute).allow_burst(burst),
        ))
    }

    /// `Err` with how long until the user may post again.
    pub fn check(&self, user_id: i64) -> Result<(), Duration> {
        self.0.check_key(&user_id).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    /// Forgets users back at a full quota, so memory stays bounded.
    pub fn prune(&self) {
        self.0.retain_recent();
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatAuthor {
    pub username: String,
    pub image: Option<String>,
    /// The team the author supports, if they chose one.
    pub team: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: i64,
    /// The room: a team key (`lg`, `doosan`…).
    pub team: String,
    pub body: String,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    pub author: ChatAuthor,
}

impl From<MessageRow> for ChatMessage {
    fn from(row: MessageRow) -> Self {
        ChatMessage {
            id: row.id,
            team: row.team,
            body: row.body,
            created_at: row.created_at,
            author: ChatAuthor {
                username: row.author_username,
                image: row.author_image,
                team: row.author_team,
            },
        }
    }
}

/// What a client sends over the socket, as JSON text frames.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientFrame {
    /// Authenticates a socket opened without an `Authorization` header (browsers cannot set
    /// one on a WebSocket); the token stays out of the URL and so out of access logs.
    Auth { token: String },
    /// Posts a message to the socket's room.
    Send { body: Option<String> },
}

/// What the server sends over the socket.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame<'a> {
    /// First frame: the room, who the socket is signed in as, and the room's recent
    /// messages, oldest first.
    #[serde(rename_all = "camelCase")]
    Hello {
        team: &'a str,
        username: Option<&'a str>,
        messages: &'a [ChatMessage],
    },
    /// Sent after a successful `auth` frame.
    Authenticated { username: &'a str },
    /// A new message in the room (the sender's own included).
    Message { message: &'a ChatMessage },
    /// An admin deleted the message with this id: remove it from the page.
    Deleted { id: i64 },
    /// Who is in the room now (signed-in users with a socket open on it, in any server
    /// process), by name: sent after `hello` and whenever it changes.
    Presence {
        users: &'a [super::presence::Present],
    },
    /// A frame the server refused; the socket stays open.
    #[serde(rename_all = "camelCase")]
    Error {
        code: &'a str,
        message: &'a str,
        /// For `rate_limited`: when to try again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_trimmed_and_kept() {
        let body = MessageBody::parse(Some("  가자 LG!\n  ")).unwrap();
        assert_eq!(body.as_str(), "가자 LG!");
    }

    #[test]
    fn empty_long_and_control_character_bodies_are_refused() {
        assert!(MessageBody::parse(None).is_err());
        assert!(MessageBody::parse(Some("   ")).is_err());
        assert!(MessageBody::parse(Some(&"야".repeat(MAX_MESSAGE_CHARS + 1))).is_err());
        assert!(MessageBody::parse(Some(&"야".repeat(MAX_MESSAGE_CHARS))).is_ok());
        assert!(MessageBody::parse(Some("bell\u{7}")).is_err());
    }

    #[test]
    fn the_limiter_allows_the_burst_then_refuses_with_a_wait() {
        let limiter = PostLimiter::new(MESSAGES_PER_MINUTE, MESSAGE_BURST);
        for _ in 0..MESSAGE_BURST {
            limiter.check(7).unwrap();
        }
        let wait = limiter.check(7).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        // Another user has a quota of their own.
        limiter.check(8).unwrap();
    }

    #[test]
    fn client_frames_parse_by_type() {
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"send","body":"hi"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Send {
                body: Some("hi".into())
            }
        );
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"auth","token":"t"}"#).unwrap();
        assert_eq!(frame, ClientFrame::Auth { token: "t".into() });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
    }
}
