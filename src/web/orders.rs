//! The fan's side of ordering: "my orders" (`GET /orders`), the signed-in user's newest
//! orders with their status and total, read through `orders::store` as the API's
//! `GET /api/orders` does.
//!
//! Status words are the order's [`Status`] (derived from its payment and vendor states, never
//! stored twice), shown through the `order.status.*` message keys.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use chrono::{DateTime, Utc};

use super::layout::Layout;
use super::pages::render;
use super::session::WebUser;
use super::PageError;
use crate::app::AppState;
use crate::error::AppError;
use crate::orders::store::{self, Scope};

/// Orders listed on "my orders" (the newest).
pub const MY_ORDERS_SHOWN: i64 = 50;

pub struct OrderLine {
    pub id: String,
    pub status_key: String,
    pub total: String,
    pub created: DateTime<Utc>,
}

#[derive(Template)]
#[template(path = "orders.html")]
pub struct MyOrdersPage {
    pub layout: Layout,
    pub title: String,
    pub orders: Vec<OrderLine>,
}

/// `GET /orders`: the signed-in user's newest orders (a visitor is sent to log in).
pub async fn mine(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
) -> Result<Html<String>, PageError> {
    let rows = store::list(&state.db, Scope::Customer(user.id), MY_ORDERS_SHOWN)
        .await
        .map_err(|err| AppError::Internal(anyhow::Error::new(err).context("listing orders")))?;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        let status = row.state().map_err(AppError::Internal)?.status();
        orders.push(OrderLine {
            status_key: format!("order.status.{}", status.as_str()),
            total: format!("{}원", super::pages::thousands(row.total_won)),
            created: row.created_at,
            id: row.id,
        });
    }
    render(&MyOrdersPage {
        title: layout.t("orders.mine").into_owned(),
        layout,
        orders,
    })
}
