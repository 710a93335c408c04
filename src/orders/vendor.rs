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
//!
//! The wire format of the vendor's API is [`HttpVendorClient`]'s side of it and
//! [`crate::vendor_sim`]'s; both use [`SubmitReply`], so they cannot drift apart. The client
//! classifies every failure as either worth retrying or not, because that is the only thing
//! the calling job needs to decide.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VendorProgress {
    Accepted,
    Rejected,
    Preparing,
    Ready,
    PickedUp,
}

/// The body of a webhook from a vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorWebhook {
    pub order_id: String,
    pub vendor_ref: String,
    pub event: VendorProgress,
    /// Why, for `rejected`.
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
}

/// The signature header of a webhook, as the document declares it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct SignatureHeader {
    /// `sha256=` and the hex HMAC-SHA256 of the body with the shared secret.
    #[param(rename = "x-vendor-signature", pattern = "^sha256=[0-9a-f]{64}$")]
    _signature: String,
}

#[async_trait::async_trait]
pub trait VendorClient: Send + Sync + 'static {
    async fn submit(&self, order: &VendorOrder) -> Result<VendorAnswer, VendorError>;
    /// Tells the vendor not to make (or to stop making) an order.
    async fn cancel(&self, order_id: &str) -> Result<(), VendorError>;
}

/// The header that makes `submit` and `cancel` idempotent: the order id.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

const SIGNATURE_PREFIX: &str = "sha256=";

/// The [`SIGNATURE_HEADER`] value for a webhook body: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Whether `header_value` is the signature of `body` under `secret`. The comparison is in
/// constant time, so a forger cannot learn the signature byte by byte from response times; a
/// malformed header is simply not a valid signature.
pub fn verify(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let Some(hex_digest) = header_value.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// The body of the vendor's answer to `POST /orders`: `202 {"status":"received","vendorRef":…}`
/// or `200 {"status":"rejected","reason":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SubmitReply {
    Received {
        #[serde(rename = "vendorRef")]
        vendor_ref: String,
    },
    Rejected {
        reason: String,
    },
}

impl From<SubmitReply> for VendorAnswer {
    fn from(reply: SubmitReply) -> Self {
        match reply {
            SubmitReply::Received { vendor_ref } => VendorAnswer::Received { vendor_ref },
            SubmitReply::Rejected { reason } => VendorAnswer::Rejected { reason },
        }
    }
}

/// [`VendorClient`] over the vendor's HTTP API:
///
/// - `POST {base_url}/orders` with the [`VendorOrder`] as JSON and `Idempotency-Key: <order id>`;
/// - `POST {base_url}/orders/{order id}/cancel`, with the same header.
///
/// Connection errors, timeouts, 5xx and bodies it cannot read are [`VendorError::Unavailable`]
/// (the job retries); any other 4xx is [`VendorError::Refused`].
#[derive(Debug, Clone)]
pub struct HttpVendorClient {
    http: reqwest::Client,
    base_url: Url,
    timeout: Duration,
}

impl HttpVendorClient {
    /// `base_url` is where the vendor's API lives (`http://127.0.0.1:8090`, or with a path
    /// prefix); `timeout` bounds each whole call, connecting included.
    pub fn new(base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base_url = parse_base_url(base_url)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|err| anyhow::anyhow!("while building the vendor HTTP client: {err}"))?;
        Ok(Self {
            http,
            base_url,
            timeout,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("parse_base_url only accepts http(s) URLs, which have paths")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends one request and sorts out the outcome: `Ok` with the body of a 2xx, or the error
    /// the job needs to decide whether to try again.
    async fn post(
        &self,
        url: Url,
        order_id: &str,
        json: Option<&VendorOrder>,
    ) -> Result<(StatusCode, axum::body::Bytes), VendorError> {
        let what = format!("POST {}", url.path());
        let mut request = self.http.post(url).header(IDEMPOTENCY_HEADER, order_id);
        if let Some(order) = json {
            request = request.json(order);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&what, &err))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&what, &err))?;
        if status.is_success() {
            Ok((status, body))
        } else if status.is_client_error() {
            Err(VendorError::Refused(format!(
                "{what} answered {status}: {}",
                snippet(&body)
            )))
        } else {
            Err(VendorError::Unavailable(format!(
                "{what} answered {status}: {}",
                snippet(&body)
            )))
        }
    }

    fn transport_error(&self, what: &str, err: &reqwest::Error) -> VendorError {
        if err.is_timeout() {
            VendorError::Unavailable(format!(
                "{what} got no answer within {} ms",
                self.timeout.as_millis()
            ))
        } else {
            VendorError::Unavailable(format!("{what} failed: {}", error_chain(err)))
        }
    }
}

#[async_trait::async_trait]
impl VendorClient for HttpVendorClient {
    async fn submit(&self, order: &VendorOrder) -> Result<VendorAnswer, VendorError> {
        let url = self.url(&["orders"]);
        let (status, body) = self.post(url, &order.order_id, Some(order)).await?;
        match serde_json::from_slice::<SubmitReply>(&body) {
            Ok(reply) => Ok(reply.into()),
            Err(err) => Err(VendorError::Unavailable(format!(
                "POST /orders answered {status} with a body that is not a received/rejected answer ({err}): {}",
                snippet(&body)
            ))),
        }
    }

