//! SQL for orders. Every state change goes through [`apply_event`]: one transaction that locks
//! the order, runs the state machine ([`super::domain::apply`]), writes the new state and a
//! history row, keeps the books (`payments`), puts stock back, and enqueues the follow-up jobs
//! the transition calls for, so a follow-up exists exactly when its transition committed.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::domain::{self, Effect, Event, OrderState, Payment, Refused, Transition, Vendor};
use crate::db::{now, Db};
use crate::queue::{Enqueue, NewJob};
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: String,
    pub customer_id: i64,
    pub store_id: i64,
    pub status: String,
    pub payment: String,
    pub vendor: String,
    pub cancelled: bool,
    pub total_won: i64,
    pub vendor_ref: Option<String>,
    pub charge_ref: Option<String>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderRow {
    pub fn state(&self) -> anyhow::Result<OrderState> {
        Ok(OrderState {
            payment: Payment::parse(&self.payment).ok_or_else(|| {
                anyhow::anyhow!("order {}: bad payment {}", self.id, self.payment)
            })?,
            vendor: Vendor::parse(&self.vendor)
                .ok_or_else(|| anyhow::anyhow!("order {}: bad vendor {}", self.id, self.vendor))?,
            cancelled: self.cancelled,
        })
    }
}

const ORDER_COLUMNS: &str = "id, customer_id, store_id, status, payment, vendor, cancelled, \
    total_won, vendor_ref, charge_ref, reason, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct ItemRow {
    pub menu_item_id: i64,
    pub name: String,
    pub unit_price_won: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub order_id: String,
    pub store_id: i64,
    pub event: String,
    pub status: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// An order with its lines and history.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub order: OrderRow,
    pub items: Vec<ItemRow>,
    pub history: Vec<HistoryRow>,
}

