//! The bundled simulated vendor: a small HTTP service that plays a snack bar's own system on
//! the other side of [`VendorClient`](crate::orders::vendor::VendorClient), so that the demo,
//! the tests and the benchmarks have a vendor that is slow, down or picky on demand. It runs
//! as `ballpark vendor` or in-process in `serve` (when `vendor_url` is unset).
//!
//! Its API (the vendor contract of [`crate::orders::vendor`], plus a control plane):
//!
//! | route | what |
//! | --- | --- |
//! | `POST /orders` | takes a [`VendorOrder`]: 202 `received` (or 200 `rejected` at once); 503 while down |
//! | `POST /orders/{id}/cancel` | stops the order's progression; see below |
//! | `GET /orders/{id}` | the order as the vendor sees it ([`SimOrderView`]) |
//! | `GET /stats` | counters ([`SimStats`]) |
//! | `GET`/`POST /control` | read or change the runtime settings ([`SimControl`], [`SimSettings`]) |
//!
//! Decisions a newcomer must know:
//! - **Idempotent by order id.** The first `POST /orders` for an id decides everything about it
//!   (received or rejected, and whether it will later be accepted), and a repeat gets the same
//!   answer without a second progression, even if the settings changed meanwhile.
//! - **Webhooks are delivered in order, with retries.** Each order has one task (tracked,
//!   cancellable) that sends `accepted` (or `rejected`), `preparing`, `ready`, `picked_up`; a
//!   webhook is retried with exponential backoff until a 2xx, because the ballpark server may
//!   be down for a while. After `webhook_max_attempts` it is given up with a log line and the
//!   order *moves on* to its next step: the kitchen does not stop cooking because a phone line
//!   is down, so a receiver must accept a later event without the one it missed.
//! - **Cancel is 200 for an unknown order**, and remembers it: the cancel job may run before
//!   its submit ever got through, and a late `POST /orders` for that id is then answered
//!   `rejected`. Cancelling a finished (`rejected`, `cancelled`) order is a 200 no-op;
//!   cancelling a `picked_up` one is 409 (too late, so `Refused`: retrying won't help).
//! - Orders are kept in memory for the life of the process; it is a simulation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::orders::vendor::{
    sign, SubmitReply, VendorOrder, VendorProgress, VendorWebhook, IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
};

/// Webhook requests in flight at once: a burst of orders must not open thousands of
/// connections to the ballpark server at the same moment.
const MAX_CONCURRENT_WEBHOOKS: usize = 64;

/// How long one webhook request may take before it counts as a failed attempt.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the simulated vendor does. The delays, the reject rate and the up/down switches can
/// also be changed while it runs, through [`SimVendorHandle`] or `POST /control`.
#[derive(Debug, Clone)]
pub struct SimVendorConfig {
    /// How long `POST /orders` takes to answer.
    pub response_delay: Duration,
    /// From receiving an order to its `accepted` (or `rejected`) webhook.
    pub accept_delay: Duration,
    /// Between the later webhooks: `accepted` → `preparing` → `ready` → `picked_up`.
    pub step_delay: Duration,
    /// The share of received orders later rejected by webhook, 0.0 to 1.0.
    pub reject_rate: f64,
    /// Key the webhooks are signed with; the ballpark server must have the same one.
    pub webhook_secret: Vec<u8>,
    /// Attempts per webhook before it is given up.
    pub webhook_max_attempts: u32,
    /// Wait after the first failed attempt; it doubles after each further one...
    pub webhook_backoff: Duration,
    /// ...up to this.
    pub webhook_max_backoff: Duration,
}

