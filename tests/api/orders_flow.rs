//! The vendor side of the order flow, with the bundled simulated vendor running in-process:
//! hand-over, progress by webhook, a slow or down vendor, rejections and refunds, the
//! acceptance deadline, duplicate and out-of-order webhooks, and live updates.

use std::time::Duration;

use ballpark::config::Config;
use ballpark::orders::vendor::{sign, VendorProgress, VendorWebhook, SIGNATURE_HEADER};
use ballpark::vendor_sim::{SimOrderState, SimVendorHandle};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::orders::{fast_jobs, open_shop, pay, place, wait_for, Shop};

fn quick_vendor(config: &mut Config) {
    fast_jobs(config);
    config.sim_vendor_accept_delay_ms = 20;
    config.sim_vendor_step_delay_ms = 20;
}

fn vendor(app: &TestApp) -> SimVendorHandle {
    app.vendor.clone().expect("the in-process simulated vendor")
}

/// Places and pays an order of two beers; returns its id.
async fn placed_and_paid(app: &TestApp, shop: &Shop, key: &str) -> String {
    let (status, placed) = place(app, &shop.fan, key, &shop.order(&[(shop.beer, 2)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();
    let (status, paid) = pay(app, &shop.fan, &id).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    id
}

fn events(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap().to_string())
        .collect()
}

const LONG: Duration = Duration::from_secs(20);

async fn a_paid_order_goes_through_the_vendor_to_picked_up(app: TestApp) {
    let shop = open_shop(&app).await;

    let id = placed_and_paid(&app, &shop, "k").await;

    let order = wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "picked_up").await;
    let events = events(&order);
    // Intermediate steps may be skipped: webhooks are applied concurrently, and one that
    // arrives after a later step is a no-op.
    for expected in [
        "placed",
        "charge_succeeded",
        "vendor_received",
        "vendor_picked_up",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing: {events:?}"
        );
    }
    assert_eq!(shop.gateway_balance().await, 9000);
    assert_eq!(shop.stock(shop.beer).await, 98, "sold, not released");
    let sim = vendor(&app).order(&id).expect("the vendor has it");
    assert_eq!(sim.state, SimOrderState::PickedUp);
}

fn slow_vendor(config: &mut Config) {
    quick_vendor(config);
    config.sim_vendor_response_delay_ms = 3000;
}

async fn placing_an_order_does_not_wait_for_a_slow_vendor(app: TestApp) {
    let shop = open_shop(&app).await;

    let (status, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;

    assert_eq!(status, StatusCode::CREATED);
    let id = placed["order"]["id"].as_str().unwrap();
    assert_eq!(placed["order"]["vendor"], "pending");
    let (status, paid) = pay(&app, &shop.fan, id).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "paying does not wait either: {paid}"
    );
    assert!(
        vendor(&app).order(id).is_none(),
        "answered while the vendor was still taking its 3 s"
    );
    wait_for(&app, &shop.fan, id, LONG, |o| o["vendor"] != "pending").await;
}

async fn a_vendor_rejection_cancels_a_paid_order_and_refunds_it(app: TestApp) {
    let shop = open_shop(&app).await;
    vendor(&app).set_reject_rate(1.0);

    let id = placed_and_paid(&app, &shop, "k").await;

    let order = wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "refunded").await;
    assert_eq!(order["payment"], "refunded");
    assert!(order["reason"].as_str().is_some(), "{order}");
    assert_eq!(
        shop.gateway_balance().await,
        0,
        "charged, then refunded in full"
    );
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM payments").await,
        2,
        "one charge and one refund in our books"
    );
    assert_eq!(shop.stock(shop.beer).await, 100, "stock released");
}

