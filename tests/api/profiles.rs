//! Profiles and follows.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{enc, TestApp};

async fn an_anonymous_reader_sees_the_profile_with_following_false(app: TestApp) {
    let token = app.register("jake").await;
    app.put(
        "/api/user",
        Some(&token),
        json!({"user": {"bio": "I work at statefarm", "team": "lg"}}),
    )
    .await;

    let (status, body) = app.get("/api/profiles/jake", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let profile = &body["profile"];
    assert_eq!(profile["username"], "jake");
    assert_eq!(profile["bio"], "I work at statefarm");
    assert!(profile["image"].is_null());
    assert_eq!(profile["team"], "lg");
    assert_eq!(profile["following"], false);
    assert!(profile.get("email").is_none(), "{body}");
}

async fn a_profile_without_a_team_has_a_null_team_field(app: TestApp) {
    app.register("jake").await;

    let (status, body) = app.get("/api/profiles/jake", None).await;

    assert_eq!(status, StatusCode::OK);
    let profile = body["profile"].as_object().expect("profile object");
    assert!(profile.contains_key("team"), "{body}");
    assert!(profile["team"].is_null());
}

async fn an_unknown_profile_returns_404_with_a_request_id(app: TestApp) {
    let (status, body) = app.get("/api/profiles/nobody", None).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"]["body"], json!(["profile not found"]));
    assert!(
        body["requestId"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );
}

async fn a_profile_with_a_korean_username_is_found_by_its_encoded_name(app: TestApp) {
    app.register("야구팬").await;

    let (status, body) = app
        .get(&format!("/api/profiles/{}", enc("야구팬")), None)
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["username"], "야구팬");
}

async fn reading_a_profile_with_a_bad_token_returns_401(app: TestApp) {
    app.register("jake").await;

    let (status, _) = app.get("/api/profiles/jake", Some("garbage")).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn following_returns_following_true_and_the_profile_then_shows_it(app: TestApp) {
    app.register("jake").await;
    app.register("celeb").await;
    let fan = app.register("fan").await;

    let (status, body) = app
        .post("/api/profiles/jake/follow", Some(&fan), json!({}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["username"], "jake");
    assert_eq!(body["profile"]["following"], true);
    let (_, seen_by_fan) = app.get("/api/profiles/jake", Some(&fan)).await;
    assert_eq!(seen_by_fan["profile"]["following"], true);
    let (_, other) = app.get("/api/profiles/celeb", Some(&fan)).await;
    assert_eq!(other["profile"]["following"], false);
}

async fn following_is_seen_only_by_the_follower(app: TestApp) {
    app.register("jake").await;
    let fan = app.register("fan").await;
    let bystander = app.register("bystander").await;
    app.post("/api/profiles/jake/follow", Some(&fan), json!({}))
        .await;

    let (_, seen_by_bystander) = app.get("/api/profiles/jake", Some(&bystander)).await;
    let (_, seen_anonymously) = app.get("/api/profiles/jake", None).await;

    assert_eq!(seen_by_bystander["profile"]["following"], false);
    assert_eq!(seen_anonymously["profile"]["following"], false);
}

async fn following_twice_is_not_an_error(app: TestApp) {
    app.register("jake").await;
    let fan = app.register("fan").await;
    app.post("/api/profiles/jake/follow", Some(&fan), json!({}))
        .await;

    let (status, body) = app
        .post("/api/profiles/jake/follow", Some(&fan), json!({}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["following"], true);
    // Still one follow: unfollowing once ends it.
    app.delete("/api/profiles/jake/follow", Some(&fan)).await;
    let (_, after) = app.get("/api/profiles/jake", Some(&fan)).await;
    assert_eq!(after["profile"]["following"], false);
}

async fn following_works_without_a_request_body(app: TestApp) {
    app.register("jake").await;
    let fan = app.register("fan").await;

    let (status, body) = app
        .request(
            reqwest::Method::POST,
            "/api/profiles/jake/follow",
            Some(&fan),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["following"], true);
}

async fn unfollowing_returns_following_false_and_the_profile_then_shows_it(app: TestApp) {
    app.register("jake").await;
    let fan = app.register("fan").await;
    app.post("/api/profiles/jake/follow", Some(&fan), json!({}))
        .await;

    let (status, body) = app.delete("/api/profiles/jake/follow", Some(&fan)).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["username"], "jake");
    assert_eq!(body["profile"]["following"], false);
    let (_, after) = app.get("/api/profiles/jake", Some(&fan)).await;
    assert_eq!(after["profile"]["following"], false);
}

async fn unfollowing_someone_not_followed_is_not_an_error(app: TestApp) {
    app.register("jake").await;
    let fan = app.register("fan").await;

    let (status, body) = app.delete("/api/profiles/jake/follow", Some(&fan)).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["following"], false);
}

async fn following_or_unfollowing_without_a_token_returns_401(app: TestApp) {
    app.register("jake").await;

    let (follow, follow_body) = app.post("/api/profiles/jake/follow", None, json!({})).await;
    let (unfollow, _) = app.delete("/api/profiles/jake/follow", None).await;

    assert_eq!(follow, StatusCode::UNAUTHORIZED);
    assert_eq!(unfollow, StatusCode::UNAUTHORIZED);
    assert_eq!(
        follow_body["errors"]["body"],
        json!(["authentication required"])
    );
}

async fn following_yourself_returns_422(app: TestApp) {
    let jake = app.register("jake").await;

    let (status, body) = app
        .post("/api/profiles/jake/follow", Some(&jake), json!({}))
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["username"],
        json!(["you cannot follow yourself"])
    );
    let (_, after) = app.get("/api/profiles/jake", Some(&jake)).await;
    assert_eq!(after["profile"]["following"], false);
}

async fn following_or_unfollowing_an_unknown_user_returns_404(app: TestApp) {
    let fan = app.register("fan").await;

    let (follow, body) = app
        .post("/api/profiles/nobody/follow", Some(&fan), json!({}))
        .await;
    let (unfollow, _) = app.delete("/api/profiles/nobody/follow", Some(&fan)).await;

    assert_eq!(follow, StatusCode::NOT_FOUND);
    assert_eq!(unfollow, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"]["body"], json!(["profile not found"]));
}

async fn a_followed_authors_articles_show_following_true(app: TestApp) {
    let jake = app.register("jake").await;
    let fan = app.register("fan").await;
    let article = app.create_article(&jake, "Training dragons", &[]).await;
    app.post("/api/profiles/jake/follow", Some(&fan), json!({}))
        .await;

    let (status, body) = app
        .get(
            &format!("/api/articles/{}", enc(article["slug"].as_str().unwrap())),
            Some(&fan),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["author"]["following"], true);
}

crate::on_both_backends!(
    an_anonymous_reader_sees_the_profile_with_following_false,
    a_profile_without_a_team_has_a_null_team_field,
    an_unknown_profile_returns_404_with_a_request_id,
    a_profile_with_a_korean_username_is_found_by_its_encoded_name,
    reading_a_profile_with_a_bad_token_returns_401,
    following_returns_following_true_and_the_profile_then_shows_it,
    following_is_seen_only_by_the_follower,
    following_twice_is_not_an_error,
    following_works_without_a_request_body,
    unfollowing_returns_following_false_and_the_profile_then_shows_it,
    unfollowing_someone_not_followed_is_not_an_error,
    following_or_unfollowing_without_a_token_returns_401,
    following_yourself_returns_422,
    following_or_unfollowing_an_unknown_user_returns_404,
    a_followed_authors_articles_show_following_true,
);
