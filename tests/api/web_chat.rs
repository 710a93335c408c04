//! The team chat page: a signed-in visitor gets the room's input with no sign-in form and no
//! token in the HTML (the script asks the session for one), a visitor gets a link to log in,
//! and the script's strings are the page's language.

use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::web_client::Browser;

async fn a_signed_in_fan_gets_the_rooms_input_without_a_sign_in_form_or_token(app: TestApp) {
    // Arrange
    let mut browser = Browser::new(&app);
    browser.register("bears_chatter").await;
    let session = browser.cookies.values().cloned().collect::<Vec<_>>();

    // Act
    let page = browser.get("/teams/doosan").await;

    // Assert
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains(r#"data-signed-in="yes""#),
        "{}",
        page.html
    );
    assert!(page.html.contains(r#"id="send" class="send hidden""#));
    assert!(!page.html.contains(r#"type="password""#), "{}", page.html);
    assert!(!page.html.contains("chat-login"));
    for cookie in session {
        assert!(
            !page.html.contains(&cookie),
            "a cookie value is in the HTML"
        );
    }
    assert!(page.html.contains(r#"id="present""#));
    assert!(page
        .html
        .contains(r#"<script src="/static/chat.js" defer>"#));
}

async fn a_visitor_gets_a_link_to_log_in_and_back_instead_of_an_input(app: TestApp) {
    // Arrange
    let mut browser = Browser::new(&app);

    // Act
    let page = browser.get("/teams/lg").await;

    // Assert
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(r#"data-signed-in="no""#));
    assert!(
        page.html
            .contains(r#"class="chat-login"><a href="/login?next=/teams/lg""#),
        "{}",
        page.html
    );
    assert!(!page.html.contains(r#"name="body" maxlength"#));
    assert!(!page.html.contains(r#"type="password""#));
}

async fn the_chat_scripts_strings_follow_the_pages_language(app: TestApp) {
    // Arrange
    let mut korean = Browser::new(&app);
    let mut english = Browser::new(&app);
    english.accept_language = Some("en".into());

    // Act
    let ko = korean.get("/teams/kia").await;
    let en = english.get("/teams/kia").await;

    // Assert: the rate-limit notice keeps its placeholder for the script to fill.
    assert!(ko.html.contains("%{n}초 뒤에"), "{}", ko.html);
    assert!(en.html.contains("try again in %{n} s"), "{}", en.html);
    assert!(en.html.contains("In the room"));
}

crate::on_both_backends!(
    a_signed_in_fan_gets_the_rooms_input_without_a_sign_in_form_or_token,
    a_visitor_gets_a_link_to_log_in_and_back_instead_of_an_input,
    the_chat_scripts_strings_follow_the_pages_language,
);
