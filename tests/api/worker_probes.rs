//! `ballpark worker` has no API, but is supervised like `serve`: `/healthz` and `/readyz` on
//! its `metrics_bind`, checked against the real binary.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GETs `url` until the worker answers (it binds after migrating), for up to 20 s.
async fn first_answer(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    for _ in 0..400 {
        if let Ok(response) = client.get(url).send().await {
            let status = response.status();
            return (status, response.json().await.unwrap_or(Value::Null));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the worker did not answer {url} within 20 s");
}

async fn a_worker_answers_health_and_readiness_probes_on_its_metrics_bind(app: TestApp) {
    // Arrange
    let port = free_port();
    let _worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_ballpark"))
        .args(["worker", "--database-url", &app.database_url])
        .env("BALLPARK_MEDIA_DIR", app.media_dir())
        .env("BALLPARK_METRICS_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the ballpark binary starts");

    // Act
    let health = first_answer(&app.client, &format!("http://127.0.0.1:{port}/healthz")).await;
    let ready = first_answer(&app.client, &format!("http://127.0.0.1:{port}/readyz")).await;

    // Assert
    assert_eq!(health.0, StatusCode::OK, "{}", health.1);
    assert_eq!(health.1["status"], "ok");
    assert_eq!(ready.0, StatusCode::OK, "{}", ready.1);
    assert_eq!(ready.1["status"], "ready");
}

fn no_workers_in_the_app(config: &mut ballpark::config::Config) {
    config.workers = false;
}

crate::on_both_backends_with!(
    separate_worker,
    no_workers_in_the_app;
    a_worker_answers_health_and_readiness_probes_on_its_metrics_bind,
);
