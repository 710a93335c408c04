//! The snack bars' own systems ("vendors"), an outside party: the [`VendorClient`] trait the
//! order jobs call, its HTTP implementation, and the signed webhooks vendors send back.
//!
//! CONTRACT (agreed between the orders core and the vendor work; keep these names):
//! - `submit` hands an order over. The vendor answers that it *received* it (or refuses it at
//!   once); the decision (`accepted` / `rejected`) and progress (`preparing`, `ready`,
//!   `picked_up`) come later, by webhook to `VendorOrder::callback_url`.
//! - `submit` and `cancel` are idempotent on the vendor's side by `order_id` (sent as the
//!   `Idempotency-Key` header), because the job that calls them runs at least once.
//! - `VendorError::Unavailable` (connection refused, timeout, 5xx) is retried by the job with
//!   backoff; `VendorError::Refused` (4xx) is not.
//! - Webhook bodies are signed: header [`SIGNATURE_HEADER`] = `sha256=<hex HMAC-SHA256 of the
//!   raw body with the shared secret>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The header carrying a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "x-vendor-signature";

/// An order as the vendor needs it: what to make, and where to report progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorOrder {
    pub order_id: String,
    pub store_id: i64,
    pub items: Vec<VendorItem>,
    /// Where the vendor posts [`VendorWebhook`]s.
    pub callback_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorItem {
    pub name: String,
    pub quantity: i64,
}

/// The vendor's answer to `submit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorAnswer {
    /// Received; the decision follows by webhook.
    Received { vendor_ref: String },
    /// Refused at once (closed, unknown items...).
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    /// Down, slow or failing: try again later.
    #[error("the vendor is unavailable: {0}")]
    Unavailable(String),
    /// The vendor refused the request itself (4xx): retrying will not help.
    #[error("the vendor refused the request: {0}")]
    Refused(String),
}

/// What a vendor reports about an order, in the order it normally happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorProgress {
    Accepted,
    Rejected,
    Preparing,
    Ready,
    PickedUp,
}

/// The body of a webhook from a vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorWebhook {
    pub order_id: String,
    pub vendor_ref: String,
    pub event: VendorProgress,
    /// Why, for `rejected`.
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait VendorClient: Send + Sync + 'static {
    async fn submit(&self, order: &VendorOrder) -> Result<VendorAnswer, VendorError>;
    /// Tells the vendor not to make (or to stop making) an order.
    async fn cancel(&self, order_id: &str) -> Result<(), VendorError>;
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The [`SIGNATURE_HEADER`] value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is a valid signature of `body` (compared in constant time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    use hmac::Mac;
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(signature) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// The vendor client as configured. TEMPORARY until the HTTP client and the simulated vendor
/// land: every hand-over fails as unavailable.
pub async fn client_for(
    _config: &crate::config::Config,
    _tasks: &tokio_util::task::TaskTracker,
    _shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<std::sync::Arc<dyn VendorClient>> {
    struct Nowhere;
    #[async_trait::async_trait]
    impl VendorClient for Nowhere {
        async fn submit(&self, _: &VendorOrder) -> Result<VendorAnswer, VendorError> {
            Err(VendorError::Unavailable("no vendor configured yet".into()))
        }
        async fn cancel(&self, _: &str) -> Result<(), VendorError> {
            Err(VendorError::Unavailable("no vendor configured yet".into()))
        }
    }
    Ok(std::sync::Arc::new(Nowhere))
}
