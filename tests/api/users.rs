//! Registration, login, current user, update, rate limiting.

use ballpark::auth::Tokens;
use ballpark::config::{Config, Secret, DEV_JWT_SECRET};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// The messages a 422 body gives for `field` (empty if the field is not named).
fn field_errors(body: &Value, field: &str) -> Vec<String> {
    body["errors"][field]
        .as_array()
        .map(|msgs| {
            msgs.iter()
                .map(|m| m.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `body` verbatim with the given content type; returns status, headers and parsed body.
async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, HeaderMap, Value) {
    let res = app
        .client
        .post(app.url(path))
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body read");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The start of a registration whose bio makes the body 10 MiB.
fn ten_megabytes_of_json() -> Vec<u8> {
    let mut body = br#"{"user":{"username":"jake","email":"jake@example.com","password":"password123","bio":""#.to_vec();
    body.resize(10 * 1024 * 1024 - 3, b'x');
    body.extend_from_slice(br#""}}"#);
    body
}

/// Sends a request over a bare TCP connection: `head`, then the body `parts`, verbatim.
/// Writing stops quietly when the server hangs up, as it may once it has answered; the answer
/// is then read from the socket. reqwest cannot be used for this: when the server answers
/// before the whole body is sent, it reports the failed write instead of the response.
async fn raw_http(app: &TestApp, head: &str, parts: &[&[u8]]) -> (u16, HeaderMap, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head sent");
    for part in parts {
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("name"),
                value.trim().parse().expect("value"),
            );
        }
    }
    (
        status,
        headers,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// GET /api/user with a verbatim `Authorization` header.
async fn current_user_with_header(app: &TestApp, authorization: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .get(app.url("/api/user"))
        .header("Authorization", authorization)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The error body carries the request id, and it is the one in the `x-request-id` header.
fn assert_request_id_matches(headers: &HeaderMap, body: &Value) {
    let header = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id header");
    assert!(!header.is_empty());
    assert_eq!(body["requestId"], header, "{body}");
}

/// The user id inside a token the server issued (tests run with the development key).
fn user_id_of(token: &str) -> i64 {
    let key = jsonwebtoken::DecodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).expect("our own token");
    data.claims["sub"].as_i64().expect("numeric sub")
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn user_json(username: &str, email: &str, password: &str) -> Value {
    json!({"user": {"username": username, "email": email, "password": password}})
}

// ---------------------------------------------------------------- registration

async fn registering_returns_201_with_a_token(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            user_json("jake", "jake@jake.jake", "jakejake"),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["user"]["username"], "jake");
    assert_eq!(body["user"]["email"], "jake@jake.jake");
    assert!(body["user"]["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(body["user"]["bio"].is_null());
    assert!(body["user"]["image"].is_null());
    assert!(body["user"]["team"].is_null());
    assert_eq!(body["user"]["role"], "fan");
    assert!(body["user"].get("password").is_none());
}

async fn the_token_from_registration_authenticates_get_user(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app.get("/api/user", Some(&token)).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "jake");
    assert_eq!(body["user"]["email"], "jake@example.com");
    assert_eq!(body["user"]["token"], token.as_str());
}

async fn registering_an_email_with_capitals_stores_it_lowercased(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            user_json("jake", "  Jake@Example.COM ", "password123"),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["email"], "jake@example.com");
}

async fn registering_a_taken_username_returns_422_naming_username(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/users",
            None,
            user_json("jake", "other@example.com", "password123"),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "username"), ["has already been taken"]);
    assert!(body["errors"].get("email").is_none(), "{body}");
}

async fn registering_a_taken_email_in_other_case_returns_422_naming_email(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/users",
            None,
            user_json("jacob", "JAKE@example.com", "password123"),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "email"), ["has already been taken"]);
    assert!(body["errors"].get("username").is_none(), "{body}");
}

async fn registering_with_missing_fields_returns_422_naming_each_field(app: TestApp) {
    let (status, body) = app.post("/api/users", None, json!({"user": {}})).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["username", "email", "password"] {
        assert_eq!(field_errors(&body, field), ["can't be empty"], "{body}");
    }
    assert!(body["requestId"].is_string(), "{body}");
}

async fn registering_with_empty_fields_returns_422_naming_each_field(app: TestApp) {
    let (status, body) = app.post("/api/users", None, user_json("   ", "", "")).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["username", "email", "password"] {
        assert_eq!(field_errors(&body, field), ["can't be empty"], "{body}");
    }
}

async fn registering_with_over_long_fields_returns_422_naming_each_field(app: TestApp) {
    let username = "u".repeat(41);
    let email = format!("{}@example.com", "e".repeat(243)); // 255 characters
    let password = "p".repeat(129);

    let (status, body) = app
        .post("/api/users", None, user_json(&username, &email, &password))
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_errors(&body, "username"),
        ["is too long (maximum is 40 characters)"]
    );
    assert_eq!(
        field_errors(&body, "email"),
        ["is too long (maximum is 254 characters)"]
    );
    assert_eq!(
        field_errors(&body, "password"),
        ["is too long (maximum is 128 characters)"]
    );
}

