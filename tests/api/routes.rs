//! Routing as clients see it: every API route answers with or without a trailing slash
//! (a widely used Conduit frontend posts to `/api/articles/`), and the web UI's pages too.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A value for a path parameter that lets the route match. Not necessarily one naming an
/// existing resource: a 404 about the resource is fine, a 404 about the route is not.
fn fill_parameters(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("closed parameter") + start;
        out.push_str(&rest[..start]);
        out.push_str(match &rest[start + 1..end] {
            "team" => "lg",
            "id" | "upload" | "order" => "1",
            _ => "someone",
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// True when the answer says no route matched (as opposed to a handler's own 404 about the
/// resource it looked up).
fn no_route(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body["errors"]["body"][0] == "route not found")
}

async fn every_api_route_answers_the_same_with_a_trailing_slash(app: TestApp) {
    // Arrange
    let token = app.register("slasher").await;
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;

    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let path = fill_parameters(path);
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));

            // Act
            let (plain_status, plain_body) = app
                .request(method.clone(), &path, Some(&token), body.clone())
                .await;
            let (slashed_status, slashed_body) = app
                .request(method.clone(), &format!("{path}/"), Some(&token), body)
                .await;

            // Assert
            assert!(
                !no_route(plain_status, &plain_body),
                "{method} {path} is documented but not routed: {plain_status} {plain_body}"
            );
            assert!(
                !no_route(slashed_status, &slashed_body),
                "{method} {path}/ answers {slashed_status} {slashed_body} where {path} answers {plain_status}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations in the document");
}

async fn posting_an_article_to_the_slashed_collection_creates_it(app: TestApp) {
    // Arrange
    let token = app.register("frontend").await;

    // Act
    let (status, body) = app
        .post(
            "/api/articles/",
            Some(&token),
            json!({"article": {"title": "Slash", "description": "d", "body": "b", "tagList": ["kbo"]}}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["article"]["title"], "Slash");
    let (status, listed) = app.get("/api/articles/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["articlesCount"], 1, "{listed}");
    let (status, tags) = app.get("/api/tags/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tags["tags"], json!(["kbo"]));
}

async fn the_home_page_and_slashed_web_pages_are_served(app: TestApp) {
    // Act
    let home = app.client.get(app.url("/")).send().await.unwrap();
    let stadiums = app.client.get(app.url("/stadiums/")).send().await.unwrap();
    let missing = app.client.get(app.url("/nowhere/")).send().await.unwrap();

    // Assert
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("<html"));
    assert_eq!(stadiums.status(), StatusCode::OK);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

crate::on_both_backends!(
    every_api_route_answers_the_same_with_a_trailing_slash,
    posting_an_article_to_the_slashed_collection_creates_it,
    the_home_page_and_slashed_web_pages_are_served,
);