pub async fn get(db: &Db, id: &str) -> Result<Option<OrderRecord>, sqlx::Error> {
    on_read!(db, pool => {
        let order: Option<OrderRow> =
            sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?;
        let Some(order) = order else { return Ok(None) };
        let items = sqlx::query_as(
            "SELECT menu_item_id, name, unit_price_won, quantity FROM order_items \
             WHERE order_id = $1 ORDER BY menu_item_id")
            .bind(id)
            .fetch_all(pool)
            .await?;
        let history = sqlx::query_as(
            "SELECT id, order_id, store_id, event, status, detail, at FROM order_history \
             WHERE order_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(pool)
            .await?;
        Ok(Some(OrderRecord { order, items, history }))
    })
}

/// Whether nothing more will happen to the order (see [`OrderState::is_terminal`]); `false`
/// for an unknown order or one whose state does not parse.
pub async fn is_terminal(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String, String, bool)> = on_read!(db, pool =>
        sqlx::query_as("SELECT payment, vendor, cancelled FROM orders WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?;
    Ok(row.is_some_and(|(payment, vendor, cancelled)| {
        match (Payment::parse(&payment), Vendor::parse(&vendor)) {
            (Some(payment), Some(vendor)) => OrderState {
                payment,
                vendor,
                cancelled,
            }
            .is_terminal(),
            _ => false,
        }
    }))
}

/// Whose orders to list.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Customer(i64),
    Store(i64),
}

/// The newest orders of a customer or a store, without their history.
pub async fn list(db: &Db, scope: Scope, limit: i64) -> Result<Vec<OrderRow>, sqlx::Error> {
    let (column, id) = match scope {
        Scope::Customer(id) => ("customer_id", id),
        Scope::Store(id) => ("store_id", id),
    };
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE {column} = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    on_read!(db, pool => sqlx::query_as(&sql).bind(id).bind(limit).fetch_all(pool).await)
}

/// One line of an order, with the order it belongs to.
#[derive(Debug, Clone, FromRow)]
pub struct StoreItemRow {
    pub order_id: String,
    pub name: String,
    pub quantity: i64,
}

/// A store's newest orders with their lines, for the owner's page: the orders, the lines of
/// all of them (by order, then item), and the newest history id of the store (where a live
/// stream opened after this read must start, so it sends only what the page does not show).
/// The history id is read first: a change committed between the reads is sent again by the
/// stream, never missed.
pub async fn recent_for_store(
    db: &Db,
    store_id: i64,
    limit: i64,
) -> Result<(Vec<OrderRow>, Vec<StoreItemRow>, i64), sqlx::Error> {
    let last: i64 = on_read!(db, pool => sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM order_history WHERE store_id = $1")
        .bind(store_id).fetch_one(pool).await)?;
    let orders = list(db, Scope::Store(store_id), limit).await?;
    let items = on_read!(db, pool => sqlx::query_as(
        "SELECT i.order_id, i.name, i.quantity FROM order_items i \
         WHERE i.order_id IN (SELECT o.id FROM orders o WHERE o.store_id = $1 \
           ORDER BY o.created_at DESC, o.id DESC LIMIT $2) \
         ORDER BY i.order_id, i.menu_item_id")
        .bind(store_id).bind(limit).fetch_all(pool).await)?;
    Ok((orders, items, last))
}

/// History rows after `after` (an id), for live updates of one order or of a store.
pub async fn history_after(
    db: &Db,
    scope: HistoryScope<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    const COLUMNS: &str = "id, order_id, store_id, event, status, detail, at";
    on_read!(db, pool => match scope {
        HistoryScope::Order(id) => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM order_history WHERE order_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"))
            .bind(id).bind(after).bind(limit).fetch_all(pool).await,
        HistoryScope::Store(id) => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM order_history WHERE store_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"))
            .bind(id).bind(after).bind(limit).fetch_all(pool).await,
    })
}

#[derive(Debug, Clone, Copy)]
pub enum HistoryScope<'a> {
    Order(&'a str),
    Store(i64),
}

/// The owner of a store, if it exists (`Some(None)`: a store without an owner).
pub async fn store_owner(db: &Db, store_id: i64) -> Result<Option<Option<i64>>, sqlx::Error> {
    let row: Option<(Option<i64>,)> = on_read!(db, pool =>
        sqlx::query_as("SELECT owner_id FROM stores WHERE id = $1")
            .bind(store_id).fetch_optional(pool).await)?;
    Ok(row.map(|(owner,)| owner))
}

/// A validated order to place.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub customer_id: i64,
    pub store_id: i64,
    /// (menu item id, quantity), ids ascending and unique.
    pub lines: Vec<(i64, i64)>,
    /// The client's `Idempotency-Key`, and a hash of the request it came with.
    pub idempotency_key: String,
    pub request_hash: String,
    /// Enqueued with the order (hand-off to the vendor, deadlines).
    pub jobs: Vec<NewJob>,
}

/// Why an order could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceError {
    UnknownStore,
    UnknownItem(i64),
    Unavailable(String),
    SoldOut {
        name: String,
        left: i64,
    },
    /// The key was used before with a different request.
    KeyReused,
}

#[derive(Debug)]
pub enum Placed {
    /// Placed now; the response to send (and stored for replays).
    Created { status: u16, body: String },
    /// The key was seen with the same request: the response sent then.
    Replayed { status: u16, body: String },
}

/// How long a response is kept for replay.
pub const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::hours(24);

