//! The community: the RealWorld ("Conduit") API (users, profiles, articles, comments,
//! favourites, tags, feed) and the fan-community extras (board categories, view counts,
//! comment editing, a fan's team, full-text search that works for Korean, cursor paging).
//!
//! Layout: one module of thin HTTP handlers per resource; [`domain`] parses raw input into
//! trusted values; [`images`] checks the uploads an article uses; [`store`] holds all the
//! SQL; [`views`] buffers view counts.
//!
//! The JSON is a superset of RealWorld: every field a Conduit client reads is there with the
//! same name and type; extra fields (`category`, `viewCount`, `team`, `nextCursor`,
//! `coverImage`, `images`, `requestId` on errors) are ignored by clients that do not know
//! them.

pub mod articles;
pub mod comments;
pub mod domain;
pub mod images;
pub mod moderation;
pub mod profiles;
pub mod reference;
pub mod store;
pub mod users;
pub mod views;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router())
        .merge(profiles::router())
        .merge(articles::router())
        .merge(comments::router())
        .merge(reference::router())
}

/// A user as others see them.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Profile {
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    /// Key of the fan's KBO team (see `GET /api/teams`), or null.
    pub team: Option<String>,
    pub following: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileBody {
    pub profile: Profile,
}

/// RFC 3339 with milliseconds and `Z`, as RealWorld clients (and its test suite) expect.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serialises a timestamp as [`timestamp`] does.
pub fn serialize_timestamp<S: serde::Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp(*at))
}

/// Deserialises a field so that absent → `None`, `null` → `Some(None)`, a value →
/// `Some(Some(v))`: an update can then tell "leave as is" from "clear".
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_always_carry_milliseconds() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(timestamp(at), "2023-11-14T22:13:20.000Z");
    }
}
