//! The stadium catalogue: the 9 KBO ballparks, the stores in and around them, their menus
//! (prices in won, stock) and fans' reviews with hashtags.
//!
//! Layout, as in the community module: one module of thin HTTP handlers per resource
//! ([`stadiums`], [`stores`], [`menu`], [`reviews`]); [`domain`] parses raw input into
//! trusted values ([`domain::Won`] is shared with orders); [`repo`] holds all the SQL.
//!
//! Two decisions a newcomer must know:
//! - **Who may change a menu** is decided per request from the database, never from the
//!   token: the store's owner, while their role is still `store_owner`, or an `admin`
//!   ([`check_manager`], used by the API's handlers and the web UI's owner pages alike).
//!   Demoting an owner takes effect at once.
//! - **Demo stores are marked.** Stores seeded from `kbo.json` (which has no prices or
//!   stock) carry `demo: true`; their prices and stock are made up (see
//!   [`crate::demo`]) and must not be shown as real.

pub mod domain;
pub mod menu;
pub mod repo;
pub mod reviews;
pub mod stadiums;
pub mod stores;

use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::db::Db;
use crate::error::{AppError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(stadiums::router())
        .merge(stores::router())
        .merge(menu::router())
        .merge(reviews::router())
}

/// 404 if the store does not exist; 403 unless the caller may manage it: its owner (with the
/// role `store_owner`) or an admin. 401 if the caller's account is gone.
pub(crate) async fn require_manager(
    state: &AppState,
    auth: &AuthUser,
    store_id: i64,
) -> Result<()> {
    check_manager(&state.db, store_id, auth.id).await
}

/// Who may manage a store (its menu, stock and orders' pages), whichever door they come in
/// by (an API token or a web session): the store's owner while their role is `store_owner`,
/// or an admin. 404 for an unknown store, 403 for anyone else, 401 if the account is gone.
pub async fn check_manager(db: &Db, store_id: i64, user_id: i64) -> Result<()> {
    let access = repo::stores::access(db, store_id, user_id)
        .await?
        .ok_or(AppError::NotFound("store"))?;
    match access.role.as_deref() {
        None => Err(AppError::Unauthorized),
        Some("admin") => Ok(()),
        Some("store_owner") if access.owner_id == Some(user_id) => Ok(()),
        Some(_) => Err(AppError::Forbidden),
    }
}