async fn a_vendor_that_is_down_for_a_while_gets_the_order_once_it_is_back(app: TestApp) {
    let shop = open_shop(&app).await;
    let sim = vendor(&app);
    sim.set_down(true);

    let id = placed_and_paid(&app, &shop, "k").await;
    let attempts = || async {
        shop.count(&format!(
            "SELECT CAST(COALESCE(MAX(attempts), 0) AS BIGINT) FROM jobs WHERE kind = 'order.hand_over' AND payload LIKE '%{id}%'"
        ))
        .await
    };
    let deadline = tokio::time::Instant::now() + LONG;
    while attempts().await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hand-over was not retried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, body) = app.get(&format!("/api/orders/{id}"), Some(&shop.fan)).await;
    assert_eq!(body["order"]["vendor"], "pending");
    assert_eq!(body["order"]["status"], "paid");
    sim.set_down(false);

    wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "picked_up").await;
    assert_eq!(shop.gateway_balance().await, 9000);
}

fn impatient(config: &mut Config) {
    quick_vendor(config);
    config.sim_vendor_accept_delay_ms = 60_000;
    config.vendor_accept_deadline_secs = 1;
}

async fn an_order_the_vendor_does_not_accept_in_time_is_cancelled_refunded_and_withdrawn(
    app: TestApp,
) {
    let shop = open_shop(&app).await;

    let id = placed_and_paid(&app, &shop, "k").await;

    let order = wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "refunded").await;
    assert_eq!(
        order["reason"],
        "the store did not accept the order in time"
    );
    assert_eq!(shop.gateway_balance().await, 0);
    assert_eq!(shop.stock(shop.beer).await, 100);
    let deadline = tokio::time::Instant::now() + LONG;
    while vendor(&app).order(&id).map(|o| o.state) != Some(SimOrderState::Cancelled) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the vendor was not told"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn silent_vendor(config: &mut Config) {
    quick_vendor(config);
    config.sim_vendor_accept_delay_ms = 600_000;
}