impl Default for SimVendorConfig {
    /// The defaults of [`Config`]'s `sim_vendor_*` settings; retries 20 times, 100 ms doubling
    /// to 5 s (about 80 s in all).
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

impl SimVendorConfig {
    /// The simulation `serve` runs in-process (and `ballpark vendor` runs by default).
    pub fn from_config(config: &Config) -> Self {
        Self {
            response_delay: Duration::from_millis(config.sim_vendor_response_delay_ms),
            accept_delay: Duration::from_millis(config.sim_vendor_accept_delay_ms),
            step_delay: Duration::from_millis(config.sim_vendor_step_delay_ms),
            reject_rate: config.sim_vendor_reject_rate,
            webhook_secret: config.vendor_webhook_secret.expose().as_bytes().to_vec(),
            webhook_max_attempts: 20,
            webhook_backoff: Duration::from_millis(100),
            webhook_max_backoff: Duration::from_secs(5),
        }
    }
}

/// The settings that can change while the vendor runs (`GET /control` shows them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimSettings {
    /// Answer 503 to `POST /orders` and `POST /orders/{id}/cancel`.
    pub down: bool,
    /// Reject every new order at once ("the stand is closed").
    pub closed: bool,
    pub reject_rate: f64,
    pub response_delay_ms: u64,
    pub accept_delay_ms: u64,
    pub step_delay_ms: u64,
}

/// A change of settings (`POST /control`): the fields given are set, the others kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimControl {
    pub down: Option<bool>,
    pub closed: Option<bool>,
    pub reject_rate: Option<f64>,
    pub response_delay_ms: Option<u64>,
    pub accept_delay_ms: Option<u64>,
    pub step_delay_ms: Option<u64>,
}

/// Counters since start (`GET /stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Distinct orders submitted (including those rejected at once).
    pub received: u64,
    /// Repeated submits of an order already known.
    pub duplicates: u64,
    /// Orders answered `rejected` by `POST /orders` itself.
    pub rejected_at_once: u64,
    /// Orders whose progression a cancel stopped (or that were cancelled before submit).
    pub cancelled: u64,
    /// Webhooks answered 2xx.
    pub webhooks_delivered: u64,
    /// Webhook attempts that failed (non-2xx, connection error, timeout).
    pub webhook_failed_attempts: u64,
    /// Webhooks given up after `webhook_max_attempts`.
    pub webhooks_abandoned: u64,
}

/// Where an order stands at the vendor: the last thing that *happened*, whether or not its
/// webhook got through (see [`SimOrderView::delivered`] for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOrderState {
    Received,
    Accepted,
    Rejected,
    Preparing,
    Ready,
    PickedUp,
    Cancelled,
}

impl From<VendorProgress> for SimOrderState {
    fn from(event: VendorProgress) -> Self {
        match event {
            VendorProgress::Accepted => Self::Accepted,
            VendorProgress::Rejected => Self::Rejected,
            VendorProgress::Preparing => Self::Preparing,
            VendorProgress::Ready => Self::Ready,
            VendorProgress::PickedUp => Self::PickedUp,
        }
    }
}

/// An order as the vendor sees it (`GET /orders/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimOrderView {
    pub order_id: String,
    /// `None` for an order rejected at once or cancelled before it was submitted.
    pub vendor_ref: Option<String>,
    pub state: SimOrderState,
    /// The webhooks the receiver acknowledged with a 2xx, in order.
    pub delivered: Vec<VendorProgress>,
}

/// What the vendor decided about a received order when it first saw it.
#[derive(Debug, Clone)]
enum Fate {
    Accept,
    Reject(String),
}

/// What is to happen to an order just received.
struct Progression {
    vendor_ref: String,
    fate: Fate,
    stop: CancellationToken,
}

struct SimOrder {
    /// The answer to `POST /orders`, repeated to duplicates.
    reply: SubmitReply,
    state: SimOrderState,
    delivered: Vec<VendorProgress>,
    /// Stops this order's progression (a child of the shutdown token).
    stop: CancellationToken,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    duplicates: AtomicU64,
    rejected_at_once: AtomicU64,
    cancelled: AtomicU64,
    webhooks_delivered: AtomicU64,
    webhook_failed_attempts: AtomicU64,
    webhooks_abandoned: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Retry {
    max_attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
}

struct Shared {
    settings: Mutex<SimSettings>,
    orders: Mutex<HashMap<String, SimOrder>>,
    counters: Counters,
    webhook_secret: Vec<u8>,
    retry: Retry,
    http: reqwest::Client,
    deliveries: Semaphore,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Runtime control and inspection of a running simulated vendor. Cheap to clone.
#[derive(Clone)]
pub struct SimVendorHandle {
    shared: Arc<Shared>,
}

impl SimVendorHandle {
    /// While down, `POST /orders` and cancels answer 503 (webhooks already under way go on).
    pub fn set_down(&self, down: bool) {
        self.settings_mut(|s| s.down = down);
    }

