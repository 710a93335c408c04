//! The store owner's side of the web UI: `GET /owner` (the signed-in user's stores) and, per
//! store, `GET /stores/{id}/manage`: the incoming orders, updated live, and the menu with its
//! prices and stock to edit.
//!
//! - **Who may** is [`catalog::check_manager`], the same check the JSON API makes: the store's
//!   owner while their role is `store_owner`, or an admin. Anyone else gets a 403 page, an
//!   unknown store a 404 page.
//! - **Menu forms** (`POST …/manage/menu`, `…/menu/{item}`, `…/menu/{item}/delete`, each with
//!   the page's CSRF token) call `catalog::menu::{add, change, remove}`, the rules the API's
//!   handlers call, and answer 303 back to the page; a 422 re-renders the page with the
//!   errors and what was typed.
//! - **Live orders**: `assets/web/owner.js` asks for a stream ticket with the page's API token
//!   (`ballpark.apiToken()`) and follows the store's order stream
//!   (`GET /api/stores/{id}/orders/events`) from the newest history id the page was rendered
//!   with (`data-after`), so it gets only what the page does not show. A change to an order on
//!   the page updates its row; a new order (the event carries no lines) makes the script fetch
//!   `GET /stores/{id}/manage/orders`, this list as an HTML fragment, as it does after every
//!   reconnect. A dropped stream is reopened with a fresh ticket, backing off up to 30 s.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::{field_errors, FieldError, PageForm, PageQuery};
use super::layout::Layout;
use super::pages::{render, thousands};
use super::session::WebUser;
use super::PageError;
use crate::app::AppState;
use crate::catalog::menu::{self, ItemInput, Number};
use crate::catalog::{check_manager, repo};
use crate::error::AppError;
use crate::orders::domain::{pickup_number, Status};
use crate::orders::store as orders;

/// Orders shown on a store's page (the newest).
pub const ORDERS_SHOWN: i64 = 50;

/// Every status an order can show, for the script to label live changes.
const STATUSES: [Status; 9] = [
    Status::Placed,
    Status::Paid,
    Status::Accepted,
    Status::Preparing,
    Status::Ready,
    Status::PickedUp,
    Status::PaymentFailed,
    Status::Cancelled,
    Status::Refunded,
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/owner", get(my_stores))
        .route("/stores/{id}/manage", get(manage))
        .route("/stores/{id}/manage/orders", get(orders_fragment))
        .route("/stores/{id}/manage/menu", post(add_item))
        .route("/stores/{id}/manage/menu/{item}", post(update_item))
        .route("/stores/{id}/manage/menu/{item}/delete", post(delete_item))
        .route("/static/owner.js", get(script))
        .route("/static/owner.css", get(stylesheet))
}

async fn script() -> Response {
    super::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/web/owner.js"),
    )
}

async fn stylesheet() -> Response {
    super::asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/web/owner.css"),
    )
}

/// A store id from the path: anything but a number is a missing page (axum's `Path<i64>`
/// would answer a plain-text 400).
fn store_id(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::from(AppError::NotFound("store")))
}

pub struct StoreLine {
    pub id: i64,
    pub name: String,
    pub location: String,
}

#[derive(Template)]
#[template(path = "owner.html")]
pub struct MyStoresPage {
    pub layout: Layout,
    pub title: String,
    pub stores: Vec<StoreLine>,
}

/// `GET /owner`: the stores the signed-in owner manages (403 for a fan).
async fn my_stores(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
) -> Result<Html<String>, PageError> {
    if !user.is_store_owner() && user.role != "admin" {
        return Err(AppError::Forbidden.into());
    }
    let stores = repo::stores::owned_by(&state.db, user.id)
        .await?
        .into_iter()
        .map(|s| StoreLine {
            id: s.id,
            name: s.name,
            location: s.location,
        })
        .collect();
    render(&MyStoresPage {
        title: layout.t("owner.title").into_owned(),
        layout,
        stores,
    })
}

pub struct OrderView {
    pub id: String,
    pub pickup: String,
    pub status: String,
    pub status_key: String,
    pub items: String,
    pub total: String,
    pub created: DateTime<Utc>,
}

pub struct MenuEdit {
    pub id: i64,
    pub name: String,
    pub price_won: i64,
    pub stock: i64,
    pub available: bool,
}

/// What the add form shows again after a 422.
#[derive(Default, Deserialize)]
pub struct NewItemForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub price: String,
    #[serde(default)]
    pub stock: String,
}

#[derive(Template)]
#[template(path = "owner_store.html")]
pub struct ManagePage {
    pub layout: Layout,
    pub title: String,
    pub store_id: i64,
    pub demo: bool,
    pub orders: Vec<OrderView>,
    /// The newest history id the orders were read after: where the live stream starts.
    pub after: i64,
    /// Status → label in the page's language, as JSON, for the script.
    pub labels: String,
    pub menu: Vec<MenuEdit>,
    pub errors: Vec<FieldError>,
    pub new_item: NewItemForm,
    pub saved: bool,
}

#[derive(Template)]
#[template(path = "owner_orders.html")]
pub struct OrdersFragment {
    pub layout: Layout,
    pub orders: Vec<OrderView>,
}

async fn recent_orders(state: &AppState, store_id: i64) -> Result<(Vec<OrderView>, i64), AppError> {
    let (rows, items, after) = orders::recent_for_store(&state.db, store_id, ORDERS_SHOWN)
        .await
        .map_err(|err| {
            AppError::Internal(anyhow::Error::new(err).context("listing a store's orders"))
        })?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let status = row.state().map_err(AppError::Internal)?.status();
        let lines: Vec<String> = items
            .iter()
            .filter(|i| i.order_id == row.id)
            .map(|i| format!("{} ×{}", i.name, i.quantity))
            .collect();
        views.push(OrderView {
            pickup: pickup_number(&row.id),
            status: status.as_str().to_string(),
            status_key: format!("order.status.{}", status.as_str()),
            items: lines.join(", "),
            total: format!("{}원", thousands(row.total_won)),
            created: row.created_at,
            id: row.id,
        });
    }
    Ok((views, after))
}

