//! Uploads: stored at once (202), optimised by a queued job, given WebP variants by a second
//! one, served with cache headers.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use ballpark::db::Db;
use ballpark::queue::{JobStatus, NewJob};

use crate::helpers::TestApp;

/// The image corpus the media tests make (hostile inputs included), shared rather than copied.
#[path = "../media/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

/// A `width × height` JPEG with an EXIF block (orientation 6, and a GPS tag), made here so the
/// test needs no binary fixture.
pub(crate) fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| {
            let v = (i % 251) as u8;
            [v, 255 - v, 128]
        })
        .collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(width as usize, height as usize);
    let mut started = compress.start_compress(Vec::new()).expect("start");
    started.write_marker(mozjpeg::Marker::APP(1), &exif_orientation_6_with_gps());
    started.write_scanlines(&pixels).expect("scanlines");
    started.finish().expect("finish")
}

/// `Exif\0\0` + a little-endian TIFF with IFD0 {Orientation = 6, GPSInfo → GPS IFD {GPSLatitudeRef = N}}.
fn exif_orientation_6_with_gps() -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
    tiff.extend_from_slice(&2u16.to_le_bytes()); // two entries
                                                 // Orientation (0x0112), SHORT, 1, value 6
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&6u16.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    // GPSInfo (0x8825), LONG, 1, offset of the GPS IFD (8 + 2 + 24 + 4 = 38)
    tiff.extend_from_slice(&0x8825u16.to_le_bytes());
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&38u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
                                                 // GPS IFD: GPSLatitudeRef (0x0001), ASCII, 2, "N\0"
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&2u32.to_le_bytes());
    tiff.extend_from_slice(b"N\0\0\0");
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    app1
}

