//! A NUL character in any text input: PostgreSQL cannot store one (the statement fails) and
//! SQLite ends a pattern at it, so every input refuses it up front. The API's inputs are
//! taken from its own OpenAPI document, so a newly documented one is covered too.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::openapi_walk::{operations, string_fields, with_field};

const NUL_IN_PATH: &str = "zz%00zz";
const NUL_IN_QUERY: &str = "zz%00zz";
const NUL_IN_BODY: &str = "zz\u{0}zz";

/// One input tried, and what came back when it was not what the API promises.
fn check(
    wrong: &mut Vec<String>,
    what: String,
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    field: Option<&str>,
) {
    let named = field.is_none_or(|field| body["errors"].get(field).is_some());
    if status != expected || !named {
        wrong.push(format!("{what} -> {status} {body}"));
    }
}

/// The vendor webhook is signed rather than authenticated: signed with the secret the test
/// app runs with, so that the signature is not what refuses the NUL.
async fn signed_webhook(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    use ballpark::orders::vendor::{sign, SIGNATURE_HEADER};
    let secret = ballpark::config::Config::default().vendor_webhook_secret;
    let bytes = serde_json::to_vec(body).unwrap();
    let response = app
        .client
        .post(app.url("/api/vendor/webhooks"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(secret.expose().as_bytes(), &bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_nul_in_any_documented_input_is_refused_with_404_or_422_never_500(app: TestApp) {
    // Arrange: a signed-in caller, so that authentication is not what refuses the request.
    let token = app.register("nul_tester").await;
    let operations = operations(&app).await;
    let mut wrong = Vec::new();
    let mut tried = 0;

    for operation in &operations {
        // Act / Assert: each path parameter.
        for param in &operation.path_params {
            let url = operation.url(&[(&param.name, NUL_IN_PATH)], &[]);
            let (status, body) = app
                .request(
                    operation.method.clone(),
                    &url,
                    Some(&token),
                    operation.sample_body(),
                )
                .await;
            tried += 1;
            check(&mut wrong, url, status, &body, StatusCode::NOT_FOUND, None);
        }

        // Each query parameter, named in the error.
        for param in &operation.query_params {
            let url = operation.url(&[], &[(&param.name, NUL_IN_QUERY)]);
            let (status, body) = app
                .request(
                    operation.method.clone(),
                    &url,
                    Some(&token),
                    operation.sample_body(),
                )
                .await;
            tried += 1;
            let field = Some(param.name.as_str());
            let expected = StatusCode::UNPROCESSABLE_ENTITY;
            check(&mut wrong, url, status, &body, expected, field);
        }

        // Each string in the JSON body, named in the error.
        if let Some(sample) = operation.sample_body() {
            let schema = operation.body.as_ref().expect("a body schema");
            for (steps, field) in string_fields(schema) {
                let body = with_field(sample.clone(), &steps, json!(NUL_IN_BODY));
                let (status, answer) = if operation.template == "/api/vendor/webhooks" {
                    signed_webhook(&app, &body).await
                } else {
                    app.request(
                        operation.method.clone(),
                        &operation.url(&[], &[]),
                        Some(&token),
                        Some(body),
                    )
                    .await
                };
                tried += 1;
                let what = format!("{} body {field}", operation.name());
                let expected = StatusCode::UNPROCESSABLE_ENTITY;
                check(&mut wrong, what, status, &answer, expected, Some(&field));
            }
        }
    }

    assert!(tried > 60, "only {tried} inputs tried");
    assert!(wrong.is_empty(), "refused wrongly:\n{}", wrong.join("\n"));
}

async fn a_nul_in_a_web_page_path_or_query_is_refused(app: TestApp) {
    // Arrange
    let pages = [
        ("/articles/%00", StatusCode::NOT_FOUND),
        ("/teams/lg%00", StatusCode::NOT_FOUND),
        ("/stadiums/jamsil%00", StatusCode::NOT_FOUND),
        ("/media/%00/x.jpg", StatusCode::NOT_FOUND),
        ("/?tag=%00", StatusCode::UNPROCESSABLE_ENTITY),
        ("/?tag=lg&q=a%00", StatusCode::UNPROCESSABLE_ENTITY),
    ];

    // Act
    let mut answers = Vec::new();
    for (page, _) in pages {
        let response = app.client.get(app.url(page)).send().await.unwrap();
        answers.push(response.status());
    }

    // Assert
    let expected: Vec<StatusCode> = pages.iter().map(|(_, status)| *status).collect();
    assert_eq!(answers, expected);
}

async fn searching_for_a_nul_no_longer_matches_every_article(app: TestApp) {
    // Arrange
    let token = app.register("writer").await;
    app.create_article(&token, "Opening day", &[]).await;

    // Act
    let (alone, alone_body) = app.get("/api/articles?q=%00", None).await;
    let (trailing, _) = app.get("/api/articles?q=zzzz%00", None).await;

    // Assert
    assert_eq!(alone, StatusCode::UNPROCESSABLE_ENTITY, "{alone_body}");
    assert_eq!(trailing, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(alone_body["errors"]["q"].is_array(), "{alone_body}");
}

async fn a_nul_spelled_with_an_escaped_backslash_is_ordinary_text(app: TestApp) {
    // Arrange: `\\u0000` in JSON is a backslash followed by `u0000`, not a NUL.
    let token = app.register("writer").await;

    // Act
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            serde_json::from_str(r#"{"user": {"bio": "\\u0000 is how JSON spells NUL"}}"#).unwrap(),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["bio"], "\\u0000 is how JSON spells NUL");
}

crate::on_both_backends!(
    a_nul_in_any_documented_input_is_refused_with_404_or_422_never_500,
    a_nul_in_a_web_page_path_or_query_is_refused,
    searching_for_a_nul_no_longer_matches_every_article,
    a_nul_spelled_with_an_escaped_backslash_is_ordinary_text,
);
