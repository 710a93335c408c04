//! The order flow's figures, written into the process's [`Metrics`] recorder:
//!
//! | metric | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `ballpark_orders_placed_total` | counter | — | orders placed (replays of an `Idempotency-Key` not counted) |
//! | `ballpark_orders_finished_total` | counter | status | orders that reached a terminal state: `picked_up`, `payment_failed`, `refunded`, `cancelled` (unpaid) |
//! | `ballpark_order_payments_total` | counter | outcome | charges sent to the gateway: `approved`, `declined`, or `unknown` (no answer in time; a job settles it) |
//!
//! Counted where the transition commits, in whichever process that is (the API or a worker),
//! so sum across instances.

use super::domain::{Event, OrderState};
use crate::metrics::Metrics;

const PLACED: &str = "ballpark_orders_placed_total";
const FINISHED: &str = "ballpark_orders_finished_total";
const PAYMENTS: &str = "ballpark_order_payments_total";

/// Cheap to clone; clones share the recorder.
#[derive(Clone, Debug)]
pub struct OrderMetrics {
    metrics: Metrics,
}

impl OrderMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        metrics.describe_counter(PLACED, None, "Orders placed.");
        metrics.describe_counter(
            FINISHED,
            None,
            "Orders that reached a terminal state, by that state.",
        );
        metrics.describe_counter(
            PAYMENTS,
            None,
            "Charges sent to the payment gateway, by outcome (approved, declined, unknown).",
        );
        OrderMetrics {
            metrics: metrics.clone(),
        }
    }

    pub fn placed(&self) {
        self.metrics.counter(PLACED, &[]).increment(1);
    }

    /// Counts `next` if this transition made the order terminal.
    pub fn transition(&self, before: OrderState, next: OrderState) {
        if !before.is_terminal() && next.is_terminal() {
            let status = next.status();
            self.metrics
                .counter(FINISHED, &[("status", status.as_str())])
                .increment(1);
        }
    }

    /// A charge's outcome: the event it led to, or `None` when the gateway did not answer.
    pub fn payment(&self, outcome: Option<&Event>) {
        let outcome = match outcome {
            Some(Event::ChargeSucceeded { .. }) => "approved",
            Some(Event::ChargeDeclined { .. }) => "declined",
            _ => "unknown",
        };
        self.metrics
            .counter(PAYMENTS, &[("outcome", outcome)])
            .increment(1);
    }
}
