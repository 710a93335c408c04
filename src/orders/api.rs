//! The orders HTTP API: thin handlers that parse the request into domain types, call the
//! order flow, and shape the answer. Placing and paying are [`super::checkout`]'s, shared
//! with the web's store and order pages.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::checkout::{self, Cart, IdempotencyKey, PayOutcome};
use super::domain::{Payment, Status};
use super::live::{self, Follow};
use super::store::{self, HistoryScope, OrderRecord, Scope};
use super::vendor::{self, VendorWebhook};
use super::VENDOR_EVENT_JOB;
use crate::app::AppState;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::{AppError, Result};
use crate::http::ApiJson;
use crate::queue::NewJob;

/// Orders listed at once.
const LIST_LIMIT: i64 = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_my_orders))
        .routes(routes!(get_order))
        .routes(routes!(pay_order))
        .routes(routes!(order_events))
        .routes(routes!(order_events_ticket))
        .routes(routes!(store_orders))
        .routes(routes!(store_order_events))
        .routes(routes!(store_order_events_ticket))
        .routes(routes!(vendor_webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceOrderBody {
    pub order: PlaceOrderRequest,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    #[schema(schema_with = crate::openapi::text::id)]
    #[serde(deserialize_with = "crate::http::whole")]
    pub store_id: i64,
    /// 1 to 20 lines; at most 20 of one item in all.
    #[schema(min_items = 1, max_items = 20)]
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    #[schema(schema_with = crate::openapi::text::id)]
    #[serde(deserialize_with = "crate::http::whole")]
    pub menu_item_id: i64,
    #[schema(schema_with = quantity_schema)]
    #[serde(deserialize_with = "crate::http::whole")]
    pub quantity: i64,
}

fn quantity_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::integer(1, super::checkout::MAX_QUANTITY)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderJson {
    pub id: String,
    pub store_id: i64,
    pub status: Status,
    pub payment: Payment,
    pub vendor: super::domain::Vendor,
    pub total_won: i64,
    /// Why the order was cancelled or its payment failed.
    pub reason: Option<String>,
    pub items: Vec<OrderItemJson>,
    /// Every transition, oldest first (empty in lists).
    pub history: Vec<HistoryJson>,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemJson {
    pub menu_item_id: i64,
    pub name: String,
    pub unit_price_won: i64,
    pub quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryJson {
    pub event: String,
    #[schema(value_type = Status)]
    pub status: String,
    pub detail: Option<String>,
    #[serde(serialize_with = "crate::community::serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDue {
    pub amount_won: i64,
    /// Where to pay: `POST` it.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    pub order: OrderJson,
    /// What to pay; present when the order awaits payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentDue>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrdersBody {
    pub orders: Vec<OrderJson>,
}

fn order_json(
    order: &store::OrderRow,
    items: &[store::ItemRow],
    history: &[store::HistoryRow],
) -> OrderJson {
    let state = order.state().ok();
    OrderJson {
        id: order.id.clone(),
        store_id: order.store_id,
        status: state.map(|s| s.status()).unwrap_or(Status::Placed),
        payment: state.map(|s| s.payment).unwrap_or(Payment::Unpaid),
        vendor: state
            .map(|s| s.vendor)
            .unwrap_or(super::domain::Vendor::Pending),
        total_won: order.total_won,
        reason: order.reason.clone(),
        items: items
            .iter()
            .map(|i| OrderItemJson {
                menu_item_id: i.menu_item_id,
                name: i.name.clone(),
                unit_price_won: i.unit_price_won,
                quantity: i.quantity,
            })
            .collect(),
        history: history
            .iter()
            .map(|h| HistoryJson {
                event: h.event.clone(),
                status: h.status.clone(),
                detail: h.detail.clone(),
                at: h.at,
            })
            .collect(),
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

pub(crate) fn order_body(record: &OrderRecord) -> OrderBody {
    let order = order_json(&record.order, &record.items, &record.history);
    let awaits_payment = order.payment == Payment::Unpaid && !record.order.cancelled;
    let payment = awaits_payment.then(|| PaymentDue {
        amount_won: record.order.total_won,
        url: format!("/api/orders/{}/payment", record.order.id),
    });
    OrderBody { order, payment }
}

/// The `Idempotency-Key` header, parsed by the checkout's rules.
fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey> {
    let raw = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            AppError::BadRequest("the Idempotency-Key header must be ASCII".into())
        })?),
    };
    IdempotencyKey::parse(raw)
}

/// Place an order. Requires an `Idempotency-Key` header: the same key with the same body
/// returns the first response (status and body) for 24 hours; with a different body, 422. A
/// refused order (sold out, unknown item) does not use up its key.
#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = PlaceOrderBody,
    params(super::checkout::IdempotencyHeader),
    responses((status = 201, body = OrderBody),
              (status = 400, description = "malformed JSON, or no valid Idempotency-Key"),
              (status = 401), (status = 404, description = "no such store"),
              (status = 409, description = "sold out"),
              (status = 422, description = "invalid items, or the key was used with another request")),
    security(("token" = [])))]
