//! The simulated vendor and the HTTP vendor client, against each other: what the orders core
//! can rely on from both sides of the vendor contract. No database; each test runs its own
//! vendor on port 0 and a small webhook receiver standing in for the ballpark server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use ballpark::orders::vendor::{
    verify, HttpVendorClient, VendorAnswer, VendorClient, VendorError, VendorItem, VendorOrder,
    VendorProgress, VendorWebhook, SIGNATURE_HEADER,
};
use ballpark::vendor_sim::{
    SimOrderState, SimOrderView, SimVendor, SimVendorConfig, SimVendorHandle,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SECRET: &[u8] = b"test-webhook-secret";

/// Long enough for a webhook on a loaded 2-core machine, short enough to fail fast.
const PATIENCE: Duration = Duration::from_secs(5);

/// A webhook as the receiver got it.
struct Received {
    webhook: VendorWebhook,
    signature_valid: bool,
}

#[derive(Clone)]
struct ReceiverState {
    sender: mpsc::UnboundedSender<Received>,
    /// Requests still to be answered 500 before the receiver starts accepting.
    failures_left: Arc<AtomicUsize>,
}

/// The ballpark side of the webhooks: verifies each signature and passes accepted webhooks on
/// to the test, in arrival order.
struct Receiver {
    url: String,
    webhooks: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.webhooks.recv())
            .await
            .expect("a webhook arrives in time")
            .expect("the receiver is running")
    }

    /// The events of the next `n` webhooks, checking that each is validly signed and about
    /// `order_id`.
    async fn events(&mut self, order_id: &str, n: usize) -> Vec<VendorProgress> {
        let mut events = Vec::new();
        for _ in 0..n {
            let received = self.next().await;
            assert!(
                received.signature_valid,
                "bad signature on {:?}",
                received.webhook
            );
            assert_eq!(received.webhook.order_id, order_id);
            events.push(received.webhook.event);
        }
        events
    }

    async fn assert_quiet_for(&mut self, period: Duration) {
        if let Ok(Some(extra)) = tokio::time::timeout(period, self.webhooks.recv()).await {
            panic!("unexpected webhook {:?}", extra.webhook);
        }
    }
}

async fn receive_webhook(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let take_failure =
        state
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            });
    if take_failure.is_ok() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let webhook: VendorWebhook = serde_json::from_slice(&body).expect("a webhook body");
    let signature_valid = verify(SECRET, &body, signature);
    let _ = state.sender.send(Received {
        webhook,
        signature_valid,
    });
    StatusCode::NO_CONTENT
}

/// A vendor, a receiver and a client, all stopped when the test ends.
struct World {
    vendor: SimVendorHandle,
    vendor_url: String,
    client: HttpVendorClient,
    receiver: Receiver,
    shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    fn order(&self, order_id: &str) -> VendorOrder {
        VendorOrder {
            order_id: order_id.into(),
            store_id: 7,
            items: vec![VendorItem {
                name: "Jamsil hot dog".into(),
                quantity: 2,
            }],
            callback_url: self.receiver.url.clone(),
        }
    }

    fn state_of(&self, order_id: &str) -> SimOrderState {
        self.vendor
            .order(order_id)
            .expect("the vendor knows it")
            .state
    }