async fn registering_with_fields_at_their_limits_succeeds(app: TestApp) {
    let username = "야".repeat(40);
    let email = format!("{}@example.com", "e".repeat(242)); // 254 characters
    let password = "p".repeat(128);

    let (status, body) = app
        .post("/api/users", None, user_json(&username, &email, &password))
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["username"], username.as_str());
}

async fn registering_with_a_short_password_returns_422(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            user_json("jake", "jake@example.com", "short"),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_errors(&body, "password"),
        ["is too short (minimum is 8 characters)"]
    );
}

async fn registering_with_a_bad_email_and_a_spaced_username_returns_422(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            user_json("jake jacob", "not-an-email", "password123"),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "email"), ["is invalid"]);
    assert_eq!(field_errors(&body, "username").len(), 1, "{body}");
}

async fn registering_with_a_number_as_username_returns_422(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": 123, "email": "jake@example.com", "password": "password123"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let messages = field_errors(&body, "body");
    assert_eq!(messages.len(), 1, "{body}");
    assert!(messages[0].contains("username"), "{body}");
    assert!(body["requestId"].is_string(), "{body}");
}

async fn registering_without_the_user_wrapper_returns_422(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"username": "jake", "email": "jake@example.com", "password": "password123"}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let messages = field_errors(&body, "body");
    assert!(messages.iter().any(|m| m.contains("user")), "{body}");
}

async fn registering_with_a_known_team_keeps_it(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123", "team": "lg"}}),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["team"], "lg");
}

async fn registering_with_an_unknown_team_returns_422(app: TestApp) {
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123", "team": "yankees"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "team"), ["is not a KBO team key"]);
}

// ---------------------------------------------------------------- malformed bodies

async fn malformed_json_returns_400_with_the_request_id(app: TestApp) {
    let (status, headers, body) = raw_post(
        &app,
        "/api/users",
        "application/json",
        r#"{"user": {"username": "jake","#,
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_errors(&body, "body").len(), 1, "{body}");
    assert_request_id_matches(&headers, &body);
}

async fn a_text_plain_body_returns_415(app: TestApp) {
    let payload = user_json("jake", "jake@example.com", "password123").to_string();

    let (status, headers, body) = raw_post(&app, "/api/users", "text/plain", payload).await;

    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(field_errors(&body, "body"), ["unsupported media type"]);
    assert_request_id_matches(&headers, &body);
}

async fn a_ten_megabyte_body_returns_413(app: TestApp) {
    let body = ten_megabytes_of_json();
    let head = format!(
        "POST /api/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let parts: Vec<&[u8]> = body.chunks(64 * 1024).collect();

    let (status, headers, body) = raw_http(&app, &head, &parts).await;

    assert_eq!(status, 413, "{body}");
    assert_eq!(field_errors(&body, "body"), ["request body too large"]);
    assert_request_id_matches(&headers, &body);
}

async fn a_ten_megabyte_chunked_body_returns_413(app: TestApp) {
    let head = "POST /api/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let framed: Vec<Vec<u8>> = ten_megabytes_of_json()
        .chunks(64 * 1024)
        .map(|chunk| {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(chunk);
            frame.extend_from_slice(b"\r\n");
            frame
        })
        .collect();
    let parts: Vec<&[u8]> = framed.iter().map(Vec::as_slice).collect();

    let (status, headers, body) = raw_http(&app, head, &parts).await;

    assert_eq!(status, 413, "{body}");
    assert_eq!(field_errors(&body, "body"), ["request body too large"]);
    assert_request_id_matches(&headers, &body);
}

async fn a_body_just_under_the_limit_is_read(app: TestApp) {
    // Valid JSON under 1 MiB gets past the limit and is judged on its content instead.
    let username = "u".repeat(1000 * 1000);
    let payload = user_json(&username, "jake@example.com", "password123").to_string();

    let (status, _, body) = raw_post(&app, "/api/users", "application/json", payload).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_errors(&body, "username").len(), 1);
}

