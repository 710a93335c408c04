//! A real `ballpark worker` process, killed with SIGKILL in the middle of an image job and
//! started again: the job must finish exactly once, with a correct result.

use std::process::Stdio;
use std::time::Duration;

use ballpark::db::Db;
use ballpark::{on_read, on_write};
use reqwest::StatusCode;
use tokio::process::{Child, Command};

use crate::helpers::TestApp;
use crate::uploads::{jpeg_with_exif, post_file};

/// The lease of the worker processes: how soon a killed worker's job runs again.
const LEASE_SECS: &str = "2";

fn start_worker(app: &TestApp) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ballpark"))
        .args(["worker", "--database-url", &app.database_url])
        .env("BALLPARK_MEDIA_DIR", app.media_dir())
        .env("BALLPARK_JOB_LEASE_SECS", LEASE_SECS)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the ballpark binary starts")
}

async fn job_state(db: &Db) -> Option<(String, i32)> {
    on_read!(db, pool => sqlx::query_as::<_, (String, i32)>(
        "SELECT status, attempts FROM jobs WHERE kind = 'image.optimize'")
        .fetch_optional(pool)
        .await)
    .expect("jobs readable")
}

async fn a_worker_killed_mid_image_job_finishes_it_exactly_once_after_a_restart(app: TestApp) {
    // Arrange: an upload whose job waits for a worker (this app runs none of its own).
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let token = app.register("jake").await;
    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(3000, 2000), "big.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["upload"]["id"].as_str().unwrap().to_string();

    // Act: a worker takes the job and is killed while it runs.
    let mut first = start_worker(&app);
    let mut running = false;
    for _ in 0..2000 {
        if job_state(&db).await.is_some_and(|(s, _)| s == "running") {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(running, "the worker never claimed the job");
    first.kill().await.expect("SIGKILL");
    let (_, upload) = app.get(&format!("/api/uploads/{id}"), None).await;
    assert_eq!(
        upload["upload"]["status"], "pending",
        "the job finished before the kill; the test needs a longer job"
    );
    let mut second = start_worker(&app);

    // Assert: after the lease expires the restarted worker finishes it, once.
    let mut finished = None;
    for _ in 0..600 {
        let (_, body) = app.get(&format!("/api/uploads/{id}"), None).await;
        if body["upload"]["status"] != "pending" {
            finished = Some(body["upload"].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().await.expect("SIGKILL");
    let upload = finished.expect("the job did not finish within 30 s of the restart");
    assert_eq!(upload["status"], "ready", "{upload}");
    // Orientation 6 turns the stored 3000×2000 upright: 1067×1600 after the resize.
    assert_eq!(upload["height"], 1600, "{upload}");
    assert_eq!(upload["width"], 1067, "{upload}");
    let (status, attempts) = job_state(&db).await.expect("the job row");
    assert_eq!(status, "done");
    assert_eq!(attempts, 2, "one interrupted run and one that finished");
    let jobs: Vec<(String, i64)> = on_write!(&db, pool => sqlx::query_as(
        "SELECT kind, COUNT(*) FROM jobs GROUP BY kind ORDER BY kind")
        .fetch_all(pool)
        .await)
    .unwrap();
    // One optimisation job, and one WebP job enqueued by the run that marked it ready.
    assert_eq!(
        jobs,
        vec![("image.optimize".into(), 1), ("image.webp".into(), 1)]
    );
    let display = app
        .client
        .get(app.url(upload["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(display.status(), StatusCode::OK);
    db.close().await;
}

fn no_workers_in_the_app(config: &mut ballpark::config::Config) {
    config.workers = false;
}

crate::on_both_backends_with!(
    separate_worker_process,
    no_workers_in_the_app;
    a_worker_killed_mid_image_job_finishes_it_exactly_once_after_a_restart,
);
