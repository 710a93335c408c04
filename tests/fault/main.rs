//! The order flow under faults, with real processes: a stream of orders while the
//! `ballpark worker` process that runs the order jobs is killed with SIGKILL and restarted
//! again and again, and, on the RabbitMQ backend, RabbitMQ itself is restarted. Afterwards
//! every order must be in a terminal state and the books must balance: what the payment
//! gateway charged minus what it refunded equals the total of the orders picked up; no order
//! is charged twice; no order is handed over unpaid; stock matches what was sold.
//!
//! Its own test binary, because restarting RabbitMQ would disturb the other binaries' tests;
//! cargo runs test binaries one after another.

#[path = "../support/scratch.rs"]
mod scratch;

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "../support/shop.rs"]
mod shop;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ballpark::config::{Config, Secret};
use ballpark::on_read;
use ballpark::vendor_sim::{SimVendor, SimVendorConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use helpers::{spawn_app_with, Backend, TestApp};
use shop::{open_shop, Shop};

/// Orders in the stream; every eighth is left unpaid (it must expire).
const ORDERS: usize = 40;
/// How often the worker is killed.
const KILL_EVERY: Duration = Duration::from_millis(1500);
/// How long everything gets to settle after the stream.
const SETTLE: Duration = Duration::from_secs(120);

/// Settings the app and the worker processes share.
struct Setup {
    vendor_url: String,
    broker: Option<String>,
    orders_queue: String,
    images_queue: String,
}

fn adjust(config: &mut Config, setup: &Setup) {
    config.workers = false; // the order jobs run in the worker process only
    config.vendor_url = Some(setup.vendor_url.clone());
    config.broker = setup.broker.clone().map(Secret::new);
    config.orders_queue = setup.orders_queue.clone();
    config.images_queue = setup.images_queue.clone();
    config.job_retry_base_ms = 200;
    config.job_lease_secs = 2;
    config.payment_window_secs = 4;
    config.vendor_accept_deadline_secs = 6;
    config.sim_payment_latency_ms = 10;
}

/// Restarts the local RabbitMQ node (stop, start, wait until it takes connections), with the
/// same commands that start it on this machine.
async fn restart_rabbitmq(url: &str) {
    let run = |program: &str, args: &[&str]| {
        let status = std::process::Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "{program} {args:?} failed: {status:?} (the fault test restarts RabbitMQ and must run where it may)"
        );
    };
    run("rabbitmqctl", &["shutdown"]);
    run("rabbitmq-server", &["-detached"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(broker) = ballpark::queue::amqp::Broker::connect(url).await {
            broker.close().await;
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "RabbitMQ did not come back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn place_and_maybe_pay(app: &TestApp, shop: &Shop, n: usize) -> Option<String> {
    let item = if n.is_multiple_of(3) {
        shop.hotdog
    } else {
        shop.beer
    };
    let res = app
        .client
        .post(app.url("/api/orders"))
        .header("Authorization", format!("Token {}", shop.fan))
        .header("Idempotency-Key", format!("fault-{n}"))
        .json(&shop.order(&[(item, 1)]))
        .send()
        .await
        .expect("the API answers");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status == StatusCode::CONFLICT {
        return None; // sold out: fine, nothing was written
    }
    assert_eq!(status, StatusCode::CREATED, "order {n}: {body}");
    let id = body["order"]["id"].as_str().unwrap().to_string();
    if n % 8 != 7 {
        let (status, body) = app
            .post(
                &format!("/api/orders/{id}/payment"),
                Some(&shop.fan),
                json!({}),
            )
            .await;
        assert!(
            status == StatusCode::OK || status == StatusCode::ACCEPTED,
            "payment of order {n}: {status} {body}"
        );
    }
    Some(id)
}

const NOT_TERMINAL: &str = "SELECT COUNT(*) FROM orders WHERE NOT (\
    status IN ('picked_up', 'payment_failed', 'refunded') \
    OR (status = 'cancelled' AND payment IN ('unpaid', 'failed')))";

async fn orders_survive_killed_workers(backend: Backend, rabbitmq: bool) {
    // Arrange: a simulated vendor that rejects a fifth of the orders, the app (API and
    // relay, no workers), a shop, and a worker process.
    let tasks = TaskTracker::new();
    let vendor_stop = CancellationToken::new();
    let vendor = SimVendor::bind(
        SimVendorConfig {
            response_delay: Duration::from_millis(20),
            accept_delay: Duration::from_millis(150),
            step_delay: Duration::from_millis(150),
            reject_rate: 0.2,
            ..SimVendorConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
        &tasks,
        vendor_stop.clone(),
    )
    .await
    .unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let setup = Arc::new(Setup {
        vendor_url: vendor.url(),
        broker: rabbitmq.then(helpers::amqp_url),
        orders_queue: format!("orders-fault-{suffix}"),
        images_queue: format!("images-fault-{suffix}"),
    });
    let app = spawn_app_with(backend, |config| adjust(config, &setup)).await;
    let shop = open_shop(&app).await;
    let stock_before = (shop.stock(shop.hotdog).await, shop.stock(shop.beer).await);

    // Act: the stream of orders, while a chaos task kills and restarts the worker (and
    // restarts RabbitMQ once).
    let kills = Arc::new(AtomicUsize::new(0));
    let stop_chaos = CancellationToken::new();
    let chaos = {
        let (app_addr, setup, kills, stop) =
            (app.addr, setup.clone(), kills.clone(), stop_chaos.clone());
        let database_url = app.database_url.clone();
        let media = app.media_dir().to_path_buf();
        let broker = setup.broker.clone();
        let worker_of = move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_ballpark"));
            command
                .args(["worker", "--database-url", &database_url])
                .env("BALLPARK_VENDOR_URL", &setup.vendor_url)
                .env("BALLPARK_PUBLIC_URL", format!("http://{app_addr}"))
                .env("BALLPARK_ORDERS_QUEUE", &setup.orders_queue)
                .env("BALLPARK_IMAGES_QUEUE", &setup.images_queue)
                .env("BALLPARK_JOB_RETRY_BASE_MS", "200")
                .env("BALLPARK_JOB_LEASE_SECS", "2")
                .env("BALLPARK_MEDIA_DIR", &media)
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .kill_on_drop(true);
            if let Some(broker) = &setup.broker {
                command.args(["--broker", broker]);
            }
            command.spawn().expect("the ballpark binary starts")
        };
        tokio::spawn(async move {
            let mut worker = worker_of();
            let mut restarted_broker = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(KILL_EVERY) => {}
                    _ = stop.cancelled() => return worker,
                }
                worker.kill().await.expect("SIGKILL");
                kills.fetch_add(1, Ordering::SeqCst);
                if let (Some(url), false) = (&broker, restarted_broker) {
                    if kills.load(Ordering::SeqCst) == 2 {
                        restart_rabbitmq(url).await;
                        restarted_broker = true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                worker = worker_of();
            }
        })
    };
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        if let Some(id) = place_and_maybe_pay(&app, &shop, n).await {
            ids.push(id);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Keep killing while the tail of the stream is in flight: at least four kills in all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while kills.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_chaos.cancel();
    let mut last_worker = chaos.await.unwrap();
    if rabbitmq {
        assert!(
            kills.load(Ordering::SeqCst) >= 2,
            "RabbitMQ was restarted during the stream"
        );
    }

    // Assert: everything settles...
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let open = shop.count(NOT_TERMINAL).await;
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} orders still not terminal after {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last_worker.kill().await.ok();
    let placed = shop.count("SELECT COUNT(*) FROM orders").await;
    assert_eq!(placed as usize, ids.len());
    let picked_up = shop
        .count("SELECT COUNT(*) FROM orders WHERE status = 'picked_up'")
        .await;
    let refunded = shop
        .count("SELECT COUNT(*) FROM orders WHERE status = 'refunded'")
        .await;
    println!(
        "{backend:?}{}: {placed} orders, {picked_up} picked up, {refunded} refunded, worker killed {} times",
        if rabbitmq { " + RabbitMQ" } else { "" },
        kills.load(Ordering::SeqCst)
    );
    assert!(picked_up > 0, "some orders went through");
    assert!(
        kills.load(Ordering::SeqCst) >= 4,
        "the worker was killed repeatedly"
    );

    // ...no order was charged or refunded twice...
    let twice = shop
        .count(
            "SELECT COUNT(*) FROM (SELECT order_id, kind FROM sim_gateway_transactions \
             WHERE outcome = 'approved' GROUP BY order_id, kind HAVING COUNT(*) > 1) AS t",
        )
        .await;
    assert_eq!(twice, 0);
    // ...the books balance: charges - refunds = what was handed over...
    let fulfilled = shop
        .count("SELECT CAST(COALESCE(SUM(total_won), 0) AS BIGINT) FROM orders WHERE status = 'picked_up'")
        .await;
    assert_eq!(shop.gateway_balance().await, fulfilled, "gateway books");
    let ours = shop
        .count(
            "SELECT CAST(COALESCE(SUM(CASE kind WHEN 'charge' THEN amount_won ELSE -amount_won END), 0) \
             AS BIGINT) FROM payments",
        )
        .await;
    assert_eq!(ours, fulfilled, "our books agree with the gateway's");
    // ...no order was handed over unpaid: in our history, no vendor step comes before the
    // charge; at the vendor, every order it got was paid, and what it handed over is
    // `picked_up` here (not cancelled with its stock back)...
    let vendor_before_payment = shop
        .count(
            "SELECT COUNT(*) FROM orders o WHERE EXISTS (SELECT 1 FROM order_history h \
             WHERE h.order_id = o.id AND h.event IN ('vendor_received', 'vendor_accepted', \
             'vendor_preparing', 'vendor_ready', 'vendor_picked_up') AND NOT EXISTS \
             (SELECT 1 FROM order_history c WHERE c.order_id = o.id \
              AND c.event = 'charge_succeeded' AND c.id < h.id))",
        )
        .await;
    assert_eq!(
        vendor_before_payment, 0,
        "orders with vendor steps before payment"
    );
    let sim = vendor.handle();
    let mut handed_over_then_refunded = Vec::new();
    for id in &ids {
        // The vendor also records a cancellation of an order it never received.
        let Some(at_vendor) = sim.order(id).filter(|o| o.vendor_ref.is_some()) else {
            continue;
        };
        let (status, charged): (String, i64) = on_read!(&shop.db, pool => sqlx::query_as(
            "SELECT status, CAST((SELECT COUNT(*) FROM payments p WHERE p.order_id = o.id \
             AND p.kind = 'charge') AS BIGINT) FROM orders o WHERE o.id = $1")
            .bind(id).fetch_one(pool).await)
        .unwrap();
        assert_eq!(charged, 1, "order {id} was handed over unpaid");
        if at_vendor.state == ballpark::vendor_sim::SimOrderState::PickedUp && status != "picked_up"
        {
            handed_over_then_refunded.push(format!("{id} ({status})"));
        }
    }
    // ...and no order the vendor handed over was cancelled (and refunded) here: the
    // acceptance deadline withdraws an order at the vendor before it cancels it.
    assert!(
        handed_over_then_refunded.is_empty(),
        "handed over by the vendor but cancelled here: {}",
        handed_over_then_refunded.join(", ")
    );
    // ...and stock matches what was sold.
    for (item, before) in [(shop.hotdog, stock_before.0), (shop.beer, stock_before.1)] {
        let sold: i64 = on_read!(&shop.db, pool => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i \
             JOIN orders o ON o.id = i.order_id WHERE o.status = 'picked_up' AND i.menu_item_id = $1")
            .bind(item).fetch_one(pool).await)
        .unwrap();
        assert_eq!(
            shop.stock(item).await,
            before - sold,
            "stock of item {item}"
        );
    }
    vendor_stop.cancel();
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_orders_survive_a_killed_worker() {
    orders_survive_killed_workers(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_orders_survive_a_killed_worker() {
    orders_survive_killed_workers(Backend::Postgres, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_orders_survive_a_killed_worker_and_a_rabbitmq_restart() {
    orders_survive_killed_workers(Backend::Postgres, true).await;
}
