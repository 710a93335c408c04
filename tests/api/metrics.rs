//! `GET /metrics`: the queue's counters, durations and depth in the Prometheus text format, and
//! who may read them.

use std::time::Duration;

use ballpark::config::{Config, Environment, Secret};
use ballpark::db::Db;
use ballpark::queue::{self, NewJob};
use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::uploads::{jpeg_with_exif, post_file};

const TOKEN: &str = "scrape-me-please-0123456789";

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape sent");
    (response.status(), response.text().await.unwrap_or_default())
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

const IMAGE: &str = r#"queue="images",kind="image.optimize""#;

async fn a_scrape_counts_a_completed_image_job_and_a_dead_one_and_shows_the_depth(app: TestApp) {
    // Arrange: one upload the image worker optimises, one job it can never do (no upload).
    let token = app.register("scout").await;
    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "a.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    queue::enqueue(
        &db,
        NewJob::new("images", "image.optimize", serde_json::json!({})),
    )
    .await
    .unwrap();

    // Act: scrape until both jobs have been worked.
    let mut text = String::new();
    for _ in 0..200 {
        let (status, body) = scrape(&app, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        text = body;
        let completed = sample(
            &text,
            &format!("ballpark_queue_jobs_completed_total{{{IMAGE}}}"),
        );
        let dead = sample(&text, &format!("ballpark_queue_jobs_dead_total{{{IMAGE}}}"));
        // A scrape reads the depth from the database before it renders the counters, so the
        // counters can already count a job whose new status that scrape's depth missed: wait
        // for the depth too (the WebP job of the upload done, the dead job dead).
        let depth = |status: &str| {
            sample(
                &text,
                &format!(r#"ballpark_queue_jobs{{queue="images",status="{status}"}}"#),
            )
        };
        if completed == Some(1.0)
            && dead == Some(1.0)
            && depth("dead") == Some(1.0)
            && depth("queued") == Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert
    let counter = |name: &str| sample(&text, &format!("{name}{{{IMAGE}}}"));
    assert_eq!(
        counter("ballpark_queue_jobs_completed_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        counter("ballpark_queue_jobs_failed_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        counter("ballpark_queue_jobs_dead_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        counter("ballpark_queue_jobs_retried_total"),
        None,
        "never retried: no series (they appear with their first event)"
    );
    assert_eq!(
        sample(
            &text,
            &format!("ballpark_queue_job_duration_seconds_count{{{IMAGE},outcome=\"completed\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE ballpark_queue_job_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ballpark_queue_jobs{queue="images",status="dead"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ballpark_queue_jobs{queue="images",status="queued"}"#
        ),
        Some(0.0),
        "{text}"
    );
    db.close().await;
}

fn quick_orders(config: &mut Config) {
    crate::orders::fast_jobs(config);
    config.sim_vendor_accept_delay_ms = 20;
    config.sim_vendor_step_delay_ms = 20;
}

/// The figures of `text` whose series start with `prefix`, summed (0 when there are none).
fn total(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn after_some_traffic_a_scrape_shows_http_chat_and_order_figures_and_stays_small(
    app: TestApp,
) {
    // Arrange: a shop, and a scrape before any traffic.
    let shop = crate::orders::open_shop(&app).await;
    let (_, before) = scrape(&app, None).await;

    // Act: an order placed, paid and picked up; chat posts until the rate limit refuses one,
    // with a socket open; then a second scrape.
    let (status, placed) =
        crate::orders::place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();
    let (status, _) = crate::orders::pay(&app, &shop.fan, &id).await;
    assert_eq!(status, StatusCode::OK);
    crate::orders::wait_for(&app, &shop.fan, &id, Duration::from_secs(20), |o| {
        o["status"] == "picked_up"
    })
    .await;
    let (_socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/teams/lg/chat", app.addr))
            .await
            .expect("socket opens");
    let mut refused = 0;
    for n in 0..8 {
        let (status, _) = app
            .post(
                "/api/teams/lg/chat/messages",
                Some(&shop.fan),
                serde_json::json!({"message": {"body": format!("message {n}")}}),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    let (status, after) = scrape(&app, None).await;
    println!(
        "metrics body: {} bytes before traffic, {} after",
        before.len(),
        after.len()
    );

    // Assert: the new series are there and moved...
    assert_eq!(status, StatusCode::OK);
    assert!(refused > 0, "the rate limit refused a post");
    let moved = |series: &str, expected: f64| {
        let was = sample(&before, series).unwrap_or(0.0);
        let now = sample(&after, series).unwrap_or(0.0);
        assert_eq!(now - was, expected, "{series}: {was} -> {now}\n{after}");
    };
    moved(
        r#"ballpark_http_requests_total{method="POST",route="/api/orders",status="2xx"}"#,
        1.0,
    );
    moved(
        r#"ballpark_http_requests_total{method="POST",route="/api/orders/{id}/payment",status="2xx"}"#,
        1.0,
    );
    moved(
        r#"ballpark_http_request_duration_seconds_count{method="POST",route="/api/orders",status="2xx"}"#,
        1.0,
    );
    moved(
        r#"ballpark_http_requests_total{method="POST",route="/api/teams/{team}/chat/messages",status="4xx"}"#,
        f64::from(refused),
    );
    assert!(
        total(
            &after,
            r#"ballpark_http_requests_total{method="GET",route="/api/orders/{id}",status="2xx"}"#
        ) >= 1.0,
        "polling the order is counted under its route template, not its id"
    );
    assert!(!after.contains(&id), "no raw path (order id) in any label");
    moved("ballpark_orders_placed_total", 1.0);
    moved(r#"ballpark_order_payments_total{outcome="approved"}"#, 1.0);
    moved(r#"ballpark_orders_finished_total{status="picked_up"}"#, 1.0);
    moved(
        "ballpark_chat_messages_posted_total",
        f64::from(8 - refused),
    );
    moved("ballpark_chat_rate_limited_total", f64::from(refused));
    assert_eq!(
        sample(&after, "ballpark_chat_sockets_open"),
        Some(1.0),
        "{after}"
    );
    // ...and the body carries no zero series for queue × kind pairs that never ran.
    assert!(
        !after.contains(r#"queue="images",kind="order."#),
        "no order kinds on the images queue"
    );
    println!(
        "metrics body: {} bytes before traffic, {} after",
        before.len(),
        after.len()
    );
    assert!(after.len() < 40_000, "{} bytes", after.len());
}

fn with_token(config: &mut Config) {
    config.metrics_token = Some(Secret::new(TOKEN));
}

async fn with_a_token_configured_a_scrape_without_it_gets_401(app: TestApp) {
    let (status, _) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = scrape(&app, Some("scrape-me-please-WRONG-6789")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("ballpark_queue_jobs{queue="), "{text}");
}

fn production_without_token(config: &mut Config) {
    config.env = Environment::Production;
    config.jwt_secret = Secret::new("a-production-secret-of-at-least-32-bytes");
}

async fn in_production_without_a_token_there_is_no_metrics_endpoint(app: TestApp) {
    let (status, _) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn no_workers_in_the_app(config: &mut Config) {
    config.workers = false;
}

/// A free port on loopback (another process could take it before the worker binds it; in a
/// test, that is unlikely enough).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn a_separate_worker_process_serves_its_own_metrics_on_metrics_bind(app: TestApp) {
    // Arrange: an upload whose job waits for a worker (this app runs none of its own).
    let token = app.register("scout").await;
    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "a.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let port = free_port();
    // Act
    let _worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_ballpark"))
        .args(["worker", "--database-url", &app.database_url])
        .env("BALLPARK_MEDIA_DIR", app.media_dir())
        .env("BALLPARK_METRICS_BIND", format!("127.0.0.1:{port}"))
        .env("BALLPARK_METRICS_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the ballpark binary starts");
    // Assert
    let url = format!("http://127.0.0.1:{port}/metrics");
    let series = format!("ballpark_queue_jobs_completed_total{{{IMAGE}}}");
    let queued = r#"ballpark_queue_jobs{queue="images",status="queued"}"#;
    let mut text = String::new();
    for _ in 0..400 {
        if let Ok(response) = app.client.get(&url).bearer_auth(TOKEN).send().await {
            assert_eq!(response.status(), StatusCode::OK);
            text = response.text().await.unwrap();
            // The optimise job enqueues the upload's WebP job as it completes, so the depth
            // reaches 0 only once that one has been claimed too: wait for both.
            if sample(&text, &series) == Some(1.0) && sample(&text, queued) == Some(0.0) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sample(&text, &series), Some(1.0), "{text}");
    assert_eq!(sample(&text, queued), Some(0.0), "{text}");
    let anonymous = app.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

crate::on_both_backends!(a_scrape_counts_a_completed_image_job_and_a_dead_one_and_shows_the_depth);
crate::on_both_backends_with!(separate_worker, no_workers_in_the_app; a_separate_worker_process_serves_its_own_metrics_on_metrics_bind);
crate::on_both_backends_with!(token, with_token; with_a_token_configured_a_scrape_without_it_gets_401);
crate::on_both_backends_with!(production, production_without_token; in_production_without_a_token_there_is_no_metrics_endpoint);

crate::on_both_backends_with!(traffic, quick_orders;
    after_some_traffic_a_scrape_shows_http_chat_and_order_figures_and_stays_small);
