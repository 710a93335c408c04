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
        Some(0.0),
        "{text}"
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
    assert!(
        text.contains("ballpark_queue_jobs_completed_total"),
        "{text}"
    );
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
