//! The web UI's community pages: writing articles (board, tags, photos, cover), editing and
//! deleting one's own, comments with one level of replies, favourites, follows, profiles,
//! settings, and reading the boards (search, tabs, sort, numbered pages, counts), with bad
//! parameters answered by HTML pages.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{enc, TestApp};
use crate::uploads::{jpeg_with_exif, post_file};
use crate::web_client::{Browser, Page};

/// Publishes through the editor; returns the article's path (`/articles/<slug>`).
async fn publish(browser: &mut Browser<'_>, fields: &[(&str, &str)]) -> Page {
    let csrf = browser.get("/editor").await.csrf();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    browser.post("/editor", &form).await
}

fn is_html(page: &Page) -> bool {
    page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html")
}

async fn writing_an_article_with_a_board_tags_and_a_photo_publishes_it(app: TestApp) {
    // Arrange: a signed-in writer with an uploaded photo (as the editor's script uploads it).
    let mut writer = Browser::new(&app);
    writer.register("photographer").await;
    let csrf = writer.get("/").await.csrf();
    let token = writer
        .post_with_header("/session/token", ("x-csrf-token", &csrf))
        .await;
    let token = serde_json::from_str::<serde_json::Value>(&token.html).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, upload) = post_file(&app, Some(&token), jpeg_with_exif(64, 48), "a.jpg").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{upload}");
    let upload_id = upload["upload"]["id"].as_str().unwrap().to_string();
    let body = format!("직관 **후기**\n\n![](/media/{upload_id}/original.jpg)");

    // Act
    let published = publish(
        &mut writer,
        &[
            ("category", "food"),
            ("title", "잠실 치킨 후기"),
            ("description", "맛있다"),
            ("body", &body),
            ("tags", "#치킨 잠실,먹방"),
            ("cover", &upload_id),
        ],
    )
    .await;
    let path = published.location().to_string();
    let article = writer.get(&path).await;
    let slug = percent_encoding::percent_decode_str(path.trim_start_matches("/articles/"))
        .decode_utf8()
        .unwrap()
        .to_string();
    let (_, api) = app
        .get(&format!("/api/articles/{}", enc(&slug)), None)
        .await;

    // Assert
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.html
    );
    assert_eq!(article.status, StatusCode::OK);
    assert!(
        article.html.contains("<strong>후기</strong>"),
        "{}",
        article.html
    );
    assert!(article.html.contains("음식"), "the board is shown");
    assert!(
        article.html.contains(r#"class="cover-full""#),
        "{}",
        article.html
    );
    assert_eq!(api["article"]["category"], "food");
    assert_eq!(api["article"]["tagList"], json!(["먹방", "잠실", "치킨"]));
    assert_eq!(api["article"]["coverImage"]["id"], upload_id.as_str());
}

