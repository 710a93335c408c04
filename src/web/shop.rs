//! Ordering in the browser: a store page with a cart, its rating and reviews
//! (`GET /stores/{id}`), placing (`POST /stores/{id}/order`), the live order page
//! (`GET /orders/{id}`), paying (`POST /orders/{id}/pay`), writing a review
//! (`POST /stores/{id}/reviews`) and the reviews with one hashtag (`GET /reviews?tag=`).
//!
//! The rules are the API's, called here, not copied: [`checkout`] (the cart, the idempotency
//! key, placing, paying) and [`reviews::write`] (stars, text, hashtags). What differs is the
//! answer: a redirect to the page that shows the result, or the page again with the problem
//! and the status the API would have given (422 bad cart, 409 sold out, 400 bad key, 402
//! declined).
//!
//! Two decisions a newcomer must know:
//! - **A double submit orders once.** Each render of the store page carries a fresh
//!   idempotency key in a hidden field, so submitting the same page twice replays the first
//!   order (the same redirect) instead of placing a second one.
//! - **The order page is live without a second renderer.** `assets/web/shop.js` opens the
//!   API's event stream of the order (with a short-lived ticket) and, on each event, fetches
//!   this page again and swaps its status region; without JavaScript the page is still right
//!   when reloaded.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::{field_errors, form_error, FieldError, PageForm, PageQuery};
use super::layout::Layout;
use super::pages::{render, thousands};
use super::session::WebUser;
use super::PageError;
use crate::app::AppState;
use crate::catalog::domain::{hashtag_spans, Hashtag, Page, Span};
use crate::catalog::repo::{self, reviews::ReviewFilter, reviews::ReviewRow};
use crate::catalog::reviews;
use crate::error::AppError;
use crate::orders::checkout::{self, Cart, IdempotencyKey, PayOutcome};
use crate::orders::domain::{pickup_number, Payment, Status};
use crate::orders::store as order_store;

/// Reviews shown on a store page, and on the page of one hashtag (the newest).
pub const REVIEWS_SHOWN: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stores/{id}", get(store))
        .route("/stores/{id}/order", post(place_order))
        .route("/stores/{id}/reviews", post(write_review))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/pay", post(pay))
        .route("/reviews", get(reviews_by_tag))
        .route("/static/shop.js", get(script))
}

async fn script() -> Response {
    super::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/web/shop.js"),
    )
}

/// One menu item with its cart input.
pub struct CartLine {
    pub id: i64,
    pub name: String,
    pub price: String,
    pub price_won: i64,
    pub available: bool,
    pub stock: i64,
    /// What the fan typed (kept when the page comes back with a problem).
    pub quantity: String,
}

/// A piece of a review's text: prose, or a hashtag link.
pub struct TextPiece {
    pub text: String,
    /// The tag's `/reviews?tag=` address, when the piece is a hashtag.
    pub href: Option<String>,
}

pub struct ReviewView {
    pub author: String,
    pub store_id: i64,
    pub store_name: String,
    pub rating: i64,
    /// "★★★★☆", shown; `stars_label` is what a screen reader says.
    pub stars: String,
    pub stars_label: String,
    pub pieces: Vec<TextPiece>,
    pub updated: DateTime<Utc>,
}

fn tag_href(tag: &Hashtag) -> String {
    format!("/reviews?tag={}", super::pages::segment(tag.as_str()))
}

fn review_view(layout: &Layout, row: ReviewRow) -> ReviewView {
    let pieces = hashtag_spans(&row.body)
        .into_iter()
        .map(|span| match span {
            Span::Text(text) => TextPiece {
                text: text.to_owned(),
                href: None,
            },
            Span::Tag { written, tag } => TextPiece {
                text: written.to_owned(),
                href: Some(tag_href(&tag)),
            },
        })
        .collect();
    let rating = row.rating.clamp(0, 5);
    ReviewView {
        author: row.author_username,
        store_id: row.store_id,
        store_name: row.store_name,
        rating,
        stars: stars(rating),
        stars_label: stars_label(layout, rating),
        pieces,
        updated: row.updated_at,
    }
}

fn stars(rating: i64) -> String {
    let full = rating.clamp(0, 5) as usize;
    format!("{}{}", "★".repeat(full), "☆".repeat(5 - full))
}

fn stars_label(layout: &Layout, rating: i64) -> String {
    layout
        .t("review.stars_label")
        .replace("%{n}", &rating.to_string())
}

