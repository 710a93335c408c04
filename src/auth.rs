//! Authentication: argon2id password hashes, JWT login tokens, the `AuthUser` /
//! `MaybeAuthUser` extractors, and the login rate limiter.
//!
//! Hashing a password with argon2id costs tens of milliseconds of CPU and 19 MiB of memory by
//! design. Done on the async executor it would stall every other request on that worker
//! thread, so it runs on tokio's blocking pool, and a semaphore caps how many hashes run at
//! once so a burst of logins cannot exhaust memory.
//!
//! A valid signature is not enough to be a user: a token outlives the account it was issued
//! for (deleted by an operator), so the extractors also check that the user still exists.
//! That is one primary-key lookup per authenticated request, deliberately not cached: a
//! cache would keep a deleted user's token working for its TTL, and the lookup is cheap next
//! to what any authenticated handler then does with the database.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::community::store::users as user_store;
use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, Result};

/// Hashes and verifies passwords off the async executor, a bounded number at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Passwords {
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await
    }

    /// `Ok(false)` for a wrong password; `Err` only if the stored hash is unreadable.
    pub async fn verify(&self, password: String, stored_hash: String) -> Result<bool> {
        self.run(move || {
            let parsed = PasswordHash::new(&stored_hash)
                .map_err(|e| anyhow::anyhow!("stored password hash is unreadable: {e}"))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hashing pool closed")?;
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .context("password hashing task panicked")??;
        Ok(result)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: i64,
    exp: i64,
    iat: i64,
}

/// Signs and checks login tokens (HS256 with the configured secret).
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl Tokens {
    pub fn new(config: &Config) -> Self {
        let secret = config.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: chrono::Duration::hours(config.jwt_ttl_hours),
        }
    }

    pub fn issue(&self, user_id: i64) -> Result<String> {
        let now = Utc::now();
        let claims = Claims {
            sub: user_id,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        encode(&Header::default(), &claims, &self.encoding)
            .context("signing a token")
            .map_err(AppError::from)
    }

    pub(crate) fn verify(&self, token: &str) -> Result<i64> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims.sub)
            .map_err(|_| AppError::Unauthorized)
    }
}

/// The authenticated caller. Extracting it answers 401 when the `Authorization` header is
/// missing, malformed, or carries a bad or expired token, or the token's user no longer
/// exists.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    /// The raw token, echoed back in user responses as RealWorld expects.
    pub token: String,
}

/// The caller if a token was sent. A token that is sent but invalid is still a 401: a client
/// that believes it is logged in should learn that it is not.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl MaybeAuthUser {
    /// The viewer's id for "following"/"favorited" flags; 0 matches no user.
    pub fn viewer_id(&self) -> i64 {
        self.0.as_ref().map(|u| u.id).unwrap_or(0)
    }
}

fn token_from_header(parts: &Parts) -> Result<Option<&str>> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AppError::Unauthorized)?;
    // RealWorld says `Token <jwt>`; many clients send `Bearer <jwt>`. Accept both.
    let token = value
        .strip_prefix("Token ")
        .or_else(|| value.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized)?
        .trim();
    if token.is_empty() {
        return Err(AppError::Unauthorized);
    }
    Ok(Some(token))
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Tokens>: FromRef<S>,
    Db: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        MaybeAuthUser::from_request_parts(parts, state)
            .await?
            .0
            .ok_or(AppError::Unauthorized)
    }
}

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    Arc<Tokens>: FromRef<S>,
    Db: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match token_from_header(parts)? {
            None => Ok(MaybeAuthUser(None)),
            Some(token) => {
                let tokens = Arc::<Tokens>::from_ref(state);
                let id = tokens.verify(token)?;
                if !user_store::exists(&Db::from_ref(state), id).await? {
                    return Err(AppError::Unauthorized);
                }
                Ok(MaybeAuthUser(Some(AuthUser {
                    id,
                    token: token.to_string(),
                })))
            }
        }
    }
}

/// Limits login attempts per account and per client address (GCRA, in memory). Both keys are
/// checked, so neither guessing one account from many addresses nor many accounts from one
/// address gets far. In-memory state is per process: behind several instances the effective
/// limit multiplies, which the README notes.
pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    pub fn new(per_account_per_minute: u32, per_ip_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
        }
    }

    pub fn check(&self, account: &str, ip: IpAddr) -> Result<()> {
        let ip_ok = self.per_ip.check_key(&ip).is_ok();
        let account_ok = self.per_account.check_key(&account.to_lowercase()).is_ok();
        if ip_ok && account_ok {
            Ok(())
        } else {
            Err(AppError::TooManyRequests)
        }
    }

    /// Drops state for keys that are back to a full quota, so memory stays bounded.
    pub fn prune(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_login_in_a_minute_is_refused() {
        let limiter = LoginLimiter::new(10, 100);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..10 {
            limiter.check("a@example.com", ip).unwrap();
        }
        assert!(matches!(
            limiter.check("A@example.com", ip),
            Err(AppError::TooManyRequests)
        ));
        limiter.check("b@example.com", ip).unwrap();
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let ours = Tokens::new(&Config::default());
        let theirs = Tokens::new(&Config {
            jwt_secret: crate::config::Secret::new("another-key-another-key-another-key"),
            ..Config::default()
        });
        let token = theirs.issue(7).unwrap();
        assert!(ours.verify(&token).is_err());
        assert_eq!(theirs.verify(&token).unwrap(), 7);
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let passwords = Passwords::new(1);
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords
            .verify("correct horse".into(), hash.clone())
            .await
            .unwrap());
        assert!(!passwords.verify("wrong".into(), hash).await.unwrap());
    }
}
