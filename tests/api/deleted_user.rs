//! A token outlives its account: after the user is deleted (by an operator, in the database),
//! the token's signature still verifies, but every request made with it must answer 401, on
//! the API and on the chat socket.

use ballpark::db::Db;
use ballpark::on_write;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::chat::{connect, next_frame, send, try_connect};
use crate::helpers::TestApp;
use crate::openapi_walk::operations;

/// Deletes the user as an operator would, straight in the database.
async fn delete_user(app: &TestApp, username: &str) {
    let db = Db::connect(&app.database_url, 1).await.expect("test db");
    let deleted = on_write!(&db, pool => sqlx::query("DELETE FROM users WHERE username = $1")
        .bind(username)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
    .expect("user deleted");
    assert_eq!(deleted, 1);
    db.close().await;
}

async fn every_authenticated_operation_refuses_a_deleted_users_token_with_401(app: TestApp) {
    // Arrange
    let token = app.register("ghost").await;
    delete_user(&app, "ghost").await;
    let operations = operations(&app).await;

    // Act
    let mut wrong = Vec::new();
    let mut checked = 0;
    for operation in operations.iter().filter(|o| o.secured) {
        let url = operation.url(&[], &[]);
        let (status, body) = app
            .request(
                operation.method.clone(),
                &url,
                Some(&token),
                operation.sample_body(),
            )
            .await;
        checked += 1;
        if status != StatusCode::UNAUTHORIZED {
            wrong.push(format!("{} -> {status} {body}", operation.name()));
        }
    }

    // Assert
    assert!(checked > 25, "only {checked} operations checked");
    assert!(wrong.is_empty(), "not 401:\n{}", wrong.join("\n"));
}

async fn writing_or_reading_with_a_deleted_users_token_is_401_not_500_or_an_empty_list(
    app: TestApp,
) {
    // Arrange: the ghost follows an author who has written an article.
    let token = app.register("ghost").await;
    let author = app.register("author").await;
    let slug = app.create_article(&author, "Still here", &[]).await["slug"]
        .as_str()
        .unwrap()
        .to_string();
    app.post("/api/profiles/author/follow", Some(&token), json!({}))
        .await;
    delete_user(&app, "ghost").await;

    // Act
    let (create, _) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "Boo", "description": "d", "body": "b"}}),
        )
        .await;
    let (comment, _) = app
        .post(
            &format!("/api/articles/{slug}/comments"),
            Some(&token),
            json!({"comment": {"body": "boo"}}),
        )
        .await;
    let (favorite, _) = app
        .post(
            &format!("/api/articles/{slug}/favorite"),
            Some(&token),
            json!({}),
        )
        .await;
    let (feed, _) = app.get("/api/articles/feed", Some(&token)).await;
    let (orders, _) = app.get("/api/orders", Some(&token)).await;
    let (articles, _) = app.get("/api/articles", Some(&token)).await;

    // Assert: a token that is sent must be good, even where a token is optional.
    assert_eq!(create, StatusCode::UNAUTHORIZED);
    assert_eq!(comment, StatusCode::UNAUTHORIZED);
    assert_eq!(favorite, StatusCode::UNAUTHORIZED);
    assert_eq!(feed, StatusCode::UNAUTHORIZED);
    assert_eq!(orders, StatusCode::UNAUTHORIZED);
    assert_eq!(articles, StatusCode::UNAUTHORIZED);
}

async fn the_chat_socket_refuses_a_deleted_users_token_and_sign_in(app: TestApp) {
    // Arrange: one socket signed in while the account existed.
    let token = app.register("ghost").await;
    let (mut signed_in, _) = connect(&app, "lg", Some(&token)).await;
    delete_user(&app, "ghost").await;

    // Act
    let handshake = try_connect(&app, "lg", Some(&token)).await;
    let (mut reader, _) = connect(&app, "lg", None).await;
    send(&mut reader, json!({"type": "auth", "token": token})).await;
    let auth_reply = next_frame(&mut reader).await;
    send(&mut signed_in, json!({"type": "send", "body": "boo"})).await;
    let send_reply = next_frame(&mut signed_in).await;

    // Assert
    match handshake {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401 handshake, got {other:?}"),
    }
    assert_eq!(auth_reply["code"], "unauthorized", "{auth_reply}");
    assert_eq!(send_reply["code"], "unauthorized", "{send_reply}");
    let (_, history) = app.get("/api/teams/lg/chat/messages", None).await;
    assert_eq!(history["messages"], json!([]));
}

crate::on_both_backends!(
    every_authenticated_operation_refuses_a_deleted_users_token_with_401,
    writing_or_reading_with_a_deleted_users_token_is_401_not_500_or_an_empty_list,
    the_chat_socket_refuses_a_deleted_users_token_and_sign_in,
);
