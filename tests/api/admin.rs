//! Admin endpoints: queue depth, dead jobs, retrying them; admins only.

use std::time::Duration;

use ballpark::db::Db;
use ballpark::queue::{self, Backoff, JobError, NewJob};
use reqwest::StatusCode;

use crate::helpers::TestApp;

/// Registers `name` and makes them an admin, as `ballpark user set-role` does.
pub(crate) async fn admin_token(app: &TestApp, db: &Db, name: &str) -> String {
    let token = app.register(name).await;
    assert!(
        ballpark::community::store::users::set_role(db, name, "admin")
            .await
            .unwrap()
    );
    token
}

/// Enqueues a job in a queue no worker serves and fails it permanently: a dead job.
pub(crate) async fn dead_job(db: &Db) -> i64 {
    queue::enqueue(
        db,
        NewJob::new("ops-test", "never.handled", serde_json::json!({"n": 1})),
    )
    .await
    .unwrap();
    let claimed = queue::store::claim(
        db,
        "ops-test",
        &["never.handled".to_string()],
        "test-worker",
        Duration::from_secs(30),
        1,
    )
    .await
    .unwrap();
    let job = &claimed[0];
    queue::fail(
        db,
        job,
        &JobError::permanent("the vendor said no"),
        &Backoff::default(),
    )
    .await
    .unwrap();
    job.id
}

async fn admins_see_dead_jobs_with_their_last_error_and_can_retry_them(app: TestApp) {
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let token = admin_token(&app, &db, "boss").await;
    let id = dead_job(&db).await;

    let (status, body) = app
        .get("/api/admin/jobs/dead?queue=ops-test", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["jobs"][0]["id"], id);
    assert_eq!(body["jobs"][0]["lastError"], "the vendor said no");
    let (_, stats) = app.get("/api/admin/queue", Some(&token)).await;
    let row = stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "ops-test")
        .cloned()
        .unwrap();
    assert_eq!(row["dead"], 1);

    let (status, _) = app
        .post(
            &format!("/api/admin/jobs/{id}/retry"),
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, after) = app
        .get("/api/admin/jobs/dead?queue=ops-test", Some(&token))
        .await;
    assert_eq!(after["jobs"].as_array().unwrap().len(), 0);
    let (status, _) = app
        .post(
            &format!("/api/admin/jobs/{id}/retry"),
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a queued job is not dead");
    db.close().await;
}

async fn a_fan_gets_403_from_admin_endpoints_and_anonymous_gets_401(app: TestApp) {
    let token = app.register("fan").await;

    let (status, _) = app.get("/api/admin/queue", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .get("/api/admin/jobs/dead?queue=images", Some(&token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get("/api/admin/queue", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

crate::on_both_backends!(
    admins_see_dead_jobs_with_their_last_error_and_can_retry_them,
    a_fan_gets_403_from_admin_endpoints_and_anonymous_gets_401,
);