/// What the review form shows again after a problem.
#[derive(Default)]
pub struct ReviewDraft {
    pub rating: String,
    pub body: String,
    pub errors: Vec<FieldError>,
}

#[derive(Template)]
#[template(path = "store.html")]
pub struct StorePage {
    pub layout: Layout,
    pub title: String,
    pub store_id: i64,
    pub stadium: String,
    pub stadium_name: String,
    pub location: String,
    /// Seeded demo store: its prices and stock are made up, and the page says so.
    pub demo: bool,
    pub menu: Vec<CartLine>,
    /// A fresh idempotency key for this render of the cart form.
    pub order_key: String,
    pub cart_errors: Vec<FieldError>,
    /// "4.5", or empty without reviews.
    pub rating: String,
    pub rating_label: String,
    pub rating_count: i64,
    pub reviews: Vec<ReviewView>,
    pub draft: ReviewDraft,
}

impl StorePage {
    /// The star choices of the review form, with whether each is the one typed before.
    pub fn star_choices(&self) -> Vec<(i64, bool)> {
        (1..=5)
            .map(|n| (n, self.draft.rating == n.to_string()))
            .collect()
    }
}

fn parse_store_id(id: &str) -> Result<i64, PageError> {
    // Not `Path<i64>`: its rejection is a plain-text 400, and `/stores/abc` is a missing page.
    id.parse()
        .map_err(|_| PageError::from(AppError::NotFound("store")))
}

/// The store page with `status`; `typed` keeps the cart's quantities by item id.
async fn store_page(
    state: &AppState,
    layout: Layout,
    id: i64,
    status: StatusCode,
    typed: &[(String, String)],
    cart_errors: Vec<FieldError>,
    draft: ReviewDraft,
) -> Result<Response, PageError> {
    let store = repo::stores::by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("store"))?;
    let menu = repo::menu::list(&state.db, id)
        .await?
        .into_iter()
        .map(|item| {
            let field = format!("qty_{}", item.id);
            let quantity = typed
                .iter()
                .find(|(name, _)| *name == field)
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            CartLine {
                id: item.id,
                name: item.name,
                price: format!("{}원", thousands(item.price_won)),
                price_won: item.price_won,
                available: item.available && item.stock > 0,
                stock: item.stock,
                quantity,
            }
        })
        .collect();
    let stadium_name = repo::stadiums::by_key(&state.db, &store.stadium)
        .await?
        .map_or_else(|| store.stadium.clone(), |s| s.name_ko);
    let filter = ReviewFilter {
        store_id: Some(id),
        hashtag: None,
        page: Page {
            limit: REVIEWS_SHOWN,
            offset: 0,
        },
    };
    let viewer = layout.user.as_ref().map_or(0, |u| u.id);
    let (rows, _) = repo::reviews::list(&state.db, &filter, viewer).await?;
    let mut draft = draft;
    let own = layout
        .user
        .as_ref()
        .and_then(|user| rows.iter().find(|r| r.author_username == user.username));
    if let (Some(own), true) = (own, draft.rating.is_empty() && draft.errors.is_empty()) {
        // Writing again replaces the fan's review, so the form starts from it.
        draft.rating = own.rating.to_string();
        draft.body = own.body.clone();
    }
    let reviews = rows.into_iter().map(|r| review_view(&layout, r)).collect();
    let (rating, rating_label) = if store.rating_count > 0 {
        let average = store.rating_sum as f64 / store.rating_count as f64;
        let shown = format!("{average:.1}");
        let label = layout
            .t("review.average_label")
            .replace("%{avg}", &shown)
            .replace("%{n}", &store.rating_count.to_string());
        (shown, label)
    } else {
        (String::new(), String::new())
    };
    let page = StorePage {
        title: store.name,
        store_id: id,
        stadium_name,
        stadium: store.stadium,
        location: store.location,
        demo: store.demo,
        menu,
        order_key: uuid::Uuid::new_v4().to_string(),
        cart_errors,
        rating,
        rating_label,
        rating_count: store.rating_count,
        reviews,
        draft,
        layout,
    };
    Ok((status, render(&page)?).into_response())
}

/// `GET /stores/{id}`: the menu as a cart form, the rating and the reviews.
pub async fn store(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_store_id(&id)?;
    store_page(
        &state,
        layout,
        id,
        StatusCode::OK,
        &[],
        Vec::new(),
        ReviewDraft::default(),
    )
    .await
}

