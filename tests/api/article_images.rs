//! Articles that use uploads: a cover (`coverImage`) and the pictures the body embeds.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, TestApp};
use crate::uploads::{jpeg_with_exif, post_file, settled};

/// Uploads a small picture as the owner of `token` and waits until it is processed; returns
/// its id.
async fn ready_upload(app: &TestApp, token: &str) -> String {
    let (status, body) = post_file(app, Some(token), jpeg_with_exif(64, 48), "a.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["upload"]["id"].as_str().unwrap().to_string();
    assert_eq!(settled(app, &id).await["status"], "ready");
    id
}

async fn create(app: &TestApp, token: &str, extra: Value) -> (StatusCode, Value) {
    let mut article = json!({"title": "Opening day", "description": "d", "body": "plain body"});
    article
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.post("/api/articles", Some(token), json!({ "article": article }))
        .await
}

fn expected_image(id: &str) -> Value {
    json!({
        "id": id,
        "url": format!("/media/{id}/display.jpg"),
        "thumbnailUrl": format!("/media/{id}/thumb.jpg"),
    })
}

async fn an_article_shows_its_cover_in_its_own_response_and_in_lists(app: TestApp) {
    let token = app.register("jake").await;
    let upload = ready_upload(&app, &token).await;

    let (status, body) = create(&app, &token, json!({ "coverImage": upload })).await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["article"]["coverImage"], expected_image(&upload));
    let slug = body["article"]["slug"].as_str().unwrap().to_string();
    let (_, read) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;
    assert_eq!(read["article"]["coverImage"], expected_image(&upload));
    assert_eq!(read["article"]["images"], json!([]));
    app.create_article(&token, "No cover", &[]).await;
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articles"][0]["coverImage"], Value::Null);
    assert_eq!(list["articles"][1]["coverImage"], expected_image(&upload));
    assert!(
        list["articles"][1].get("images").is_none(),
        "lists leave out the body's images, like the body"
    );
}

async fn a_cover_that_is_not_one_of_the_authors_uploads_is_refused_with_422(app: TestApp) {
    let jake = app.register("jake").await;
    let jane = app.register("jane").await;
    let janes_upload = ready_upload(&app, &jane).await;
    let unknown = uuid::Uuid::now_v7().to_string();

    let (someone_elses, body_1) = create(&app, &jake, json!({ "coverImage": janes_upload })).await;
    let (missing, body_2) = create(&app, &jake, json!({ "coverImage": unknown })).await;
    let (malformed, body_3) = create(&app, &jake, json!({ "coverImage": "cover.jpg" })).await;

    assert_eq!(someone_elses, StatusCode::UNPROCESSABLE_ENTITY, "{body_1}");
    assert!(body_1["errors"]["coverImage"][0]
        .as_str()
        .unwrap()
        .contains("is not yours"));
    assert_eq!(missing, StatusCode::UNPROCESSABLE_ENTITY, "{body_2}");
    assert!(body_2["errors"]["coverImage"][0]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    assert_eq!(malformed, StatusCode::UNPROCESSABLE_ENTITY, "{body_3}");
    assert_eq!(body_3["errors"]["coverImage"][0], "is not an upload id");
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0, "nothing was created");
}

async fn pictures_embedded_in_the_body_are_listed_in_order_of_appearance(app: TestApp) {
    let token = app.register("jake").await;
    let first = ready_upload(&app, &token).await;
    let second = ready_upload(&app, &token).await;
    let text = format!(
        "![scoreboard](/media/{second}/display.jpg)\n\nand ![crowd](/media/{first}/thumb.jpg), \
         and the scoreboard again: /media/{second}/display.webp"
    );

    let (status, body) = create(&app, &token, json!({ "body": text })).await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["article"]["images"],
        json!([expected_image(&second), expected_image(&first)])
    );
    assert_eq!(body["article"]["body"], text, "the body is stored as sent");
    assert_eq!(body["article"]["coverImage"], Value::Null);
}

async fn embedding_someone_elses_upload_is_refused_with_422_on_body(app: TestApp) {
    let jake = app.register("jake").await;
    let jane = app.register("jane").await;
    let janes_upload = ready_upload(&app, &jane).await;

    let (status, body) = create(
        &app,
        &jake,
        json!({ "body": format!("look ![x](/media/{janes_upload}/display.jpg)") }),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["body"][0]
        .as_str()
        .unwrap()
        .contains("is not yours"));
}

