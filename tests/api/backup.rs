//! `ballpark backup` / `restore` (SQLite and the local media directory): a backup taken while
//! the server runs restores into a server that has the data and the media as they were.

use reqwest::StatusCode;
use serde_json::json;

use ballpark::config::{Config, Secret};

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use crate::uploads::{jpeg_with_exif, post_file, settled};

async fn login(app: &TestApp, name: &str) -> StatusCode {
    let body = json!({"user": {"email": format!("{name}@example.com"), "password": "password123"}});
    app.post("/api/users/login", None, body).await.0
}

fn config_of(app: &TestApp) -> Config {
    Config {
        database_url: Secret::new(app.database_url.clone()),
        media_dir: app.media_dir().display().to_string(),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_the_data_and_media_of_that_moment() {
    // Arrange: a running server with a user and a processed upload.
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.register("jake").await;
    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "p.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = settled(&app, body["upload"]["id"].as_str().unwrap()).await;
    assert_eq!(upload["status"], "ready", "{upload}");
    let image_url = upload["url"].as_str().unwrap().to_string();
    let backups = tempfile::tempdir().unwrap();
    let backup_dir = backups.path().join("nightly");

    // Act: back up while the server runs, write after it, then restore elsewhere.
    let taken = ballpark::backup::backup(&config_of(&app), &backup_dir)
        .await
        .expect("backup");
    app.register("after").await;
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_db = restored_dir.path().join("restored.db");
    let restored_media = restored_dir.path().join("media");
    let target = Config {
        database_url: Secret::new(format!("sqlite://{}", restored_db.display())),
        media_dir: restored_media.display().to_string(),
        ..Config::default()
    };
    let restored = ballpark::backup::restore(&target, &backup_dir, false)
        .await
        .expect("restore");
    let (url, media) = (target.database_url.clone(), target.media_dir.clone());
    let again = spawn_app_with(Backend::Sqlite, move |config| {
        config.database_url = url;
        config.media_dir = media;
    })
    .await;

    // Assert
    assert!(taken.media_files.unwrap() >= 2, "{taken:?}");
    assert_eq!(restored.media_files, taken.media_files);
    assert_eq!(login(&again, "jake").await, StatusCode::OK);
    assert_eq!(login(&again, "after").await, StatusCode::UNAUTHORIZED);
    let image = again
        .client
        .get(again.url(&image_url))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), StatusCode::OK, "{image_url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_over_an_existing_database_needs_force() {
    // Arrange
    let mut app = spawn_app(Backend::Sqlite).await;
    app.register("jake").await;
    let backups = tempfile::tempdir().unwrap();
    ballpark::backup::backup(&config_of(&app), backups.path())
        .await
        .expect("backup");
    app.stop_keeping_database().await;

    // Act
    let refused = ballpark::backup::restore(&config_of(&app), backups.path(), false).await;
    let forced = ballpark::backup::restore(&config_of(&app), backups.path(), true).await;

    // Assert
    let err = refused.unwrap_err().to_string();
    assert!(err.contains("--force"), "{err}");
    forced.expect("a forced restore replaces the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backing_up_into_a_folder_that_holds_a_backup_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let backups = tempfile::tempdir().unwrap();
    ballpark::backup::backup(&config_of(&app), backups.path())
        .await
        .expect("first backup");

    let second = ballpark::backup::backup(&config_of(&app), backups.path()).await;

    let err = second.unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backing_up_postgresql_points_to_pg_dump() {
    let app = spawn_app(Backend::Postgres).await;
    let backups = tempfile::tempdir().unwrap();

    let result = ballpark::backup::backup(&config_of(&app), backups.path()).await;

    let err = result.unwrap_err().to_string();
    assert!(err.contains("pg_dump"), "{err}");
}