/// Places an order in one transaction: claims the idempotency key, reserves stock (ids in
/// ascending order, so concurrent orders lock rows in the same order and cannot deadlock),
/// writes the order, its lines and first history row, enqueues `order.jobs`, and stores the
/// response `render` makes for replays. A concurrent request with the same key waits on the
/// key's row (PostgreSQL) or the single writer (SQLite) and then replays.
pub async fn place(
    db: &Db,
    order: &NewOrder,
    render: impl Fn(&OrderRecord) -> (u16, String),
) -> Result<Result<Placed, PlaceError>, sqlx::Error> {
    let at = now();
    let expired = at - IDEMPOTENCY_TTL;
    macro_rules! place_in {
        ($tx:expr) => {{
            let tx = &mut $tx;
            sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3")
                .bind(order.customer_id).bind(&order.idempotency_key).bind(expired)
                .execute(&mut **tx).await?;
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response, created_at) \
                 VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (user_id, key) DO NOTHING")
                .bind(order.customer_id).bind(&order.idempotency_key).bind(&order.request_hash).bind(at)
                .execute(&mut **tx).await?.rows_affected() == 1;
            if !claimed {
                let (hash, status, body): (String, i64, String) = sqlx::query_as(
                    "SELECT request_hash, status_code, response FROM idempotency_keys \
                     WHERE user_id = $1 AND key = $2")
                    .bind(order.customer_id).bind(&order.idempotency_key)
                    .fetch_one(&mut **tx).await?;
                return Ok(if hash != order.request_hash {
                    Err(PlaceError::KeyReused)
                } else {
                    Ok(Placed::Replayed { status: status as u16, body })
                });
            }
            let store: Option<(i64,)> = sqlx::query_as("SELECT id FROM stores WHERE id = $1")
                .bind(order.store_id).fetch_optional(&mut **tx).await?;
            if store.is_none() {
                return Ok(Err(PlaceError::UnknownStore));
            }
            let mut items = Vec::with_capacity(order.lines.len());
            for &(item_id, quantity) in &order.lines {
                let reserved: Option<(String, i64)> = sqlx::query_as(
                    "UPDATE menu_items SET stock = stock - $1, updated_at = $2 \
                     WHERE id = $3 AND store_id = $4 AND available AND stock >= $1 \
                     RETURNING name, price_won")
                    .bind(quantity).bind(at).bind(item_id).bind(order.store_id)
                    .fetch_optional(&mut **tx).await?;
                let Some((name, unit_price_won)) = reserved else {
                    let item: Option<(String, i64, bool)> = sqlx::query_as(
                        "SELECT name, stock, available FROM menu_items WHERE id = $1 AND store_id = $2")
                        .bind(item_id).bind(order.store_id).fetch_optional(&mut **tx).await?;
                    return Ok(Err(match item {
                        None => PlaceError::UnknownItem(item_id),
                        Some((name, _, false)) => PlaceError::Unavailable(name),
                        Some((name, left, true)) => PlaceError::SoldOut { name, left },
                    }));
                };
                items.push(ItemRow { menu_item_id: item_id, name, unit_price_won, quantity });
            }
            let total_won: i64 = items.iter().map(|i| i.unit_price_won * i.quantity).sum();
            let state = OrderState::PLACED;
            sqlx::query(
                "INSERT INTO orders (id, customer_id, store_id, status, payment, vendor, cancelled, \
                   total_won, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $8)")
                .bind(&order.id).bind(order.customer_id).bind(order.store_id)
                .bind(state.status().as_str()).bind(state.payment.as_str()).bind(state.vendor.as_str())
                .bind(total_won).bind(at)
                .execute(&mut **tx).await?;
            for item in &items {
                sqlx::query(
                    "INSERT INTO order_items (order_id, menu_item_id, name, unit_price_won, quantity) \
                     VALUES ($1, $2, $3, $4, $5)")
                    .bind(&order.id).bind(item.menu_item_id).bind(&item.name)
                    .bind(item.unit_price_won).bind(item.quantity)
                    .execute(&mut **tx).await?;
            }
            let history_id: i64 = sqlx::query_scalar(
                "INSERT INTO order_history (order_id, store_id, event, status, detail, at) \
                 VALUES ($1, $2, 'placed', $3, NULL, $4) RETURNING id")
                .bind(&order.id).bind(order.store_id).bind(state.status().as_str()).bind(at)
                .fetch_one(&mut **tx).await?;
            for job in &order.jobs {
                Enqueue::enqueue(&mut **tx, job).await?;
            }
            let record = OrderRecord {
                order: OrderRow {
                    id: order.id.clone(),
                    customer_id: order.customer_id,
                    store_id: order.store_id,
                    status: state.status().as_str().into(),
                    payment: state.payment.as_str().into(),
                    vendor: state.vendor.as_str().into(),
                    cancelled: false,
                    total_won,
                    vendor_ref: None,
                    charge_ref: None,
                    reason: None,
                    created_at: at,
                    updated_at: at,
                },
                items,
                history: vec![HistoryRow {
                    id: history_id,
                    order_id: order.id.clone(),
                    store_id: order.store_id,
                    event: "placed".into(),
                    status: state.status().as_str().into(),
                    detail: None,
                    at,
                }],
            };
            let (status, body) = render(&record);
            sqlx::query("UPDATE idempotency_keys SET status_code = $1, response = $2 \
                         WHERE user_id = $3 AND key = $4")
                .bind(i64::from(status)).bind(&body)
                .bind(order.customer_id).bind(&order.idempotency_key)
                .execute(&mut **tx).await?;
            Ok(Ok(Placed::Created { status, body }))
        }};
    }
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let result: Result<Result<Placed, PlaceError>, sqlx::Error> = async { place_in!(tx) }.await;
        match result {
            Ok(Ok(placed @ Placed::Created { .. })) => {
                tx.commit().await?;
                Ok(Ok(placed))
            }
            // Nothing was written but the key claim: roll it back, so a refused request does
            // not use up the key (the client may retry it once the store restocks).
            other => {
                tx.rollback().await?;
                other
            }
        }
    })
}