/// The cart form's fields: `qty_{menu item id}` (empty or 0 means none), and `key`.
fn cart_lines(form: &[(String, String)]) -> Result<Vec<(i64, i64)>, AppError> {
    let mut lines = Vec::new();
    for (name, value) in form {
        let Some(item) = name.strip_prefix("qty_") else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let item: i64 = item
            .parse()
            .map_err(|_| AppError::invalid("items", "names a menu item that does not exist"))?;
        let quantity: i64 = value.parse().map_err(|_| {
            AppError::invalid("quantity", format!("must be a whole number, not {value:?}"))
        })?;
        if quantity != 0 {
            lines.push((item, quantity));
        }
    }
    Ok(lines)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /stores/{id}/order`: places the cart and shows the order (303), or the store page
/// again with the problem (400, 409, 422).
pub async fn place_order(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
    PageForm(form): PageForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = parse_store_id(&id)?;
    let placed = async {
        let key = IdempotencyKey::parse(field(&form, "key"))?;
        let cart = Cart::parse(id, &cart_lines(&form)?)?;
        checkout::place(&state, user.id, &cart, &key).await
    }
    .await;
    let error = match placed {
        Ok(placement) => {
            return Ok(Redirect::to(&format!("/orders/{}", placement.order_id)).into_response())
        }
        Err(error) => error,
    };
    let status = error.status_code();
    let errors = match error {
        AppError::NotFound(_) => return Err(error.into()),
        AppError::Unprocessable(_) => field_errors(layout.lang, error)?,
        AppError::Conflict(detail) => vec![FieldError {
            field: String::new(),
            message: format!("{} ({detail})", layout.t("cart.unavailable")),
        }],
        AppError::BadRequest(_) => form_error(layout.lang, "cart.stale"),
        other => return Err(other.into()),
    };
    store_page(
        &state,
        layout,
        id,
        status,
        &form,
        errors,
        ReviewDraft::default(),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    rating: String,
    #[serde(default)]
    body: String,
}

/// `POST /stores/{id}/reviews`: writes (or replaces) the fan's review and shows it on the
/// store page (303), or the page again with the problems and what was typed (422).
pub async fn write_review(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
    PageForm(form): PageForm<ReviewForm>,
) -> Result<Response, PageError> {
    let id = parse_store_id(&id)?;
    let draft = reviews::Draft {
        rating: form.rating.trim().parse().ok(),
        body: &form.body,
        hashtags: &[],
    };
    match reviews::write(&state, user.id, id, draft).await {
        Ok(_) => Ok(Redirect::to(&format!("/stores/{id}#reviews")).into_response()),
        Err(error) => {
            let errors = field_errors(layout.lang, error)?;
            let draft = ReviewDraft {
                rating: form.rating,
                body: form.body,
                errors,
            };
            store_page(
                &state,
                layout,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &[],
                Vec::new(),
                draft,
            )
            .await
        }
    }
}

pub struct OrderItem {
    pub name: String,
    pub quantity: i64,
    pub price: String,
}

#[derive(Template)]
#[template(path = "order.html")]
pub struct OrderPage {
    pub layout: Layout,
    pub title: String,
    pub id: String,
    pub store_id: i64,
    pub status: String,
    pub status_key: String,
    pub items: Vec<OrderItem>,
    pub total: String,
    /// The short number given at the counter, once the vendor accepted the order.
    pub pickup: Option<String>,
    pub can_pay: bool,
    /// Whether the order can still change (the page then follows it live).
    pub live: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub created: DateTime<Utc>,
}

/// The order page of the signed-in customer's own order (anyone else's is 404), never cached.
async fn order_page(
    state: &AppState,
    layout: Layout,
    user: &WebUser,
    id: &str,
    status: StatusCode,
    message: Option<String>,
) -> Result<Response, PageError> {
    let record = order_store::get(&state.db, id)
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("reading an order")))?
        .filter(|r| r.order.customer_id == user.id)
        .ok_or(AppError::NotFound("order"))?;
    let order = &record.order;
    let state_now = order.state().map_err(AppError::Internal)?;
    let shown = state_now.status();
    // Shown once the vendor has taken the order; the same number the store's page shows.
    let pickup = match shown {
        Status::Accepted | Status::Preparing | Status::Ready | Status::PickedUp => {
            Some(pickup_number(&order.id))
        }
        _ => None,
    };
    let page = OrderPage {
        title: layout.t("order.title").into_owned(),
        id: order.id.clone(),
        store_id: order.store_id,
        status: shown.as_str().to_owned(),
        status_key: format!("order.status.{}", shown.as_str()),
        items: record
            .items
            .iter()
            .map(|i| OrderItem {
                name: i.name.clone(),
                quantity: i.quantity,
                price: format!("{}원", thousands(i.unit_price_won * i.quantity)),
            })
            .collect(),
        total: format!("{}원", thousands(order.total_won)),
        pickup,
        can_pay: state_now.payment == Payment::Unpaid && !order.cancelled,
        live: !state_now.is_terminal(),
        reason: order.reason.clone(),
        message,
        created: order.created_at,
        layout,
    };
    Ok((
        status,
        [(header::CACHE_CONTROL, "no-store")],
        render(&page)?,
    )
        .into_response())
}

/// `GET /orders/{id}`: status, items, total and pickup number of one's own order.
pub async fn order(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    order_page(&state, layout, &user, &id, StatusCode::OK, None).await
}

/// `POST /orders/{id}/pay`: pays and shows the order (303); a declined card is the order
/// page with the reason (402), an order that can no longer be paid the same with 409.
pub async fn pay(
    State(state): State<AppState>,
    layout: Layout,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    match checkout::pay(&state, user.id, &id).await {
        Ok(PayOutcome::Paid(_) | PayOutcome::Pending(_)) => {
            Ok(Redirect::to(&format!("/orders/{id}")).into_response())
        }
        Ok(PayOutcome::Declined { reason }) => {
            let message = format!("{} ({reason})", layout.t("order.declined"));
            order_page(
                &state,
                layout,
                &user,
                &id,
                StatusCode::PAYMENT_REQUIRED,
                Some(message),
            )
            .await
        }
        Err(AppError::Conflict(reason)) => {
            let message = format!("{} ({reason})", layout.t("order.not_payable"));
            order_page(
                &state,
                layout,
                &user,
                &id,
                StatusCode::CONFLICT,
                Some(message),
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "reviews.html")]
pub struct TagPage {
    pub layout: Layout,
    pub title: String,
    pub tag: String,
    pub reviews: Vec<ReviewView>,
}

#[derive(Debug, Deserialize)]
pub struct TagQuery {
    tag: Option<String>,
}

/// `GET /reviews?tag=`: the newest reviews with one hashtag, across stores; a missing or
/// invalid tag is a 400 page.
pub async fn reviews_by_tag(
    State(state): State<AppState>,
    layout: Layout,
    PageQuery(query): PageQuery<TagQuery>,
) -> Result<Html<String>, PageError> {
    let tag = Hashtag::parse(query.tag.as_deref().unwrap_or(""))
        .map_err(|problem| PageError::bad_request(format!("tag {problem}")))?;
    let filter = ReviewFilter {
        store_id: None,
        hashtag: Some(tag.clone()),
        page: Page {
            limit: REVIEWS_SHOWN,
            offset: 0,
        },
    };
    let viewer = layout.user.as_ref().map_or(0, |u| u.id);
    let (rows, _) = repo::reviews::list(&state.db, &filter, viewer).await?;
    let reviews = rows.into_iter().map(|r| review_view(&layout, r)).collect();
    render(&TagPage {
        title: format!("#{}", tag.as_str()),
        tag: tag.into_string(),
        reviews,
        layout,
    })
}

#[cfg(test)]
mod tests {
    use super::{cart_lines, stars};

    #[test]
    fn empty_and_zero_quantities_are_left_out_of_the_cart() {
        let form = vec![
            ("csrf".to_string(), "x".to_string()),
            ("key".to_string(), "k".to_string()),
            ("qty_1".to_string(), "2".to_string()),
            ("qty_2".to_string(), "".to_string()),
            ("qty_3".to_string(), "0".to_string()),
        ];
        assert_eq!(cart_lines(&form).unwrap(), vec![(1, 2)]);
    }

    #[test]
    fn a_quantity_that_is_not_a_number_is_refused() {
        let form = vec![("qty_1".to_string(), "two".to_string())];
        assert!(cart_lines(&form).is_err());
    }

    #[test]
    fn stars_show_five_places() {
        assert_eq!(stars(4), "★★★★☆");
        assert_eq!(stars(1), "★☆☆☆☆");
    }
}
