//! Articles: create, read, list (filters, paging), feed, update, delete, favourites, tags.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, TestApp};

/// Checks the RealWorld timestamp shape
/// `^\d{4,}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d.\d+(?:[+-][0-2]\d:[0-5]\d|Z)$`
/// without a regex dependency.
fn is_realworld_timestamp(value: &Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    let digits = |part: &str, len: usize, max_first: char| {
        part.len() == len
            && part.chars().all(|c| c.is_ascii_digit())
            && part.chars().next().is_some_and(|c| c <= max_first)
    };
    let date: Vec<&str> = date.split('-').collect();
    let date_ok = date.len() == 3
        && date[0].len() >= 4
        && date[0].chars().all(|c| c.is_ascii_digit())
        && digits(date[1], 2, '1')
        && digits(date[2], 2, '3');
    let (clock, zone) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, None)
    } else if time.len() > 6 && matches!(&time[time.len() - 6..time.len() - 5], "+" | "-") {
        (&time[..time.len() - 6], Some(&time[time.len() - 5..]))
    } else {
        return false;
    };
    let zone_ok = zone.is_none_or(|z| {
        z.len() == 5 && &z[2..3] == ":" && digits(&z[..2], 2, '2') && digits(&z[3..], 2, '5')
    });
    let Some((hms, fraction)) = clock.split_once('.') else {
        return false;
    };
    let hms: Vec<&str> = hms.split(':').collect();
    let clock_ok = hms.len() == 3
        && digits(hms[0], 2, '2')
        && digits(hms[1], 2, '5')
        && digits(hms[2], 2, '5')
        && !fraction.is_empty()
        && fraction.chars().all(|c| c.is_ascii_digit());
    date_ok && clock_ok && zone_ok
}

fn slugs(body: &Value) -> Vec<String> {
    body["articles"]
        .as_array()
        .expect("articles array")
        .iter()
        .map(|a| a["slug"].as_str().expect("slug").to_string())
        .collect()
}

fn slug_of(article: &Value) -> String {
    article["slug"].as_str().expect("slug").to_string()
}

async fn favorite(app: &TestApp, token: &str, slug: &str) -> Value {
    let (status, body) = app
        .post(
            &format!("/api/articles/{}/favorite", enc(slug)),
            Some(token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "favorite: {body}");
    body
}

async fn follow(app: &TestApp, token: &str, username: &str) {
    let (status, body) = app
        .post(
            &format!("/api/profiles/{}/follow", enc(username)),
            Some(token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "follow: {body}");
}

// ---------------------------------------------------------------- create

async fn creating_an_article_returns_201_with_the_article(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "How to train your dragon", "description": "Ever wonder how?",
                               "body": "You have to believe", "tagList": ["training", "dragons"]}}),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    let article = &body["article"];
    assert_eq!(article["title"], "How to train your dragon");
    assert_eq!(article["description"], "Ever wonder how?");
    assert_eq!(article["body"], "You have to believe");
    assert_eq!(article["tagList"], json!(["dragons", "training"]));
    assert!(
        slug_of(article).starts_with("how-to-train-your-dragon-"),
        "{article}"
    );
    assert!(
        is_realworld_timestamp(&article["createdAt"]),
        "{}",
        article["createdAt"]
    );
    assert!(
        is_realworld_timestamp(&article["updatedAt"]),
        "{}",
        article["updatedAt"]
    );
    assert_eq!(article["favorited"], false);
    assert!(article["favoritesCount"].is_i64());
    assert_eq!(article["favoritesCount"], 0);
    assert_eq!(article["author"]["username"], "jake");
    assert_eq!(article["author"]["following"], false);
}