/// Deletes stored responses older than [`IDEMPOTENCY_TTL`]. Returns how many.
pub async fn purge_idempotency_keys(db: &Db) -> Result<u64, sqlx::Error> {
    let before = now() - IDEMPOTENCY_TTL;
    on_write!(db, pool => sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before).execute(pool).await.map(|r| r.rows_affected()))
}

/// Where the follow-up jobs of transitions go, and the timing they need.
#[derive(Debug, Clone)]
pub struct FollowUps {
    pub queue: String,
    /// How long the vendor has to accept a handed-over order.
    pub vendor_deadline: std::time::Duration,
}

pub const REFUND_JOB: &str = "payment.refund";
pub const VENDOR_CANCEL_JOB: &str = "order.vendor_cancel";
/// Hands a paid order to the vendor.
pub const HAND_OVER_JOB: &str = "order.hand_over";
/// Cancels a handed-over order the vendor has not accepted in time.
pub const VENDOR_DEADLINE_JOB: &str = "order.vendor_deadline";

impl FollowUps {
    /// The jobs an effect calls for. Each has a dedup key per order, so a transition that
    /// is somehow applied twice cannot queue its follow-ups twice.
    fn jobs(&self, effect: Effect, order_id: &str) -> Vec<NewJob> {
        let job = |kind: &str| {
            NewJob::new(&self.queue, kind, serde_json::json!({ "order": order_id }))
                .dedup_key(format!("{kind}:{order_id}"))
        };
        match effect {
            Effect::ReleaseStock => vec![],
            // Money owed to a customer: keep trying for a long time (about a day with the
            // default backoff), then an admin sees the dead job.
            Effect::Refund => vec![job(REFUND_JOB).max_attempts(25)],
            Effect::CancelAtVendor => vec![job(VENDOR_CANCEL_JOB).max_attempts(10)],
            Effect::HandOver => {
                let deadline = now()
                    + chrono::Duration::from_std(self.vendor_deadline)
                        .unwrap_or(chrono::Duration::hours(1));
                vec![
                    // The vendor may be down for a while: keep trying until the deadline
                    // cancels the order (and refunds it).
                    job(HAND_OVER_JOB).max_attempts(30),
                    job(VENDOR_DEADLINE_JOB).run_at(deadline),
                ]
            }
        }
    }
}

/// What [`apply_event`] did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub before: OrderState,
    pub transition: Transition,
    pub store_id: i64,
    pub customer_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("order not found")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Corrupt(#[from] anyhow::Error),
}