async fn an_update_sets_keeps_or_removes_the_cover_and_follows_the_new_body(app: TestApp) {
    let token = app.register("jake").await;
    let cover = ready_upload(&app, &token).await;
    let embedded = ready_upload(&app, &token).await;
    let (_, created) = create(
        &app,
        &token,
        json!({ "coverImage": cover, "body": format!("/media/{embedded}/display.jpg") }),
    )
    .await;
    let path = format!(
        "/api/articles/{}",
        enc(created["article"]["slug"].as_str().unwrap())
    );

    let (_, kept) = app
        .put(
            &path,
            Some(&token),
            json!({"article": {"description": "new"}}),
        )
        .await;
    let (_, rewritten) = app
        .put(
            &path,
            Some(&token),
            json!({"article": {"body": "no pictures now", "coverImage": embedded}}),
        )
        .await;
    let (_, removed) = app
        .put(
            &path,
            Some(&token),
            json!({"article": {"coverImage": null}}),
        )
        .await;

    assert_eq!(kept["article"]["coverImage"], expected_image(&cover));
    assert_eq!(
        kept["article"]["images"],
        json!([expected_image(&embedded)])
    );
    assert_eq!(
        rewritten["article"]["coverImage"],
        expected_image(&embedded)
    );
    assert_eq!(rewritten["article"]["images"], json!([]));
    assert_eq!(removed["article"]["coverImage"], Value::Null);
    assert_eq!(removed["article"]["description"], "new");
}

async fn an_update_with_someone_elses_cover_is_refused_and_changes_nothing(app: TestApp) {
    let jake = app.register("jake").await;
    let jane = app.register("jane").await;
    let janes_upload = ready_upload(&app, &jane).await;
    let article = app.create_article(&jake, "Mine", &[]).await;
    let path = format!("/api/articles/{}", enc(article["slug"].as_str().unwrap()));

    let (status, body) = app
        .put(
            &path,
            Some(&jake),
            json!({"article": {"title": "Changed", "coverImage": janes_upload}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["coverImage"].is_array(), "{body}");
    let (status, read) = app.get(&path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["article"]["title"], "Mine");
}

async fn a_failed_upload_cannot_be_a_cover(app: TestApp) {
    let token = app.register("jake").await;
    let mut cut = jpeg_with_exif(400, 300);
    cut.truncate(cut.len() / 3);
    let (_, body) = post_file(&app, Some(&token), cut, "cut.jpg").await;
    let id = body["upload"]["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&app, &id).await["status"], "failed");

    let (status, body) = create(&app, &token, json!({ "coverImage": id })).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["coverImage"][0]
        .as_str()
        .unwrap()
        .contains("failed"));
}

crate::on_both_backends!(
    an_article_shows_its_cover_in_its_own_response_and_in_lists,
    a_cover_that_is_not_one_of_the_authors_uploads_is_refused_with_422,
    pictures_embedded_in_the_body_are_listed_in_order_of_appearance,
    embedding_someone_elses_upload_is_refused_with_422_on_body,
    an_update_sets_keeps_or_removes_the_cover_and_follows_the_new_body,
    an_update_with_someone_elses_cover_is_refused_and_changes_nothing,
    a_failed_upload_cannot_be_a_cover,
);

async fn a_pending_upload_can_be_a_cover_and_shows_its_original_until_processed(app: TestApp) {
    let token = app.register("jake").await;
    let (_, body) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "a.jpg").await;
    let id = body["upload"]["id"].as_str().unwrap().to_string();

    let (status, body) = create(&app, &token, json!({ "coverImage": id })).await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["article"]["coverImage"],
        json!({"id": id, "url": format!("/media/{id}/original"), "thumbnailUrl": null})
    );
}

/// No workers: uploads stay pending.
fn without_workers(config: &mut ballpark::config::Config) {
    config.workers = false;
}

crate::on_both_backends_with!(
    uploads_left_pending,
    without_workers;
    a_pending_upload_can_be_a_cover_and_shows_its_original_until_processed,
);
