//! `serve` with its workers off and a separate `ballpark worker` process (the real binary)
//! on the same database: the worker hands orders to the vendor, so the callback URL it gives
//! must be where `serve` is reached (`public_url`), not the worker's own address.

use std::process::Stdio;
use std::time::Duration;

use ballpark::config::Config;
use reqwest::StatusCode;
use tokio::process::{Child, Command};

use crate::helpers::TestApp;
use crate::orders::{open_shop, pay, place, wait_for};

fn no_workers(config: &mut Config) {
    config.workers = false;
}

/// A worker process with its own simulated vendor (no `vendor_url`, as in development), told
/// where the app is with `--public-url`.
fn start_worker(app: &TestApp) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ballpark"))
        .args(["worker", "--database-url", &app.database_url])
        .args(["--public-url", &format!("http://{}", app.addr)])
        // Its own bind is somewhere nothing listens: a callback sent there would be lost.
        .env("BALLPARK_BIND", "127.0.0.1:9")
        .env("BALLPARK_MEDIA_DIR", app.media_dir())
        .env("BALLPARK_JOB_RETRY_BASE_MS", "50")
        .env("BALLPARK_SIM_VENDOR_ACCEPT_DELAY_MS", "20")
        .env("BALLPARK_SIM_VENDOR_STEP_DELAY_MS", "20")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the ballpark binary starts")
}

async fn an_order_placed_and_paid_through_the_app_is_made_by_a_separate_worker(app: TestApp) {
    // Arrange: a shop, and a worker process beside the app (which runs no jobs itself).
    let shop = open_shop(&app).await;
    let mut worker = start_worker(&app);

    // Act: the fan orders and pays through the app.
    let (status, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 2)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();
    let (status, paid) = pay(&app, &shop.fan, &id).await;
    assert_eq!(status, StatusCode::OK, "{paid}");

    // Assert: the worker's vendor called the app back, and the order went all the way.
    let order = wait_for(&app, &shop.fan, &id, Duration::from_secs(30), |o| {
        o["status"] == "picked_up"
    })
    .await;
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
    assert_eq!(order["payment"], "paid");
    assert_eq!(shop.gateway_balance().await, 9000);
    assert_eq!(shop.stock(shop.beer).await, 98);
    worker.kill().await.ok();
}

crate::on_both_backends_with!(separate_worker, no_workers;
    an_order_placed_and_paid_through_the_app_is_made_by_a_separate_worker);
