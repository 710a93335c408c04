//! Menus: adding, changing and removing a store's items. Only the store's owner and admins
//! may (see [`super::require_manager`]); everyone reads menus through `GET /api/stores/{id}`.
//!
//! The rules of a menu change live in [`add`], [`change`] and [`remove`], which the JSON
//! handlers here and the web UI's owner forms (`web::owner`) both call: each door only turns
//! its input into an [`ItemInput`] (a [`Number`] per numeric field) and shapes the answer.
//! Fields are parsed one by one, so `"priceWon": 0` and `"priceWon": 5.5` (or a form's
//! `price=abc`) all answer 422 naming `priceWon`, not the body.

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
use crate::db::Db;
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

/// A number as a client sent it: a whole number, or anything else (refused with a 422 on its
/// field). JSON bodies and HTML forms both turn their raw values into this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    Whole(i64),
    NotWhole,
}

impl Number {
    /// A JSON value (`null`, a string, `5.5`, ... are not whole numbers).
    pub fn from_json(value: &Value) -> Number {
        crate::http::whole_number(value).map_or(Number::NotWhole, Number::Whole)
    }

    /// A form field as typed; thousands separators (`4,500`) and surrounding spaces are fine.
    pub fn from_form(value: &str) -> Number {
        let digits: String = value.trim().chars().filter(|c| *c != ',').collect();
        digits.parse().map_or(Number::NotWhole, Number::Whole)
    }

    fn whole(self) -> Result<i64, String> {
        match self {
            Number::Whole(n) => Ok(n),
            Number::NotWhole => Err("must be a whole number".to_string()),
        }
    }
}

fn parse_price(value: Number) -> Result<Won, String> {
    value.whole().and_then(Won::parse)
}

fn parse_stock(value: Number) -> Result<Stock, String> {
    value.whole().and_then(Stock::parse)
}

/// A menu item's fields as given: to add one, name, price and stock are required (a missing
/// number is [`Number::NotWhole`]); to change one, only the fields given change.
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub name: Option<String>,
    pub price_won: Option<Number>,
    pub stock: Option<Number>,
    pub available: Option<bool>,
}

/// Adds an item to a store's menu: 422 naming each invalid field (`name`, `priceWon`,
/// `stock`), or a name the store already uses. The caller has checked who may
/// ([`super::check_manager`]).
pub async fn add(db: &Db, store_id: i64, input: ItemInput) -> Result<MenuItemRow> {
    let mut problems = Problems::default();
    let name = problems.check(
        "name",
        required_text(input.name.as_deref(), domain::MAX_ITEM_NAME),
    );
    let price = problems.check(
        "priceWon",
        parse_price(input.price_won.unwrap_or(Number::NotWhole)),
    );
    let stock = problems.check(
        "stock",
        parse_stock(input.stock.unwrap_or(Number::NotWhole)),
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
    repo::insert(db, store_id, item).await
}

/// Changes the fields given of one item: 422 naming each invalid field, 404 if the store has
/// no such item. The caller has checked who may.
pub async fn change(db: &Db, store_id: i64, item_id: i64, input: ItemInput) -> Result<MenuItemRow> {
    let mut problems = Problems::default();
    let mut changes = MenuItemChanges {
        available: input.available,
        ..MenuItemChanges::default()
    };
    if let Some(name) = input.name.as_deref() {
        changes.name = problems.check("name", required_text(Some(name), domain::MAX_ITEM_NAME));
    }
    if let Some(price) = input.price_won {
        changes.price = problems.check("priceWon", parse_price(price));
    }
    if let Some(stock) = input.stock {
        changes.stock = problems.check("stock", parse_stock(stock));
    }
    problems.finish()?;
    repo::update(db, store_id, item_id, changes)
        .await?
        .ok_or(AppError::NotFound("menu item"))
}

/// Removes an item, or takes it off the menu if orders refer to it (their history must keep
/// pointing at it); 404 if the store has no such item. The caller has checked who may.
pub async fn remove(db: &Db, store_id: i64, item_id: i64) -> Result<Removed> {
    match repo::remove(db, store_id, item_id).await? {
        Removed::NotFound => Err(AppError::NotFound("menu item")),
        done => Ok(done),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewItemBody {
    item: NewItemInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewItemInput {
    /// Unique within the store, 1-100 characters.
    #[schema(schema_with = name_schema, required = true)]
    name: Option<String>,
    /// 1-1,000,000 won.
    #[schema(schema_with = domain::price_schema, required = true)]
    price_won: Option<Value>,
    /// 0-100,000 units.
    #[schema(schema_with = domain::stock_schema, required = true)]
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
    let row = add(
        &state.db,
        store_id,
        ItemInput {
            name: input.name,
            price_won: Some(
                input
                    .price_won
                    .as_ref()
                    .map_or(Number::NotWhole, Number::from_json),
            ),
            stock: Some(
                input
                    .stock
                    .as_ref()
                    .map_or(Number::NotWhole, Number::from_json),
            ),
            available: input.available,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(MenuItemBody {
            item: menu_item(row),
        }),
    ))
}

fn name_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::required(domain::MAX_ITEM_NAME)
}

fn nullable_name_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::or_null(name_schema())
}

fn nullable_price_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::or_null(domain::price_schema())
}

fn nullable_stock_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::or_null(domain::stock_schema())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateItemBody {
    item: UpdateItemInput,
}

/// Only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateItemInput {
    /// Absent or null: unchanged.
    #[schema(schema_with = nullable_name_schema)]
    name: Option<String>,
    #[schema(schema_with = nullable_price_schema)]
    price_won: Option<Value>,
    #[schema(schema_with = nullable_stock_schema)]
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
    let input = ItemInput {
        name: input.name,
        price_won: input.price_won.as_ref().map(Number::from_json),
        stock: input.stock.as_ref().map(Number::from_json),
        available: input.available,
    };
    let row = change(&state.db, store_id, item_id, input).await?;
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
    remove(&state.db, store_id, item_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::Number;
    use serde_json::json;

    #[test]
    fn form_numbers_may_have_spaces_and_thousands_separators_but_must_be_whole() {
        assert_eq!(Number::from_form(" 4,500 "), Number::Whole(4500));
        assert_eq!(Number::from_form("-1"), Number::Whole(-1));
        assert_eq!(Number::from_form("4.5"), Number::NotWhole);
        assert_eq!(Number::from_form("abc"), Number::NotWhole);
        assert_eq!(Number::from_form(""), Number::NotWhole);
    }

    #[test]
    fn json_numbers_must_be_whole_numbers_not_strings_or_fractions() {
        assert_eq!(Number::from_json(&json!(3000)), Number::Whole(3000));
        assert_eq!(Number::from_json(&json!(5.5)), Number::NotWhole);
        assert_eq!(Number::from_json(&json!("3000")), Number::NotWhole);
        assert_eq!(Number::from_json(&json!(null)), Number::NotWhole);
    }
}
