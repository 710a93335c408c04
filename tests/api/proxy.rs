//! Behind a reverse proxy: the client address the login limits count comes from
//! `X-Forwarded-For` only when the connection comes from a trusted proxy.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// Logs in as an unknown account (each attempt a different one, so only the per-address limit
/// can refuse it), claiming to forward for `client`; returns the status.
async fn login_forwarded_for(app: &TestApp, attempt: u32, client: &str) -> StatusCode {
    let body =
        json!({"user": {"email": format!("fan{attempt}@example.com"), "password": "password123"}});
    app.client
        .post(app.url("/api/users/login"))
        .header("X-Forwarded-For", client)
        .json(&body)
        .send()
        .await
        .expect("request sent")
        .status()
}

fn behind_local_proxy(config: &mut ballpark::config::Config) {
    config.login_ip_rate_per_minute = 2;
    config.trusted_proxies = "127.0.0.1".parse().unwrap();
}

fn no_trusted_proxy(config: &mut ballpark::config::Config) {
    config.login_ip_rate_per_minute = 2;
}

async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_login_limit(app: TestApp) {
    // Arrange: one client uses up its limit.
    for attempt in 0..2 {
        let status = login_forwarded_for(&app, attempt, "198.51.100.1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // Act
    let same_client = login_forwarded_for(&app, 2, "198.51.100.1").await;
    let other_client = login_forwarded_for(&app, 3, "198.51.100.2").await;
    let forged_then_appended = login_forwarded_for(&app, 4, "198.51.100.2, 198.51.100.1").await;

    // Assert
    assert_eq!(same_client, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other_client, StatusCode::UNAUTHORIZED);
    // The proxy appended the real client (rightmost); what the client wrote left of it is
    // not believed.
    assert_eq!(forged_then_appended, StatusCode::TOO_MANY_REQUESTS);
}

async fn from_an_untrusted_peer_a_forged_forwarded_for_does_not_escape_the_limit(app: TestApp) {
    // Arrange
    for attempt in 0..2 {
        let status = login_forwarded_for(&app, attempt, &format!("203.0.113.{attempt}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // Act
    let forged = login_forwarded_for(&app, 2, "203.0.113.99").await;

    // Assert
    assert_eq!(forged, StatusCode::TOO_MANY_REQUESTS);
}

crate::on_both_backends_with!(
    trusted,
    behind_local_proxy;
    behind_a_trusted_proxy_each_forwarded_client_has_its_own_login_limit,
);

crate::on_both_backends_with!(
    untrusted,
    no_trusted_proxy;
    from_an_untrusted_peer_a_forged_forwarded_for_does_not_escape_the_limit,
);
