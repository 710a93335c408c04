//! The order-placing rules in one place, shared by the JSON API (`POST /api/orders`,
//! `POST /api/orders/{id}/payment`) and the web's store page (`POST /stores/{id}/order`,
//! `POST /orders/{id}/pay`): what a valid cart is ([`Cart::parse`]), what a valid
//! idempotency key is ([`IdempotencyKey::parse`]), placing ([`place`]) and paying ([`pay`]).
//!
//! Callers only shape the answer: the API answers JSON, the web a redirect or a page.
//! - The response stored for an idempotent replay is always the API's JSON body, whichever
//!   door the order came through, so [`Placement`] carries the order id read back from it.
//! - Placing and charging run on tasks of their own: a client that goes away mid-request must
//!   not cancel a transaction or a charge half-way (sqlx 0.8's `begin` is not cancel-safe on
//!   PostgreSQL, and an order should be placed or not, whatever the connection does).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::domain::{Event, Payment};
use super::jobs::charge_and_record;
use super::metrics::OrderMetrics;
use super::store::{self, ApplyError, NewOrder, OrderRecord, PlaceError, Placed};
use super::{Orders, PAYMENT_DEADLINE_JOB, RECONCILE_JOB};
use crate::app::AppState;
use crate::error::{AppError, Result};
use crate::queue::NewJob;

/// Lines in one order, and units of one item in it.
pub const MAX_LINES: usize = 20;
pub const MAX_QUANTITY: i64 = 20;
/// Longest accepted idempotency key.
pub const MAX_KEY_LEN: usize = 255;

/// A valid cart: one store, 1 to [`MAX_LINES`] lines merged by item and sorted by id, each
/// 1 to [`MAX_QUANTITY`] units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    store_id: i64,
    lines: Vec<(i64, i64)>,
}

impl Cart {
    /// `lines` are (menu item id, quantity) as the client sent them; an item named twice is
    /// merged (its total must still be within the limit).
    pub fn parse(store_id: i64, lines: &[(i64, i64)]) -> Result<Cart> {
        if lines.is_empty() {
            return Err(AppError::invalid(
                "items",
                "must name at least one menu item",
            ));
        }
        if lines.len() > MAX_LINES {
            return Err(AppError::invalid(
                "items",
                format!("at most {MAX_LINES} lines per order"),
            ));
        }
        let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
        for &(item, quantity) in lines {
            if !(1..=MAX_QUANTITY).contains(&quantity) {
                return Err(AppError::invalid(
                    "quantity",
                    format!("must be between 1 and {MAX_QUANTITY}"),
                ));
            }
            let total = merged.entry(item).or_insert(0);
            *total += quantity;
            if *total > MAX_QUANTITY {
                return Err(AppError::invalid(
                    "quantity",
                    format!("at most {MAX_QUANTITY} of one item per order"),
                ));
            }
        }
        Ok(Cart {
            store_id,
            lines: merged.into_iter().collect(),
        })
    }

    pub fn store_id(&self) -> i64 {
        self.store_id
    }

    pub fn lines(&self) -> &[(i64, i64)] {
        &self.lines
    }

    /// What a replay with the same key must match: the same store and the same lines.
    fn request_hash(&self) -> String {
        let canonical = serde_json::json!({ "storeId": self.store_id, "lines": self.lines });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A client's idempotency key: 1 to [`MAX_KEY_LEN`] ASCII characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// The `Idempotency-Key` request header, as the document declares it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// Unique per order; reuse it only to retry the same order. 1-255 ASCII characters,
    /// something other than white space among them.
    // `max_length` takes a literal only: a test holds it to MAX_KEY_LEN.
    #[param(
        rename = "Idempotency-Key",
        pattern = r"^[\t -~]*[!-~][\t -~]*$",
        min_length = 1,
        max_length = 255
    )]
    _key: String,
}