async fn send_webhook(
    app: &TestApp,
    order_id: &str,
    event: VendorProgress,
    secret: &str,
) -> StatusCode {
    let body = serde_json::to_vec(&VendorWebhook {
        order_id: order_id.into(),
        vendor_ref: "test-ref".into(),
        event,
        reason: None,
        at: chrono::Utc::now(),
    })
    .unwrap();
    app.client
        .post(app.url("/api/vendor/webhooks"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(secret.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn duplicate_late_and_out_of_order_webhooks_have_one_effect(app: TestApp) {
    let shop = open_shop(&app).await;
    let secret = Config::default().vendor_webhook_secret.expose().to_string();
    let id = placed_and_paid(&app, &shop, "k").await;
    wait_for(&app, &shop.fan, &id, LONG, |o| o["vendor"] == "sent").await;

    // `ready` arrives first (skipping two steps), then late and repeated reports.
    assert_eq!(
        send_webhook(&app, &id, VendorProgress::Ready, &secret).await,
        StatusCode::ACCEPTED
    );
    let order = wait_for(&app, &shop.fan, &id, LONG, |o| o["vendor"] == "ready").await;
    for event in [
        VendorProgress::Preparing,
        VendorProgress::Ready,
        VendorProgress::Accepted,
    ] {
        assert_eq!(
            send_webhook(&app, &id, event, &secret).await,
            StatusCode::ACCEPTED
        );
    }
    // Let every queued webhook be applied before looking at the history.
    let deadline = tokio::time::Instant::now() + LONG;
    while shop
        .count("SELECT COUNT(*) FROM jobs WHERE kind = 'order.vendor_event' AND status <> 'done'")
        .await
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, body) = app.get(&format!("/api/orders/{id}"), Some(&shop.fan)).await;
    let vendor_events: Vec<String> = events(&body["order"])
        .into_iter()
        .filter(|e| e.starts_with("vendor_") && e != "vendor_received")
        .collect();
    assert_eq!(
        vendor_events,
        ["vendor_ready"],
        "stale and repeated events ignored: {order}"
    );
    assert_eq!(
        send_webhook(&app, &id, VendorProgress::PickedUp, &secret).await,
        StatusCode::ACCEPTED
    );
    wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "picked_up").await;
}

fn short_payment_window(config: &mut Config) {
    quick_vendor(config);
    config.payment_window_secs = 2;
}

/// The scenario: an unpaid order reported picked up, then expired, used to end
/// `cancelled` with its stock back although the food was handed over.
async fn a_vendor_report_on_an_unpaid_order_changes_nothing_and_the_order_still_expires(
    app: TestApp,
) {
    let shop = open_shop(&app).await;
    let secret = Config::default().vendor_webhook_secret.expose().to_string();
    let (status, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 2)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();

    for event in [VendorProgress::Accepted, VendorProgress::PickedUp] {
        assert_eq!(
            send_webhook(&app, &id, event, &secret).await,
            StatusCode::ACCEPTED
        );
    }
    let order = wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "cancelled").await;

    assert_eq!(order["vendor"], "pending", "{order}");
    assert_eq!(order["reason"], "the order was not paid in time");
    assert!(
        !events(&order).iter().any(|e| e.starts_with("vendor_")),
        "no vendor progress recorded: {order}"
    );
    assert!(vendor(&app).order(&id).is_none(), "never handed over");
    assert_eq!(shop.stock(shop.beer).await, 100);
    assert_eq!(shop.gateway_balance().await, 0);
}

/// The vendor's acceptance deadline runs from the payment: an order paid late in its payment
/// window is not cancelled by a deadline counted from placing.
async fn an_order_paid_late_in_its_window_still_reaches_the_vendor(app: TestApp) {
    let shop = open_shop(&app).await;
    let (status, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (status, paid) = pay(&app, &shop.fan, &id).await;

    assert_eq!(status, StatusCode::OK, "{paid}");
    let order = wait_for(&app, &shop.fan, &id, LONG, |o| o["status"] == "picked_up").await;
    let events = events(&order);
    let paid_at = events.iter().position(|e| e == "charge_succeeded");
    let received_at = events.iter().position(|e| e == "vendor_received");
    assert!(paid_at < received_at, "paid before handed over: {events:?}");
    assert_eq!(shop.gateway_balance().await, 4500);
}

fn late_payment(config: &mut Config) {
    quick_vendor(config);
    config.payment_window_secs = 30;
    config.vendor_accept_deadline_secs = 1;
}

async fn webhooks_need_a_valid_signature_and_a_known_order(app: TestApp) {
    let shop = open_shop(&app).await;
    let secret = Config::default().vendor_webhook_secret.expose().to_string();
    let id = placed_and_paid(&app, &shop, "k").await;

    let forged = send_webhook(&app, &id, VendorProgress::PickedUp, "not-the-secret").await;
    let unknown = send_webhook(&app, "no-such-order", VendorProgress::Accepted, &secret).await;
    let garbage = app
        .client
        .post(app.url("/api/vendor/webhooks"))
        .header(SIGNATURE_HEADER, sign(secret.as_bytes(), b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();

    assert_eq!(forged, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, StatusCode::NOT_FOUND);
    assert_eq!(garbage, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, body) = app.get(&format!("/api/orders/{id}"), Some(&shop.fan)).await;
    assert_ne!(body["order"]["status"], "picked_up");
}

/// Reads server-sent events from `path` until `stop` holds for one, returning their data.
async fn read_events(
    app: &TestApp,
    token: &str,
    path: &str,
    stop: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let res = app
        .client
        .get(app.url(path))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    let mut buffer = String::new();
    let mut seen = Vec::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let event: Value = serde_json::from_str(data).unwrap();
                    let done = stop(&event);
                    seen.push(event);
                    if done {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(LONG, read)
        .await
        .expect("the events came in time");
    seen
}

async fn the_customer_and_the_store_owner_see_changes_live(app: TestApp) {
    let shop = open_shop(&app).await;
    let owner_path = format!("/api/stores/{}/orders/events", shop.store_id);
    let owner_stream = read_events(&app, &shop.owner, &owner_path, |e| e["event"] == "placed");
    let order_then_stream = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let id = placed_and_paid(&app, &shop, "k").await;
        let path = format!("/api/orders/{id}/events");
        read_events(&app, &shop.fan, &path, |e| e["status"] == "picked_up").await
    };

    let (owner_saw, customer_saw) = tokio::join!(owner_stream, order_then_stream);

    assert_eq!(owner_saw.last().unwrap()["event"], "placed");
    let statuses: Vec<&str> = customer_saw
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"placed"));
    assert_eq!(statuses.last(), Some(&"picked_up"));
    assert!(statuses.contains(&"paid"), "{statuses:?}");
}

async fn strangers_cannot_follow_an_order_or_a_store(app: TestApp) {
    let shop = open_shop(&app).await;
    let stranger = app.register("stranger").await;
    let id = placed_and_paid(&app, &shop, "k").await;

    let (order, _) = app
        .get(&format!("/api/orders/{id}/events"), Some(&stranger))
        .await;
    let (store, _) = app
        .get(
            &format!("/api/stores/{}/orders/events", shop.store_id),
            Some(&stranger),
        )
        .await;
    let (anonymous, _) = app.get(&format!("/api/orders/{id}/events"), None).await;

    assert_eq!(order, StatusCode::NOT_FOUND);
    assert_eq!(store, StatusCode::FORBIDDEN);
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
}

crate::on_both_backends_with!(flow, quick_vendor;
    a_paid_order_goes_through_the_vendor_to_picked_up,
    a_vendor_rejection_cancels_a_paid_order_and_refunds_it,
    a_vendor_that_is_down_for_a_while_gets_the_order_once_it_is_back,
    webhooks_need_a_valid_signature_and_a_known_order,
    the_customer_and_the_store_owner_see_changes_live,
    strangers_cannot_follow_an_order_or_a_store,
);
crate::on_both_backends_with!(unpaid, short_payment_window;
    a_vendor_report_on_an_unpaid_order_changes_nothing_and_the_order_still_expires);
crate::on_both_backends_with!(late, late_payment;
    an_order_paid_late_in_its_window_still_reaches_the_vendor);
crate::on_both_backends_with!(slow, slow_vendor; placing_an_order_does_not_wait_for_a_slow_vendor);
crate::on_both_backends_with!(deadline, impatient;
    an_order_the_vendor_does_not_accept_in_time_is_cancelled_refunded_and_withdrawn);
crate::on_both_backends_with!(webhooks, silent_vendor;
    duplicate_late_and_out_of_order_webhooks_have_one_effect);

fn quick_vendor_via_rabbitmq(config: &mut Config) {
    quick_vendor(config);
    crate::uploads::via_rabbitmq(config);
}

fn silent_vendor_via_rabbitmq(config: &mut Config) {
    silent_vendor(config);
    crate::uploads::via_rabbitmq(config);
}

crate::on_both_backends_with!(flow_through_rabbitmq, quick_vendor_via_rabbitmq;
    a_paid_order_goes_through_the_vendor_to_picked_up,
    a_vendor_rejection_cancels_a_paid_order_and_refunds_it,
    a_vendor_that_is_down_for_a_while_gets_the_order_once_it_is_back,
);
crate::on_both_backends_with!(webhooks_through_rabbitmq, silent_vendor_via_rabbitmq;
    duplicate_late_and_out_of_order_webhooks_have_one_effect);

fn short_payment_window_via_rabbitmq(config: &mut Config) {
    short_payment_window(config);
    crate::uploads::via_rabbitmq(config);
}

crate::on_both_backends_with!(unpaid_through_rabbitmq, short_payment_window_via_rabbitmq;
    a_vendor_report_on_an_unpaid_order_changes_nothing_and_the_order_still_expires);

fn impatient_via_rabbitmq(config: &mut Config) {
    impatient(config);
    crate::uploads::via_rabbitmq(config);
}

crate::on_both_backends_with!(deadline_through_rabbitmq, impatient_via_rabbitmq;
    an_order_the_vendor_does_not_accept_in_time_is_cancelled_refunded_and_withdrawn);