    async fn cancel(&self, order_id: &str) -> Result<(), VendorError> {
        let url = self.url(&["orders", order_id, "cancel"]);
        self.post(url, order_id, None).await.map(|_| ())
    }
}

/// The vendor `serve` talks to, as configured.
pub struct VendorConnection {
    pub client: std::sync::Arc<dyn VendorClient>,
    /// The in-process simulation, when `vendor_url` is unset: its address, and the handle to
    /// steer it (demo, tests).
    pub simulated: Option<crate::vendor_sim::SimVendor>,
}

/// Connects to `config.vendor_url`, or, when it is unset, starts the simulated vendor on a
/// free local port (spawned on `tasks`, stopped by `shutdown`) and connects to that. Either
/// way the orders core talks HTTP to it through [`HttpVendorClient`], so the in-process demo
/// exercises the same code path as a real vendor.
pub async fn connect(
    config: &crate::config::Config,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<VendorConnection> {
    let timeout = Duration::from_millis(config.vendor_timeout_ms);
    let (base_url, simulated) = match &config.vendor_url {
        Some(url) => (url.clone(), None),
        None => {
            use crate::vendor_sim::{SimVendor, SimVendorConfig};
            let sim = SimVendor::bind(
                SimVendorConfig::from_config(config),
                ([127, 0, 0, 1], 0).into(),
                tasks,
                shutdown,
            )
            .await?;
            if config.env == crate::config::Environment::Production {
                tracing::warn!(
                    url = %sim.url(),
                    "no vendor_url in production: orders go to the SIMULATED vendor"
                );
            } else {
                tracing::info!(url = %sim.url(), "no vendor_url: using the simulated vendor");
            }
            (sim.url(), Some(sim))
        }
    };
    let client = HttpVendorClient::new(&base_url, timeout)?;
    Ok(VendorConnection {
        client: std::sync::Arc::new(client),
        simulated,
    })
}

fn parse_base_url(base_url: &str) -> anyhow::Result<Url> {
    let url = Url::parse(base_url)
        .map_err(|err| anyhow::anyhow!("vendor URL {base_url:?} is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("vendor URL {base_url:?} must be http:// or https://");
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        anyhow::bail!("vendor URL {base_url:?} has no host");
    }
    Ok(url)
}

/// The start of a response body, for error messages (vendors' error pages can be long).
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// reqwest's `Display` stops at "error sending request"; the reason (connection refused, DNS)
/// is further down the chain.
fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"shared-webhook-secret";
    const BODY: &[u8] = br#"{"orderId":"o-1","event":"ready"}"#;

    #[test]
    fn a_signed_body_verifies_with_the_same_secret() {
        let signature = sign(SECRET, BODY);

        assert!(signature.starts_with("sha256="));
        assert_eq!(signature.len(), "sha256=".len() + 64);
        assert!(verify(SECRET, BODY, &signature));
    }

    #[test]
    fn the_signature_matches_a_known_hmac_sha256_vector() {
        // RFC 4231, test case 2.
        let signature = sign(b"Jefe", b"what do ya want for nothing?");

        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_tampered_body_does_not_verify() {
        let signature = sign(SECRET, BODY);
        let tampered = br#"{"orderId":"o-1","event":"picked_up"}"#;

        assert!(!verify(SECRET, tampered, &signature));
    }

    #[test]
    fn a_signature_made_with_another_secret_does_not_verify() {
        let signature = sign(b"someone-elses-secret", BODY);

        assert!(!verify(SECRET, BODY, &signature));
    }

    #[test]
    fn malformed_signature_headers_do_not_verify() {
        let good = sign(SECRET, BODY);
        let hex_only = good.trim_start_matches("sha256=").to_string();
        let truncated = good[..good.len() - 2].to_string();
        let not_hex = format!("sha256={}", "zz".repeat(32));
        let other_algorithm = good.replace("sha256=", "sha1=");

        for header in [
            "",
            "sha256=",
            &hex_only,
            &truncated,
            &not_hex,
            &other_algorithm,
        ] {
            assert!(!verify(SECRET, BODY, header), "{header:?} verified");
        }
    }

    #[test]
    fn submit_replies_use_the_documented_json() {
        let received: SubmitReply =
            serde_json::from_str(r#"{"status":"received","vendorRef":"V-1"}"#).unwrap();
        let rejected = SubmitReply::Rejected {
            reason: "sold out".into(),
        };

        assert_eq!(
            received,
            SubmitReply::Received {
                vendor_ref: "V-1".into()
            }
        );
        assert_eq!(
            serde_json::to_value(&rejected).unwrap(),
            serde_json::json!({"status": "rejected", "reason": "sold out"})
        );
    }

    #[test]
    fn paths_are_appended_to_the_base_url_with_the_order_id_escaped() {
        let client =
            HttpVendorClient::new("http://vendor.example/api/", Duration::from_secs(1)).unwrap();

        assert_eq!(
            client.url(&["orders", "a/b c", "cancel"]).as_str(),
            "http://vendor.example/api/orders/a%2Fb%20c/cancel"
        );
    }

    #[test]
    fn base_urls_that_are_not_http_are_refused() {
        for url in ["vendor.example", "ftp://vendor.example", "mailto:x@y.z"] {
            assert!(
                HttpVendorClient::new(url, Duration::from_secs(1)).is_err(),
                "{url}"
            );
        }
    }
}
