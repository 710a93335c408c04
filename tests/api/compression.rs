//! Response compression: text comes back gzip- or brotli-compressed when the client asks for
//! it, and not otherwise; pictures (already compressed) and event streams (which must arrive
//! event by event) never are.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::orders::{open_shop, place};
use crate::uploads::{jpeg_with_exif, post_file, settled};

/// The Content-Encoding `path` comes back with, given this Accept-Encoding, and how many
/// bytes came over the wire.
async fn encoding_of(app: &TestApp, path: &str, accept: Option<&str>) -> (Option<String>, usize) {
    let mut request = app.client.get(app.url(path));
    if let Some(accept) = accept {
        request = request.header(ACCEPT_ENCODING, accept);
    }
    let response = request.send().await.expect("request sent");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_string());
    let length = response.bytes().await.expect("body").len();
    (encoding, length)
}

async fn the_openapi_document_and_the_swagger_script_are_compressed_on_request(app: TestApp) {
    for path in ["/api/openapi.json", "/api/docs/swagger-ui-bundle.js"] {
        // Act
        let (plain, plain_length) = encoding_of(&app, path, None).await;
        let (gzip, gzip_length) = encoding_of(&app, path, Some("gzip")).await;
        let (brotli, brotli_length) = encoding_of(&app, path, Some("br")).await;

        // Assert
        assert_eq!(plain, None, "{path} without Accept-Encoding");
        assert_eq!(gzip.as_deref(), Some("gzip"), "{path}");
        assert_eq!(brotli.as_deref(), Some("br"), "{path}");
        assert!(
            gzip_length * 2 < plain_length && brotli_length * 2 < plain_length,
            "{path}: {plain_length} bytes, gzip {gzip_length}, br {brotli_length}"
        );
    }
}

async fn pictures_are_not_compressed_again(app: TestApp) {
    // Arrange
    let token = app.register("photographer").await;
    let (status, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 64), "a.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let upload = settled(&app, body["upload"]["id"].as_str().unwrap()).await;
    let url = upload["url"].as_str().expect("the display image's URL");

    // Act
    let (encoding, _) = encoding_of(&app, url, Some("gzip, br")).await;

    // Assert
    assert_eq!(encoding, None);
}

async fn an_order_event_stream_is_not_compressed_and_still_streams(app: TestApp) {
    // Arrange: an order, whose history already holds its `placed` event.
    let shop = open_shop(&app).await;
    let (status, placed) = place(&app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap();

    // Act
    let response = app
        .client
        .get(app.url(&format!("/api/orders/{id}/events")))
        .header("Authorization", format!("Token {}", shop.fan))
        .header(ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .expect("request sent");

    // Assert: the first event arrives by itself, while the stream stays open.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    assert!(response.headers().get(CONTENT_ENCODING).is_none());
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first event came without waiting for the stream to end")
        .expect("a chunk")
        .expect("readable");
    assert!(
        String::from_utf8_lossy(&first).contains("placed"),
        "{first:?}"
    );
}

crate::on_both_backends!(
    the_openapi_document_and_the_swagger_script_are_compressed_on_request,
    pictures_are_not_compressed_again,
    an_order_event_stream_is_not_compressed_and_still_streams,
);
