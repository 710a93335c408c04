//! Operations: probes, the OpenAPI document and its docs UI, request ids, CORS, and graceful
//! shutdown.

use std::time::Duration;

use ballpark::config::Config;
use reqwest::header::{CONTENT_TYPE, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{enc, Backend, TestApp};

fn request_id(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_default()
}

/// An article's `view_count` as stored, read straight from the database.
async fn stored_view_count(app: &TestApp, slug: &str) -> i64 {
    let sql = "SELECT view_count FROM articles WHERE slug = $1";
    match app.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url)
                .await
                .expect("open the SQLite file");
            let count = sqlx::query_scalar(sql).bind(slug).fetch_one(&pool).await;
            pool.close().await;
            count.expect("article row")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url)
                .await
                .expect("connect to the test database");
            let count = sqlx::query_scalar(sql).bind(slug).fetch_one(&pool).await;
            pool.close().await;
            count.expect("article row")
        }
    }
}

// ---------------------------------------------------------------- probes and docs

async fn healthz_returns_200_ok(app: TestApp) {
    let (status, body) = app.get("/healthz", None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

async fn readyz_returns_200_ready_when_the_database_answers(app: TestApp) {
    let (status, body) = app.get("/readyz", None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ready"}));
}

async fn the_openapi_document_is_version_3_1_and_lists_the_api_paths(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("request sent");

    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = res.json().await.expect("valid JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths object");
    for path in [
        "/api/articles",
        "/api/users/login",
        "/api/users",
        "/api/user",
        "/api/profiles/{username}",
        "/api/profiles/{username}/follow",
        "/api/articles/{slug}",
        "/api/tags",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}

async fn the_docs_page_loads_the_vendored_swagger_ui_and_no_cdn(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/docs"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();

    let script = app
        .client
        .get(app.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .expect("request sent");
    let css = app
        .client
        .get(app.url("/api/docs/swagger-ui.css"))
        .send()
        .await
        .expect("request sent");

    assert!(html.contains("/api/docs/swagger-ui-bundle.js"), "{html}");
    assert!(html.contains("/api/openapi.json"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.headers()[CONTENT_TYPE], "text/javascript");
    assert!(script.text().await.unwrap().contains("SwaggerUIBundle"));
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()[CONTENT_TYPE], "text/css");
}

// ---------------------------------------------------------------- errors and request ids

async fn an_unknown_route_returns_404_json_with_the_request_id(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/no-such-thing"))
        .send()
        .await
        .expect("request sent");

    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let id = request_id(&res);
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["errors"]["body"], json!(["route not found"]));
    assert!(!id.is_empty());
    assert_eq!(body["requestId"], id.as_str());
}

async fn a_wrong_method_on_a_known_route_returns_405_json_with_the_request_id(app: TestApp) {
    let res = app
        .client
        .patch(app.url("/api/tags"))
        .send()
        .await
        .expect("request sent");

    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = res.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET"), "{allow}");
    let id = request_id(&res);
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null);
    assert!(body["errors"].is_object(), "not an API error body: {body}");
    assert_eq!(body["requestId"], id.as_str());
}

async fn every_response_carries_its_own_x_request_id(app: TestApp) {
    let token = app.register("jake").await;
    let requests = [
        app.client.get(app.url("/healthz")),
        app.client.get(app.url("/api/tags")),
        app.client.get(app.url("/api/user")),
        app.client
            .get(app.url("/api/user"))
            .header("Authorization", format!("Token {token}")),
        app.client.get(app.url("/api/profiles/nobody")),
        app.client.get(app.url("/api/docs")),
        app.client.post(app.url("/api/users")).json(&json!({})),
    ];
    let mut ids = Vec::new();

    for request in requests {
        let res = request.send().await.expect("request sent");
        ids.push((res.status(), request_id(&res)));
    }

    assert!(ids.iter().all(|(_, id)| !id.is_empty()), "{ids:?}");
    let mut unique: Vec<_> = ids.iter().map(|(_, id)| id.clone()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "request ids repeat: {ids:?}");
}

async fn a_request_id_sent_by_the_client_is_kept_in_header_and_error_body(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/user"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("request sent");

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(request_id(&res), "trace-me-123");
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["requestId"], "trace-me-123");
}

// ---------------------------------------------------------------- CORS

async fn a_cors_preflight_is_answered_with_allow_origin(app: TestApp) {
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/api/articles"))
        .header(ORIGIN, "https://conduit.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("request sent");

    assert!(res.status().is_success(), "{}", res.status());
    let headers = res.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    assert!(headers.contains_key("access-control-allow-headers"));
}

async fn a_cross_origin_request_exposes_the_request_id_header(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/tags"))
        .header(ORIGIN, "https://conduit.example")
        .send()
        .await
        .expect("request sent");

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

// ---------------------------------------------------------------- shutdown

async fn stopping_completes_and_the_port_then_refuses_connections(app: TestApp) {
    let addr = app.addr;
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);

    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("stop finishes within 10 s");

    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

crate::on_both_backends!(
    healthz_returns_200_ok,
    readyz_returns_200_ready_when_the_database_answers,
    the_openapi_document_is_version_3_1_and_lists_the_api_paths,
    the_docs_page_loads_the_vendored_swagger_ui_and_no_cdn,
    an_unknown_route_returns_404_json_with_the_request_id,
    a_wrong_method_on_a_known_route_returns_405_json_with_the_request_id,
    every_response_carries_its_own_x_request_id,
    a_request_id_sent_by_the_client_is_kept_in_header_and_error_body,
    a_cors_preflight_is_answered_with_allow_origin,
    a_cross_origin_request_exposes_the_request_id_header,
    stopping_completes_and_the_port_then_refuses_connections,
    a_request_in_flight_at_shutdown_still_completes,
);

// ---------------------------------------------------------------- custom configurations

/// Flushing only at shutdown (the first tick, at start, finds nothing to write), so what the
/// database holds afterwards was written by the shutdown.
fn flush_views_only_at_shutdown(config: &mut Config) {
    config.view_flush_interval_ms = 3_600_000;
}

/// CORS limited to one origin instead of the default `*`.
fn one_cors_origin(config: &mut Config) {
    config.cors_origins = vec!["https://conduit.example".into()];
}

async fn stopping_flushes_view_counts_buffered_in_memory(mut app: TestApp) {
    let token = app.register("jake").await;
    let slug = app.create_article(&token, "Counted", &[]).await["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/articles/{}", enc(&slug));
    app.get(&path, None).await;
    let (status, body) = app.get(&path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["article"]["viewCount"], 2);
    assert_eq!(stored_view_count(&app, &slug).await, 0, "not yet flushed");

    app.stop_keeping_database().await;

    assert_eq!(stored_view_count(&app, &slug).await, 2);
}

async fn a_request_in_flight_at_shutdown_still_completes(mut app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({"user": {"username": "late", "email": "late@example.com", "password": "password123"}})
        .to_string();
    let (first, rest) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Let the server read the head and start the handler, which now waits for the body.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let finish_request = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(rest.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    let (response, ()) = tokio::join!(finish_request, app.stop_keeping_database());

    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight request was cut off: {response:?}"
    );
}

async fn a_view_requested_as_shutdown_begins_is_still_flushed(mut app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let token = app.register("jake").await;
    let slug = app.create_article(&token, "Counted late", &[]).await["slug"]
        .as_str()
        .unwrap()
        .to_string();
    // All of the request but its final blank line: the server has started reading it, so
    // it serves it during the drain, as it should any request in progress.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "GET /api/articles/{} HTTP/1.1\r\nHost: test\r\n",
        enc(&slug)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let finish_request = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(b"\r\n").await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    let (response, ()) = tokio::join!(finish_request, app.stop_keeping_database());

    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(response.contains(r#""viewCount":1"#), "{response:?}");
    assert_eq!(
        stored_view_count(&app, &slug).await,
        1,
        "the view was answered during the drain but never written"
    );
}

async fn cors_with_one_allowed_origin_answers_only_that_origin(app: TestApp) {
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/articles"))
            .header(ORIGIN, origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };

    let allowed = preflight("https://conduit.example").await.unwrap();
    let refused = preflight("https://evil.example").await.unwrap();

    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://conduit.example"
    );
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));
}

crate::on_both_backends_with!(
    views_flushed_only_at_shutdown,
    flush_views_only_at_shutdown;
    stopping_flushes_view_counts_buffered_in_memory,
    a_view_requested_as_shutdown_begins_is_still_flushed,
);
crate::on_both_backends_with!(
    with_one_cors_origin,
    one_cors_origin;
    cors_with_one_allowed_origin_answers_only_that_origin,
);
