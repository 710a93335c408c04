//! The server-rendered web UI: pages from the same data as the API, escaped user content,
//! sanitised article bodies, HTML error pages and the security headers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{enc, TestApp};
use crate::shop::open_shop;

async fn page(app: &TestApp, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let response = app.client.get(app.url(path)).send().await.expect("page");
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.expect("body"), headers)
}

async fn the_home_page_lists_the_newest_articles_and_links_to_them_and_the_team_rooms(
    app: TestApp,
) {
    // Arrange
    let token = app.register("writer").await;
    let article = app
        .create_article(&token, "잠실 직관 후기", &["직관"])
        .await;
    let slug = article["slug"].as_str().unwrap();

    // Act
    let (status, html, headers) = page(&app, "/").await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(html.contains("잠실 직관 후기"), "{html}");
    let href = html
        .split(r#"href="/articles/"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the article");
    assert_eq!(
        percent_encoding::percent_decode_str(href)
            .decode_utf8()
            .unwrap(),
        slug
    );
    assert!(html.contains(r#"href="/teams/lg""#), "{html}");
    assert!(html.contains("#직관"), "{html}");
}

async fn the_home_page_pages_back_and_filters_by_tag(app: TestApp) {
    // Arrange: 21 articles, one more than a page; the first is tagged.
    let token = app.register("prolific").await;
    app.create_article(&token, "article 0", &["first"]).await;
    for n in 1..21 {
        app.create_article(&token, &format!("article {n}"), &[])
            .await;
    }

    // Act
    let (_, newest, _) = page(&app, "/").await;
    let older = newest
        .split(r#"class="more" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older articles")
        .replace("&#38;", "&");
    let (status, oldest, _) = page(&app, &older).await;
    let (_, tagged, _) = page(&app, "/?tag=first").await;

    // Assert
    assert!(
        newest.contains("article 20") && !newest.contains("article 0<"),
        "{newest}"
    );
    assert_eq!(status, StatusCode::OK);
    assert!(
        oldest.contains("article 0") && !oldest.contains("article 20"),
        "{oldest}"
    );
    assert!(
        tagged.contains("article 0") && !tagged.contains("article 1<"),
        "{tagged}"
    );
}

async fn an_article_page_renders_markdown_and_never_runs_what_users_wrote(app: TestApp) {
    // Arrange: HTML and a javascript: link in the title, the body and a comment.
    let token = app.register("mallory").await;
    let (status, created) = app
        .post(
            "/api/articles",
            Some(&token),
            json!({"article": {
                "title": "<script>alert('t')</script> title",
                "description": "d",
                "body": "## 후기\n\n**good** game <script>alert('b')</script>\n\n<img src=x onerror=alert('i')>\n\n[click](javascript:alert('l'))",
                "tagList": []}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let slug = created["article"]["slug"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &format!("/api/articles/{}/comments", enc(&slug)),
            Some(&token),
            json!({"comment": {"body": "<b onmouseover=alert('c')>hi</b>"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Act
    let (status, html, headers) = page(&app, &format!("/articles/{}", enc(&slug))).await;

    // Assert: Markdown rendered; nothing of the user's markup is live.
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h2>후기</h2>"), "{html}");
    assert!(html.contains("<strong>good</strong>"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    // The raw tag shows as text (`&lt;img … &gt;`) at most, never as a live tag.
    assert!(!html.contains("onerror=alert('i')>"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("<b onmouseover"), "{html}");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
}

async fn unknown_pages_are_html_404s(app: TestApp) {
    for path in [
        "/articles/no-such-article",
        "/teams/yankees",
        "/stadiums/fenway",
        "/stores/999999",
    ] {
        let (status, html, headers) = page(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(html.contains("404"), "{path}: {html}");
    }
}

async fn a_team_page_shows_the_rooms_recent_messages_and_loads_the_chat_script(app: TestApp) {
    // Arrange
    let token = app.register("bears_fan").await;
    let (status, _) = app
        .post(
            "/api/teams/doosan/chat/messages",
            Some(&token),
            json!({"message": {"body": "<i>허슬두</i>"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Act
    let (status, html, _) = page(&app, "/teams/doosan").await;
    let (script_status, script, _) = page(&app, "/static/chat.js").await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&#60;i&#62;허슬두") || html.contains("&lt;i&gt;허슬두"),
        "{html}"
    );
    assert!(html.contains("bears_fan"), "{html}");
    assert!(
        html.contains(r#"<script src="/static/chat.js" defer>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-team="doosan""#), "{html}");
    assert_eq!(script_status, StatusCode::OK);
    assert!(
        script.contains("/chat"),
        "the script opens the room's socket"
    );
}

async fn a_store_page_shows_its_menu_with_prices(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;

    // Act
    let (status, html, _) = page(&app, &format!("/stores/{}", shop.store_id)).await;
    let (_, stadium, _) = page(&app, "/stadiums/jamsil").await;
    let (_, stadiums, _) = page(&app, "/stadiums").await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("핫도그") && html.contains("3,000원"),
        "{html}"
    );
    assert!(html.contains("맥주") && html.contains("4,500원"), "{html}");
    assert!(
        !html.contains("Demo store"),
        "a store not seeded from the demo data: {html}"
    );
    assert!(
        stadium.contains(&format!(r#"href="/stores/{}""#, shop.store_id)),
        "{stadium}"
    );
    assert!(
        stadiums.contains(r#"href="/stadiums/jamsil""#),
        "{stadiums}"
    );
}

crate::on_both_backends!(
    the_home_page_lists_the_newest_articles_and_links_to_them_and_the_team_rooms,
    the_home_page_pages_back_and_filters_by_tag,
    an_article_page_renders_markdown_and_never_runs_what_users_wrote,
    unknown_pages_are_html_404s,
    a_team_page_shows_the_rooms_recent_messages_and_loads_the_chat_script,
    a_store_page_shows_its_menu_with_prices,
);
