//! Snack-bar orders and payment through the queue.
//!
//! A fan orders from a stadium store; the order must never wait for the store's own system
//! (the *vendor*, an outside party that may be slow or down), and money must never be lost or
//! taken twice. So:
//!
//! 1. `POST /api/orders` (with an `Idempotency-Key`) reserves stock and writes the order and
//!    its payment deadline job in one transaction, and answers 201 at once with what to pay
//!    ([`store::place`]).
//! 2. The fan pays right away (`POST /api/orders/{id}/payment`) through the
//!    [`payment::PaymentGateway`], with a key derived from the order, so no retry charges
//!    twice; an unknown outcome (timeout) is settled by a queued `payment.reconcile` job.
//!    An order not paid within the window is cancelled and its stock released.
//! 3. Only once it is paid does a worker hand the order to the vendor ([`jobs`],
//!    `order.hand_over`, queued by the transition to `paid`), retrying with backoff while it
//!    is down, so the kitchen never starts on an order that may still go unpaid; the vendor
//!    reports progress by signed webhook, which is queued (`order.vendor_event`) and applied
//!    by a worker.
//! 4. A rejection, or no acceptance within the deadline after the payment, cancels the order
//!    and a `payment.refund` job gives the money back (compensation).
//!
//! Every change of state goes through one function ([`store::apply_event`]) that runs the
//! explicit state machine of [`domain`] in a transaction with the history row, the books, the
//! stock and the follow-up jobs. Handlers of queued messages are idempotent because the state
//! machine treats a repeated or stale event as a no-op. Customers and store owners follow
//! changes live over server-sent events ([`live`]), opened with a login token or a
//! short-lived [`ticket`].

pub mod api;
pub mod checkout;
pub mod domain;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod payment;
pub mod store;
pub mod ticket;
pub mod vendor;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::db::Db;
use payment::{PaymentGateway, SimMode, SimulatedGateway};
use store::FollowUps;
use vendor::VendorClient;

// Job kinds of the orders queue.

/// The hand-over as queued at placing by earlier versions (before the vendor waited for
/// payment); still handled, by the same paid-only hand-over, so such jobs left in a queue at
/// an upgrade finish cleanly.
pub const PLACED_JOB: &str = "order.placed";
pub const VENDOR_EVENT_JOB: &str = "order.vendor_event";
pub const PAYMENT_DEADLINE_JOB: &str = "order.payment_deadline";
pub const RECONCILE_JOB: &str = "payment.reconcile";
pub use store::{HAND_OVER_JOB, REFUND_JOB, VENDOR_CANCEL_JOB, VENDOR_DEADLINE_JOB};

/// Every job kind the orders module handles.
pub const JOB_KINDS: [&str; 8] = [
    HAND_OVER_JOB,
    PLACED_JOB,
    VENDOR_EVENT_JOB,
    VENDOR_DEADLINE_JOB,
    PAYMENT_DEADLINE_JOB,
    RECONCILE_JOB,
    REFUND_JOB,
    VENDOR_CANCEL_JOB,
];

/// Timings and addresses the order flow needs.
#[derive(Debug, Clone)]
pub struct OrderSettings {
    pub queue: String,
    pub payment_timeout: Duration,
    pub payment_window: Duration,
    pub vendor_deadline: Duration,
    /// Where vendors post webhooks (`…/api/vendor/webhooks`).
    pub callback_url: String,
    pub webhook_secret: Vec<u8>,
}

/// The order flow's handles, shared by the HTTP handlers and the job handlers.
#[derive(Clone)]
pub struct Orders {
    pub db: Db,
    pub gateway: Arc<dyn PaymentGateway>,
    pub vendor: Arc<dyn VendorClient>,
    pub settings: Arc<OrderSettings>,
    pub live: live::LiveHub,
    /// Tickets that open the live streams without a login token in the URL.
    pub tickets: Arc<ticket::Tickets>,
}

impl Orders {
    /// The order flow as configured. `server_url` is where this server is reached (used for
    /// webhook callbacks when `public_url` is not set).
    pub fn new(
        db: &Db,
        config: &Config,
        vendor: Arc<dyn VendorClient>,
        server_url: &str,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Orders {
        let base = config.public_url.as_deref().unwrap_or(server_url);
        Orders {
            db: db.clone(),
            gateway: Self::simulated_gateway(db, config),
            vendor,
            settings: Arc::new(OrderSettings {
                queue: config.orders_queue.clone(),
                payment_timeout: Duration::from_millis(config.payment_timeout_ms),
                payment_window: Duration::from_secs(config.payment_window_secs),
                vendor_deadline: Duration::from_secs(config.vendor_accept_deadline_secs),
                callback_url: format!("{}/api/vendor/webhooks", base.trim_end_matches('/')),
                webhook_secret: config.vendor_webhook_secret.expose().as_bytes().to_vec(),
            }),
            live: live::LiveHub::new(shutdown),
            tickets: Arc::new(ticket::Tickets::new(config)),
        }
    }

    pub fn follow_ups(&self) -> FollowUps {
        FollowUps {
            queue: self.settings.queue.clone(),
            vendor_deadline: self.settings.vendor_deadline,
        }
    }

    /// The bundled simulated gateway as configured (`sim_payment_*`).
    pub fn simulated_gateway(db: &Db, config: &Config) -> Arc<dyn PaymentGateway> {
        let mode = SimMode::parse(&config.sim_payment_mode).unwrap_or(SimMode::Approve);
        Arc::new(SimulatedGateway::new(
            db.clone(),
            mode,
            Duration::from_millis(config.sim_payment_latency_ms),
        ))
    }
}