async fn creating_an_article_without_a_token_returns_401(app: TestApp) {
    let (status, _) = app
        .post(
            "/api/articles",
            None,
            json!({"article": {"title": "t", "description": "d", "body": "b"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn creating_an_article_without_title_description_or_body_returns_422_naming_each(
    app: TestApp,
) {
    let token = app.register("jake").await;

    let (status, body) = app
        .post("/api/articles", Some(&token), json!({"article": {}}))
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for field in ["title", "description", "body"] {
        assert!(
            body["errors"][field]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "no error for {field}: {body}"
        );
    }
}

async fn an_article_of_only_invisible_characters_returns_422_naming_each(app: TestApp) {
    let token = app.register("jake").await;
    // Zero-width space, word joiner, byte-order mark, Hangul filler: none of them is Unicode
    // white space, so a plain trim keeps them, yet the title would show as nothing.
    let invisible = "\u{200B}\u{2060} \u{FEFF}\u{3164}";

    let (status, body) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": invisible, "description": invisible, "body": invisible}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for field in ["title", "description", "body"] {
        assert_eq!(body["errors"][field], json!(["can't be empty"]), "{body}");
    }
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0, "{list}");
}

async fn creating_an_article_with_a_201_character_title_returns_422(app: TestApp) {
    let token = app.register("jake").await;

    let (status, body) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "x".repeat(201), "description": "d", "body": "b"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["title"].is_array(), "{body}");
}

async fn creating_an_article_with_eleven_tags_returns_422(app: TestApp) {
    let token = app.register("jake").await;
    let tags: Vec<String> = (0..11).map(|i| format!("tag{i}")).collect();

    let (status, body) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "t", "description": "d", "body": "b", "tagList": tags}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["tagList"].is_array(), "{body}");
}

// ---------------------------------------------------------------- read

async fn getting_an_article_by_slug_returns_it_with_its_body(app: TestApp) {
    let token = app.register("jake").await;
    let created = app.create_article(&token, "Dragons", &["dragons"]).await;
    let slug = slug_of(&created);

    let (status, body) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["slug"], slug.as_str());
    assert_eq!(body["article"]["title"], "Dragons");
    assert_eq!(body["article"]["body"], "body text");
    assert_eq!(body["article"]["tagList"], json!(["dragons"]));
}

async fn getting_an_unknown_slug_returns_404(app: TestApp) {
    let (status, body) = app.get("/api/articles/no-such-article", None).await;

    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

// ---------------------------------------------------------------- list

async fn listing_returns_newest_first_without_bodies(app: TestApp) {
    let token = app.register("jake").await;
    let first = app.create_article(&token, "First", &[]).await;
    let second = app.create_article(&token, "Second", &[]).await;

    let (status, body) = app.get("/api/articles", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), vec![slug_of(&second), slug_of(&first)]);
    for article in body["articles"].as_array().unwrap() {
        assert!(
            article.get("body").is_none(),
            "list carries a body: {article}"
        );
        assert!(article["title"].is_string());
        assert!(article["author"]["username"] == "jake");
    }
    assert_eq!(body["articlesCount"], 2);
}

async fn articles_count_is_the_total_not_the_page_length(app: TestApp) {
    let token = app.register("jake").await;
    for title in ["One", "Two", "Three"] {
        app.create_article(&token, title, &[]).await;
    }

    let (status, body) = app.get("/api/articles?limit=2", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["articles"].as_array().unwrap().len(), 2);
    assert_eq!(body["articlesCount"], 3);
}

async fn offset_skips_the_newest_articles(app: TestApp) {
    let token = app.register("jake").await;
    let one = app.create_article(&token, "One", &[]).await;
    let two = app.create_article(&token, "Two", &[]).await;
    app.create_article(&token, "Three", &[]).await;

    let (status, body) = app.get("/api/articles?limit=2&offset=1", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), vec![slug_of(&two), slug_of(&one)]);
    assert_eq!(body["articlesCount"], 3);
}

async fn the_created_article_is_the_one_a_read_returns(app: TestApp) {
    // PostgreSQL inserts and reads it back in one statement; SQLite inserts, then reads.
    let token = app.register("jake").await;
    let (status, created) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "Opening day", "description": "d", "body": "b",
                   "tagList": ["kbo", "lg"], "category": "free"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let slug = slug_of(&created["article"]);

    let (_, read) = app
        .get(&format!("/api/articles/{}", enc(&slug)), Some(&token))
        .await;

    let mut created = created["article"].clone();
    let mut read = read["article"].clone();
    // The read itself counts as a view.
    created["viewCount"] = json!(null);
    read["viewCount"] = json!(null);
    assert_eq!(created, read);
    assert_eq!(created["tagList"], json!(["kbo", "lg"]));
    assert_eq!(created["author"]["username"], "jake");
}