async fn place_order(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrderBody>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let lines: Vec<(i64, i64)> = body
        .order
        .items
        .iter()
        .map(|line| (line.menu_item_id, line.quantity))
        .collect();
    let cart = Cart::parse(body.order.store_id, &lines)?;
    let placed = checkout::place(&state, auth.id, &cart, &key).await?;
    let status = StatusCode::from_u16(placed.status).unwrap_or(StatusCode::CREATED);
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        placed.body,
    )
        .into_response())
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders",
    responses((status = 200, body = OrdersBody), (status = 401)), security(("token" = [])))]
async fn list_my_orders(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<axum::Json<OrdersBody>> {
    let rows = store::list(&state.db, Scope::Customer(auth.id), LIST_LIMIT).await?;
    Ok(axum::Json(OrdersBody {
        orders: rows.iter().map(|o| order_json(o, &[], &[])).collect(),
    }))
}

/// Who may see an order: its customer, the store's owner, and admins.
async fn visible_order(state: &AppState, user_id: i64, id: &str) -> Result<OrderRecord> {
    let record = store::get(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("order"))?;
    if record.order.customer_id == user_id
        || may_manage_store(state, user_id, record.order.store_id).await?
    {
        Ok(record)
    } else {
        // Not 403: whether someone else's order exists is not the caller's business.
        Err(AppError::NotFound("order"))
    }
}

/// Who manages a store's orders is who manages the store ([`crate::catalog::check_manager`]:
/// its owner while their role is `store_owner`, or an admin), asked as a yes or no; an
/// unknown store is still 404 and a deleted account 401.
async fn may_manage_store(state: &AppState, user_id: i64, store_id: i64) -> Result<bool> {
    match crate::catalog::check_manager(&state.db, store_id, user_id).await {
        Ok(()) => Ok(true),
        Err(AppError::Forbidden) => Ok(false),
        Err(other) => Err(other),
    }
}

/// One order with its history.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = OrderBody), (status = 401), (status = 404)),
    security(("token" = [])))]
async fn get_order(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<OrderBody>> {
    let record = visible_order(&state, auth.id, &id).await?;
    Ok(axum::Json(order_body(&record)))
}

/// Pay for an order. Safe to retry: the charge carries a key derived from the order, so the
/// gateway never takes the money twice. 200 when paid; 402 when declined (stock released);
/// 202 when the gateway did not answer in time (a queued job settles it; follow the order).
#[utoipa::path(post, path = "/api/orders/{id}/payment", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = OrderBody), (status = 202, body = OrderBody),
              (status = 402, description = "declined"), (status = 401), (status = 404),
              (status = 409, description = "the order can no longer be paid")),
    security(("token" = [])))]
async fn pay_order(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(match checkout::pay(&state, auth.id, &id).await? {
        PayOutcome::Paid(record) => axum::Json(order_body(&record)).into_response(),
        PayOutcome::Declined { reason } => AppError::PaymentDeclined(reason).into_response(),
        PayOutcome::Pending(record) => {
            (StatusCode::ACCEPTED, axum::Json(order_body(&record))).into_response()
        }
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Send history rows after this id (the SSE `Last-Event-ID` header wins if present).
    #[param(schema_with = after_schema, required = false)]
    pub after: Option<i64>,
    /// A ticket from `POST …/events/ticket`, for clients that cannot send an
    /// `Authorization` header (a browser's `EventSource`). Never put a login token here.
    #[param(pattern = r"^[^\u0000]*$")]
    pub ticket: Option<String>,
}

fn after_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::described(
        crate::openapi::text::id(),
        "Send history rows after this id (the SSE `Last-Event-ID` header wins if present).",
    )
}

fn last_event_id(headers: &HeaderMap, query: &StreamQuery) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(query.after)
        .unwrap_or(0)
}