    /// While closed, new orders are rejected at once.
    pub fn set_closed(&self, closed: bool) {
        self.settings_mut(|s| s.closed = closed);
    }

    /// Applies to orders received from now on.
    ///
    /// # Panics
    /// If `rate` is not within 0.0..=1.0.
    pub fn set_reject_rate(&self, rate: f64) {
        assert!(
            (0.0..=1.0).contains(&rate),
            "reject rate {rate} is not within 0.0..=1.0"
        );
        self.settings_mut(|s| s.reject_rate = rate);
    }

    pub fn set_response_delay(&self, delay: Duration) {
        self.settings_mut(|s| s.response_delay_ms = millis(delay));
    }

    /// Applies to orders whose `accepted` is not yet sent.
    pub fn set_accept_delay(&self, delay: Duration) {
        self.settings_mut(|s| s.accept_delay_ms = millis(delay));
    }

    /// Applies to the next step of every order.
    pub fn set_step_delay(&self, delay: Duration) {
        self.settings_mut(|s| s.step_delay_ms = millis(delay));
    }

    /// Applies the fields given, after checking them all; nothing changes if one is invalid.
    pub fn apply(&self, control: &SimControl) -> Result<SimSettings, String> {
        if let Some(rate) = control.reject_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("rejectRate {rate} is not within 0.0..=1.0"));
            }
        }
        Ok(self.settings_mut(|s| {
            s.down = control.down.unwrap_or(s.down);
            s.closed = control.closed.unwrap_or(s.closed);
            s.reject_rate = control.reject_rate.unwrap_or(s.reject_rate);
            s.response_delay_ms = control.response_delay_ms.unwrap_or(s.response_delay_ms);
            s.accept_delay_ms = control.accept_delay_ms.unwrap_or(s.accept_delay_ms);
            s.step_delay_ms = control.step_delay_ms.unwrap_or(s.step_delay_ms);
        }))
    }

    pub fn settings(&self) -> SimSettings {
        self.shared.settings.lock().expect("settings lock").clone()
    }

    pub fn stats(&self) -> SimStats {
        let c = &self.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SimStats {
            received: read(&c.received),
            duplicates: read(&c.duplicates),
            rejected_at_once: read(&c.rejected_at_once),
            cancelled: read(&c.cancelled),
            webhooks_delivered: read(&c.webhooks_delivered),
            webhook_failed_attempts: read(&c.webhook_failed_attempts),
            webhooks_abandoned: read(&c.webhooks_abandoned),
        }
    }

    pub fn order(&self, order_id: &str) -> Option<SimOrderView> {
        let orders = self.shared.orders.lock().expect("orders lock");
        orders.get(order_id).map(|order| SimOrderView {
            order_id: order_id.to_string(),
            vendor_ref: match &order.reply {
                SubmitReply::Received { vendor_ref } => Some(vendor_ref.clone()),
                SubmitReply::Rejected { .. } => None,
            },
            state: order.state,
            delivered: order.delivered.clone(),
        })
    }

    fn settings_mut(&self, change: impl FnOnce(&mut SimSettings)) -> SimSettings {
        let mut settings = self.shared.settings.lock().expect("settings lock");
        change(&mut settings);
        settings.clone()
    }
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

/// A running simulated vendor.
pub struct SimVendor {
    addr: SocketAddr,
    handle: SimVendorHandle,
}