async fn the_total_follows_creates_and_deletes_with_and_without_a_filter(app: TestApp) {
    // The unfiltered total is the database's running count; a filtered one counts rows.
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let posts = (0..12).map(|i| {
        let token = if i % 2 == 0 {
            jake.clone()
        } else {
            anne.clone()
        };
        let app = &app;
        async move { slug_of(&app.create_article(&token, &format!("Post {i}"), &[]).await) }
    });
    let slugs: Vec<String> = futures::future::join_all(posts).await;
    for slug in slugs.iter().step_by(4) {
        let (status, _) = app
            .delete(&format!("/api/articles/{}", enc(slug)), Some(&jake))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    let (_, all) = app.get("/api/articles?limit=1", None).await;
    let (_, by_jake) = app.get("/api/articles?author=jake&limit=1", None).await;
    let (_, by_anne) = app.get("/api/articles?author=anne&limit=1", None).await;

    assert_eq!(all["articlesCount"], 9, "{all}");
    assert_eq!(by_jake["articlesCount"], 3, "{by_jake}");
    assert_eq!(by_anne["articlesCount"], 6, "{by_anne}");
}

async fn a_page_past_the_end_still_counts_every_article(app: TestApp) {
    let token = app.register("jake").await;
    for title in ["One", "Two", "Three"] {
        app.create_article(&token, title, &[]).await;
    }

    let (status, past) = app.get("/api/articles?offset=10", None).await;
    let (_, filtered) = app.get("/api/articles?author=jake&offset=10", None).await;

    assert_eq!(status, StatusCode::OK, "{past}");
    assert_eq!(past["articles"], json!([]));
    assert_eq!(past["articlesCount"], 3);
    assert_eq!(filtered["articles"], json!([]));
    assert_eq!(filtered["articlesCount"], 3);
}

async fn out_of_range_paging_returns_422(app: TestApp) {
    // Arrange: nothing; the checks do not depend on data.

    let (limit_zero, zero_body) = app.get("/api/articles?limit=0", None).await;
    let (limit_big, big_body) = app.get("/api/articles?limit=101", None).await;
    let (offset_neg, neg_body) = app.get("/api/articles?offset=-1", None).await;

    assert_eq!(limit_zero, StatusCode::UNPROCESSABLE_ENTITY, "{zero_body}");
    assert!(zero_body["errors"]["limit"].is_array(), "{zero_body}");
    assert_eq!(limit_big, StatusCode::UNPROCESSABLE_ENTITY, "{big_body}");
    assert!(big_body["errors"]["limit"].is_array(), "{big_body}");
    assert_eq!(offset_neg, StatusCode::UNPROCESSABLE_ENTITY, "{neg_body}");
    assert!(neg_body["errors"]["offset"].is_array(), "{neg_body}");
}

async fn a_non_numeric_limit_returns_400(app: TestApp) {
    let (status, body) = app.get("/api/articles?limit=abc", None).await;

    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["errors"].is_object(), "{body}");
}

async fn listing_filters_by_tag(app: TestApp) {
    let token = app.register("jake").await;
    let dragons = app
        .create_article(&token, "Dragons", &["dragons", "fantasy"])
        .await;
    app.create_article(&token, "Cats", &["cats"]).await;

    let (status, body) = app.get("/api/articles?tag=dragons", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), vec![slug_of(&dragons)]);
    assert_eq!(body["articlesCount"], 1);
}

async fn listing_filters_by_author(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let by_jake = app.create_article(&jake, "By jake", &[]).await;
    app.create_article(&anne, "By anne", &[]).await;

    let (status, body) = app.get("/api/articles?author=jake", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), vec![slug_of(&by_jake)]);
    assert_eq!(body["articlesCount"], 1);
}

async fn listing_by_an_unknown_author_returns_an_empty_list(app: TestApp) {
    let token = app.register("jake").await;
    app.create_article(&token, "Something", &[]).await;

    let (status, body) = app.get("/api/articles?author=nobody", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["articles"], json!([]));
    assert_eq!(body["articlesCount"], 0);
}