/// Who opens a stream: the login token's user (`Authorization` header), or else the user a
/// valid ticket for exactly this stream names. Anything else is 401.
fn stream_user(
    state: &AppState,
    auth: MaybeAuthUser,
    query: &StreamQuery,
    follow: &Follow,
) -> Result<i64> {
    match (auth.0, &query.ticket) {
        (Some(user), _) => Ok(user.id),
        (None, Some(ticket)) => state
            .orders
            .tickets
            .verify(ticket, follow)
            .map_err(|_| AppError::Unauthorized),
        (None, None) => Err(AppError::Unauthorized),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamTicket {
    /// Pass as `?ticket=` to open the stream; valid for `expiresInSecs`, for this user and
    /// this stream only.
    pub ticket: String,
    pub expires_in_secs: u64,
    /// The stream's URL with the ticket.
    pub url: String,
}

fn stream_ticket(
    state: &AppState,
    user_id: i64,
    follow: &Follow,
    path: String,
) -> Result<StreamTicket> {
    let ticket = state.orders.tickets.issue(user_id, follow)?;
    Ok(StreamTicket {
        url: format!("{path}?ticket={ticket}"),
        ticket,
        expires_in_secs: super::ticket::TICKET_TTL.as_secs(),
    })
}

/// Live status changes of one order, as server-sent events (`event: order`, `id` = history
/// id). Authenticate with the `Authorization` header or `?ticket=` (see
/// `POST /api/orders/{id}/events/ticket`). The stream ends after the order's terminal event;
/// opening it when that was already sent answers 204, which tells an `EventSource` to stop
/// reconnecting.
#[utoipa::path(get, path = "/api/orders/{id}/events", tag = "orders",
    params(("id" = String, Path), StreamQuery),
    responses((status = 200, content_type = "text/event-stream", description = "history rows as they happen, until the terminal one"),
              (status = 204, description = "the order is over and everything was sent"),
              (status = 401, description = "no login token and no valid ticket for this order"), (status = 404),
              (status = 429, description = "too many streams open")),
    security((), ("token" = [])))]
async fn order_events(
    State(state): State<AppState>,
    auth: MaybeAuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<StreamQuery>,
) -> Result<Response> {
    let follow = Follow::Order(id.clone());
    let user_id = stream_user(&state, auth, &query, &follow)?;
    visible_order(&state, user_id, &id).await?;
    let after = last_event_id(&headers, &query);
    let nothing_left = store::is_terminal(&state.db, &id).await?
        && store::history_after(&state.db, HistoryScope::Order(&id), after, 1)
            .await?
            .is_empty();
    if nothing_left {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let live = &state.orders.live;
    live::stream(state.db.clone(), live.clone(), follow, after)
        .map(IntoResponse::into_response)
        .ok_or(AppError::TooManyRequests)
}

/// A ticket to open the order's live stream without a login token in the URL: valid 60 s,
/// for the caller and this order only.
#[utoipa::path(post, path = "/api/orders/{id}/events/ticket", tag = "orders",
    params(("id" = String, Path)),
    responses((status = 200, body = StreamTicket), (status = 401), (status = 404)),
    security(("token" = [])))]
async fn order_events_ticket(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<StreamTicket>> {
    visible_order(&state, auth.id, &id).await?;
    let follow = Follow::Order(id.clone());
    let path = format!("/api/orders/{id}/events");
    Ok(axum::Json(stream_ticket(&state, auth.id, &follow, path)?))
}

/// A store's newest orders (its owner and admins).
#[utoipa::path(get, path = "/api/stores/{id}/orders", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrdersBody), (status = 401), (status = 403), (status = 404)),
    security(("token" = [])))]
async fn store_orders(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(store_id): Path<i64>,
) -> Result<axum::Json<OrdersBody>> {
    if !may_manage_store(&state, auth.id, store_id).await? {
        return Err(AppError::Forbidden);
    }
    let rows = store::list(&state.db, Scope::Store(store_id), LIST_LIMIT).await?;
    Ok(axum::Json(OrdersBody {
        orders: rows.iter().map(|o| order_json(o, &[], &[])).collect(),
    }))
}

