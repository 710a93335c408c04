//! Registration, login, current user, update, rate limiting.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

async fn registering_returns_201_with_a_token(app: TestApp) {
    let (status, body) = app
        .post("/api/users", None, json!({"user": {"username": "jake", "email": "jake@jake.jake", "password": "jakejake"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["user"]["username"], "jake");
    assert!(body["user"]["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(body["user"]["bio"].is_null());
}

crate::on_both_backends!(registering_returns_201_with_a_token);