// ---------------------------------------------------------------- login

async fn logging_in_returns_200_with_a_working_token(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jake@example.com", "password": "password123"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "jake");
    let token = body["user"]["token"].as_str().expect("token");
    let (status, me) = app.get("/api/user", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["username"], "jake");
}

async fn logging_in_with_a_wrong_password_returns_401(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jake@example.com", "password": "password124"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        field_errors(&body, "body"),
        ["email or password is invalid"]
    );
    assert!(body.get("user").is_none());
}

async fn logging_in_with_an_unknown_email_returns_the_same_401(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "nobody@example.com", "password": "password123"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        field_errors(&body, "body"),
        ["email or password is invalid"]
    );
}

async fn logging_in_ignores_the_case_of_the_email(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": " JAKE@Example.com ", "password": "password123"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "jake");
}

async fn logging_in_with_missing_fields_returns_422_naming_each(app: TestApp) {
    let (status, body) = app
        .post("/api/users/login", None, json!({"user": {"email": ""}}))
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "email"), ["can't be empty"]);
    assert_eq!(field_errors(&body, "password"), ["can't be empty"]);
}

// ---------------------------------------------------------------- tokens

async fn getting_the_current_user_without_a_token_returns_401(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/user"))
        .send()
        .await
        .expect("request sent");

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[WWW_AUTHENTICATE], "Token");
    let headers = res.headers().clone();
    let body: Value = res.json().await.expect("json body");
    assert_eq!(field_errors(&body, "body"), ["authentication required"]);
    assert_request_id_matches(&headers, &body);
}

async fn a_garbage_token_returns_401(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app.get("/api/user", Some("not.a.jwt")).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(field_errors(&body, "body"), ["authentication required"]);
}

async fn a_token_without_a_scheme_returns_401(app: TestApp) {
    let token = app.register("jake").await;

    let (status, _) = current_user_with_header(&app, &token).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn an_empty_token_returns_401(app: TestApp) {
    app.register("jake").await;

    let (status, _) = current_user_with_header(&app, "Token ").await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_bearer_token_is_accepted(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = current_user_with_header(&app, &format!("Bearer {token}")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "jake");
}

async fn a_token_signed_with_another_secret_returns_401(app: TestApp) {
    let token = app.register("jake").await;
    let other = Tokens::new(&Config {
        jwt_secret: Secret::new("another-secret-another-secret-another-secret"),
        ..Config::default()
    });
    let forged = other.issue(user_id_of(&token)).expect("token signed");

    let (status, body) = app.get("/api/user", Some(&forged)).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

async fn an_expired_token_returns_401(app: TestApp) {
    let token = app.register("jake").await;
    let id = user_id_of(&token);
    let key = jsonwebtoken::EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
    let sign = |iat: i64, exp: i64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": id, "iat": iat, "exp": exp}),
            &key,
        )
        .expect("token signed")
    };
    let now = unix_now();
    let expired = sign(now - 7200, now - 3600);
    let fresh = sign(now, now + 3600);

    let (expired_status, _) = app.get("/api/user", Some(&expired)).await;
    let (fresh_status, _) = app.get("/api/user", Some(&fresh)).await;

    assert_eq!(expired_status, StatusCode::UNAUTHORIZED);
    // The same claims, still valid, are accepted: the expiry alone made the difference.
    assert_eq!(fresh_status, StatusCode::OK);
}

// ---------------------------------------------------------------- update

async fn updating_bio_image_and_team_returns_and_keeps_them(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"bio": "잠실 1루", "image": "https://example.com/jake.png", "team": "lg"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["bio"], "잠실 1루");
    assert_eq!(body["user"]["image"], "https://example.com/jake.png");
    assert_eq!(body["user"]["team"], "lg");
    assert_eq!(body["user"]["token"], token.as_str());
    let (_, me) = app.get("/api/user", Some(&token)).await;
    assert_eq!(me["user"]["bio"], "잠실 1루");
    assert_eq!(me["user"]["image"], "https://example.com/jake.png");
    assert_eq!(me["user"]["team"], "lg");
    assert_eq!(me["user"]["email"], "jake@example.com");
}

