//! Error answers on the web UI's paths are HTML pages in the visitor's language, whoever
//! made them (a handler, an extractor, the router, a body limit), while the machines' paths
//! (`/api`, probes) keep their JSON and plain-text answers.

use ballpark::config::Config;
use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::web_client::{Browser, Page};

fn is_html(page: &Page) -> bool {
    page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html")
}

fn english(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app);
    browser.accept_language = Some("en-US,en;q=0.9".into());
    browser
}

async fn a_bad_page_parameter_or_unknown_query_value_is_a_400_page(app: TestApp) {
    // Arrange
    let mut browser = english(&app);

    for path in [
        "/?page=abc",
        "/?page=0",
        "/?sort=loudest",
        "/?board=no-such-board",
        "/profiles/nobody?page=-3",
    ] {
        // Act
        let page = browser.get(path).await;

        // Assert
        assert!(
            page.status == StatusCode::BAD_REQUEST || page.status == StatusCode::NOT_FOUND,
            "{path}: {}",
            page.status
        );
        assert!(is_html(&page), "{path}: {:?}", page.headers);
        assert!(page.html.contains("<html lang=\"en\">"), "{path}");
    }
    let page = browser.get("/?page=abc").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.html.contains("The request could not be read"),
        "{}",
        page.html
    );
}

async fn an_unknown_path_is_a_404_page_in_the_visitors_language(app: TestApp) {
    // Arrange
    let mut english = english(&app);
    let mut korean = Browser::new(&app);

    // Act
    let en = english.get("/no/such/page").await;
    let ko = korean.get("/no/such/page").await;

    // Assert
    assert_eq!(en.status, StatusCode::NOT_FOUND);
    assert!(is_html(&en), "{:?}", en.headers);
    assert!(en.html.contains("There is no such page."), "{}", en.html);
    assert_eq!(ko.status, StatusCode::NOT_FOUND);
    assert!(ko.html.contains("찾는 페이지가 없습니다."), "{}", ko.html);
    assert!(ko.html.contains("<html lang=\"ko\">"), "{}", ko.html);
}

async fn a_wrong_method_is_a_405_page_that_keeps_its_allow_header(app: TestApp) {
    // Arrange: a script-style request with the page's token, so only the method is wrong.
    let mut browser = english(&app);
    let csrf = browser.get("/").await.csrf();

    // Act
    let page = browser
        .post_with_header("/stadiums", ("x-csrf-token", &csrf))
        .await;

    // Assert
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_html(&page), "{:?}", page.headers);
    assert!(
        page.headers["allow"].to_str().unwrap().contains("GET"),
        "{:?}",
        page.headers
    );
    assert!(
        page.html.contains("does not accept that kind of request"),
        "{}",
        page.html
    );
}

async fn an_unreadable_path_segment_is_a_400_page(app: TestApp) {
    // Act: not UTF-8 once percent-decoded, which axum's `Path` refuses in plain text.
    let page = english(&app).get("/articles/%FF%FE").await;

    // Assert
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(is_html(&page), "{:?}", page.headers);
}

async fn a_form_over_the_body_limit_is_a_413_page(app: TestApp) {
    // Arrange: a little over the limit, in ASCII (a far larger body can break the pipe
    // before the answer is read).
    let size = Config::default().body_limit_bytes + 16 * 1024;
    let body = format!("email=a%40b.c&password={}", "x".repeat(size));

    // Act
    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-language", "en")
        .body(body)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.contains("What you sent is too large."), "{html}");
}

async fn the_api_and_the_probes_keep_their_own_error_answers(app: TestApp) {
    // Act
    let (missing, missing_body) = app.get("/api/no-such-route", None).await;
    let wrong_method = app
        .client
        .delete(app.url("/api/tags"))
        .send()
        .await
        .unwrap();
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();

    // Assert
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_eq!(missing_body["errors"]["body"][0], "route not found");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    let wrong_type = wrong_method.headers()["content-type"].to_str().unwrap();
    assert!(wrong_type.starts_with("application/json"), "{wrong_type}");
    assert_eq!(health.status(), StatusCode::OK);
}

crate::on_both_backends!(
    a_bad_page_parameter_or_unknown_query_value_is_a_400_page,
    an_unknown_path_is_a_404_page_in_the_visitors_language,
    a_wrong_method_is_a_405_page_that_keeps_its_allow_header,
    an_unreadable_path_segment_is_a_400_page,
    a_form_over_the_body_limit_is_a_413_page,
    the_api_and_the_probes_keep_their_own_error_answers,
);