/// Applies `event` to the order in one transaction (see the module notes). Events that change
/// nothing and need nothing done write nothing. `also` is enqueued in the same transaction
/// when the event changes the order (a safety-net job that belongs to the change).
pub async fn apply_event(
    db: &Db,
    order_id: &str,
    event: &Event,
    follow_ups: &FollowUps,
    also: Option<&NewJob>,
) -> Result<Applied, ApplyError> {
    let at = now();
    macro_rules! apply_in {
        ($tx:expr, $lock:expr) => {{
            let tx = &mut $tx;
            let row: Option<OrderRow> = sqlx::query_as(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{}", $lock))
                .bind(order_id).fetch_optional(&mut **tx).await?;
            let row = row.ok_or(ApplyError::NotFound)?;
            let before = row.state()?;
            let transition = domain::apply(before, event)?;
            if !transition.changed && transition.effects.is_empty() {
                return Ok(Applied { before, transition, store_id: row.store_id, customer_id: row.customer_id });
            }
            let next = transition.next;
            let status = next.status();
            if transition.changed {
                let (vendor_ref, charge_ref) = match event {
                    Event::VendorReceived { vendor_ref } => (Some(vendor_ref.as_str()), None),
                    Event::ChargeSucceeded { reference } => (None, Some(reference.as_str())),
                    _ => (None, None),
                };
                let ends_badly = next.cancelled != before.cancelled
                    || (next.payment == Payment::Failed && before.payment != Payment::Failed);
                let reason = if ends_badly { event.detail().or(Some(default_reason(event))) } else { None };
                sqlx::query(
                    "UPDATE orders SET status = $1, payment = $2, vendor = $3, cancelled = $4, \
                       vendor_ref = COALESCE($5, vendor_ref), charge_ref = COALESCE($6, charge_ref), \
                       reason = COALESCE($7, reason), updated_at = $8 WHERE id = $9")
                    .bind(status.as_str()).bind(next.payment.as_str()).bind(next.vendor.as_str())
                    .bind(next.cancelled).bind(vendor_ref).bind(charge_ref).bind(reason).bind(at)
                    .bind(order_id)
                    .execute(&mut **tx).await?;
                sqlx::query(
                    "INSERT INTO order_history (order_id, store_id, event, status, detail, at) \
                     VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(order_id).bind(row.store_id).bind(event.name()).bind(status.as_str())
                    .bind(event.detail()).bind(at)
                    .execute(&mut **tx).await?;
                let ledger = match event {
                    Event::ChargeSucceeded { reference } => Some(("charge", reference)),
                    Event::RefundSucceeded { reference } => Some(("refund", reference)),
                    _ => None,
                };
                if let Some(job) = also {
                    Enqueue::enqueue(&mut **tx, job).await?;
                }
                if let Some((kind, reference)) = ledger {
                    sqlx::query(
                        "INSERT INTO payments (order_id, kind, amount_won, gateway_ref, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, kind) DO NOTHING")
                        .bind(order_id).bind(kind).bind(row.total_won).bind(reference).bind(at)
                        .execute(&mut **tx).await?;
                }
            }
            for effect in &transition.effects {
                if *effect == Effect::ReleaseStock {
                    sqlx::query(
                        "UPDATE menu_items SET stock = stock + (SELECT quantity FROM order_items \
                           WHERE order_id = $1 AND menu_item_id = menu_items.id), updated_at = $2 \
                         WHERE id IN (SELECT menu_item_id FROM order_items WHERE order_id = $1)")
                        .bind(order_id).bind(at)
                        .execute(&mut **tx).await?;
                }
                for job in follow_ups.jobs(*effect, order_id) {
                    Enqueue::enqueue(&mut **tx, &job).await?;
                }
            }
            Ok(Applied { before, transition, store_id: row.store_id, customer_id: row.customer_id })
        }};
    }
    let result: Result<Applied, ApplyError> = match db {
        Db::Sqlite { write, .. } => {
            // IMMEDIATE takes the write lock before the first read: with another process
            // writing the same file (a `ballpark worker`), a deferred transaction that reads
            // and then writes fails with SQLITE_BUSY instead of waiting.
            let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
            let result = async { apply_in!(tx, "") }.await;
            if result.is_ok() {
                tx.commit().await?;
            }
            result
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            let result = async { apply_in!(tx, " FOR UPDATE") }.await;
            if result.is_ok() {
                tx.commit().await?;
            }
            result
        }
    };
    result
}

fn default_reason(event: &Event) -> &'static str {
    match event {
        Event::VendorDeadlinePassed => "the store did not accept the order in time",
        Event::PaymentDeadlinePassed => "the order was not paid in time",
        Event::ChargeSucceeded { .. } => {
            "the order was already called off; the payment is refunded"
        }
        _ => "cancelled",
    }
}
