//! The payment gateway, an outside party: the [`PaymentGateway`] trait the orders code charges
//! and refunds through, and the bundled [`SimulatedGateway`] used in tests and the demo.
//!
//! ## Never twice
//! Every call carries an idempotency key derived from the order (`order-<id>-charge`,
//! `order-<id>-refund`), and a gateway must answer a repeated key with the first outcome
//! instead of moving money again (real gateways do: Stripe, Toss Payments, Adyen). That is
//! what makes retries safe: a request whose answer was lost (timeout, crash) is simply sent
//! again, by the customer or by the `payment.reconcile` job, and learns what happened.
//!
//! ## The simulation
//! [`SimulatedGateway`] keeps its books in the table `sim_gateway_transactions`, written
//! outside the app's transactions (as an outside party's records would be), so tests can check
//! that the books balance even across killed processes. Its [`SimMode`] makes it approve,
//! decline, lose the answer to a first attempt after taking the money (`timeout`), or refuse
//! connections (`unavailable`).

use std::time::Duration;

use crate::db::{now, Db};
use crate::on_write;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub idempotency_key: String,
    pub order_id: String,
    pub amount_won: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved { reference: String },
    Declined { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub idempotency_key: String,
    pub order_id: String,
    pub charge_reference: String,
    pub amount_won: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No answer in time: the outcome is unknown, ask again with the same key.
    #[error("the payment gateway did not answer in time")]
    Timeout,
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError>;
    /// Returns the refund's reference.
    async fn refund(&self, request: &RefundRequest) -> Result<String, GatewayError>;
}

/// The idempotency keys the orders code uses.
pub fn charge_key(order_id: &str) -> String {
    format!("order-{order_id}-charge")
}

pub fn refund_key(order_id: &str) -> String {
    format!("order-{order_id}-refund")
}

/// How the simulated gateway behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimMode {
    Approve,
    Decline,
    /// Takes the money on the first attempt for a key, then never answers it; later
    /// attempts with the key get the recorded outcome at once.
    Timeout,
    Unavailable,
}

impl SimMode {
    pub fn parse(text: &str) -> Option<SimMode> {
        Some(match text {
            "approve" => SimMode::Approve,
            "decline" => SimMode::Decline,
            "timeout" => SimMode::Timeout,
            "unavailable" => SimMode::Unavailable,
            _ => return None,
        })
    }
}

/// The bundled simulated gateway (see the module notes).
#[derive(Clone)]
pub struct SimulatedGateway {
    db: Db,
    mode: SimMode,
    latency: Duration,
}

impl SimulatedGateway {
    pub fn new(db: Db, mode: SimMode, latency: Duration) -> Self {
        SimulatedGateway { db, mode, latency }
    }

    /// Records the outcome for `key` unless one exists; returns the outcome on record and
    /// whether this call created it.
    async fn record(
        &self,
        key: &str,
        kind: &str,
        order_id: &str,
        amount_won: i64,
        outcome: &str,
    ) -> Result<(String, String, bool), GatewayError> {
        let reference = format!(
            "sim_{}_{}",
            if kind == "charge" { "ch" } else { "rf" },
            uuid::Uuid::now_v7().simple()
        );
        let unavailable = |e: sqlx::Error| GatewayError::Unavailable(e.to_string());
        let inserted = on_write!(&self.db, pool => sqlx::query(
            "INSERT INTO sim_gateway_transactions \
               (idempotency_key, kind, reference, order_id, amount_won, outcome, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING")
            .bind(key).bind(kind).bind(&reference).bind(order_id).bind(amount_won)
            .bind(outcome).bind(now())
            .execute(pool).await.map_err(unavailable)?.rows_affected())
            == 1;
        let (reference, outcome): (String, String) = on_write!(&self.db, pool => sqlx::query_as(
            "SELECT reference, outcome FROM sim_gateway_transactions WHERE idempotency_key = $1")
            .bind(key)
            .fetch_one(pool).await.map_err(unavailable)?);
        Ok((reference, outcome, inserted))
    }
}

const DECLINED: &str = "card declined (simulated)";

#[async_trait::async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        tokio::time::sleep(self.latency).await;
        let outcome = match self.mode {
            SimMode::Unavailable => {
                return Err(GatewayError::Unavailable(
                    "connection refused (simulated)".into(),
                ))
            }
            SimMode::Decline => "declined",
            SimMode::Approve | SimMode::Timeout => "approved",
        };
        let (reference, outcome, first) = self
            .record(
                &request.idempotency_key,
                "charge",
                &request.order_id,
                request.amount_won,
                outcome,
            )
            .await?;
        if first && self.mode == SimMode::Timeout {
            // The money is taken, but the answer never comes back.
            std::future::pending::<()>().await;
        }
        Ok(match outcome.as_str() {
            "approved" => ChargeOutcome::Approved { reference },
            _ => ChargeOutcome::Declined {
                reason: DECLINED.into(),
            },
        })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<String, GatewayError> {
        tokio::time::sleep(self.latency).await;
        if self.mode == SimMode::Unavailable {
            return Err(GatewayError::Unavailable(
                "connection refused (simulated)".into(),
            ));
        }
        let (reference, _, _) = self
            .record(
                &request.idempotency_key,
                "refund",
                &request.order_id,
                request.amount_won,
                "approved",
            )
            .await?;
        Ok(reference)
    }
}