impl SimVendor {
    /// Serves on `listener` (bind port 0 for a free one) until `shutdown` is cancelled. The
    /// server and every order's webhook task are spawned on `tasks`, so the caller's
    /// `tasks.wait()` covers them.
    pub fn start(
        config: SimVendorConfig,
        listener: TcpListener,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> anyhow::Result<SimVendor> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&config.reject_rate),
            "reject rate {} is not within 0.0..=1.0",
            config.reject_rate
        );
        anyhow::ensure!(
            config.webhook_max_attempts >= 1,
            "webhook_max_attempts must be at least 1"
        );
        let addr = listener
            .local_addr()
            .context("while reading the simulated vendor's address")?;
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .context("while building the webhook HTTP client")?;
        let shared = Arc::new(Shared {
            settings: Mutex::new(SimSettings {
                down: false,
                closed: false,
                reject_rate: config.reject_rate,
                response_delay_ms: millis(config.response_delay),
                accept_delay_ms: millis(config.accept_delay),
                step_delay_ms: millis(config.step_delay),
            }),
            orders: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            webhook_secret: config.webhook_secret,
            retry: Retry {
                max_attempts: config.webhook_max_attempts,
                backoff: config.webhook_backoff,
                max_backoff: config.webhook_max_backoff,
            },
            http,
            deliveries: Semaphore::new(MAX_CONCURRENT_WEBHOOKS),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        });
        let handle = SimVendorHandle { shared };
        let app = router(handle.clone());
        tasks.spawn(async move {
            tracing::info!(%addr, "simulated vendor listening");
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            match served {
                Ok(()) => tracing::info!("simulated vendor stopped"),
                Err(err) => tracing::error!(error = %err, "simulated vendor failed"),
            }
        });
        Ok(SimVendor { addr, handle })
    }

    /// [`SimVendor::start`] on a fresh listener bound to `addr`.
    pub async fn bind(
        config: SimVendorConfig,
        addr: SocketAddr,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> anyhow::Result<SimVendor> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("while binding {addr} for the simulated vendor"))?;
        Self::start(config, listener, tasks, shutdown)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give [`HttpVendorClient`](crate::orders::vendor::HttpVendorClient).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn handle(&self) -> SimVendorHandle {
        self.handle.clone()
    }
}

fn router(sim: SimVendorHandle) -> Router {
    Router::new()
        .route("/orders", post(submit))
        .route("/orders/{id}", get(show_order))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/control", get(show_settings).post(control))
        .route("/stats", get(show_stats))
        .with_state(sim)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the vendor is down (simulated)",
    )
}

fn reply_response(reply: SubmitReply) -> Response {
    let status = match reply {
        SubmitReply::Received { .. } => StatusCode::ACCEPTED,
        SubmitReply::Rejected { .. } => StatusCode::OK,
    };
    (status, Json(reply)).into_response()
}

async fn submit(
    State(sim): State<SimVendorHandle>,
    headers: HeaderMap,
    Json(order): Json<VendorOrder>,
) -> Response {
    let settings = sim.settings();
    if settings.down {
        return unavailable();
    }
    if order.order_id.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "orderId must not be empty",
        );
    }
    if let Some(key) = headers.get(IDEMPOTENCY_HEADER) {
        if key.as_bytes() != order.order_id.as_bytes() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the Idempotency-Key header must be the orderId",
            );
        }
    }
    if !matches!(reqwest::Url::parse(&order.callback_url), Ok(url) if matches!(url.scheme(), "http" | "https"))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "callbackUrl must be an http(s) URL",
        );
    }
    let delay = Duration::from_millis(settings.response_delay_ms);
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = sim.shared.shutdown.cancelled() => return unavailable(),
        }
    }
    let (reply, progression) = sim.receive(&order);
    if let Some(progression) = progression {
        sim.shared
            .tasks
            .spawn(progress(sim.clone(), order, progression));
    }
    reply_response(reply)
}