/// Live changes of every order of a store, as server-sent events (its owner and admins).
/// Authenticate with the `Authorization` header or `?ticket=` (see
/// `POST /api/stores/{id}/orders/events/ticket`).
#[utoipa::path(get, path = "/api/stores/{id}/orders/events", tag = "orders",
    params(("id" = i64, Path), StreamQuery),
    responses((status = 200, content_type = "text/event-stream"),
              (status = 401, description = "no login token and no valid ticket for this store"),
              (status = 403), (status = 404), (status = 429, description = "too many streams open")),
    security((), ("token" = [])))]
async fn store_order_events(
    State(state): State<AppState>,
    auth: MaybeAuthUser,
    Path(store_id): Path<i64>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<StreamQuery>,
) -> Result<Response> {
    let follow = Follow::Store(store_id);
    let user_id = stream_user(&state, auth, &query, &follow)?;
    if !may_manage_store(&state, user_id, store_id).await? {
        return Err(AppError::Forbidden);
    }
    let after = last_event_id(&headers, &query);
    let live = &state.orders.live;
    live::stream(state.db.clone(), live.clone(), follow, after)
        .map(IntoResponse::into_response)
        .ok_or(AppError::TooManyRequests)
}

/// A ticket to open the store's live stream without a login token in the URL: valid 60 s,
/// for the caller and this store only.
#[utoipa::path(post, path = "/api/stores/{id}/orders/events/ticket", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = StreamTicket), (status = 401), (status = 403), (status = 404)),
    security(("token" = [])))]
async fn store_order_events_ticket(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(store_id): Path<i64>,
) -> Result<axum::Json<StreamTicket>> {
    if !may_manage_store(&state, auth.id, store_id).await? {
        return Err(AppError::Forbidden);
    }
    let follow = Follow::Store(store_id);
    let path = format!("/api/stores/{store_id}/orders/events");
    Ok(axum::Json(stream_ticket(&state, auth.id, &follow, path)?))
}

/// Progress reports from a store's vendor. The body must be signed (header
/// `x-vendor-signature: sha256=<hex HMAC-SHA256 of the body>` with the shared secret). The
/// report is queued and applied by a worker; 202 means it is safely stored.
#[utoipa::path(post, path = "/api/vendor/webhooks", tag = "orders",
    params(vendor::SignatureHeader),
    request_body(content = VendorWebhook, description = "signed: see `x-vendor-signature`", content_type = "application/json"),
    responses((status = 202), (status = 401, description = "missing or wrong signature"),
              (status = 404, description = "no such order"), (status = 422)))]
async fn vendor_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let orders = &state.orders;
    let signature = headers
        .get(vendor::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !vendor::verify(&orders.settings.webhook_secret, &body, signature) {
        return Err(AppError::Unauthorized);
    }
    // As `ApiJson` does for every other body (the signature needs the raw bytes), and
    // first, so that the answer names the field.
    if let Some(field) = crate::http::nul_in_json(&body) {
        return Err(AppError::invalid(&field, crate::http::NUL_MESSAGE));
    }
    let hook: VendorWebhook = serde_json::from_slice(&body)
        .map_err(|e| AppError::invalid("body", format!("is not a vendor webhook: {e}")))?;
    if store::get(&state.db, &hook.order_id).await?.is_none() {
        return Err(AppError::NotFound("order"));
    }
    let event = serde_json::to_value(hook.event).unwrap_or_default();
    let event = event.as_str().unwrap_or("unknown");
    let job = NewJob::new(
        &orders.settings.queue,
        VENDOR_EVENT_JOB,
        serde_json::json!({ "order": hook.order_id, "webhook": hook }),
    )
    .max_attempts(10)
    // A vendor retrying a webhook we already stored does not queue it twice.
    .dedup_key(format!("{VENDOR_EVENT_JOB}:{}:{event}", hook.order_id));
    crate::queue::enqueue(&state.db, job).await?;
    if let Some(wakeup) = &state.queue_wakeup {
        wakeup.wake();
    }
    Ok(StatusCode::ACCEPTED)
}
