//! Uploads kept in an S3-compatible bucket (`storage_url = "s3://…"`), against a real S3
//! server: moto, which `scripts/services` installs and starts on 127.0.0.1:9000. Outside CI
//! these tests say why they skip when it is not running (see `scratch_bucket`).

use ballpark::config::{Config, Secret};
use ballpark::media::storage::Storage;
use reqwest::StatusCode;

use crate::helpers::{spawn_app_with, Backend};
use crate::scratch::{scratch_bucket, ScratchBucket};
use crate::uploads::{jpeg_with_exif, post_file, with_webp};

/// Points the app's storage at `bucket`, under `prefix`.
fn store_in(config: &mut Config, bucket: &ScratchBucket, prefix: &str) {
    let settings = bucket.settings(prefix);
    config.storage_url = Some(settings.url);
    config.s3_endpoint = settings.endpoint;
    config.s3_access_key_id = settings.access_key_id.map(Secret::new);
    config.s3_secret_access_key = settings.secret_access_key.map(Secret::new);
}

async fn an_upload_stored_in_s3_is_optimised_and_its_variants_are_served_from_the_bucket(
    backend: Backend,
) {
    let Some(bucket) = scratch_bucket(
        "an_upload_stored_in_s3_is_optimised_and_its_variants_are_served_from_the_bucket",
    )
    .await
    else {
        return;
    };
    let app = spawn_app_with(backend, |config| store_in(config, &bucket, "ballpark")).await;
    let token = app.register("jake").await;

    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(800, 600), "a.jpg").await;

    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["upload"]["id"].as_str().unwrap().to_string();
    let upload = with_webp(&app, &id).await;
    assert_eq!(upload["status"], "ready", "{upload}");
    for (field, content_type, size) in [
        ("url", "image/jpeg", "displayBytes"),
        ("thumbnailUrl", "image/jpeg", "thumbnailBytes"),
        ("webpUrl", "image/webp", "displayWebpBytes"),
        ("thumbnailWebpUrl", "image/webp", "thumbnailWebpBytes"),
    ] {
        let response = app
            .client
            .get(app.url(upload[field].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{field}");
        assert_eq!(response.headers()["content-type"], content_type, "{field}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(upload[size].as_u64(), Some(bytes.len() as u64), "{field}");
    }
    let (status, _) = app.get(&format!("/media/{id}/original"), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the original is deleted once ready"
    );
    // The files are in the bucket, under the prefix, and not on local disk.
    let expected: Vec<String> = ["display.jpg", "display.webp", "thumb.jpg", "thumb.webp"]
        .iter()
        .map(|file| format!("ballpark/{id}/{file}"))
        .collect();
    assert_eq!(bucket.keys().await, expected);
    assert_eq!(std::fs::read_dir(app.media_dir()).unwrap().count(), 0);
}

/// One test per database, named `sqlite::…` and `postgres::…` like the other API tests.
macro_rules! on_both_backends_with_a_backend {
    ($name:ident) => {
        mod sqlite {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
        }
        mod postgres {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    };
}

on_both_backends_with_a_backend!(
    an_upload_stored_in_s3_is_optimised_and_its_variants_are_served_from_the_bucket
);

#[tokio::test]
async fn the_s3_storage_reads_back_what_it_wrote_and_treats_missing_keys_as_absent() {
    let Some(bucket) =
        scratch_bucket("the_s3_storage_reads_back_what_it_wrote_and_treats_missing_keys_as_absent")
            .await
    else {
        return;
    };
    let storage = Storage::s3(&bucket.settings("")).unwrap();

    storage.put("a/b.jpg", b"bytes").await.unwrap();

    assert_eq!(storage.get("a/b.jpg").await.unwrap().unwrap(), b"bytes");
    assert_eq!(bucket.keys().await, vec!["a/b.jpg".to_string()]);
    assert!(storage.get("a/missing.jpg").await.unwrap().is_none());
    storage.delete("a/b.jpg").await.unwrap();
    assert!(storage.get("a/b.jpg").await.unwrap().is_none());
    storage.delete("a/b.jpg").await.unwrap();
}
