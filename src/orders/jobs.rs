//! The handlers of the orders queue. Each is idempotent: it reads the order's state first and
//! does nothing the state says is done, and every state change goes through
//! [`store::apply_event`], where a repeated or stale event is a no-op. So a message delivered
//! twice, late or out of order has one effect.
//!
//! Outside calls (vendor, gateway) happen *outside* any database transaction: a transaction is
//! never held open while waiting on another party (on SQLite it would block every writer).
//! Their failures are retryable job errors, so the queue retries them with backoff.

use super::domain::{Event, Payment, Vendor};
use super::metrics::OrderMetrics;
use super::payment::{charge_key, refund_key, ChargeOutcome, ChargeRequest, RefundRequest};
use super::store::{self, ApplyError};
use super::vendor::{VendorAnswer, VendorError, VendorItem, VendorOrder, VendorWebhook};
use super::{
    Orders, HAND_OVER_JOB, PAYMENT_DEADLINE_JOB, PLACED_JOB, RECONCILE_JOB, REFUND_JOB,
    VENDOR_CANCEL_JOB, VENDOR_DEADLINE_JOB, VENDOR_EVENT_JOB,
};
use crate::queue::{Job, JobError, JobHandler};

/// One handler for every kind of the orders queue, dispatching on the job's kind.
pub struct OrderJobs(pub Orders, pub OrderMetrics);

#[async_trait::async_trait]
impl JobHandler for OrderJobs {
    async fn handle(&self, job: &Job) -> Result<(), JobError> {
        let orders = &self.0;
        let metrics = &self.1;
        let order_id = || {
            job.payload["order"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| JobError::permanent("the job names no order"))
        };
        match job.kind.as_str() {
            HAND_OVER_JOB | PLACED_JOB => hand_over(orders, metrics, &order_id()?).await,
            VENDOR_EVENT_JOB => {
                let hook: VendorWebhook = serde_json::from_value(job.payload["webhook"].clone())
                    .map_err(|e| JobError::permanent(format!("bad webhook payload: {e}")))?;
                let event = Event::Vendor {
                    progress: hook.event,
                    reason: hook.reason.clone(),
                };
                apply(orders, metrics, &hook.order_id, &event).await
            }
            VENDOR_DEADLINE_JOB => vendor_deadline(orders, metrics, &order_id()?).await,
            PAYMENT_DEADLINE_JOB => {
                apply(orders, metrics, &order_id()?, &Event::PaymentDeadlinePassed).await
            }
            RECONCILE_JOB => reconcile(orders, metrics, &order_id()?).await,
            REFUND_JOB => refund(orders, metrics, &order_id()?).await,
            VENDOR_CANCEL_JOB => orders
                .vendor
                .cancel(&order_id()?)
                .await
                .map_err(vendor_error),
            other => Err(JobError::permanent(format!("unknown order job {other}"))),
        }
    }
}

/// Applies an event; a refusal here is a no-op (the state moved on), not a failure.
async fn apply(
    orders: &Orders,
    metrics: &OrderMetrics,
    order_id: &str,
    event: &Event,
) -> Result<(), JobError> {
    match store::apply_event(&orders.db, order_id, event, &orders.follow_ups(), None).await {
        Ok(applied) => {
            if applied.transition.changed {
                orders.live.poke();
                metrics.transition(applied.before, applied.transition.next);
            }
            Ok(())
        }
        Err(ApplyError::NotFound) => Err(JobError::permanent(format!("no order {order_id}"))),
        Err(ApplyError::Refused(refused)) => {
            tracing::info!(order = order_id, event = event.name(), %refused, "event refused; ignored");
            Ok(())
        }
        Err(ApplyError::Database(err)) => Err(JobError::retry(err)),
        Err(ApplyError::Corrupt(err)) => Err(JobError::permanent(format!("{err:#}"))),
    }
}

/// The order a job names; a job for an order that does not exist is dead at once.
async fn load(orders: &Orders, order_id: &str) -> Result<store::OrderRecord, JobError> {
    store::get(&orders.db, order_id)
        .await
        .map_err(JobError::retry)?
        .ok_or_else(|| JobError::permanent(format!("no order {order_id}")))
}

fn vendor_error(err: VendorError) -> JobError {
    match err {
        VendorError::Unavailable(_) => JobError::retry(err),
        VendorError::Refused(_) => JobError::permanent(err),
    }
}

/// `order.hand_over`: hands a paid order to the store's vendor, unless that happened already
/// or the order was called off meanwhile. An order that is not `paid` is never sent: the
/// kitchen must not start on food that may go unpaid (a legacy `order.placed` job for an
/// unpaid order ends here; the payment queues the hand-over again). The vendor dedupes by
/// order id, so a second hand-over after a crash is harmless.
async fn hand_over(
    orders: &Orders,
    metrics: &OrderMetrics,
    order_id: &str,
) -> Result<(), JobError> {
    let record = load(orders, order_id).await?;
    let state = record
        .order
        .state()
        .map_err(|e| JobError::permanent(format!("{e:#}")))?;
    if state.vendor != Vendor::Pending || !state.holds_stock() || state.payment != Payment::Paid {
        return Ok(());
    }
    let order = VendorOrder {
        order_id: order_id.to_owned(),
        store_id: record.order.store_id,
        items: record
            .items
            .iter()
            .map(|i| VendorItem {
                name: i.name.clone(),
                quantity: i.quantity,
            })
            .collect(),
        callback_url: orders.settings.callback_url.clone(),
    };
    let event = match orders.vendor.submit(&order).await {
        Ok(VendorAnswer::Received { vendor_ref }) => Event::VendorReceived { vendor_ref },
        Ok(VendorAnswer::Rejected { reason }) => Event::Vendor {
            progress: super::vendor::VendorProgress::Rejected,
            reason: Some(reason),
        },
        Err(VendorError::Refused(reason)) => Event::Vendor {
            progress: super::vendor::VendorProgress::Rejected,
            reason: Some(format!("the store's system refused the order: {reason}")),
        },
        Err(err @ VendorError::Unavailable(_)) => return Err(JobError::retry(err)),
    };
    apply(orders, metrics, order_id, &event).await
}

