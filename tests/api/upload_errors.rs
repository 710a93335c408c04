//! How uploads fail at the HTTP level: an oversized body is 413 however it is sent, a body
//! that is not multipart says what was expected (415), and served media is never sniffed.

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::Value;

use ballpark::config::Config;

use crate::helpers::TestApp;
use crate::uploads::{jpeg_with_exif, post_file, settled};

const LIMIT: usize = 64 * 1024;

fn small_upload_limit(config: &mut Config) {
    config.upload_limit_bytes = LIMIT;
}

/// A multipart body with one `file` field holding `file`, sent in 8 KiB chunks through a
/// stream, so that no Content-Length is declared and the server only finds out while reading.
fn chunked_multipart(file: &[u8]) -> (String, reqwest::Body) {
    let boundary = "ballparkboundary";
    let mut bytes = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(file);
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    (
        format!("multipart/form-data; boundary={boundary}"),
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
    )
}

async fn an_oversized_chunked_upload_answers_413(app: TestApp) {
    // Arrange
    let token = app.register("bigsender").await;
    // Just over the limit: all of it fits in the socket buffers, so the client has finished
    // writing when the 413 comes back and reads it instead of failing on a closed socket.
    let (content_type, body) = chunked_multipart(&vec![0xAB; LIMIT + 8 * 1024]);

    // Act
    let response = app
        .client
        .post(app.url("/api/uploads"))
        .header("Authorization", format!("Token {token}"))
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("upload sent");

    // Assert
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(
        body["errors"]["body"][0], "request body too large",
        "{body}"
    );
}

async fn a_chunked_upload_under_the_limit_is_accepted(app: TestApp) {
    // Arrange: the same streamed framing, under the limit, carrying a real picture.
    let token = app.register("smallsender").await;
    let (content_type, body) = chunked_multipart(&jpeg_with_exif(32, 32));

    // Act
    let response = app
        .client
        .post(app.url("/api/uploads"))
        .header("Authorization", format!("Token {token}"))
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("upload sent");

    // Assert
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

async fn a_json_body_sent_to_uploads_answers_415_saying_what_is_expected(app: TestApp) {
    // Arrange
    let token = app.register("jsonsender").await;

    // Act
    let (status, body) = app
        .post(
            "/api/uploads",
            Some(&token),
            serde_json::json!({"file": "not a picture"}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let message = body["errors"]["body"][0].as_str().unwrap_or_default();
    assert!(
        message.contains("multipart/form-data") && message.contains("`file`"),
        "{body}"
    );
}

async fn served_media_and_its_404s_say_nosniff(app: TestApp) {
    // Arrange
    let token = app.register("sniffer").await;
    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(32, 32), "a.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = settled(&app, body["upload"]["id"].as_str().unwrap()).await;
    let url = upload["url"].as_str().expect("the display image's URL");

    // Act
    let found = app.client.get(app.url(url)).send().await.unwrap();
    let missing = app
        .client
        .get(app.url(&format!("/media/{}/display.jpg", uuid::Uuid::nil())))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(found.status(), StatusCode::OK);
    assert_eq!(found.headers()["x-content-type-options"], "nosniff");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
}

crate::on_both_backends_with!(limited, small_upload_limit;
    an_oversized_chunked_upload_answers_413,
    a_chunked_upload_under_the_limit_is_accepted,
);

crate::on_both_backends!(
    a_json_body_sent_to_uploads_answers_415_saying_what_is_expected,
    served_media_and_its_404s_say_nosniff,
);
