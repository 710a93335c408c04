//! Orders and payment: placing with idempotency keys, stock that never oversells, paying
//! through the simulated gateway (approve, decline, timeout), and the order's history.
//! The vendor side of the flow is in `orders_flow.rs`.

use std::time::Duration;

use ballpark::config::Config;
use ballpark::on_write;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

pub use crate::shop::{open_shop, Shop};

/// `POST /api/orders` with an Idempotency-Key.
pub async fn place(app: &TestApp, token: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/api/orders"))
        .header("Authorization", format!("Token {token}"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn pay(app: &TestApp, token: &str, id: &str) -> (StatusCode, Value) {
    app.post(&format!("/api/orders/{id}/payment"), Some(token), json!({}))
        .await
}

/// Polls the order until `done` holds for it (at most `limit`), returning the last body.
pub async fn wait_for(
    app: &TestApp,
    token: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (status, body) = app.get(&format!("/api/orders/{id}"), Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body["order"]) {
            return body["order"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {id} did not get there in {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn fast_jobs(config: &mut Config) {
    config.job_retry_base_ms = 50;
    config.sim_payment_latency_ms = 0;
}

async fn placing_an_order_reserves_stock_and_answers_what_to_pay(app: TestApp) {
    let shop = open_shop(&app).await;

    let (status, body) = place(
        &app,
        &shop.fan,
        "k1",
        &shop.order(&[(shop.hotdog, 2), (shop.beer, 1)]),
    )
    .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    let order = &body["order"];
    assert_eq!(order["status"], "placed");
    assert_eq!(order["totalWon"], 2 * 3000 + 4500);
    assert_eq!(body["payment"]["amountWon"], 10500);
    let id = order["id"].as_str().unwrap();
    assert_eq!(body["payment"]["url"], format!("/api/orders/{id}/payment"));
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(order["history"][0]["event"], "placed");
    assert_eq!(shop.stock(shop.hotdog).await, 3);
    assert_eq!(shop.stock(shop.beer).await, 99);
    let jobs = |kind: &str| {
        let sql =
            format!("SELECT COUNT(*) FROM jobs WHERE payload LIKE '%{id}%' AND kind = '{kind}'");
        let shop = &shop;
        async move { shop.count(&sql).await }
    };
    assert_eq!(
        jobs("order.payment_deadline").await,
        1,
        "the payment deadline is written with the order"
    );
    assert_eq!(
        jobs("order.hand_over").await + jobs("order.vendor_deadline").await,
        0,
        "nothing goes to the vendor before the order is paid"
    );
}

async fn the_same_key_and_body_replay_the_first_response(app: TestApp) {
    let shop = open_shop(&app).await;
    let body = shop.order(&[(shop.beer, 2)]);

    let first = place(&app, &shop.fan, "same", &body).await;
    let second = place(&app, &shop.fan, "same", &body).await;

    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(first, second, "status and body replayed");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.stock(shop.beer).await, 98, "stock reserved once");
}

async fn the_same_key_with_another_body_is_refused_with_422(app: TestApp) {
    let shop = open_shop(&app).await;
    place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;

    let (status, body) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 2)])).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["Idempotency-Key"][0]
        .as_str()
        .unwrap()
        .contains("different request"));
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
}

async fn keys_are_per_customer(app: TestApp) {
    let shop = open_shop(&app).await;
    let other = app.register("other").await;
    let body = shop.order(&[(shop.beer, 1)]);

    let (a, _) = place(&app, &shop.fan, "shared", &body).await;
    let (b, _) = place(&app, &other, "shared", &body).await;

    assert_eq!((a, b), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 2);
}

async fn an_order_without_an_idempotency_key_is_a_bad_request(app: TestApp) {
    let shop = open_shop(&app).await;

    let (status, body) = app
        .post(
            "/api/orders",
            Some(&shop.fan),
            shop.order(&[(shop.beer, 1)]),
        )
        .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["body"][0]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
}

async fn concurrent_requests_with_one_key_create_one_order(app: TestApp) {
    let shop = open_shop(&app).await;
    let body = shop.order(&[(shop.beer, 1)]);

    let answers =
        futures::future::join_all((0..8).map(|_| place(&app, &shop.fan, "racing-key", &body)))
            .await;

    for answer in &answers {
        assert_eq!(answer, &answers[0], "every request gets the one response");
    }
    assert_eq!(answers[0].0, StatusCode::CREATED);
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.stock(shop.beer).await, 99);
}

async fn orders_racing_for_the_last_items_never_oversell(app: TestApp) {
    let shop = open_shop(&app).await;
    let body = shop.order(&[(shop.hotdog, 1)]);
    let keys: Vec<String> = (0..12).map(|i| format!("race-{i}")).collect();

    let answers =
        futures::future::join_all(keys.iter().map(|k| place(&app, &shop.fan, k, &body))).await;

    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let sold_out = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, sold_out), (5, 7), "{answers:?}");
    assert_eq!(shop.stock(shop.hotdog).await, 0);
    let (_, refused) = answers
        .iter()
        .find(|(s, _)| *s == StatusCode::CONFLICT)
        .unwrap();
    assert!(refused["errors"]["body"][0]
        .as_str()
        .unwrap()
        .contains("only 0 left"));
}