/// Why a deadline cancellation that the vendor agreed to is shown to the customer.
const NOT_ACCEPTED_IN_TIME: &str = "the store did not accept the order in time";

/// `order.vendor_deadline`: the vendor has not accepted the order in time. An order the
/// vendor already has is withdrawn there first, and cancelled and refunded here only once the
/// vendor agreed: its `accepted` may be stuck behind a broker outage while the kitchen cooks,
/// and refunding food that is handed over is money lost (the fault test found exactly that).
/// A vendor that refuses the withdrawal (too late: made or handed over) keeps the order, and
/// its webhooks bring it on; a vendor that cannot be reached is asked again (the job retries).
async fn vendor_deadline(
    orders: &Orders,
    metrics: &OrderMetrics,
    order_id: &str,
) -> Result<(), JobError> {
    let state = load(orders, order_id)
        .await?
        .order
        .state()
        .map_err(|e| JobError::permanent(format!("{e:#}")))?;
    let at_vendor = state.vendor == Vendor::Sent;
    if state.holds_stock() && state.payment == Payment::Paid && at_vendor {
        match orders.vendor.cancel(order_id).await {
            Ok(()) => {}
            Err(VendorError::Refused(reason)) => {
                tracing::warn!(order = order_id, %reason, "the vendor kept an order past its acceptance deadline");
                return Ok(());
            }
            Err(err @ VendorError::Unavailable(_)) => return Err(JobError::retry(err)),
        }
    }
    apply(orders, metrics, order_id, &Event::VendorDeadlinePassed).await?;
    if !at_vendor {
        return Ok(());
    }
    let now = load(orders, order_id)
        .await?
        .order
        .state()
        .map_err(|e| JobError::permanent(format!("{e:#}")))?;
    if now.holds_stock() && matches!(now.vendor, Vendor::Accepted | Vendor::Preparing) {
        // The vendor dropped the order, but its `accepted` (sent before it did) was recorded
        // meanwhile, which the deadline no longer cancels: call it off as the vendor's own
        // refusal, so that a paid order is never left waiting for food that will not come.
        let dropped = Event::Vendor {
            progress: super::vendor::VendorProgress::Rejected,
            reason: Some(NOT_ACCEPTED_IN_TIME.to_owned()),
        };
        apply(orders, metrics, order_id, &dropped).await?;
    }
    Ok(())
}

/// `payment.reconcile`: settles a charge whose answer never came (timeout, crash) by asking
/// the gateway again with the same key, which answers with what happened the first time.
async fn reconcile(
    orders: &Orders,
    metrics: &OrderMetrics,
    order_id: &str,
) -> Result<(), JobError> {
    let record = load(orders, order_id).await?;
    if record.order.payment != Payment::Charging.as_str() {
        return Ok(()); // settled meanwhile
    }
    charge_and_record(orders, metrics, order_id, record.order.total_won)
        .await
        .map(|_| ())
}

/// Charges through the gateway (idempotently, by the order's key) and applies the outcome.
/// Returns the event applied.
pub async fn charge_and_record(
    orders: &Orders,
    metrics: &OrderMetrics,
    order_id: &str,
    amount_won: i64,
) -> Result<Event, JobError> {
    let request = ChargeRequest {
        idempotency_key: charge_key(order_id),
        order_id: order_id.to_owned(),
        amount_won,
    };
    let outcome = tokio::time::timeout(
        orders.settings.payment_timeout,
        orders.gateway.charge(&request),
    )
    .await
    .map_err(|_| JobError::retry("the payment gateway did not answer in time"))
    .and_then(|answer| answer.map_err(JobError::retry));
    let event = match outcome {
        Ok(ChargeOutcome::Approved { reference }) => Event::ChargeSucceeded { reference },
        Ok(ChargeOutcome::Declined { reason }) => Event::ChargeDeclined { reason },
        Err(err) => {
            metrics.payment(None);
            return Err(err);
        }
    };
    metrics.payment(Some(&event));
    apply(orders, metrics, order_id, &event).await?;
    Ok(event)
}

/// `payment.refund`: gives the money back for an order the transition marked `refunding`.
async fn refund(orders: &Orders, metrics: &OrderMetrics, order_id: &str) -> Result<(), JobError> {
    let record = load(orders, order_id).await?;
    if record.order.payment != Payment::Refunding.as_str() {
        return Ok(());
    }
    let request = RefundRequest {
        idempotency_key: refund_key(order_id),
        order_id: order_id.to_owned(),
        charge_reference: record.order.charge_ref.clone().unwrap_or_default(),
        amount_won: record.order.total_won,
    };
    let reference = tokio::time::timeout(
        orders.settings.payment_timeout,
        orders.gateway.refund(&request),
    )
    .await
    .map_err(|_| JobError::retry("the payment gateway did not answer in time"))?
    .map_err(JobError::retry)?;
    apply(
        orders,
        metrics,
        order_id,
        &Event::RefundSucceeded { reference },
    )
    .await
}
