//! Comments: add, list, delete, and the fan extra of editing one's own comment.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, TestApp};

fn comments_path(slug: &str) -> String {
    format!("/api/articles/{}/comments", enc(slug))
}

fn comment_path(slug: &str, id: i64) -> String {
    format!("/api/articles/{}/comments/{id}", enc(slug))
}

/// Registers `author`, who writes an article; returns the author's token and the slug.
async fn article_by(app: &TestApp, author: &str) -> (String, String) {
    let token = app.register(author).await;
    let article = app.create_article(&token, "Talk about it", &[]).await;
    (token, article["slug"].as_str().expect("slug").to_string())
}

/// Adds a comment; returns its id.
async fn add_comment(app: &TestApp, token: &str, slug: &str, text: &str) -> i64 {
    let (status, body) = app
        .post(
            &comments_path(slug),
            Some(token),
            json!({"comment": {"body": text}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "add comment: {body}");
    body["comment"]["id"].as_i64().expect("comment id")
}

fn bodies(list: &Value) -> Vec<String> {
    list["comments"]
        .as_array()
        .expect("comments array")
        .iter()
        .map(|c| c["body"].as_str().expect("body").to_string())
        .collect()
}

async fn adding_a_comment_returns_200_with_the_comment(app: TestApp) {
    let (_, slug) = article_by(&app, "jake").await;
    let anne = app.register("anne").await;

    let (status, body) = app
        .post(
            &comments_path(&slug),
            Some(&anne),
            json!({"comment": {"body": "Thank you so much!"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let comment = &body["comment"];
    assert!(comment["id"].is_i64(), "{comment}");
    assert_eq!(comment["body"], "Thank you so much!");
    assert_eq!(comment["author"]["username"], "anne");
    assert_eq!(comment["author"]["following"], false);
    assert!(
        comment["createdAt"]
            .as_str()
            .is_some_and(|t| t.contains('T') && t.ends_with('Z')),
        "{comment}"
    );
    assert_eq!(comment["createdAt"], comment["updatedAt"]);
}

async fn comments_are_listed_newest_first_to_anonymous_readers(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    add_comment(&app, &jake, &slug, "first").await;
    add_comment(&app, &jake, &slug, "second").await;
    add_comment(&app, &jake, &slug, "third").await;

    let (status, body) = app.get(&comments_path(&slug), None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(bodies(&body), vec!["third", "second", "first"]);
}

async fn comments_page_by_limit_and_offset(app: TestApp) {
    // The first page has its numbers in the statement; a later offset is a bound parameter.
    let (jake, slug) = article_by(&app, "jake").await;
    for text in ["one", "two", "three", "four", "five"] {
        add_comment(&app, &jake, &slug, text).await;
    }

    let (_, first) = app
        .get(&format!("{}?limit=2", comments_path(&slug)), None)
        .await;
    let (_, second) = app
        .get(&format!("{}?limit=2&offset=2", comments_path(&slug)), None)
        .await;
    let (_, last) = app
        .get(&format!("{}?limit=2&offset=4", comments_path(&slug)), None)
        .await;

    assert_eq!(bodies(&first), vec!["five", "four"]);
    assert_eq!(bodies(&second), vec!["three", "two"]);
    assert_eq!(bodies(&last), vec!["one"]);
}

async fn listing_comments_with_a_token_shows_whom_the_reader_follows(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let anne = app.register("anne").await;
    let reader = app.register("reader").await;
    add_comment(&app, &jake, &slug, "from jake").await;
    add_comment(&app, &anne, &slug, "from anne").await;
    let (follow_status, _) = app
        .post("/api/profiles/anne/follow", Some(&reader), json!({}))
        .await;
    assert_eq!(follow_status, StatusCode::OK);

    let (status, body) = app.get(&comments_path(&slug), Some(&reader)).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let comments = body["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["author"]["username"], "anne");
    assert_eq!(comments[0]["author"]["following"], true);
    assert_eq!(comments[1]["author"]["username"], "jake");
    assert_eq!(comments[1]["author"]["following"], false);
}

async fn comments_of_an_unknown_article_return_404(app: TestApp) {
    let token = app.register("jake").await;

    let (list_status, _) = app.get(&comments_path("no-such-article"), None).await;
    let (add_status, _) = app
        .post(
            &comments_path("no-such-article"),
            Some(&token),
            json!({"comment": {"body": "hello"}}),
        )
        .await;

    assert_eq!(list_status, StatusCode::NOT_FOUND);
    assert_eq!(add_status, StatusCode::NOT_FOUND);
}

async fn adding_an_empty_comment_returns_422(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;

    let (status, body) = app
        .post(
            &comments_path(&slug),
            Some(&jake),
            json!({"comment": {"body": "   "}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["body"].is_array(), "{body}");
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(list["comments"], json!([]));
}

async fn adding_a_comment_without_a_token_returns_401(app: TestApp) {
    let (_, slug) = article_by(&app, "jake").await;

    let (status, _) = app
        .post(
            &comments_path(&slug),
            None,
            json!({"comment": {"body": "hello"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn deleting_ones_own_comment_returns_204_and_it_is_gone(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let keep = add_comment(&app, &jake, &slug, "keep").await;
    let doomed = add_comment(&app, &jake, &slug, "doomed").await;

    let (status, _) = app.delete(&comment_path(&slug, doomed), Some(&jake)).await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(bodies(&list), vec!["keep"]);
    assert_eq!(list["comments"][0]["id"], keep);
}

async fn deleting_someone_elses_comment_returns_403(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let anne = app.register("anne").await;
    let id = add_comment(&app, &jake, &slug, "jake's").await;

    let (status, _) = app.delete(&comment_path(&slug, id), Some(&anne)).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(bodies(&list), vec!["jake's"]);
}

async fn deleting_an_unknown_comment_returns_404(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;

    let (status, _) = app.delete(&comment_path(&slug, 999_999), Some(&jake)).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_comment_cannot_be_reached_through_another_articles_slug(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let other = app.create_article(&jake, "Another", &[]).await;
    let other_slug = other["slug"].as_str().expect("slug").to_string();
    let id = add_comment(&app, &jake, &slug, "stays here").await;

    let (edit_status, _) = app
        .put(
            &comment_path(&other_slug, id),
            Some(&jake),
            json!({"comment": {"body": "moved"}}),
        )
        .await;
    let (delete_status, _) = app
        .delete(&comment_path(&other_slug, id), Some(&jake))
        .await;

    assert_eq!(edit_status, StatusCode::NOT_FOUND);
    assert_eq!(delete_status, StatusCode::NOT_FOUND);
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(bodies(&list), vec!["stays here"]);
}

async fn editing_ones_own_comment_returns_the_new_body(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let id = add_comment(&app, &jake, &slug, "typo").await;

    let (status, body) = app
        .put(
            &comment_path(&slug, id),
            Some(&jake),
            json!({"comment": {"body": "fixed"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let comment = &body["comment"];
    assert_eq!(comment["id"], id);
    assert_eq!(comment["body"], "fixed");
    let created = comment["createdAt"].as_str().expect("createdAt");
    let updated = comment["updatedAt"].as_str().expect("updatedAt");
    // Same fixed-width UTC format, so string order is time order.
    assert_eq!(created.len(), updated.len());
    assert!(
        updated >= created,
        "updatedAt {updated} < createdAt {created}"
    );
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(bodies(&list), vec!["fixed"]);
}

async fn editing_someone_elses_comment_returns_403(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let anne = app.register("anne").await;
    let id = add_comment(&app, &jake, &slug, "jake's").await;

    let (status, _) = app
        .put(
            &comment_path(&slug, id),
            Some(&anne),
            json!({"comment": {"body": "anne's now"}}),
        )
        .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(bodies(&list), vec!["jake's"]);
}

async fn editing_a_comment_to_an_empty_body_returns_422(app: TestApp) {
    let (jake, slug) = article_by(&app, "jake").await;
    let id = add_comment(&app, &jake, &slug, "original").await;

    let (status, body) = app
        .put(
            &comment_path(&slug, id),
            Some(&jake),
            json!({"comment": {"body": ""}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["body"].is_array(), "{body}");
    let (_, list) = app.get(&comments_path(&slug), None).await;
    assert_eq!(bodies(&list), vec!["original"]);
}

crate::on_both_backends!(
    adding_a_comment_returns_200_with_the_comment,
    comments_are_listed_newest_first_to_anonymous_readers,
    comments_page_by_limit_and_offset,
    listing_comments_with_a_token_shows_whom_the_reader_follows,
    comments_of_an_unknown_article_return_404,
    adding_an_empty_comment_returns_422,
    adding_a_comment_without_a_token_returns_401,
    deleting_ones_own_comment_returns_204_and_it_is_gone,
    deleting_someone_elses_comment_returns_403,
    deleting_an_unknown_comment_returns_404,
    a_comment_cannot_be_reached_through_another_articles_slug,
    editing_ones_own_comment_returns_the_new_body,
    editing_someone_elses_comment_returns_403,
    editing_a_comment_to_an_empty_body_returns_422,
);