impl SimVendorHandle {
    /// Records a submitted order, or finds it again. Returns the answer and, for an order seen
    /// for the first time and received, what is to happen to it.
    fn receive(&self, order: &VendorOrder) -> (SubmitReply, Option<Progression>) {
        let shared = &self.shared;
        let mut orders = shared.orders.lock().expect("orders lock");
        if let Some(known) = orders.get(&order.order_id) {
            bump(&shared.counters.duplicates);
            return (known.reply.clone(), None);
        }
        bump(&shared.counters.received);
        let settings = self.settings();
        let refusal = if settings.closed {
            Some("the stand is closed")
        } else if order.items.is_empty() || order.items.iter().any(|item| item.quantity <= 0) {
            Some("the order has nothing to make")
        } else {
            None
        };
        let stop = shared.shutdown.child_token();
        let (reply, state, progression) = match refusal {
            Some(reason) => {
                bump(&shared.counters.rejected_at_once);
                let reply = SubmitReply::Rejected {
                    reason: reason.into(),
                };
                (reply, SimOrderState::Rejected, None)
            }
            None => {
                let mut rng = rand::thread_rng();
                let fate = if rng.gen_bool(settings.reject_rate) {
                    const REASONS: [&str; 3] = [
                        "sold out",
                        "the kitchen is too busy",
                        "the stand is closing",
                    ];
                    Fate::Reject(REASONS[rng.gen_range(0..REASONS.len())].into())
                } else {
                    Fate::Accept
                };
                let vendor_ref =
                    format!("SIM-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let reply = SubmitReply::Received {
                    vendor_ref: vendor_ref.clone(),
                };
                let progression = Progression {
                    vendor_ref,
                    fate,
                    stop: stop.clone(),
                };
                (reply, SimOrderState::Received, Some(progression))
            }
        };
        orders.insert(
            order.order_id.clone(),
            SimOrder {
                reply: reply.clone(),
                state,
                delivered: Vec::new(),
                stop,
            },
        );
        (reply, progression)
    }

    /// Moves an order to `state` unless it was cancelled meanwhile (checked under the same
    /// lock the cancel takes, so a cancelled order never reports a later step).
    fn advance(&self, order_id: &str, state: SimOrderState) -> bool {
        let mut orders = self.shared.orders.lock().expect("orders lock");
        match orders.get_mut(order_id) {
            Some(order) if !order.stop.is_cancelled() => {
                order.state = state;
                true
            }
            _ => false,
        }
    }

    fn record_delivered(&self, order_id: &str, event: VendorProgress) {
        let mut orders = self.shared.orders.lock().expect("orders lock");
        if let Some(order) = orders.get_mut(order_id) {
            order.delivered.push(event);
        }
    }

    fn delay(&self, pick: impl FnOnce(&SimSettings) -> u64) -> Duration {
        Duration::from_millis(pick(&self.settings()))
    }
}

/// Sleeps unless `stop` comes first; `false` means stop.
async fn sleep_or_stop(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.cancelled() => false,
    }
}

/// One order's life after it was received: the decision, then the kitchen's steps, each
/// reported by a webhook delivered before the next step starts (so they arrive in order).
async fn progress(sim: SimVendorHandle, order: VendorOrder, progression: Progression) {
    let Progression {
        vendor_ref,
        fate,
        stop,
    } = progression;
    let steps: Vec<(VendorProgress, Option<String>)> = match fate {
        Fate::Reject(reason) => vec![(VendorProgress::Rejected, Some(reason))],
        Fate::Accept => vec![
            (VendorProgress::Accepted, None),
            (VendorProgress::Preparing, None),
            (VendorProgress::Ready, None),
            (VendorProgress::PickedUp, None),
        ],
    };
    for (index, (event, reason)) in steps.into_iter().enumerate() {
        let delay = if index == 0 {
            sim.delay(|s| s.accept_delay_ms)
        } else {
            sim.delay(|s| s.step_delay_ms)
        };
        if !sleep_or_stop(delay, &stop).await || !sim.advance(&order.order_id, event.into()) {
            return;
        }
        let webhook = VendorWebhook {
            order_id: order.order_id.clone(),
            vendor_ref: vendor_ref.clone(),
            event,
            reason,
            at: chrono::Utc::now(),
        };
        let body = Bytes::from(serde_json::to_vec(&webhook).expect("a webhook serializes"));
        match deliver(&sim, &order.callback_url, &webhook, body, &stop).await {
            Delivery::Delivered => sim.record_delivered(&order.order_id, event),
            Delivery::GaveUp => {}
            Delivery::Stopped => return,
        }
    }
}

