//! Article tags are one per spelling regardless of ASCII case, as review hashtags are: stored
//! lowercased, and `?tag=` looked up the same way; tags written before that rule are rewritten
//! by a migration.

use ballpark::db::Db;
use ballpark::on_write;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp};

async fn tags_are_lowercased_when_stored_and_found_in_any_case(app: TestApp) {
    // Arrange
    let token = app.register("twins_fan").await;

    // Act
    let article = app
        .create_article(&token, "Jamsil derby", &["LG", "Twins", "lg"])
        .await;
    let (_, upper) = app.get("/api/articles?tag=LG", None).await;
    let (_, lower) = app.get("/api/articles?tag=lg", None).await;
    let (_, mixed) = app.get("/api/articles?tag=tWINS", None).await;
    let (_, tags) = app.get("/api/tags", None).await;

    // Assert
    assert_eq!(article["tagList"], json!(["lg", "twins"]));
    assert_eq!(upper["articlesCount"], 1, "{upper}");
    assert_eq!(lower["articlesCount"], 1, "{lower}");
    assert_eq!(mixed["articlesCount"], 1, "{mixed}");
    assert_eq!(tags["tags"], json!(["lg", "twins"]));
}

async fn the_migration_lowercases_tags_stored_before_the_rule(app: TestApp) {
    // Arrange: an article whose tags were stored as written, before the rule.
    let token = app.register("twins_fan").await;
    let slug = app.create_article(&token, "Old post", &["x"]).await["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    on_write!(&db, pool => sqlx::query("UPDATE articles SET tag_list = $1 WHERE slug = $2")
        .bind(r#"["LG","Twins","lg","트윈스"]"#)
        .bind(&slug)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();

    // Act: the migration's statement, run again (it only touches tags not yet lowercased).
    let migration = match app.backend {
        Backend::Sqlite => {
            include_str!("../../migrations/sqlite/20261204000001_lowercase_tags.sql")
        }
        Backend::Postgres => {
            include_str!("../../migrations/postgres/20261204000001_lowercase_tags.sql")
        }
    };
    on_write!(&db, pool => sqlx::raw_sql(migration).execute(pool).await.map(|_| ())).unwrap();

    // Assert
    let (_, article) = app.get(&format!("/api/articles/{slug}"), None).await;
    let (status, found) = app.get("/api/articles?tag=Twins", None).await;
    let (_, tags) = app.get("/api/tags", None).await;
    assert_eq!(
        article["article"]["tagList"],
        json!(["lg", "twins", "트윈스"])
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["articlesCount"], 1, "{found}");
    assert_eq!(tags["tags"], json!(["lg", "twins", "트윈스"]));
}

crate::on_both_backends!(
    tags_are_lowercased_when_stored_and_found_in_any_case,
    the_migration_lowercases_tags_stored_before_the_rule,
);