async fn manage_page(
    state: &AppState,
    layout: Layout,
    store_id: i64,
    errors: Vec<FieldError>,
    new_item: NewItemForm,
    saved: bool,
) -> Result<ManagePage, PageError> {
    let store = repo::stores::by_id(&state.db, store_id)
        .await?
        .ok_or(AppError::NotFound("store"))?;
    let (orders, after) = recent_orders(state, store_id).await?;
    let menu = repo::menu::list(&state.db, store_id)
        .await?
        .into_iter()
        .map(|item| MenuEdit {
            id: item.id,
            name: item.name,
            price_won: item.price_won,
            stock: item.stock,
            available: item.available,
        })
        .collect();
    let labels: serde_json::Map<String, serde_json::Value> = STATUSES
        .iter()
        .map(|s| {
            let label = layout
                .t(&format!("order.status.{}", s.as_str()))
                .into_owned();
            (s.as_str().to_string(), label.into())
        })
        .collect();
    Ok(ManagePage {
        title: store.name,
        store_id,
        demo: store.demo,
        orders,
        after,
        labels: serde_json::Value::Object(labels).to_string(),
        menu,
        errors,
        new_item,
        saved,
        layout,
    })
}

fn page(status: StatusCode, page: &ManagePage) -> Result<Response, PageError> {
    Ok((status, render(page)?).into_response())
}

#[derive(Deserialize)]
pub struct ManageQuery {
    saved: Option<u8>,
}

/// `GET /stores/{id}/manage`: the store's incoming orders and its menu to edit.
async fn manage(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<ManageQuery>,
) -> Result<Response, PageError> {
    let id = store_id(&id)?;
    check_manager(&state.db, id, user.id).await?;
    let saved = query.saved.is_some();
    let view = manage_page(
        &state,
        layout,
        id,
        Vec::new(),
        NewItemForm::default(),
        saved,
    )
    .await?;
    let mut response = page(StatusCode::OK, &view)?;
    // Orders change by the second: a page from the back/forward cache would show stale ones.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("header"));
    Ok(response)
}

/// `GET /stores/{id}/manage/orders`: the orders list alone, for the page's script.
async fn orders_fragment(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = store_id(&id)?;
    check_manager(&state.db, id, user.id).await?;
    let (orders, _) = recent_orders(&state, id).await?;
    let html = render(&OrdersFragment { layout, orders })?;
    Ok(([(header::CACHE_CONTROL, "no-store")], html).into_response())
}

fn back_to(store_id: i64) -> Response {
    let to = format!("/stores/{store_id}/manage?saved=1#menu");
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// A 422 from the menu rules: the page again, with the errors and what was typed.
async fn refused(
    state: &AppState,
    layout: Layout,
    store_id: i64,
    error: AppError,
    typed: NewItemForm,
) -> Result<Response, PageError> {
    let errors = field_errors(layout.lang, error)?;
    let view = manage_page(state, layout, store_id, errors, typed, false).await?;
    page(StatusCode::UNPROCESSABLE_ENTITY, &view)
}

/// `POST /stores/{id}/manage/menu`: add an item (name, price in won, stock).
async fn add_item(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
    PageForm(form): PageForm<NewItemForm>,
) -> Result<Response, PageError> {
    let id = store_id(&id)?;
    check_manager(&state.db, id, user.id).await?;
    let input = ItemInput {
        name: Some(form.name.clone()),
        price_won: Some(Number::from_form(&form.price)),
        stock: Some(Number::from_form(&form.stock)),
        available: Some(true),
    };
    match menu::add(&state.db, id, input).await {
        Ok(_) => Ok(back_to(id)),
        Err(error) => refused(&state, layout, id, error, form).await,
    }
}

#[derive(Deserialize)]
pub struct ItemForm {
    price: Option<String>,
    stock: Option<String>,
    /// A checkbox: present when ticked.
    sold_out: Option<String>,
}

/// `POST /stores/{id}/manage/menu/{item}`: change an item's price, stock and whether it is
/// sold out (off the menu).
async fn update_item(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path((id, item)): Path<(String, String)>,
    PageForm(form): PageForm<ItemForm>,
) -> Result<Response, PageError> {
    let id = store_id(&id)?;
    check_manager(&state.db, id, user.id).await?;
    let item: i64 = item.parse().map_err(|_| AppError::NotFound("menu item"))?;
    let input = ItemInput {
        name: None,
        price_won: form.price.as_deref().map(Number::from_form),
        stock: form.stock.as_deref().map(Number::from_form),
        available: Some(form.sold_out.is_none()),
    };
    match menu::change(&state.db, id, item, input).await {
        Ok(_) => Ok(back_to(id)),
        Err(error) => refused(&state, layout, id, error, NewItemForm::default()).await,
    }
}

/// `POST /stores/{id}/manage/menu/{item}/delete`: remove an item (or take it off the menu if
/// orders refer to it).
async fn delete_item(
    State(state): State<AppState>,
    user: WebUser,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = store_id(&id)?;
    check_manager(&state.db, id, user.id).await?;
    let item: i64 = item.parse().map_err(|_| AppError::NotFound("menu item"))?;
    menu::remove(&state.db, id, item).await?;
    Ok(back_to(id))
}
