//! Short-lived tickets for the live order streams.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, and a login token must
//! never travel in a URL (it ends up in logs and history for as long as it is valid). So a
//! client that holds a login token asks for a ticket (`POST …/events/ticket`) and opens the
//! stream with `?ticket=…`. A ticket is a JWT that:
//! - names one user and one stream (an order or a store), and is refused for any other;
//! - lives [`TICKET_TTL`] (it only has to survive until the stream is opened; an open stream
//!   is not cut when its ticket expires);
//! - carries the audience [`AUDIENCE`] and is signed with a key *derived* from `jwt_secret`
//!   for this purpose alone, so a ticket is never accepted as a login token (wrong key, and
//!   login validation refuses any `aud`), and a login token is never accepted as a ticket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::live::Follow;
use crate::config::Config;

/// How long a ticket may be used to open a stream.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// The `aud` claim of every ticket, and the only one a ticket is checked against.
pub const AUDIENCE: &str = "ballpark:order-events";

#[derive(Debug, Serialize, Deserialize)]
struct TicketClaims {
    /// The user the ticket was issued to.
    sub: i64,
    aud: String,
    /// The stream it opens: `order:<id>` or `store:<id>`.
    scope: String,
    iat: i64,
    exp: i64,
}

/// Why a ticket was not accepted (answered 401, whatever the reason).
#[derive(Debug, thiserror::Error)]
#[error("invalid ticket: {0}")]
pub struct BadTicket(&'static str);

/// Issues and checks tickets.
pub struct Tickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

fn scope(follow: &Follow) -> String {
    match follow {
        Follow::Order(id) => format!("order:{id}"),
        Follow::Store(id) => format!("store:{id}"),
    }
}

impl Tickets {
    pub fn new(config: &Config) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(config.jwt_secret.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"ballpark order-event tickets v1");
        let key = mac.finalize().into_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        // A minute-long ticket with the library's default minute of leeway would live twice
        // as long as documented; keep only a little for clock skew between servers.
        validation.leeway = 5;
        Tickets {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// A ticket for `user_id` to open `follow`, valid [`TICKET_TTL`] from now.
    pub fn issue(&self, user_id: i64, follow: &Follow) -> anyhow::Result<String> {
        self.issue_at(user_id, follow, Utc::now())
    }

    /// A ticket as issued at `at` (tests use a past `at` to get an expired one).
    pub fn issue_at(
        &self,
        user_id: i64,
        follow: &Follow,
        at: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let ttl = chrono::Duration::from_std(TICKET_TTL)?;
        let claims = TicketClaims {
            sub: user_id,
            aud: AUDIENCE.to_owned(),
            scope: scope(follow),
            iat: at.timestamp(),
            exp: (at + ttl).timestamp(),
        };
        Ok(encode(&Header::default(), &claims, &self.encoding)?)
    }

    /// The user a valid, unexpired ticket for exactly `follow` was issued to.
    pub fn verify(&self, ticket: &str, follow: &Follow) -> Result<i64, BadTicket> {
        let claims = decode::<TicketClaims>(ticket, &self.decoding, &self.validation)
            .map_err(|_| BadTicket("not a valid, unexpired ticket"))?
            .claims;
        if claims.scope != scope(follow) {
            return Err(BadTicket("issued for another stream"));
        }
        Ok(claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_only_its_own_stream_and_only_while_fresh() {
        let tickets = Tickets::new(&Config::default());
        let order = Follow::Order("o1".into());

        let fresh = tickets.issue(7, &order).unwrap();
        let old = tickets
            .issue_at(7, &order, Utc::now() - chrono::Duration::seconds(120))
            .unwrap();

        assert_eq!(tickets.verify(&fresh, &order).unwrap(), 7);
        assert!(tickets.verify(&fresh, &Follow::Order("o2".into())).is_err());
        assert!(tickets.verify(&fresh, &Follow::Store(1)).is_err());
        assert!(tickets.verify(&old, &order).is_err());
    }

    #[test]
    fn login_tokens_and_tickets_are_not_interchangeable() {
        let config = Config::default();
        let tickets = Tickets::new(&config);
        let logins = crate::auth::Tokens::new(&config);
        let order = Follow::Order("o1".into());

        let login = logins.issue(7).unwrap();
        let ticket = tickets.issue(7, &order).unwrap();

        assert!(tickets.verify(&login, &order).is_err());
        assert!(logins.verify(&ticket).is_err());
    }
}