pub(crate) async fn post_file(
    app: &TestApp,
    token: Option<&str>,
    bytes: Vec<u8>,
    name: &str,
) -> (StatusCode, Value) {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    let mut request = app.client.post(app.url("/api/uploads")).multipart(form);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    let response = request.send().await.expect("upload sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the upload until its WebP variants are recorded (the second job is done).
pub(crate) async fn with_webp(app: &TestApp, id: &str) -> Value {
    for _ in 0..400 {
        let (status, body) = app.get(&format!("/api/uploads/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if !body["upload"]["webpUrl"].is_null() {
            return body["upload"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("upload {id} has no WebP variants after 20 s");
}

/// Fetches a served variant, checking the headers every variant gets; returns its bytes and
/// ETag.
async fn fetch_variant(app: &TestApp, url: &str, content_type: &str) -> (Vec<u8>, String) {
    let response = app.client.get(app.url(url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(response.headers()["content-type"], content_type, "{url}");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"),
        "{url}"
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    (response.bytes().await.unwrap().to_vec(), etag)
}

/// Decodes a WebP file and returns its size.
fn webp_dimensions(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::WebP)
        .expect("the WebP variant decodes");
    (image.width(), image.height())
}

/// Polls the upload until it leaves `pending` (the worker runs in-process).
pub(crate) async fn settled(app: &TestApp, id: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = app.get(&format!("/api/uploads/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["upload"]["status"] != "pending" {
            return body["upload"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("upload {id} still pending after 10 s");
}

async fn an_upload_answers_202_at_once_and_a_job_makes_upright_stripped_variants(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(480, 320), "photo.jpg").await;

    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["upload"]["status"], "pending");
    assert_eq!(body["upload"]["format"], "jpeg");
    let id = body["upload"]["id"].as_str().unwrap().to_string();
    let upload = settled(&app, &id).await;
    assert_eq!(upload["status"], "ready", "{upload}");
    // Orientation 6: the stored 480×320 is shown rotated, 320×480; small images are not upscaled.
    assert_eq!(
        (upload["width"].as_i64(), upload["height"].as_i64()),
        (Some(320), Some(480))
    );
    let display = app
        .client
        .get(app.url(upload["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(display.status(), StatusCode::OK);
    assert_eq!(display.headers()["content-type"], "image/jpeg");
    assert!(display.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let etag = display.headers()["etag"].clone();
    let bytes = display.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    assert!(
        !bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "the optimised image still carries EXIF (GPS)"
    );
    let revalidated = app
        .client
        .get(app.url(upload["url"].as_str().unwrap()))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    let thumb = app
        .client
        .get(app.url(upload["thumbnailUrl"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    // The original was replaced by the optimised image.
    let original = app
        .client
        .get(app.url(&format!("/media/{id}/original")))
        .send()
        .await
        .unwrap();
    assert_eq!(original.status(), StatusCode::NOT_FOUND);
}

async fn a_second_job_adds_webp_variants_of_the_same_sizes(app: TestApp) {
    let token = app.register("jake").await;
    let (_, body) = post_file(&app, Some(&token), jpeg_with_exif(2400, 1800), "photo.jpg").await;
    let id = body["upload"]["id"].as_str().unwrap().to_string();

    let upload = with_webp(&app, &id).await;

    assert_eq!(upload["status"], "ready", "{upload}");
    assert_eq!(upload["webpUrl"], format!("/media/{id}/display.webp"));
    assert_eq!(
        upload["thumbnailWebpUrl"],
        format!("/media/{id}/thumb.webp")
    );
    // Orientation 6: 2400×1800 stored, 1200×1600 shown, thumbnail 300×400; WebP the same.
    assert_eq!(
        (upload["width"].as_u64(), upload["height"].as_u64()),
        (Some(1200), Some(1600))
    );
    let (display, etag) =
        fetch_variant(&app, upload["webpUrl"].as_str().unwrap(), "image/webp").await;
    assert_eq!(webp_dimensions(&display), (1200, 1600));
    assert_eq!(
        upload["displayWebpBytes"].as_u64(),
        Some(display.len() as u64)
    );
    let (thumb, _) = fetch_variant(
        &app,
        upload["thumbnailWebpUrl"].as_str().unwrap(),
        "image/webp",
    )
    .await;
    assert_eq!(webp_dimensions(&thumb), (300, 400));
    assert_eq!(
        upload["thumbnailWebpBytes"].as_u64(),
        Some(thumb.len() as u64)
    );
    let revalidated = app
        .client
        .get(app.url(upload["webpUrl"].as_str().unwrap()))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
}

async fn webp_fields_are_null_until_the_webp_job_is_done(app: TestApp) {
    let token = app.register("jake").await;

    let (_, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "photo.jpg").await;

    // Answered before any job ran: the WebP job does not even exist yet.
    for field in [
        "webpUrl",
        "thumbnailWebpUrl",
        "displayWebpBytes",
        "thumbnailWebpBytes",
    ] {
        assert!(body["upload"][field].is_null(), "{field}: {body}");
    }
    let id = body["upload"]["id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/media/{id}/display.webp"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_webp_job_delivered_again_changes_nothing(app: TestApp) {
    let token = app.register("jake").await;
    let (_, body) = post_file(&app, Some(&token), jpeg_with_exif(640, 480), "photo.jpg").await;
    let id = body["upload"]["id"].as_str().unwrap().to_string();
    let before = with_webp(&app, &id).await;
    let (_, etag_before) =
        fetch_variant(&app, before["webpUrl"].as_str().unwrap(), "image/webp").await;

    // A second delivery of the same job, as after a lost acknowledgement.
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let job_id = ballpark::queue::enqueue(
        &db,
        NewJob::new("images", "image.webp", serde_json::json!({ "upload": id })),
    )
    .await
    .unwrap();
    let mut finished = None;
    for _ in 0..200 {
        let job = ballpark::queue::store::get(&db, job_id)
            .await
            .unwrap()
            .unwrap();
        if job.status == JobStatus::Done || job.status == JobStatus::Dead {
            finished = Some(job);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let job = finished.expect("the repeated job ran");
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    let (_, after) = app.get(&format!("/api/uploads/{id}"), None).await;
    assert_eq!(after["upload"], before);
    let (_, etag_after) =
        fetch_variant(&app, before["webpUrl"].as_str().unwrap(), "image/webp").await;
    assert_eq!(etag_after, etag_before);
    db.close().await;
}

async fn a_file_that_is_not_an_image_is_refused_with_422(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) =
        post_file(&app, Some(&token), b"just some text".to_vec(), "photo.jpg").await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["file"][0]
        .as_str()
        .unwrap()
        .contains("not an image"));
}

async fn uploading_without_a_token_returns_401(app: TestApp) {
    let (status, _) = post_file(&app, None, jpeg_with_exif(16, 16), "a.jpg").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_truncated_jpeg_ends_failed_with_a_reason(app: TestApp) {
    let token = app.register("jake").await;
    let mut bytes = jpeg_with_exif(400, 300);
    bytes.truncate(bytes.len() / 3);

    let (status, body) = post_file(&app, Some(&token), bytes, "cut.jpg").await;

    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = settled(&app, body["upload"]["id"].as_str().unwrap()).await;
    assert_eq!(upload["status"], "failed", "{upload}");
    assert!(upload["error"].as_str().is_some_and(|e| !e.is_empty()));
}

async fn an_image_over_the_pixel_limit_ends_failed_without_being_decoded(app: TestApp) {
    let token = app.register("jake").await;
    // A PNG header claiming 100000 × 100000 pixels, and no image data.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&0u32.to_be_bytes()); // CRC (not checked before the size is)

    let (status, body) = post_file(&app, Some(&token), png, "bomb.png").await;

    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = settled(&app, body["upload"]["id"].as_str().unwrap()).await;
    assert_eq!(upload["status"], "failed", "{upload}");
    assert!(
        upload["error"].as_str().unwrap().contains("limit"),
        "{upload}"
    );
}

/// Uploads `bytes` and waits for its job to settle; returns the upload and how long that took.
async fn upload_and_settle(app: &TestApp, bytes: Vec<u8>, name: &str) -> (Value, Duration) {
    let token = app.register("jake").await;
    let start = std::time::Instant::now();
    let (status, body) = post_file(app, Some(&token), bytes, name).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = settled(app, body["upload"]["id"].as_str().unwrap()).await;
    (upload, start.elapsed())
}

async fn a_jpeg_with_thousands_of_scans_ends_failed_at_once_naming_the_scan_limit(app: TestApp) {
    let bomb = fixtures::jpeg_with_scans(256, 256, 5_000);

    let (upload, took) = upload_and_settle(&app, bomb, "scans.jpg").await;

    assert_eq!(upload["status"], "failed", "{upload}");
    let reason = upload["error"].as_str().unwrap();
    assert!(
        reason.contains("5000 scans") && reason.contains("500"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

async fn a_gif_whose_screen_its_bytes_cannot_fill_ends_failed_at_once(app: TestApp) {
    let bomb = fixtures::gif_canvas_bomb();

    let (upload, took) = upload_and_settle(&app, bomb, "screen.gif").await;

    assert_eq!(upload["status"], "failed", "{upload}");
    let reason = upload["error"].as_str().unwrap();
    assert!(reason.contains("7000×7000 screen"), "{reason}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// One second for an image job: the least the setting allows.
fn one_second_image_jobs(config: &mut ballpark::config::Config) {
    config.image_job_timeout_secs = 1;
}

async fn an_image_job_over_its_time_budget_ends_failed_and_frees_its_thread(app: TestApp) {
    // 490 scans, under the scan limit, each another pass over 3000×3000 pixels: seconds of
    // decoding in a debug build, so the budget runs out between two scans.
    let slow = fixtures::jpeg_with_scans(3000, 3000, 490);

    let (upload, took) = upload_and_settle(&app, slow, "slow.jpg").await;

    assert_eq!(upload["status"], "failed", "{upload}");
    let reason = upload["error"].as_str().unwrap();
    assert!(reason.contains("longer than 1 s"), "{reason}");
    // The reason above is what proves the budget (without it the job ends `ready`). The bound
    // here only catches a budget that is checked far too rarely: it allows for the upload, the
    // polling and a test run that shares 2 cores with 650 other tests (it took 4.0 s there).
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The image thread is free again: a normal upload is processed next.
    let token = app.register("jane").await;
    let (_, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "a.jpg").await;
    let next = settled(&app, body["upload"]["id"].as_str().unwrap()).await;
    assert_eq!(next["status"], "ready", "{next}");
}

/// Two uploads a minute per user.
fn two_uploads_a_minute(config: &mut ballpark::config::Config) {
    config.upload_rate_per_minute = 2;
}

async fn uploads_beyond_the_per_user_rate_get_429_with_retry_after(app: TestApp) {
    let jake = app.register("jake").await;
    let jane = app.register("jane").await;
    for _ in 0..2 {
        let (status, body) = post_file(&app, Some(&jake), jpeg_with_exif(16, 16), "a.jpg").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    let form = Form::new().part(
        "file",
        Part::bytes(jpeg_with_exif(16, 16)).file_name("a.jpg"),
    );
    let refused = app
        .client
        .post(app.url("/api/uploads"))
        .header("Authorization", format!("Token {jake}"))
        .multipart(form)
        .send()
        .await
        .unwrap();

    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Two a minute: the next one in up to 30 s, rounded up to whole seconds.
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=30).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body: Value = refused.json().await.unwrap();
    assert!(body["errors"]["body"][0]
        .as_str()
        .unwrap()
        .contains("too many requests"));
    let (status, body) = post_file(&app, Some(&jane), jpeg_with_exif(16, 16), "a.jpg").await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "another user has a quota of their own: {body}"
    );
}

async fn an_unknown_upload_returns_404(app: TestApp) {
    let (status, _) = app.get("/api/uploads/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/media/nope/display.jpg", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

crate::on_both_backends!(
    an_upload_answers_202_at_once_and_a_job_makes_upright_stripped_variants,
    a_second_job_adds_webp_variants_of_the_same_sizes,
    webp_fields_are_null_until_the_webp_job_is_done,
    a_webp_job_delivered_again_changes_nothing,
    a_file_that_is_not_an_image_is_refused_with_422,
    uploading_without_a_token_returns_401,
    a_truncated_jpeg_ends_failed_with_a_reason,
    an_image_over_the_pixel_limit_ends_failed_without_being_decoded,
    an_unknown_upload_returns_404,
    a_jpeg_with_thousands_of_scans_ends_failed_at_once_naming_the_scan_limit,
    a_gif_whose_screen_its_bytes_cannot_fill_ends_failed_at_once,
);

crate::on_both_backends_with!(
    with_one_second_image_jobs,
    one_second_image_jobs;
    an_image_job_over_its_time_budget_ends_failed_and_frees_its_thread,
);

crate::on_both_backends_with!(
    with_two_uploads_a_minute,
    two_uploads_a_minute;
    uploads_beyond_the_per_user_rate_get_429_with_retry_after,
);

/// The same jobs through RabbitMQ: the outbox relay publishes them, a consumer runs them.
pub fn via_rabbitmq(config: &mut ballpark::config::Config) {
    config.broker = Some(ballpark::config::Secret::new(crate::helpers::amqp_url()));
    config.images_queue = format!("images-test-{}", uuid::Uuid::new_v4().simple());
    config.orders_queue = format!("orders-test-{}", uuid::Uuid::new_v4().simple());
}

crate::on_both_backends_with!(
    through_rabbitmq,
    via_rabbitmq;
    an_upload_answers_202_at_once_and_a_job_makes_upright_stripped_variants,
    a_second_job_adds_webp_variants_of_the_same_sizes,
    a_truncated_jpeg_ends_failed_with_a_reason,
);