async fn updating_only_the_bio_leaves_the_other_fields(app: TestApp) {
    let token = app.register("jake").await;
    app.put(
        "/api/user",
        Some(&token),
        json!({"user": {"image": "https://example.com/a.png", "team": "kia"}}),
    )
    .await;

    let (status, body) = app
        .put("/api/user", Some(&token), json!({"user": {"bio": "hi"}}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["bio"], "hi");
    assert_eq!(body["user"]["image"], "https://example.com/a.png");
    assert_eq!(body["user"]["team"], "kia");
    assert_eq!(body["user"]["username"], "jake");
}

async fn updating_to_an_unknown_team_returns_422(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"team": "yankees"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "team"), ["is not a KBO team key"]);
    let (_, me) = app.get("/api/user", Some(&token)).await;
    assert!(me["user"]["team"].is_null());
}

async fn a_null_bio_image_and_team_clear_them(app: TestApp) {
    let token = app.register("jake").await;
    app.put(
        "/api/user",
        Some(&token),
        json!({"user": {"bio": "hello", "image": "https://example.com/a.png", "team": "lg"}}),
    )
    .await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"bio": null, "image": null, "team": null}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["user"]["bio"].is_null(), "{body}");
    assert!(body["user"]["image"].is_null(), "{body}");
    assert!(body["user"]["team"].is_null(), "{body}");
    let (_, me) = app.get("/api/user", Some(&token)).await;
    assert!(me["user"]["bio"].is_null());
}

async fn an_over_long_bio_or_image_returns_422(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"bio": "b".repeat(1001), "image": "i".repeat(2001)}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_errors(&body, "bio"),
        ["is too long (maximum is 1000 characters)"]
    );
    assert_eq!(
        field_errors(&body, "image"),
        ["is too long (maximum is 2000 characters)"]
    );
}

async fn re_sending_your_own_email_and_username_is_accepted(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"email": "jake@example.com", "username": "jake", "bio": "same me"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "jake@example.com");
    assert_eq!(body["user"]["bio"], "same me");
}

async fn taking_another_users_email_or_username_returns_422(app: TestApp) {
    app.register("jacob").await;
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"email": "Jacob@Example.com", "username": "jacob"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "email"), ["has already been taken"]);
    assert_eq!(field_errors(&body, "username"), ["has already been taken"]);
    let (_, me) = app.get("/api/user", Some(&token)).await;
    assert_eq!(me["user"]["email"], "jake@example.com");
}

async fn changing_the_username_shows_on_the_profile(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "jacob"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "jacob");
    let (old, _) = app.get("/api/profiles/jake", None).await;
    let (new, _) = app.get("/api/profiles/jacob", None).await;
    assert_eq!(old, StatusCode::NOT_FOUND);
    assert_eq!(new, StatusCode::OK);
}

async fn a_changed_password_works_at_the_next_login_and_the_old_one_does_not(app: TestApp) {
    let token = app.register("jake").await;
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"password": "a new password"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (new_status, _) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jake@example.com", "password": "a new password"}}),
        )
        .await;
    let (old_status, _) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jake@example.com", "password": "password123"}}),
        )
        .await;

    assert_eq!(new_status, StatusCode::OK);
    assert_eq!(old_status, StatusCode::UNAUTHORIZED);
}

async fn a_too_short_new_password_returns_422_and_keeps_the_old_one(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"password": "short"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_errors(&body, "password").len(), 1, "{body}");
    let (login, _) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jake@example.com", "password": "password123"}}),
        )
        .await;
    assert_eq!(login, StatusCode::OK);
}

async fn a_null_username_email_or_password_returns_422_and_changes_nothing(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": null, "email": null, "password": null, "bio": "kept?"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for field in ["username", "email", "password"] {
        assert_eq!(field_errors(&body, field), ["can't be empty"], "{body}");
    }
    let (_, user) = app.get("/api/user", Some(&token)).await;
    assert_eq!(user["user"]["email"], "jake@example.com");
    assert_eq!(user["user"]["username"], "jake");
    assert_eq!(
        user["user"]["bio"],
        Value::Null,
        "nothing of a refused update is kept"
    );
}