async fn listing_filters_by_who_favorited(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let liked = app.create_article(&jake, "Liked", &[]).await;
    app.create_article(&jake, "Not liked", &[]).await;
    favorite(&app, &anne, &slug_of(&liked)).await;

    let (status, body) = app.get("/api/articles?favorited=anne", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), vec![slug_of(&liked)]);
    assert_eq!(body["articlesCount"], 1);
}

// ---------------------------------------------------------------- feed

async fn the_feed_shows_only_followed_authors(app: TestApp) {
    let reader = app.register("reader").await;
    let followed = app.register("followed").await;
    let stranger = app.register("stranger").await;
    let wanted = app.create_article(&followed, "Wanted", &[]).await;
    app.create_article(&stranger, "Unwanted", &[]).await;
    follow(&app, &reader, "followed").await;

    let (status, body) = app.get("/api/articles/feed", Some(&reader)).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slugs(&body), vec![slug_of(&wanted)]);
    assert_eq!(body["articlesCount"], 1);
    assert_eq!(body["articles"][0]["author"]["following"], true);
}

async fn the_feed_of_someone_following_nobody_is_empty(app: TestApp) {
    let reader = app.register("reader").await;
    let author = app.register("author").await;
    app.create_article(&author, "Unseen", &[]).await;

    let (status, body) = app.get("/api/articles/feed", Some(&reader)).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["articles"], json!([]));
    assert_eq!(body["articlesCount"], 0);
}

