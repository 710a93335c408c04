//! Menus: adding, changing and removing a store's items. Only the store's owner and admins
//! may (see [`super::require_manager`]); everyone reads menus through `GET /api/stores/{id}`.
//!
//! Prices and stock arrive as JSON numbers and are parsed here, field by field, so that
//! `"priceWon": 0` and `"priceWon": 5.5` both answer 422 naming `priceWon`, not the body.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{self, Problems, Stock, Won};
use super::repo::menu::{self as repo, MenuItemChanges, MenuItemRow, NewMenuItem, Removed};
use super::require_manager;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::community::domain::required_text;
use crate::error::{AppError, Result};
use crate::http::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_item))
        .routes(routes!(update_item, delete_item))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub id: i64,
    pub name: String,
    /// Price in won (whole won).
    pub price_won: i64,
    /// Units left; 0 is sold out.
    pub stock: i64,
    /// False when the store has taken it off the menu (it may still appear in old orders).
    pub available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MenuItemBody {
    pub item: MenuItem,
}

pub fn menu_item(row: MenuItemRow) -> MenuItem {
    MenuItem {
        id: row.id,
        name: row.name,
        price_won: row.price_won,
        stock: row.stock,
        available: row.available,
    }
}

/// A JSON whole number, or the message of a 422.
fn whole_number(value: &Value) -> Result<i64, String> {
    value
        .as_i64()
        .ok_or_else(|| "must be a whole number".to_string())
}

fn parse_price(value: &Value) -> Result<Won, String> {
    whole_number(value).and_then(Won::parse)
}

fn parse_stock(value: &Value) -> Result<Stock, String> {
    whole_number(value).and_then(Stock::parse)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewItemBody {
    item: NewItemInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewItemInput {
    /// Unique within the store, 1-100 characters.
    name: Option<String>,
    /// 1-1,000,000 won.
    #[schema(value_type = i64)]
    price_won: Option<Value>,
    /// 0-100,000 units.
    #[schema(value_type = i64)]
    stock: Option<Value>,
    /// Default true.
    available: Option<bool>,
}

/// Add an item to a store's menu (its owner or an admin).
#[utoipa::path(post, path = "/api/stores/{id}/menu", tag = "catalogue", params(("id" = i64, Path)),
    request_body = NewItemBody,
    responses((status = 201, body = MenuItemBody), (status = 401), (status = 403), (status = 404),
              (status = 422, description = "invalid field, or a name the store already uses")),
    security(("token" = [])))]
async fn add_item(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(store_id): Path<i64>,
    ApiJson(body): ApiJson<NewItemBody>,
) -> Result<(StatusCode, Json<MenuItemBody>)> {
    require_manager(&state, &auth, store_id).await?;
    let input = body.item;
    let mut problems = Problems::default();
    let name = problems.check(
        "name",
        required_text(input.name.as_deref(), domain::MAX_ITEM_NAME),
    );
    let price = problems.check(
        "priceWon",
        parse_price(input.price_won.as_ref().unwrap_or(&Value::Null)),
    );
    let stock = problems.check(
        "stock",
        parse_stock(input.stock.as_ref().unwrap_or(&Value::Null)),
    );
    problems.finish()?;
    let (Some(name), Some(price), Some(stock)) = (name, price, stock) else {
        unreachable!("problems.finish() returns early when a field is invalid");
    };
    let item = NewMenuItem {
        name,
        price,
        stock,
        available: input.available.unwrap_or(true),
    };
    let row = repo::insert(&state.db, store_id, item).await?;
    Ok((
        StatusCode::CREATED,
        Json(MenuItemBody {
            item: menu_item(row),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateItemBody {
    item: UpdateItemInput,
}

/// Only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateItemInput {
    name: Option<String>,
    #[schema(value_type = Option<i64>)]
    price_won: Option<Value>,
    #[schema(value_type = Option<i64>)]
    stock: Option<Value>,
    available: Option<bool>,
}

/// Change a menu item: any of name, price, stock and availability (its store's owner or an
/// admin).
#[utoipa::path(put, path = "/api/stores/{id}/menu/{itemId}", tag = "catalogue",
    params(("id" = i64, Path), ("itemId" = i64, Path)),
    request_body = UpdateItemBody,
    responses((status = 200, body = MenuItemBody), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn update_item(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((store_id, item_id)): Path<(i64, i64)>,
    ApiJson(body): ApiJson<UpdateItemBody>,
) -> Result<Json<MenuItemBody>> {
    require_manager(&state, &auth, store_id).await?;
    let input = body.item;
    let mut problems = Problems::default();
    let mut changes = MenuItemChanges {
        available: input.available,
        ..MenuItemChanges::default()
    };
    if let Some(name) = input.name.as_deref() {
        changes.name = problems.check("name", required_text(Some(name), domain::MAX_ITEM_NAME));
    }
    if let Some(price) = &input.price_won {
        changes.price = problems.check("priceWon", parse_price(price));
    }
    if let Some(stock) = &input.stock {
        changes.stock = problems.check("stock", parse_stock(stock));
    }
    problems.finish()?;
    let row = repo::update(&state.db, store_id, item_id, changes)
        .await?
        .ok_or(AppError::NotFound("menu item"))?;
    Ok(Json(MenuItemBody {
        item: menu_item(row),
    }))
}

/// Remove a menu item (its store's owner or an admin). An item that orders refer to is not
/// deleted, since the orders' history must keep pointing at it: it is marked unavailable
/// instead (`available: false`), and the answer is 204 either way.
#[utoipa::path(delete, path = "/api/stores/{id}/menu/{itemId}", tag = "catalogue",
    params(("id" = i64, Path), ("itemId" = i64, Path)),
    responses((status = 204, description = "deleted, or marked unavailable if orders refer to it"),
              (status = 401), (status = 403), (status = 404)),
    security(("token" = [])))]
async fn delete_item(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((store_id, item_id)): Path<(i64, i64)>,
) -> Result<StatusCode> {
    require_manager(&state, &auth, store_id).await?;
    match repo::remove(&state.db, store_id, item_id).await? {
        Removed::Deleted | Removed::MadeUnavailable => Ok(StatusCode::NO_CONTENT),
        Removed::NotFound => Err(AppError::NotFound("menu item")),
    }
}