    /// Waits until the vendor has seen `n` webhooks of `order_id` acknowledged: the receiver
    /// passes a webhook on before its answer reaches the vendor.
    async fn acknowledged(&self, order_id: &str, n: usize) -> SimOrderView {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.vendor.order(order_id).expect("the vendor knows it");
            if seen.delivered.len() >= n {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the vendor saw only {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Tens of milliseconds between steps, so that a whole progression takes a fraction of a second.
fn quick_config() -> SimVendorConfig {
    SimVendorConfig {
        response_delay: Duration::ZERO,
        accept_delay: Duration::from_millis(20),
        step_delay: Duration::from_millis(20),
        reject_rate: 0.0,
        webhook_secret: SECRET.to_vec(),
        webhook_max_attempts: 5,
        webhook_backoff: Duration::from_millis(10),
        webhook_max_backoff: Duration::from_millis(40),
    }
}

async fn world(config: SimVendorConfig) -> World {
    world_with(config, 0, Duration::from_secs(2)).await
}

async fn world_with(
    config: SimVendorConfig,
    receiver_failures: usize,
    client_timeout: Duration,
) -> World {
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();

    let (sender, webhooks) = mpsc::unbounded_channel();
    let state = ReceiverState {
        sender,
        failures_left: Arc::new(AtomicUsize::new(receiver_failures)),
    };
    let app = Router::new()
        .route("/api/vendor/webhooks", post(receive_webhook))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_addr = listener.local_addr().unwrap();
    let token = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
    });

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vendor = SimVendor::start(config, listener, &tasks, shutdown.clone()).unwrap();
    let client = HttpVendorClient::new(&vendor.url(), client_timeout).unwrap();
    World {
        vendor: vendor.handle(),
        vendor_url: vendor.url(),
        client,
        receiver: Receiver {
            url: format!("http://{receiver_addr}/api/vendor/webhooks"),
            webhooks,
        },
        shutdown,
    }
}

fn vendor_ref(answer: VendorAnswer) -> String {
    match answer {
        VendorAnswer::Received { vendor_ref } => vendor_ref,
        other => panic!("expected the order to be received, got {other:?}"),
    }
}

const FULL_PROGRESSION: [VendorProgress; 4] = [
    VendorProgress::Accepted,
    VendorProgress::Preparing,
    VendorProgress::Ready,
    VendorProgress::PickedUp,
];

#[tokio::test]
async fn a_submitted_order_is_received_then_reported_accepted_preparing_ready_picked_up_with_valid_signatures(
) {
    let mut world = world(quick_config()).await;
    let order = world.order("order-1");

    let answer = world.client.submit(&order).await.unwrap();
    let events = world.receiver.events("order-1", 4).await;

    let seen = world.acknowledged("order-1", 4).await;

    let vendor_ref = vendor_ref(answer);
    assert!(vendor_ref.starts_with("SIM-"), "{vendor_ref}");
    assert_eq!(events, FULL_PROGRESSION);
    assert_eq!(seen.vendor_ref.as_deref(), Some(vendor_ref.as_str()));
    assert_eq!(seen.state, SimOrderState::PickedUp);
    assert_eq!(seen.delivered, FULL_PROGRESSION);
    assert_eq!(world.vendor.stats().webhooks_delivered, 4);
}

#[tokio::test]
async fn every_webhook_carries_the_vendor_ref_and_no_reason_when_accepted() {
    let mut world = world(quick_config()).await;
    let order = world.order("order-1");

    let vendor_ref = vendor_ref(world.client.submit(&order).await.unwrap());
    let mut webhooks = Vec::new();
    for _ in 0..4 {
        webhooks.push(world.receiver.next().await.webhook);
    }

    for webhook in &webhooks {
        assert_eq!(webhook.vendor_ref, vendor_ref);
        assert_eq!(webhook.reason, None);
    }
    assert!(webhooks.windows(2).all(|pair| pair[0].at <= pair[1].at));
}

#[tokio::test]
async fn a_repeated_submit_returns_the_same_vendor_ref_and_starts_no_second_progression() {
    let mut world = world(quick_config()).await;
    let order = world.order("order-1");

    let first = world.client.submit(&order).await.unwrap();
    let second = world.client.submit(&order).await.unwrap();
    let events = world.receiver.events("order-1", 4).await;
    world
        .receiver
        .assert_quiet_for(Duration::from_millis(300))
        .await;

    assert_eq!(first, second);
    assert_eq!(events, FULL_PROGRESSION);
    let stats = world.vendor.stats();
    assert_eq!((stats.received, stats.duplicates), (1, 1));
}

#[tokio::test]
async fn a_repeated_submit_keeps_the_first_answer_even_after_the_settings_change() {
    let mut world = world(quick_config()).await;
    let order = world.order("order-1");

    let first = world.client.submit(&order).await.unwrap();
    world.vendor.set_closed(true);
    world.vendor.set_reject_rate(1.0);
    let second = world.client.submit(&order).await.unwrap();
    let events = world.receiver.events("order-1", 4).await;

    assert_eq!(first, second);
    assert_eq!(events, FULL_PROGRESSION);
}

#[tokio::test]
async fn a_vendor_that_is_down_is_unavailable_until_it_comes_back() {
    let mut world = world(quick_config()).await;
    let order = world.order("order-1");

    world.vendor.set_down(true);
    let while_down = world.client.submit(&order).await;
    world.vendor.set_down(false);
    let after = world.client.submit(&order).await;

    assert!(
        matches!(&while_down, Err(VendorError::Unavailable(msg)) if msg.contains("503")),
        "{while_down:?}"
    );
    vendor_ref(after.unwrap());
    assert_eq!(world.receiver.events("order-1", 4).await, FULL_PROGRESSION);
}

#[tokio::test]
async fn the_vendor_can_be_taken_down_over_http_by_another_process() {
    let world = world(quick_config()).await;
    let http = reqwest::Client::new();
    let control = format!("{}/control", world.vendor_url);

    let settings: serde_json::Value = http
        .post(&control)
        .json(&serde_json::json!({"down": true, "responseDelayMs": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let while_down = world.client.submit(&world.order("order-1")).await;
    let bad_rate = http
        .post(&control)
        .json(&serde_json::json!({"rejectRate": 1.5}))
        .send()
        .await
        .unwrap()
        .status();

    assert_eq!(settings["down"], true);
    assert_eq!(settings["responseDelayMs"], 5);
    assert!(matches!(while_down, Err(VendorError::Unavailable(_))));
    assert_eq!(bad_rate, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(world.vendor.settings().reject_rate, 0.0);
}

#[tokio::test]
async fn with_a_reject_rate_of_one_the_order_is_rejected_by_webhook_with_a_reason() {
    let mut world = world(SimVendorConfig {
        reject_rate: 1.0,
        ..quick_config()
    })
    .await;
    let order = world.order("order-1");

    let answer = world.client.submit(&order).await.unwrap();
    let rejection = world.receiver.next().await;
    world
        .receiver
        .assert_quiet_for(Duration::from_millis(200))
        .await;

    vendor_ref(answer);
    assert!(rejection.signature_valid);
    assert_eq!(rejection.webhook.event, VendorProgress::Rejected);
    let reason = rejection.webhook.reason.expect("a rejection has a reason");
    assert!(!reason.is_empty());
    assert_eq!(world.state_of("order-1"), SimOrderState::Rejected);
}

#[tokio::test]
async fn a_closed_stand_rejects_orders_at_once_without_webhooks() {
    let mut world = world(quick_config()).await;
    world.vendor.set_closed(true);

    let answer = world.client.submit(&world.order("order-1")).await.unwrap();
    world
        .receiver
        .assert_quiet_for(Duration::from_millis(150))
        .await;

    assert!(
        matches!(&answer, VendorAnswer::Rejected { reason } if reason.contains("closed")),
        "{answer:?}"
    );
    assert_eq!(world.vendor.stats().rejected_at_once, 1);
}

#[tokio::test]
async fn cancelling_an_order_stops_its_progression() {
    let mut world = world(SimVendorConfig {
        step_delay: Duration::from_millis(150),
        ..quick_config()
    })
    .await;
    world.client.submit(&world.order("order-1")).await.unwrap();
    assert_eq!(
        world.receiver.events("order-1", 1).await,
        [VendorProgress::Accepted]
    );

    world.client.cancel("order-1").await.unwrap();
    world.client.cancel("order-1").await.unwrap();
    world
        .receiver
        .assert_quiet_for(Duration::from_millis(500))
        .await;

    let seen = world.vendor.order("order-1").unwrap();
    assert_eq!(seen.state, SimOrderState::Cancelled);
    assert_eq!(seen.delivered, [VendorProgress::Accepted]);
    assert_eq!(world.vendor.stats().cancelled, 1);
}

#[tokio::test]
async fn cancelling_an_unknown_order_succeeds_and_a_later_submit_of_it_is_rejected() {
    let mut world = world(quick_config()).await;

    world.client.cancel("order-1").await.unwrap();
    let late_submit = world.client.submit(&world.order("order-1")).await.unwrap();
    world
        .receiver
        .assert_quiet_for(Duration::from_millis(150))
        .await;

    assert!(
        matches!(late_submit, VendorAnswer::Rejected { .. }),
        "{late_submit:?}"
    );
    assert_eq!(world.state_of("order-1"), SimOrderState::Cancelled);
}

#[tokio::test]
async fn cancelling_an_order_already_picked_up_is_refused() {
    let mut world = world(quick_config()).await;
    world.client.submit(&world.order("order-1")).await.unwrap();
    world.receiver.events("order-1", 4).await;
    world.acknowledged("order-1", 4).await;

    let cancel = world.client.cancel("order-1").await;

    assert!(
        matches!(&cancel, Err(VendorError::Refused(msg)) if msg.contains("409")),
        "{cancel:?}"
    );
    assert_eq!(world.state_of("order-1"), SimOrderState::PickedUp);
}

#[tokio::test]
async fn a_receiver_that_fails_twice_still_gets_every_webhook_in_order() {
    let mut world = world_with(quick_config(), 2, Duration::from_secs(2)).await;

    world.client.submit(&world.order("order-1")).await.unwrap();
    let events = world.receiver.events("order-1", 4).await;
    world.acknowledged("order-1", 4).await;

    assert_eq!(events, FULL_PROGRESSION);
    let stats = world.vendor.stats();
    assert_eq!(stats.webhook_failed_attempts, 2);
    assert_eq!(stats.webhooks_delivered, 4);
    assert_eq!(stats.webhooks_abandoned, 0);
}

#[tokio::test]
async fn a_webhook_that_never_gets_through_is_given_up_and_the_order_moves_on() {
    let config = SimVendorConfig {
        webhook_max_attempts: 3,
        ..quick_config()
    };
    // Exactly the three attempts at `accepted` fail.
    let mut world = world_with(config, 3, Duration::from_secs(2)).await;

    world.client.submit(&world.order("order-1")).await.unwrap();
    let events = world.receiver.events("order-1", 3).await;
    world.acknowledged("order-1", 3).await;

    assert_eq!(
        events,
        [
            VendorProgress::Preparing,
            VendorProgress::Ready,
            VendorProgress::PickedUp
        ]
    );
    let stats = world.vendor.stats();
    assert_eq!(stats.webhooks_abandoned, 1);
    assert_eq!(stats.webhook_failed_attempts, 3);
}

#[tokio::test]
async fn a_vendor_slower_than_the_client_timeout_is_unavailable() {
    let world = world_with(
        SimVendorConfig {
            response_delay: Duration::from_millis(600),
            ..quick_config()
        },
        0,
        Duration::from_millis(100),
    )
    .await;

    let answer = world.client.submit(&world.order("order-1")).await;

    assert!(
        matches!(&answer, Err(VendorError::Unavailable(msg)) if msg.contains("100 ms")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_vendor_that_is_not_listening_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let client = HttpVendorClient::new(&format!("http://{addr}"), Duration::from_secs(2)).unwrap();

    let submit = client
        .submit(&VendorOrder {
            order_id: "order-1".into(),
            store_id: 7,
            items: vec![],
            callback_url: "http://127.0.0.1:9/".into(),
        })
        .await;
    let cancel = client.cancel("order-1").await;

    assert!(
        matches!(submit, Err(VendorError::Unavailable(_))),
        "{submit:?}"
    );
    assert!(
        matches!(cancel, Err(VendorError::Unavailable(_))),
        "{cancel:?}"
    );
}

#[tokio::test]
async fn an_order_the_vendor_cannot_read_is_refused() {
    let world = world(quick_config()).await;
    let mut order = world.order("order-1");
    order.callback_url = "not a url".into();

    let answer = world.client.submit(&order).await;

    assert!(
        matches!(&answer, Err(VendorError::Refused(msg)) if msg.contains("422")),
        "{answer:?}"
    );
}

/// A server at the vendor's address answering every request with `status` and `body`.
async fn impostor(status: StatusCode, body: &'static str) -> (String, CancellationToken) {
    let app = Router::new().fallback(move || async move { (status, body) });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
    });
    (url, shutdown)
}

#[tokio::test]
async fn an_answer_that_is_not_received_or_rejected_is_unavailable_with_the_body_quoted() {
    let (url, shutdown) = impostor(StatusCode::OK, "<html>welcome to nginx</html>").await;
    let client = HttpVendorClient::new(&url, Duration::from_secs(2)).unwrap();
    let order = VendorOrder {
        order_id: "order-1".into(),
        store_id: 7,
        items: vec![],
        callback_url: "http://127.0.0.1:9/".into(),
    };

    let answer = client.submit(&order).await;
    shutdown.cancel();

    assert!(
        matches!(&answer, Err(VendorError::Unavailable(msg)) if msg.contains("welcome to nginx")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn server_errors_are_unavailable_and_client_errors_are_refused() {
    let (bad_gateway, stop_1) = impostor(StatusCode::BAD_GATEWAY, "upstream down").await;
    let (not_found, stop_2) = impostor(StatusCode::NOT_FOUND, "no such store").await;
    let timeout = Duration::from_secs(2);

    let from_502 = HttpVendorClient::new(&bad_gateway, timeout)
        .unwrap()
        .cancel("order-1")
        .await;
    let from_404 = HttpVendorClient::new(&not_found, timeout)
        .unwrap()
        .cancel("order-1")
        .await;
    stop_1.cancel();
    stop_2.cancel();

    assert!(
        matches!(&from_502, Err(VendorError::Unavailable(msg)) if msg.contains("502")),
        "{from_502:?}"
    );
    assert!(
        matches!(&from_404, Err(VendorError::Refused(msg)) if msg.contains("no such store")),
        "{from_404:?}"
    );
}

#[tokio::test]
async fn without_a_vendor_url_the_server_gets_a_simulated_vendor_in_process() {
    let config = ballpark::config::Config {
        sim_vendor_accept_delay_ms: 10,
        ..ballpark::config::Config::default()
    };
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();

    let vendor = ballpark::orders::vendor::connect(&config, &tasks, shutdown.clone())
        .await
        .unwrap();
    let order = VendorOrder {
        order_id: "order-1".into(),
        store_id: 7,
        items: vec![VendorItem {
            name: "Sajik fish cake".into(),
            quantity: 1,
        }],
        callback_url: "http://127.0.0.1:9/".into(),
    };
    let answer = vendor.client.submit(&order).await;
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(PATIENCE, tasks.wait())
        .await
        .expect("the simulated vendor and its tasks stop when cancelled");

    vendor_ref(answer.unwrap());
    let simulated = vendor.simulated.expect("a simulated vendor");
    assert!(simulated.addr().ip().is_loopback());
    assert_eq!(simulated.handle().stats().received, 1);
}

#[tokio::test]
async fn with_a_vendor_url_no_simulation_is_started() {
    let config = ballpark::config::Config {
        vendor_url: Some("http://vendor.example:8090".into()),
        ..ballpark::config::Config::default()
    };

    let vendor =
        ballpark::orders::vendor::connect(&config, &TaskTracker::new(), CancellationToken::new())
            .await
            .unwrap();

    assert!(vendor.simulated.is_none());
}