async fn the_feed_without_a_token_returns_401(app: TestApp) {
    let (status, _) = app.get("/api/articles/feed", None).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------- update

async fn changing_the_title_changes_the_slug(app: TestApp) {
    let token = app.register("jake").await;
    let old = slug_of(&app.create_article(&token, "Old title", &[]).await);

    let (status, body) = app
        .put(
            &format!("/api/articles/{}", enc(&old)),
            Some(&token),
            json!({"article": {"title": "New title"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let new = slug_of(&body["article"]);
    assert!(new.starts_with("new-title-"), "{new}");
    assert_eq!(body["article"]["title"], "New title");
    let (old_status, _) = app.get(&format!("/api/articles/{}", enc(&old)), None).await;
    assert_eq!(old_status, StatusCode::NOT_FOUND);
    let (new_status, fetched) = app.get(&format!("/api/articles/{}", enc(&new)), None).await;
    assert_eq!(new_status, StatusCode::OK);
    assert_eq!(fetched["article"]["title"], "New title");
}

async fn changing_only_the_description_keeps_the_slug(app: TestApp) {
    let token = app.register("jake").await;
    let slug = slug_of(&app.create_article(&token, "Stable", &[]).await);

    let (status, body) = app
        .put(
            &format!("/api/articles/{}", enc(&slug)),
            Some(&token),
            json!({"article": {"description": "A new description"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["slug"], slug.as_str());
    assert_eq!(body["article"]["description"], "A new description");
    assert_eq!(body["article"]["title"], "Stable");
    assert_eq!(body["article"]["body"], "body text");
}

async fn updating_keeps_created_at_and_moves_updated_at(app: TestApp) {
    let token = app.register("jake").await;
    let created = app.create_article(&token, "Timed", &[]).await;
    let slug = slug_of(&created);
    // Timestamps have millisecond precision; make sure the clock moves.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let (status, body) = app
        .put(
            &format!("/api/articles/{}", enc(&slug)),
            Some(&token),
            json!({"article": {"body": "edited"}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["createdAt"], created["createdAt"]);
    let before = created["updatedAt"].as_str().expect("updatedAt");
    let after = body["article"]["updatedAt"].as_str().expect("updatedAt");
    assert!(
        is_realworld_timestamp(&body["article"]["updatedAt"]),
        "{after}"
    );
    // Same fixed-width UTC format, so string order is time order.
    assert!(
        after > before,
        "updatedAt did not move: {before} -> {after}"
    );
}

async fn updating_the_tags_replaces_them_everywhere(app: TestApp) {
    let token = app.register("jake").await;
    let slug = slug_of(&app.create_article(&token, "Tagged", &["old"]).await);

    let (status, body) = app
        .put(
            &format!("/api/articles/{}", enc(&slug)),
            Some(&token),
            json!({"article": {"tagList": ["newer", "fresh"]}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["tagList"], json!(["fresh", "newer"]));
    let (_, by_new) = app.get("/api/articles?tag=newer", None).await;
    let (_, by_old) = app.get("/api/articles?tag=old", None).await;
    let (_, tags) = app.get("/api/tags", None).await;
    assert_eq!(slugs(&by_new), vec![slug]);
    assert_eq!(by_old["articlesCount"], 0);
    assert_eq!(tags["tags"], json!(["fresh", "newer"]));
}

async fn updating_someone_elses_article_returns_403(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Jake's", &[]).await);

    let (status, _) = app
        .put(
            &format!("/api/articles/{}", enc(&slug)),
            Some(&anne),
            json!({"article": {"title": "Hijacked"}}),
        )
        .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, fetched) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;
    assert_eq!(fetched["article"]["title"], "Jake's");
}

async fn updating_an_unknown_article_returns_404(app: TestApp) {
    let token = app.register("jake").await;

    let (status, _) = app
        .put(
            "/api/articles/no-such-article",
            Some(&token),
            json!({"article": {"title": "x"}}),
        )
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn updating_without_a_token_returns_401(app: TestApp) {
    let token = app.register("jake").await;
    let slug = slug_of(&app.create_article(&token, "Mine", &[]).await);

    let (status, _) = app
        .put(
            &format!("/api/articles/{}", enc(&slug)),
            None,
            json!({"article": {"title": "x"}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn updating_with_an_empty_title_returns_422(app: TestApp) {
    let token = app.register("jake").await;
    let slug = slug_of(&app.create_article(&token, "Mine", &[]).await);

    let (status, body) = app
        .put(
            &format!("/api/articles/{}", enc(&slug)),
            Some(&token),
            json!({"article": {"title": ""}}),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["title"].is_array(), "{body}");
    let (_, fetched) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;
    assert_eq!(fetched["article"]["title"], "Mine");
}

// ---------------------------------------------------------------- delete

async fn deleting_an_article_returns_204_and_it_is_gone(app: TestApp) {
    let token = app.register("jake").await;
    let slug = slug_of(&app.create_article(&token, "Doomed", &[]).await);

    let (status, _) = app
        .delete(&format!("/api/articles/{}", enc(&slug)), Some(&token))
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    let (after, _) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;
    assert_eq!(after, StatusCode::NOT_FOUND);
}

async fn deleting_an_article_with_comments_and_favourites_removes_them_and_its_tags(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Busy", &["gone"]).await);
    app.create_article(&jake, "Quiet", &["kept"]).await;
    favorite(&app, &anne, &slug).await;
    let (comment_status, _) = app
        .post(
            &format!("/api/articles/{}/comments", enc(&slug)),
            Some(&anne),
            json!({"comment": {"body": "nice"}}),
        )
        .await;
    assert_eq!(comment_status, StatusCode::OK);

    let (status, _) = app
        .delete(&format!("/api/articles/{}", enc(&slug)), Some(&jake))
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, favourites) = app.get("/api/articles?favorited=anne", None).await;
    assert_eq!(favourites["articlesCount"], 0);
    let (_, tags) = app.get("/api/tags", None).await;
    assert_eq!(tags["tags"], json!(["kept"]));
    let (comments_status, _) = app
        .get(&format!("/api/articles/{}/comments", enc(&slug)), None)
        .await;
    assert_eq!(comments_status, StatusCode::NOT_FOUND);
}

async fn deleting_someone_elses_article_returns_403(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Jake's", &[]).await);

    let (status, _) = app
        .delete(&format!("/api/articles/{}", enc(&slug)), Some(&anne))
        .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    let (after, _) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;
    assert_eq!(after, StatusCode::OK);
}

async fn deleting_an_unknown_article_returns_404(app: TestApp) {
    let token = app.register("jake").await;

    let (status, _) = app
        .delete("/api/articles/no-such-article", Some(&token))
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------- favourites

async fn favoriting_then_unfavoriting_moves_the_count_to_one_then_zero(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Likeable", &[]).await);
    let path = format!("/api/articles/{}/favorite", enc(&slug));

    let (fav_status, faved) = app.post(&path, Some(&anne), json!({})).await;
    let (unfav_status, unfaved) = app.delete(&path, Some(&anne)).await;

    assert_eq!(fav_status, StatusCode::OK, "{faved}");
    assert_eq!(faved["article"]["favoritesCount"], 1);
    assert_eq!(faved["article"]["favorited"], true);
    assert_eq!(unfav_status, StatusCode::OK, "{unfaved}");
    assert_eq!(unfaved["article"]["favoritesCount"], 0);
    assert_eq!(unfaved["article"]["favorited"], false);
}

async fn the_favorited_flag_is_per_viewer(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Likeable", &[]).await);
    favorite(&app, &anne, &slug).await;
    let path = format!("/api/articles/{}", enc(&slug));

    let (_, as_anne) = app.get(&path, Some(&anne)).await;
    let (_, as_jake) = app.get(&path, Some(&jake)).await;
    let (_, anonymous) = app.get(&path, None).await;

    assert_eq!(as_anne["article"]["favorited"], true);
    assert_eq!(as_jake["article"]["favorited"], false);
    assert_eq!(anonymous["article"]["favorited"], false);
    for body in [&as_anne, &as_jake, &anonymous] {
        assert_eq!(body["article"]["favoritesCount"], 1);
    }
}

async fn favoriting_twice_keeps_the_count_at_one(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Likeable", &[]).await);
    favorite(&app, &anne, &slug).await;

    let second = favorite(&app, &anne, &slug).await;

    assert_eq!(second["article"]["favoritesCount"], 1);
    assert_eq!(second["article"]["favorited"], true);
}

async fn unfavoriting_an_article_never_favorited_keeps_the_count_at_zero(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let slug = slug_of(&app.create_article(&jake, "Likeable", &[]).await);
    favorite(&app, &jake, &slug).await;

    let (status, body) = app
        .delete(
            &format!("/api/articles/{}/favorite", enc(&slug)),
            Some(&anne),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["favoritesCount"], 1);
    assert_eq!(body["article"]["favorited"], false);
}

async fn lists_show_the_favorited_flag_of_the_viewer(app: TestApp) {
    let jake = app.register("jake").await;
    let anne = app.register("anne").await;
    let liked = app.create_article(&jake, "Liked", &[]).await;
    app.create_article(&jake, "Ignored", &[]).await;
    favorite(&app, &anne, &slug_of(&liked)).await;

    let (_, as_anne) = app.get("/api/articles", Some(&anne)).await;
    let (_, anonymous) = app.get("/api/articles", None).await;

    // Newest first: "Ignored", then "Liked".
    assert_eq!(as_anne["articles"][0]["favorited"], false);
    assert_eq!(as_anne["articles"][1]["favorited"], true);
    assert_eq!(as_anne["articles"][1]["favoritesCount"], 1);
    assert_eq!(anonymous["articles"][1]["favorited"], false);
    assert_eq!(anonymous["articles"][1]["favoritesCount"], 1);
}

async fn concurrent_favourites_from_different_users_are_all_counted(app: TestApp) {
    let author = app.register("author").await;
    let slug = slug_of(&app.create_article(&author, "Crowd pleaser", &[]).await);
    let mut fans = Vec::new();
    for i in 0..5 {
        fans.push(app.register(&format!("fan{i}")).await);
    }
    let path = format!("/api/articles/{}/favorite", enc(&slug));

    let results = futures::future::join_all(
        fans.iter()
            .map(|token| app.post(&path, Some(token), json!({}))),
    )
    .await;

    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let (_, fetched) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;
    assert_eq!(fetched["article"]["favoritesCount"], 5);
}

async fn favoriting_an_unknown_article_returns_404(app: TestApp) {
    let token = app.register("jake").await;

    let (status, _) = app
        .post(
            "/api/articles/no-such-article/favorite",
            Some(&token),
            json!({}),
        )
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn favoriting_without_a_token_returns_401(app: TestApp) {
    let token = app.register("jake").await;
    let slug = slug_of(&app.create_article(&token, "Likeable", &[]).await);

    let (status, _) = app
        .post(
            &format!("/api/articles/{}/favorite", enc(&slug)),
            None,
            json!({}),
        )
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------- tags

async fn the_tags_endpoint_lists_used_tags_alphabetically(app: TestApp) {
    let token = app.register("jake").await;
    app.create_article(&token, "One", &["zebra", "apple"]).await;
    app.create_article(&token, "Two", &["mango", "apple"]).await;

    let (status, body) = app.get("/api/tags", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"], json!(["apple", "mango", "zebra"]));
}

/// On SQLite, concurrent posts share commits (group commit); each must still be stored once,
/// with its own tags, and answered with its own article.
async fn many_concurrent_posts_are_each_stored_once_with_their_tags(app: TestApp) {
    let token = app.register("jake").await;

    let posts = (0..40).map(|i| {
        let app = &app;
        let token = &token;
        async move {
            let tag = format!("tag{i}");
            let article = app
                .create_article(token, &format!("Concurrent post {i}"), &[&tag, "shared"])
                .await;
            assert_eq!(article["title"], format!("Concurrent post {i}"));
            assert_eq!(article["tagList"], json!(["shared", tag]));
        }
    });
    futures::future::join_all(posts).await;

    let (status, list) = app.get("/api/articles?tag=shared&limit=100", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["articlesCount"], 40);
    let (_, one) = app.get("/api/articles?tag=tag7", None).await;
    assert_eq!(one["articlesCount"], 1);
    assert_eq!(one["articles"][0]["title"], "Concurrent post 7");
}

crate::on_both_backends!(
    many_concurrent_posts_are_each_stored_once_with_their_tags,
    creating_an_article_returns_201_with_the_article,
    creating_an_article_without_a_token_returns_401,
    creating_an_article_without_title_description_or_body_returns_422_naming_each,
    an_article_of_only_invisible_characters_returns_422_naming_each,
    creating_an_article_with_a_201_character_title_returns_422,
    creating_an_article_with_eleven_tags_returns_422,
    getting_an_article_by_slug_returns_it_with_its_body,
    getting_an_unknown_slug_returns_404,
    listing_returns_newest_first_without_bodies,
    articles_count_is_the_total_not_the_page_length,
    offset_skips_the_newest_articles,
    the_created_article_is_the_one_a_read_returns,
    the_total_follows_creates_and_deletes_with_and_without_a_filter,
    a_page_past_the_end_still_counts_every_article,
    out_of_range_paging_returns_422,
    a_non_numeric_limit_returns_400,
    listing_filters_by_tag,
    listing_filters_by_author,
    listing_by_an_unknown_author_returns_an_empty_list,
    listing_filters_by_who_favorited,
    the_feed_shows_only_followed_authors,
    the_feed_of_someone_following_nobody_is_empty,
    the_feed_without_a_token_returns_401,
    changing_the_title_changes_the_slug,
    changing_only_the_description_keeps_the_slug,
    updating_keeps_created_at_and_moves_updated_at,
    updating_the_tags_replaces_them_everywhere,
    updating_someone_elses_article_returns_403,
    updating_an_unknown_article_returns_404,
    updating_without_a_token_returns_401,
    updating_with_an_empty_title_returns_422,
    deleting_an_article_returns_204_and_it_is_gone,
    deleting_an_article_with_comments_and_favourites_removes_them_and_its_tags,
    deleting_someone_elses_article_returns_403,
    deleting_an_unknown_article_returns_404,
    favoriting_then_unfavoriting_moves_the_count_to_one_then_zero,
    the_favorited_flag_is_per_viewer,
    favoriting_twice_keeps_the_count_at_one,
    unfavoriting_an_article_never_favorited_keeps_the_count_at_zero,
    lists_show_the_favorited_flag_of_the_viewer,
    concurrent_favourites_from_different_users_are_all_counted,
    favoriting_an_unknown_article_returns_404,
    favoriting_without_a_token_returns_401,
    the_tags_endpoint_lists_used_tags_alphabetically,
);