async fn updating_without_a_token_returns_401(app: TestApp) {
    let (status, body) = app
        .put("/api/user", None, json!({"user": {"bio": "anonymous"}}))
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(field_errors(&body, "body"), ["authentication required"]);
}

crate::on_both_backends!(
    registering_returns_201_with_a_token,
    the_token_from_registration_authenticates_get_user,
    registering_an_email_with_capitals_stores_it_lowercased,
    registering_a_taken_username_returns_422_naming_username,
    registering_a_taken_email_in_other_case_returns_422_naming_email,
    registering_with_missing_fields_returns_422_naming_each_field,
    registering_with_empty_fields_returns_422_naming_each_field,
    registering_with_over_long_fields_returns_422_naming_each_field,
    registering_with_fields_at_their_limits_succeeds,
    registering_with_a_short_password_returns_422,
    registering_with_a_bad_email_and_a_spaced_username_returns_422,
    registering_with_a_number_as_username_returns_422,
    registering_without_the_user_wrapper_returns_422,
    registering_with_a_known_team_keeps_it,
    registering_with_an_unknown_team_returns_422,
    malformed_json_returns_400_with_the_request_id,
    a_text_plain_body_returns_415,
    a_ten_megabyte_body_returns_413,
    a_ten_megabyte_chunked_body_returns_413,
    a_body_just_under_the_limit_is_read,
    logging_in_returns_200_with_a_working_token,
    logging_in_with_a_wrong_password_returns_401,
    logging_in_with_an_unknown_email_returns_the_same_401,
    logging_in_ignores_the_case_of_the_email,
    logging_in_with_missing_fields_returns_422_naming_each,
    getting_the_current_user_without_a_token_returns_401,
    a_garbage_token_returns_401,
    a_token_without_a_scheme_returns_401,
    an_empty_token_returns_401,
    a_bearer_token_is_accepted,
    a_token_signed_with_another_secret_returns_401,
    an_expired_token_returns_401,
    updating_bio_image_and_team_returns_and_keeps_them,
    updating_only_the_bio_leaves_the_other_fields,
    updating_to_an_unknown_team_returns_422,
    a_null_bio_image_and_team_clear_them,
    an_over_long_bio_or_image_returns_422,
    re_sending_your_own_email_and_username_is_accepted,
    taking_another_users_email_or_username_returns_422,
    changing_the_username_shows_on_the_profile,
    a_changed_password_works_at_the_next_login_and_the_old_one_does_not,
    a_too_short_new_password_returns_422_and_keeps_the_old_one,
    a_null_username_email_or_password_returns_422_and_changes_nothing,
    updating_without_a_token_returns_401,
);

// ---------------------------------------------------------------- rate limiting

/// Three login attempts per account per minute, so the limit is reached quickly.
fn three_logins_per_minute(config: &mut Config) {
    config.login_rate_per_minute = 3;
}

async fn the_fourth_login_in_a_minute_returns_429_while_another_account_still_works(app: TestApp) {
    app.register("jake").await;
    app.register("jacob").await;
    let login = |email: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/users/login"))
            .json(&json!({"user": {"email": email, "password": password}}))
            .send()
    };
    for _ in 0..3 {
        let res = login("jake@example.com", "wrong-password").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }

    // Even the right password is refused now, and the account key ignores case.
    let refused = login("JAKE@example.com", "password123").await.unwrap();
    let other = login("jacob@example.com", "password123").await.unwrap();

    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[RETRY_AFTER], "60");
    let headers = refused.headers().clone();
    let body: Value = refused.json().await.expect("json body");
    assert_eq!(field_errors(&body, "body"), ["too many requests"]);
    assert_request_id_matches(&headers, &body);
    assert_eq!(other.status(), StatusCode::OK);
}

// The same tests as above, on an app whose configuration differs from the default.
crate::on_both_backends_with!(
    three_logins_per_minute,
    three_logins_per_minute;
    the_fourth_login_in_a_minute_returns_429_while_another_account_still_works,
);