enum Delivery {
    Delivered,
    GaveUp,
    Stopped,
}

/// Posts one signed webhook until the receiver answers 2xx, with exponential backoff between
/// attempts. Every non-2xx is retried: a receiver that refuses a webhook is as likely to be
/// mid-deploy as to be right.
async fn deliver(
    sim: &SimVendorHandle,
    url: &str,
    webhook: &VendorWebhook,
    body: Bytes,
    stop: &CancellationToken,
) -> Delivery {
    let shared = &sim.shared;
    let signature = sign(&shared.webhook_secret, &body);
    let mut backoff = shared.retry.backoff;
    for attempt in 1..=shared.retry.max_attempts {
        let request = shared
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .body(body.clone());
        let outcome = tokio::select! {
            outcome = async {
                let _permit = shared.deliveries.acquire().await.expect("the semaphore is never closed");
                request.send().await
            } => outcome,
            _ = stop.cancelled() => return Delivery::Stopped,
        };
        let failure = match outcome {
            Ok(response) if response.status().is_success() => {
                bump(&shared.counters.webhooks_delivered);
                return Delivery::Delivered;
            }
            Ok(response) => format!("answered {}", response.status()),
            Err(err) => err.to_string(),
        };
        bump(&shared.counters.webhook_failed_attempts);
        tracing::debug!(
            order_id = %webhook.order_id, event = ?webhook.event, attempt, %failure,
            "webhook not delivered"
        );
        if attempt == shared.retry.max_attempts {
            bump(&shared.counters.webhooks_abandoned);
            tracing::warn!(
                order_id = %webhook.order_id, event = ?webhook.event, attempts = attempt,
                %url, last_failure = %failure,
                "gave up delivering a webhook; the order moves on to its next step"
            );
            return Delivery::GaveUp;
        }
        if !sleep_or_stop(backoff, stop).await {
            return Delivery::Stopped;
        }
        backoff = (backoff * 2).min(shared.retry.max_backoff);
    }
    unreachable!("the loop returns on its last attempt")
}

async fn cancel(State(sim): State<SimVendorHandle>, Path(order_id): Path<String>) -> Response {
    if sim.settings().down {
        return unavailable();
    }
    let shared = &sim.shared;
    let mut orders = shared.orders.lock().expect("orders lock");
    let order = orders.entry(order_id.clone()).or_insert_with(|| {
        // Remembered so that a submit arriving after its own cancel is not made.
        let stop = CancellationToken::new();
        stop.cancel();
        bump(&shared.counters.cancelled);
        SimOrder {
            reply: SubmitReply::Rejected {
                reason: "the order was cancelled".into(),
            },
            state: SimOrderState::Cancelled,
            delivered: Vec::new(),
            stop,
        }
    });
    match order.state {
        SimOrderState::PickedUp => {
            return error(
                StatusCode::CONFLICT,
                "the order was already picked up; too late to cancel",
            );
        }
        SimOrderState::Rejected | SimOrderState::Cancelled => {}
        SimOrderState::Received
        | SimOrderState::Accepted
        | SimOrderState::Preparing
        | SimOrderState::Ready => {
            order.stop.cancel();
            order.state = SimOrderState::Cancelled;
            bump(&shared.counters.cancelled);
        }
    }
    let body = json!({ "orderId": order_id, "state": order.state });
    (StatusCode::OK, Json(body)).into_response()
}

async fn show_order(State(sim): State<SimVendorHandle>, Path(order_id): Path<String>) -> Response {
    match sim.order(&order_id) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such order"),
    }
}

async fn show_settings(State(sim): State<SimVendorHandle>) -> Json<SimSettings> {
    Json(sim.settings())
}

async fn control(State(sim): State<SimVendorHandle>, Json(change): Json<SimControl>) -> Response {
    match sim.apply(&change) {
        Ok(settings) => {
            tracing::info!(?settings, "simulated vendor settings changed");
            Json(settings).into_response()
        }
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

async fn show_stats(State(sim): State<SimVendorHandle>) -> Json<SimStats> {
    Json(sim.stats())
}