async fn the_editor_shows_every_problem_and_keeps_what_was_typed(app: TestApp) {
    // Arrange
    let mut writer = Browser::new(&app);
    writer.register("hasty").await;

    // Act
    let page = publish(
        &mut writer,
        &[
            ("category", "gossip"),
            ("title", "  "),
            ("description", "kept description"),
            ("body", "some text"),
            ("cover", "not-an-upload"),
        ],
    )
    .await;

    // Assert
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for label in ["게시판", "제목"] {
        assert!(page.html.contains(label), "{label}: {}", page.html);
    }
    assert!(
        page.html.contains(r#"value="kept description""#),
        "{}",
        page.html
    );
    assert!(page.html.contains("some text</textarea>"), "{}", page.html);
}

async fn only_the_author_can_edit_or_delete_an_article(app: TestApp) {
    // Arrange
    let mut author = Browser::new(&app);
    author.register("owner").await;
    let path = publish(
        &mut author,
        &[("title", "원래 제목"), ("description", "d"), ("body", "b")],
    )
    .await
    .location()
    .to_string();
    let slug = path.trim_start_matches("/articles/").to_string();
    let mut other = Browser::new(&app);
    other.register("intruder").await;
    let csrf = other.get("/").await.csrf();

    // Act
    let others_editor = other.get(&format!("/editor/{slug}")).await;
    let others_delete = other
        .post(&format!("/articles/{slug}/delete"), &[("csrf", &csrf)])
        .await;
    let csrf = author.get(&path).await.csrf();
    let edited = author
        .post(
            &format!("/editor/{slug}"),
            &[
                ("csrf", &csrf),
                ("title", "원래 제목"),
                ("description", "d"),
                ("body", "고친 본문"),
            ],
        )
        .await;
    let after_edit = author.get(&path).await;
    let deleted = author
        .post(&format!("/articles/{slug}/delete"), &[("csrf", &csrf)])
        .await;
    let gone = author.get(&path).await;

    // Assert
    assert_eq!(others_editor.status, StatusCode::FORBIDDEN);
    assert_eq!(others_delete.status, StatusCode::FORBIDDEN);
    assert!(is_html(&others_delete));
    assert_eq!(edited.location(), path, "same title, same slug");
    assert!(after_edit.html.contains("고친 본문"));
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn comments_take_replies_one_level_deep_and_only_their_author_edits_them(app: TestApp) {
    // Arrange
    let mut author = Browser::new(&app);
    author.register("poster").await;
    let path = publish(
        &mut author,
        &[("title", "토론"), ("description", "d"), ("body", "b")],
    )
    .await
    .location()
    .to_string();
    let mut fan = Browser::new(&app);
    fan.register("talker").await;
    let csrf = fan.get(&path).await.csrf();
    let comments = format!("{path}/comments");

    // Act
    let commented = fan
        .post(&comments, &[("csrf", &csrf), ("body", "첫 댓글")])
        .await;
    let comment_id = commented
        .location()
        .rsplit("#comment-")
        .next()
        .unwrap()
        .to_string();
    let replied = fan
        .post(
            &comments,
            &[
                ("csrf", &csrf),
                ("body", "답글입니다"),
                ("parent", &comment_id),
            ],
        )
        .await;
    let reply_id = replied
        .location()
        .rsplit("#comment-")
        .next()
        .unwrap()
        .to_string();
    let too_deep = fan
        .post(
            &comments,
            &[
                ("csrf", &csrf),
                ("body", "답글의 답글"),
                ("parent", &reply_id),
            ],
        )
        .await;
    let empty = fan
        .post(&comments, &[("csrf", &csrf), ("body", "  ")])
        .await;
    let author_csrf = author.get(&path).await.csrf();
    let not_theirs = author
        .post(
            &format!("{comments}/{comment_id}/edit"),
            &[("csrf", &author_csrf), ("body", "hijacked")],
        )
        .await;
    let edited = fan
        .post(
            &format!("{comments}/{reply_id}/edit"),
            &[("csrf", &csrf), ("body", "고친 답글")],
        )
        .await;
    let page = fan.get(&path).await;

    // Assert
    assert_eq!(commented.status, StatusCode::SEE_OTHER);
    assert_eq!(replied.status, StatusCode::SEE_OTHER);
    assert_eq!(too_deep.status, StatusCode::NOT_FOUND);
    assert!(is_html(&too_deep));
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(is_html(&empty));
    assert_eq!(not_theirs.status, StatusCode::FORBIDDEN);
    assert_eq!(edited.status, StatusCode::SEE_OTHER);
    let thread = page
        .html
        .split(&format!(r#"id="comment-{comment_id}""#))
        .nth(1)
        .expect("the comment is shown");
    assert!(
        thread.contains(&format!(
            r#"class="comment reply-comment" id="comment-{reply_id}""#
        )),
        "the reply sits inside its comment: {}",
        page.html
    );
    assert!(page.html.contains("고친 답글"));
    assert!(!page.html.contains("hijacked"));
    assert!(!page.html.contains("답글의 답글"));

    // Act: deleting the comment takes its reply with it.
    let deleted = fan
        .post(
            &format!("{comments}/{comment_id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    let page = fan.get(&path).await;

    // Assert
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(!page.html.contains("첫 댓글") && !page.html.contains("고친 답글"));
}

async fn the_comments_api_takes_a_parent_id_for_replies_one_level_deep(app: TestApp) {
    // Arrange
    let token = app.register("api_replier").await;
    let slug = app.create_article(&token, "api thread", &[]).await["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let comments = format!("/api/articles/{}/comments", enc(&slug));
    let (_, top) = app
        .post(&comments, Some(&token), json!({"comment": {"body": "top"}}))
        .await;
    let top_id = top["comment"]["id"].as_i64().unwrap();

    // Act
    let (status, reply) = app
        .post(
            &comments,
            Some(&token),
            json!({"comment": {"body": "reply", "parentId": top_id}}),
        )
        .await;
    let reply_id = reply["comment"]["id"].as_i64().unwrap();
    let (deeper, problem) = app
        .post(
            &comments,
            Some(&token),
            json!({"comment": {"body": "deeper", "parentId": reply_id}}),
        )
        .await;
    let (_, list) = app.get(&comments, None).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["comment"]["parentId"], top_id);
    assert_eq!(top["comment"]["parentId"], json!(null));
    assert_eq!(deeper, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["errors"]["parentId"].is_array(), "{problem}");
    assert_eq!(list["comments"].as_array().unwrap().len(), 2);
}

async fn favouriting_and_following_toggle_from_the_article_page(app: TestApp) {
    // Arrange
    let mut author = Browser::new(&app);
    author.register("followed").await;
    let path = publish(
        &mut author,
        &[
            ("title", "좋아요 해주세요"),
            ("description", "d"),
            ("body", "b"),
        ],
    )
    .await
    .location()
    .to_string();
    let mut fan = Browser::new(&app);
    fan.register("follower").await;
    let csrf = fan.get(&path).await.csrf();

    // Act
    let favourited = fan
        .post(&format!("{path}/favorite"), &[("csrf", &csrf), ("on", "1")])
        .await;
    let followed = fan
        .post("/profiles/followed/follow", &[("csrf", &csrf), ("on", "1")])
        .await;
    let article = fan.get(&path).await;
    let profile = fan.get("/profiles/followed").await;
    let bad_toggle = fan
        .post(
            &format!("{path}/favorite"),
            &[("csrf", &csrf), ("on", "maybe")],
        )
        .await;
    let unfollowed = fan
        .post("/profiles/followed/follow", &[("csrf", &csrf), ("on", "0")])
        .await;
    let profile_after = fan.get("/profiles/followed").await;

    // Assert
    assert_eq!(favourited.status, StatusCode::SEE_OTHER);
    assert_eq!(followed.location(), "/profiles/followed");
    assert!(article.html.contains("♥ 1"), "{}", article.html);
    assert!(article.html.contains("좋아요 취소"), "{}", article.html);
    assert!(profile.html.contains("팔로우 취소"), "{}", profile.html);
    assert!(
        profile.html.contains("좋아요 해주세요"),
        "the user's articles"
    );
    assert_eq!(bad_toggle.status, StatusCode::BAD_REQUEST);
    assert!(is_html(&bad_toggle));
    assert_eq!(unfollowed.status, StatusCode::SEE_OTHER);
    assert!(!profile_after.html.contains("팔로우 취소"));
}

async fn the_settings_page_changes_bio_picture_and_team_shown_on_the_profile(app: TestApp) {
    // Arrange
    let mut fan = Browser::new(&app);
    fan.register("settler").await;
    let csrf = fan.get("/settings").await.csrf();

    // Act
    let refused = fan
        .post(
            "/settings",
            &[
                ("csrf", &csrf),
                ("bio", "hi"),
                ("image", ""),
                ("team", "yankees"),
            ],
        )
        .await;
    let saved = fan
        .post(
            "/settings",
            &[
                ("csrf", &csrf),
                ("bio", "LG 팬 20년"),
                ("image", "https://img.example/me.png"),
                ("team", "lg"),
            ],
        )
        .await;
    let profile = fan.get("/profiles/settler").await;
    let anonymous = Browser::new(&app).get("/settings").await;

    // Assert
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("응원 팀"), "{}", refused.html);
    assert_eq!(saved.location(), "/settings?saved=1");
    assert!(profile.html.contains("LG 팬 20년"), "{}", profile.html);
    assert!(profile.html.contains("https://img.example/me.png"));
    assert!(profile.html.contains("team-lg"));
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), "/login?next=%2Fsettings");
}

async fn the_boards_search_filter_sort_and_number_their_pages(app: TestApp) {
    // Arrange: one question, commented on, then 21 newer food articles (one more than a page).
    let token = app.register("board_writer").await;
    let (_, popular) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {"title": "popular question", "description": "d",
                "body": "b", "category": "question"}}),
        )
        .await;
    let slug = popular["article"]["slug"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/articles/{}/comments", enc(&slug)),
        Some(&token),
        json!({"comment": {"body": "c"}}),
    )
    .await;
    for n in 0..21 {
        let (status, _) = app
            .post(
                "/api/articles",
                Some(&token),
                json!({"article": {"title": format!("food {n}"), "description": "d",
                    "body": "b", "category": "food"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut reader = Browser::new(&app);

    // Act
    let viewed = reader.get(&format!("/articles/{}", enc(&slug))).await;
    let food = reader.get("/?board=food").await;
    let food_2 = reader.get("/?board=food&page=2").await;
    let searched = reader.get("/?q=popular").await;
    let newest = reader.get("/").await;
    let by_comments = reader.get("/?sort=comments").await;
    // Views are counted in memory and flushed every 50 ms in tests.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let by_views = reader.get("/?sort=views").await;

    // Assert
    assert!(
        viewed.html.contains("조회 1"),
        "the page view counts: {}",
        viewed.html
    );
    assert!(food.html.contains("food 20") && !food.html.contains("popular question"));
    assert!(
        food.html.contains(r#"href="/?board=food&#38;page=2""#)
            || food.html.contains(r#"href="/?board=food&amp;page=2""#),
        "{}",
        food.html
    );
    assert!(food_2.html.contains("food 0<") && !food_2.html.contains("food 20<"));
    assert!(searched.html.contains("popular question") && !searched.html.contains("food 1<"));
    let first = |page: &Page| {
        page.html
            .split(r#"<h3><a href=""#)
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert!(first(&newest).contains("food 20"), "{}", newest.html);
    assert!(
        first(&by_comments).contains("popular question"),
        "{}",
        by_comments.html
    );
    assert!(
        first(&by_views).contains("popular question"),
        "{}",
        by_views.html
    );
    assert!(
        by_comments.html.contains("댓글 1"),
        "comment counts are shown"
    );
}

async fn bad_board_parameters_get_html_error_pages(app: TestApp) {
    // Arrange
    let mut reader = Browser::new(&app);

    // Act
    let pages = [
        ("/?sort=oldest", StatusCode::BAD_REQUEST),
        ("/?board=gossip", StatusCode::BAD_REQUEST),
        ("/?page=0", StatusCode::BAD_REQUEST),
        ("/?page=abc", StatusCode::BAD_REQUEST),
        ("/?page=99", StatusCode::NOT_FOUND),
        ("/stores/abc", StatusCode::NOT_FOUND),
        ("/profiles/nobody", StatusCode::NOT_FOUND),
        ("/profiles/nobody?page=x", StatusCode::BAD_REQUEST),
    ];
    let mut seen = Vec::new();
    for (path, _) in pages {
        seen.push(reader.get(path).await);
    }

    // Assert
    for ((path, status), page) in pages.iter().zip(&seen) {
        assert_eq!(page.status, *status, "{path}: {}", page.html);
        assert!(is_html(page), "{path} answers a page");
        assert!(page.html.contains("<html"), "{path}");
    }
}

async fn a_team_page_lists_its_fans_articles(app: TestApp) {
    // Arrange: a Doosan fan and an LG fan each write.
    let mut bear = Browser::new(&app);
    bear.register("bear_writer").await; // registers as a Doosan fan
    publish(
        &mut bear,
        &[
            ("title", "허슬두 직관"),
            ("description", "d"),
            ("body", "b"),
        ],
    )
    .await;
    let token = app.register("twins_writer").await;
    app.put("/api/user", Some(&token), json!({"user": {"team": "lg"}}))
        .await;
    app.create_article(&token, "무적 LG", &[]).await;

    // Act
    let page = Browser::new(&app).get("/teams/doosan").await;

    // Assert
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("허슬두 직관"), "{}", page.html);
    assert!(!page.html.contains("무적 LG"), "{}", page.html);
}

async fn writing_needs_a_session_and_sends_visitors_to_the_login_page(app: TestApp) {
    // Arrange
    let mut visitor = Browser::new(&app);
    let csrf = visitor.get("/").await.csrf();

    // Act
    let editor = visitor.get("/editor").await;
    let post = visitor
        .post(
            "/editor",
            &[
                ("csrf", &csrf),
                ("title", "t"),
                ("description", "d"),
                ("body", "b"),
            ],
        )
        .await;

    // Assert
    assert_eq!(editor.status, StatusCode::SEE_OTHER);
    assert_eq!(editor.location(), "/login?next=%2Feditor");
    assert_eq!(post.status, StatusCode::SEE_OTHER);
    assert!(post.location().starts_with("/login"));
}

crate::on_both_backends!(
    writing_an_article_with_a_board_tags_and_a_photo_publishes_it,
    the_editor_shows_every_problem_and_keeps_what_was_typed,
    only_the_author_can_edit_or_delete_an_article,
    comments_take_replies_one_level_deep_and_only_their_author_edits_them,
    the_comments_api_takes_a_parent_id_for_replies_one_level_deep,
    favouriting_and_following_toggle_from_the_article_page,
    the_settings_page_changes_bio_picture_and_team_shown_on_the_profile,
    the_boards_search_filter_sort_and_number_their_pages,
    bad_board_parameters_get_html_error_pages,
    a_team_page_lists_its_fans_articles,
    writing_needs_a_session_and_sends_visitors_to_the_login_page,
);