async fn a_refused_order_does_not_use_up_its_key(app: TestApp) {
    let shop = open_shop(&app).await;
    let body = shop.order(&[(shop.hotdog, 6)]);

    let (first, _) = place(&app, &shop.fan, "retry-me", &body).await;
    on_write!(&shop.db, pool => sqlx::query("UPDATE menu_items SET stock = 10 WHERE id = $1")
        .bind(shop.hotdog).execute(pool).await.unwrap().rows_affected());
    let (second, _) = place(&app, &shop.fan, "retry-me", &body).await;

    assert_eq!((first, second), (StatusCode::CONFLICT, StatusCode::CREATED));
}

async fn bad_orders_get_clear_errors(app: TestApp) {
    let shop = open_shop(&app).await;
    let cases = [
        (
            json!({"order": {"storeId": shop.store_id, "items": []}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items",
        ),
        (
            shop.order(&[(shop.beer, 0)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity",
        ),
        (
            shop.order(&[(shop.beer, 21)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity",
        ),
        (
            shop.order(&[(shop.beer, 15), (shop.beer, 15)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity",
        ),
        (
            shop.order(&[(999_999, 1)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items",
        ),
        (
            json!({"order": {"storeId": 999_999, "items": [{"menuItemId": shop.beer, "quantity": 1}]}}),
            StatusCode::NOT_FOUND,
            "body",
        ),
        (
            json!({"order": {"storeId": "x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
    ];
    for (i, (body, expected, field)) in cases.into_iter().enumerate() {
        let (status, answer) = place(&app, &shop.fan, &format!("bad-{i}"), &body).await;
        assert_eq!(status, expected, "case {i}: {answer}");
        assert!(answer["errors"].get(field).is_some(), "case {i}: {answer}");
    }
    let (status, _) = place(&app, "not-a-token", "k", &shop.order(&[(shop.beer, 1)])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(shop.stock(shop.beer).await, 100);
}

async fn paying_charges_once_however_often_it_is_retried(app: TestApp) {
    let shop = open_shop(&app).await;
    let (_, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 2)])).await;
    let id = placed["order"]["id"].as_str().unwrap();

    let (status, body) = pay(&app, &shop.fan, id).await;
    let (again, body_again) = pay(&app, &shop.fan, id).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["payment"], "paid");
    assert!(body.get("payment").is_none(), "nothing left to pay");
    assert_eq!(again, StatusCode::OK);
    assert_eq!(body_again["order"]["payment"], "paid");
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM sim_gateway_transactions")
            .await,
        1
    );
    assert_eq!(shop.gateway_balance().await, 9000);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM payments WHERE kind = 'charge'")
            .await,
        1
    );
    let events: Vec<&str> = body["order"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .filter(|e| !e.starts_with("vendor_"))
        .collect();
    assert_eq!(events, ["placed", "charge_started", "charge_succeeded"]);
}

async fn only_the_customer_may_pay_or_see_an_order(app: TestApp) {
    let shop = open_shop(&app).await;
    let stranger = app.register("stranger").await;
    let (_, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;
    let id = placed["order"]["id"].as_str().unwrap();

    let (paid, _) = pay(&app, &stranger, id).await;
    let (seen, _) = app.get(&format!("/api/orders/{id}"), Some(&stranger)).await;
    let (owner_sees, _) = app
        .get(&format!("/api/orders/{id}"), Some(&shop.owner))
        .await;
    let (owner_lists, list) = app
        .get(
            &format!("/api/stores/{}/orders", shop.store_id),
            Some(&shop.owner),
        )
        .await;
    let (fan_lists, _) = app
        .get(
            &format!("/api/stores/{}/orders", shop.store_id),
            Some(&shop.fan),
        )
        .await;
    let (mine, my_list) = app.get("/api/orders", Some(&shop.fan)).await;

    assert_eq!(paid, StatusCode::NOT_FOUND);
    assert_eq!(seen, StatusCode::NOT_FOUND);
    assert_eq!(owner_sees, StatusCode::OK);
    assert_eq!(owner_lists, StatusCode::OK);
    assert_eq!(list["orders"][0]["id"], id);
    assert_eq!(fan_lists, StatusCode::FORBIDDEN);
    assert_eq!(mine, StatusCode::OK);
    assert_eq!(my_list["orders"].as_array().unwrap().len(), 1);
}

fn declining(config: &mut Config) {
    fast_jobs(config);
    config.sim_payment_mode = "decline".into();
}

async fn a_declined_payment_fails_the_order_and_releases_its_stock(app: TestApp) {
    let shop = open_shop(&app).await;
    let (_, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.hotdog, 2)])).await;
    let id = placed["order"]["id"].as_str().unwrap();
    assert_eq!(shop.stock(shop.hotdog).await, 3);

    let (status, body) = pay(&app, &shop.fan, id).await;

    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert!(body["errors"]["body"][0]
        .as_str()
        .unwrap()
        .contains("declined"));
    let order = wait_for(&app, &shop.fan, id, Duration::from_secs(5), |o| {
        o["status"] == "payment_failed"
    })
    .await;
    assert_eq!(order["reason"], "card declined (simulated)");
    assert_eq!(shop.stock(shop.hotdog).await, 5);
    assert_eq!(shop.gateway_balance().await, 0);
    let (again, _) = pay(&app, &shop.fan, id).await;
    assert_eq!(
        again,
        StatusCode::CONFLICT,
        "a failed order is not paid again"
    );
    assert_eq!(shop.stock(shop.hotdog).await, 5, "released once");
}

fn timing_out(config: &mut Config) {
    fast_jobs(config);
    config.sim_payment_mode = "timeout".into();
    config.payment_timeout_ms = 300;
}

async fn a_payment_whose_answer_is_lost_is_settled_by_a_job_without_charging_twice(app: TestApp) {
    let shop = open_shop(&app).await;
    let (_, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;
    let id = placed["order"]["id"].as_str().unwrap();

    let (status, body) = pay(&app, &shop.fan, id).await;

    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["order"]["payment"], "charging");
    let order = wait_for(&app, &shop.fan, id, Duration::from_secs(10), |o| {
        o["payment"] == "paid"
    })
    .await;
    assert_ne!(order["status"], "placed");
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM sim_gateway_transactions WHERE kind = 'charge'")
            .await,
        1,
        "the gateway took the money once"
    );
    assert_eq!(shop.gateway_balance().await, 4500);
}

fn short_payment_window(config: &mut Config) {
    fast_jobs(config);
    config.payment_window_secs = 1;
}

async fn an_order_not_paid_in_time_is_cancelled_and_its_stock_released(app: TestApp) {
    let shop = open_shop(&app).await;
    let (_, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.hotdog, 3)])).await;
    let id = placed["order"]["id"].as_str().unwrap();

    let order = wait_for(&app, &shop.fan, id, Duration::from_secs(10), |o| {
        o["status"] == "cancelled"
    })
    .await;

    assert_eq!(order["reason"], "the order was not paid in time");
    assert_eq!(shop.stock(shop.hotdog).await, 5);
    assert_eq!(order["vendor"], "pending", "never handed over: {order}");
    let sim = app
        .vendor
        .as_ref()
        .expect("the in-process simulated vendor");
    assert!(
        sim.order(id).is_none(),
        "the vendor never saw the unpaid order"
    );
    let (status, _) = pay(&app, &shop.fan, id).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

crate::on_both_backends!(
    placing_an_order_reserves_stock_and_answers_what_to_pay,
    the_same_key_and_body_replay_the_first_response,
    the_same_key_with_another_body_is_refused_with_422,
    keys_are_per_customer,
    an_order_without_an_idempotency_key_is_a_bad_request,
    concurrent_requests_with_one_key_create_one_order,
    orders_racing_for_the_last_items_never_oversell,
    a_refused_order_does_not_use_up_its_key,
    bad_orders_get_clear_errors,
    paying_charges_once_however_often_it_is_retried,
    only_the_customer_may_pay_or_see_an_order,
);
crate::on_both_backends_with!(declined, declining; a_declined_payment_fails_the_order_and_releases_its_stock);
crate::on_both_backends_with!(timeout, timing_out; a_payment_whose_answer_is_lost_is_settled_by_a_job_without_charging_twice);
crate::on_both_backends_with!(expiry, short_payment_window; an_order_not_paid_in_time_is_cancelled_and_its_stock_released);

fn timing_out_via_rabbitmq(config: &mut Config) {
    timing_out(config);
    crate::uploads::via_rabbitmq(config);
}

fn short_payment_window_via_rabbitmq(config: &mut Config) {
    short_payment_window(config);
    crate::uploads::via_rabbitmq(config);
}

crate::on_both_backends_with!(timeout_through_rabbitmq, timing_out_via_rabbitmq; a_payment_whose_answer_is_lost_is_settled_by_a_job_without_charging_twice);
crate::on_both_backends_with!(expiry_through_rabbitmq, short_payment_window_via_rabbitmq; an_order_not_paid_in_time_is_cancelled_and_its_stock_released);

fn declining_via_rabbitmq(config: &mut Config) {
    declining(config);
    crate::uploads::via_rabbitmq(config);
}

crate::on_both_backends_with!(declined_through_rabbitmq, declining_via_rabbitmq; a_declined_payment_fails_the_order_and_releases_its_stock);