impl IdempotencyKey {
    /// `None` is a missing key (the API's header, the web form's hidden field).
    pub fn parse(raw: Option<&str>) -> Result<IdempotencyKey> {
        let raw = raw.ok_or_else(|| {
            AppError::BadRequest(
                "the Idempotency-Key header is required: a unique value per order, reused only to retry it".into(),
            )
        })?;
        if !raw.is_ascii() {
            return Err(AppError::BadRequest(
                "the Idempotency-Key header must be ASCII".into(),
            ));
        }
        let value = raw.trim();
        // The limit counts the key as sent, as the document's maxLength does.
        if value.is_empty() || raw.len() > MAX_KEY_LEN {
            return Err(AppError::BadRequest(format!(
                "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} characters"
            )));
        }
        Ok(IdempotencyKey(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A placed order: created now, or the first answer replayed for a repeated key.
#[derive(Debug)]
pub struct Placement {
    pub order_id: String,
    /// The stored response: the API's status and JSON body.
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

/// Places `cart` for `customer_id` under `key`: reserves stock and writes the order with its
/// payment deadline job in one transaction. A repeated key with the same cart replays the
/// first answer; with another cart, 422. A refused order (sold out: 409; unknown item: 422;
/// unknown store: 404) does not use up its key.
pub async fn place(
    state: &AppState,
    customer_id: i64,
    cart: &Cart,
    key: &IdempotencyKey,
) -> Result<Placement> {
    let orders = &state.orders;
    let id = uuid::Uuid::now_v7().to_string();
    let settings = &orders.settings;
    let payload = serde_json::json!({ "order": id });
    let deadline = crate::db::now()
        + chrono::Duration::from_std(settings.payment_window).unwrap_or(chrono::Duration::hours(1));
    let new = NewOrder {
        id,
        customer_id,
        store_id: cart.store_id,
        lines: cart.lines.clone(),
        idempotency_key: key.0.clone(),
        request_hash: cart.request_hash(),
        // Only the payment deadline: the hand-over to the vendor (and its deadline) is queued
        // by the payment, so the kitchen never starts on an unpaid order.
        jobs: vec![NewJob::new(&settings.queue, PAYMENT_DEADLINE_JOB, payload).run_at(deadline)],
    };
    let db = orders.db.clone();
    let placed = tokio::spawn(async move {
        store::place(&db, &new, |record| {
            let body = serde_json::to_string(&super::api::order_body(record)).unwrap_or_default();
            (201, body)
        })
        .await
    })
    .await
    .map_err(|e| anyhow::anyhow!("the order task failed: {e}"))??;
    let (status, body, replayed) = match placed {
        Ok(Placed::Created { status, body }) => {
            OrderMetrics::new(&state.metrics).placed();
            if let Some(wakeup) = &state.queue_wakeup {
                wakeup.wake();
            }
            orders.live.poke();
            (status, body, false)
        }
        Ok(Placed::Replayed { status, body }) => (status, body, true),
        Err(PlaceError::KeyReused) => {
            return Err(AppError::invalid(
                "Idempotency-Key",
                "was already used with a different request",
            ))
        }
        Err(PlaceError::UnknownStore) => return Err(AppError::NotFound("store")),
        Err(PlaceError::UnknownItem(id)) => {
            return Err(AppError::invalid(
                "items",
                format!("menu item {id} is not on this store's menu"),
            ))
        }
        Err(PlaceError::Unavailable(name)) => {
            return Err(AppError::Conflict(format!("{name} is not available now")))
        }
        Err(PlaceError::SoldOut { name, left }) => {
            return Err(AppError::Conflict(format!("{name}: only {left} left")))
        }
    };
    let order_id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["order"]["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("a stored order response without an order id"))?;
    Ok(Placement {
        order_id,
        status,
        body,
        replayed,
    })
}

/// How a payment ended.
#[derive(Debug)]
pub enum PayOutcome {
    /// Paid now, or already paid before.
    Paid(OrderRecord),
    /// The gateway declined; the order failed and its stock was released.
    Declined { reason: String },
    /// The gateway did not answer in time; a queued job settles it.
    Pending(OrderRecord),
}

/// Pays the customer's own order (anyone else's is 404). Safe to retry: the charge carries a
/// key derived from the order, so the gateway never takes the money twice. An order that can
/// no longer be paid is 409.
pub async fn pay(state: &AppState, customer_id: i64, id: &str) -> Result<PayOutcome> {
    let orders = &state.orders;
    let record = store::get(&state.db, id)
        .await?
        .filter(|r| r.order.customer_id == customer_id)
        .ok_or(AppError::NotFound("order"))?;
    if record.order.payment == Payment::Paid.as_str() {
        return Ok(PayOutcome::Paid(record));
    }
    // If this process dies, or the gateway never answers, this job settles the charge. It is
    // written with the change to `charging`, so a charge under way always has one.
    let reconcile = NewJob::new(
        &orders.settings.queue,
        RECONCILE_JOB,
        serde_json::json!({ "order": id }),
    )
    .run_at(
        crate::db::now()
            + chrono::Duration::from_std(orders.settings.payment_timeout * 2).unwrap_or_default(),
    )
    .max_attempts(25)
    .dedup_key(format!("{RECONCILE_JOB}:{id}"));
    let charge = {
        let (orders, id, total) = (orders.clone(), id.to_owned(), record.order.total_won);
        let metrics = OrderMetrics::new(&state.metrics);
        tokio::spawn(async move {
            start_charge(&orders, &id, &reconcile).await?;
            let outcome = charge_and_record(&orders, &metrics, &id, total).await;
            orders.live.poke();
            Ok::<_, AppError>(outcome)
        })
    };
    let outcome = charge
        .await
        .map_err(|e| anyhow::anyhow!("the payment task failed: {e}"))??;
    let record = store::get(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("order"))?;
    Ok(match outcome {
        Ok(Event::ChargeDeclined { reason }) => PayOutcome::Declined { reason },
        Ok(_) => PayOutcome::Paid(record),
        Err(err) => {
            tracing::warn!(order = %id, error = %err, "payment outcome unknown; a job will settle it");
            PayOutcome::Pending(record)
        }
    })
}

/// Marks the payment as under way; refuses orders that can no longer be paid.
async fn start_charge(orders: &Orders, id: &str, reconcile: &NewJob) -> Result<()> {
    let follow_ups = orders.follow_ups();
    match store::apply_event(
        &orders.db,
        id,
        &Event::ChargeStarted,
        &follow_ups,
        Some(reconcile),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(ApplyError::NotFound) => Err(AppError::NotFound("order")),
        Err(ApplyError::Refused(refused)) => Err(AppError::Conflict(refused.0.to_string())),
        Err(ApplyError::Database(err)) => Err(err.into()),
        Err(ApplyError::Corrupt(err)) => Err(AppError::Internal(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cart_merges_repeated_items_and_sorts_them() {
        let cart = Cart::parse(7, &[(3, 1), (1, 2), (3, 4)]).unwrap();
        assert_eq!(cart.lines(), &[(1, 2), (3, 5)]);
        assert_eq!(cart.store_id(), 7);
    }

    #[test]
    fn empty_carts_zero_quantities_and_too_many_units_are_refused() {
        assert!(Cart::parse(1, &[]).is_err());
        assert!(Cart::parse(1, &[(1, 0)]).is_err());
        assert!(Cart::parse(1, &[(1, MAX_QUANTITY), (1, 1)]).is_err());
        let many: Vec<(i64, i64)> = (0..=MAX_LINES as i64).map(|i| (i, 1)).collect();
        assert!(Cart::parse(1, &many).is_err());
    }

    #[test]
    fn the_same_cart_in_another_order_has_the_same_request_hash() {
        let a = Cart::parse(1, &[(2, 1), (1, 1)]).unwrap();
        let b = Cart::parse(1, &[(1, 1), (2, 1)]).unwrap();
        assert_eq!(a.request_hash(), b.request_hash());
    }

    #[test]
    fn idempotency_keys_must_be_present_ascii_and_short() {
        assert!(IdempotencyKey::parse(None).is_err());
        assert!(IdempotencyKey::parse(Some("  ")).is_err());
        assert!(IdempotencyKey::parse(Some("키")).is_err());
        assert!(IdempotencyKey::parse(Some(&"k".repeat(MAX_KEY_LEN + 1))).is_err());
        assert_eq!(IdempotencyKey::parse(Some(" k1 ")).unwrap().as_str(), "k1");
    }
}
