//! The web UI's accounts: sign-up and log-in forms, cookie sessions (hashed at rest,
//! revocable, sliding), CSRF on every form, the API token for page scripts, and the language.

use ballpark::db::Db;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::TestApp;
use crate::web_client::Browser;

async fn session_hashes(app: &TestApp) -> Vec<String> {
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let hashes = ballpark::on_read!(&db, pool => sqlx::query_scalar::<_, String>(
        "SELECT token_hash FROM web_sessions")
        .fetch_all(pool)
        .await)
    .unwrap();
    db.close().await;
    hashes
}

async fn signing_up_through_the_form_starts_a_session_whose_token_is_stored_only_hashed(
    app: TestApp,
) {
    // Arrange
    let mut browser = Browser::new(&app);

    // Act
    let signed_up = browser.register("form_fan").await;
    let home = browser.get("/").await;

    // Assert: a session cookie, locked down; the header shows the user and their team.
    assert_eq!(signed_up.location(), "/");
    let cookie = signed_up.set_cookie("session").expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(home.html.contains("form_fan"), "{}", home.html);
    assert!(home.html.contains(r#"action="/logout""#), "{}", home.html);
    assert!(home.html.contains("team-doosan"), "{}", home.html);
    let token = &browser.cookies["session"];
    let hashes = session_hashes(&app).await;
    assert_eq!(hashes, vec![hex::encode(Sha256::digest(token.as_bytes()))]);
    assert!(!hashes.contains(token));
}

async fn a_form_posted_without_its_csrf_token_is_refused_with_a_403_page(app: TestApp) {
    // Arrange: a signed-in browser, and the login form's token of another visitor.
    let mut browser = Browser::new(&app);
    browser.register("csrf_target").await;
    let mut other = Browser::new(&app);
    let others_token = other.get("/login").await.csrf();

    // Act
    let no_token = browser.post("/logout", &[]).await;
    let wrong_token = browser.post("/logout", &[("csrf", &others_token)]).await;
    let anonymous_login = Browser::new(&app)
        .post(
            "/login",
            &[
                ("email", "csrf_target@example.com"),
                ("password", "password123"),
            ],
        )
        .await;
    let still_signed_in = browser.get("/").await;

    // Assert
    for page in [&no_token, &wrong_token, &anonymous_login] {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "a page, not JSON"
        );
        assert!(
            page.set_cookie("session").is_none(),
            "no session started or ended"
        );
    }
    assert!(
        still_signed_in.html.contains(r#"action="/logout""#),
        "the refused logout did nothing"
    );
}

async fn logging_out_revokes_the_session_even_for_a_replayed_cookie(app: TestApp) {
    // Arrange
    let mut browser = Browser::new(&app);
    browser.register("leaver").await;
    let stolen = browser.cookies["session"].clone();
    let csrf = browser.get("/").await.csrf();

    // Act
    let logged_out = browser.post("/logout", &[("csrf", &csrf)]).await;
    let mut replay = Browser::new(&app);
    replay.cookies.insert("session".into(), stolen);
    let replayed = replay.get("/").await;
    let csrf = replayed.csrf();
    let token = replay
        .post_with_header("/session/token", ("x-csrf-token", &csrf))
        .await;

    // Assert
    assert_eq!(logged_out.status, StatusCode::SEE_OTHER);
    assert!(logged_out
        .set_cookie("session")
        .unwrap()
        .contains("Max-Age=0"));
    assert!(session_hashes(&app).await.is_empty());
    assert!(!replayed.html.contains("leaver"), "{}", replayed.html);
    assert!(
        replayed.html.contains(r#"href="/login"#),
        "{}",
        replayed.html
    );
    assert_eq!(token.status, StatusCode::UNAUTHORIZED);
}

async fn logging_in_goes_back_to_the_page_and_a_wrong_password_shows_the_form_again(app: TestApp) {
    // Arrange
    app.register("returner").await;
    let mut browser = Browser::new(&app);
    let csrf = browser.get("/login?next=/stadiums").await.csrf();

    // Act
    let wrong = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "returner@example.com"),
                ("password", "wrong-password"),
                ("next", "/stadiums"),
            ],
        )
        .await;
    let right = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "RETURNER@example.com"),
                ("password", "password123"),
                ("next", "/stadiums"),
            ],
        )
        .await;
    let elsewhere = Browser::new(&app);
    let mut elsewhere = elsewhere;
    let csrf = elsewhere.get("/login").await.csrf();
    let offsite = elsewhere
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "returner@example.com"),
                ("password", "password123"),
                ("next", "//evil.example/"),
            ],
        )
        .await;

    // Assert
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains(r#"role="alert""#), "{}", wrong.html);
    assert!(
        wrong.html.contains("returner@example.com"),
        "the email is kept"
    );
    assert!(wrong.set_cookie("session").is_none());
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(right.location(), "/stadiums");
    assert!(right.set_cookie("session").is_some());
    assert_eq!(offsite.location(), "/", "no open redirect");
}

async fn the_login_form_is_rate_limited_like_the_api(app: TestApp) {
    // Arrange: the limit is 2 attempts a minute per account (see `two_logins_a_minute`).
    app.register("guessed").await;
    let mut browser = Browser::new(&app);

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let page = browser
            .login("guessed@example.com", "not-the-password")
            .await;
        statuses.push(page.status);
    }
    let limited = browser.login("guessed@example.com", "password123").await;

    // Assert
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.html.contains("<html"), "a page: {}", limited.html);
    assert!(limited.set_cookie("session").is_none());
}

fn two_logins_a_minute(config: &mut ballpark::config::Config) {
    config.login_rate_per_minute = 2;
}

async fn the_sign_up_form_shows_every_problem_and_keeps_what_was_typed(app: TestApp) {
    // Arrange
    app.register("taken").await;
    let mut browser = Browser::new(&app);
    let csrf = browser.get("/register").await.csrf();

    // Act
    let page = browser
        .post(
            "/register",
            &[
                ("csrf", &csrf),
                ("username", "taken"),
                ("email", "not-an-email"),
                ("password", "short"),
                ("team", "yankees"),
            ],
        )
        .await;

    // Assert
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for label in ["닉네임", "이메일", "비밀번호", "응원 팀"] {
        assert!(page.html.contains(label), "{label}: {}", page.html);
    }
    assert!(
        page.html.contains("has already been taken"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains(r#"value="not-an-email""#),
        "{}",
        page.html
    );
    assert!(page.set_cookie("session").is_none());
}

async fn a_page_script_gets_an_api_token_for_the_session_only_with_the_csrf_header(app: TestApp) {
    // Arrange
    let mut browser = Browser::new(&app);
    browser.register("scripted").await;
    let csrf = browser.get("/").await.csrf();

    // Act
    let without = browser
        .post_with_header("/session/token", ("x-other", "1"))
        .await;
    let with = browser
        .post_with_header("/session/token", ("x-csrf-token", &csrf))
        .await;
    let token = serde_json::from_str::<serde_json::Value>(&with.html).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, me) = app.get("/api/user", Some(&token)).await;

    // Assert
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert_eq!(with.status, StatusCode::OK);
    assert_eq!(with.headers["cache-control"], "no-store");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["username"], "scripted");
}

async fn a_used_session_slides_its_expiry_forward_and_resends_the_cookie(app: TestApp) {
    // Arrange: a session with an hour left.
    let mut browser = Browser::new(&app);
    browser.register("regular").await;
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let soon = ballpark::db::now() + chrono::Duration::hours(1);
    ballpark::on_write!(&db, pool => sqlx::query("UPDATE web_sessions SET expires_at = $1")
        .bind(soon)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();

    // Act
    let page = browser.get("/").await;
    let expires: chrono::DateTime<chrono::Utc> =
        ballpark::on_read!(&db, pool => sqlx::query_scalar(
        "SELECT expires_at FROM web_sessions")
        .fetch_one(pool)
        .await)
        .unwrap();
    db.close().await;

    // Assert: 14 days again (the default), and the browser is told so.
    assert!(page.html.contains("regular"));
    assert!(
        expires > ballpark::db::now() + chrono::Duration::days(13),
        "{expires}"
    );
    let cookie = page.set_cookie("session").expect("the cookie is re-sent");
    assert!(
        cookie.contains(&format!("Max-Age={}", 14 * 24 * 3600)),
        "{cookie}"
    );
}

async fn an_expired_session_signs_nobody_in_and_its_cookie_is_dropped(app: TestApp) {
    // Arrange
    let mut browser = Browser::new(&app);
    browser.register("sleeper").await;
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let past = ballpark::db::now() - chrono::Duration::minutes(1);
    ballpark::on_write!(&db, pool => sqlx::query("UPDATE web_sessions SET expires_at = $1")
        .bind(past)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    db.close().await;

    // Act
    let page = browser.get("/").await;

    // Assert
    assert!(!page.html.contains("sleeper"), "{}", page.html);
    assert!(page.set_cookie("session").unwrap().contains("Max-Age=0"));
}

async fn pages_speak_korean_by_default_english_on_request_and_remember_a_choice(app: TestApp) {
    // Arrange
    let mut korean = Browser::new(&app);
    let mut english = Browser::new(&app);
    english.accept_language = Some("en-US,en;q=0.9,ko;q=0.5".into());
    let mut switcher = Browser::new(&app);
    switcher.accept_language = Some("en".into());

    // Act
    let ko = korean.get("/stadiums").await;
    let en = english.get("/stadiums").await;
    let switched = switcher.get("/lang/ko?back=/stadiums").await;
    let after = switcher.get("/stadiums").await;
    let unknown = switcher.get("/lang/fr").await;

    // Assert
    assert!(ko.html.contains(r#"<html lang="ko">"#) && ko.html.contains("로그인"));
    assert!(en.html.contains(r#"<html lang="en">"#) && en.html.contains("Log in"));
    assert!(!en.html.contains("로그인"), "{}", en.html);
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), "/stadiums");
    assert!(switched.set_cookie("lang").unwrap().starts_with("lang=ko"));
    assert!(
        after.html.contains(r#"<html lang="ko">"#),
        "the cookie beats Accept-Language"
    );
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.html.contains("<html"), "{}", unknown.html);
}

async fn a_deleted_users_session_signs_nobody_in(app: TestApp) {
    // Arrange
    let mut browser = Browser::new(&app);
    browser.register("gone").await;
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    ballpark::on_write!(&db, pool => sqlx::query("DELETE FROM users WHERE username = 'gone'")
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    db.close().await;

    // Act
    let page = browser.get("/").await;

    // Assert
    assert!(!page.html.contains("gone<"), "{}", page.html);
    assert!(page.html.contains(r#"href="/login"#));
}

crate::on_both_backends!(
    signing_up_through_the_form_starts_a_session_whose_token_is_stored_only_hashed,
    a_form_posted_without_its_csrf_token_is_refused_with_a_403_page,
    logging_out_revokes_the_session_even_for_a_replayed_cookie,
    logging_in_goes_back_to_the_page_and_a_wrong_password_shows_the_form_again,
    the_sign_up_form_shows_every_problem_and_keeps_what_was_typed,
    a_page_script_gets_an_api_token_for_the_session_only_with_the_csrf_header,
    a_used_session_slides_its_expiry_forward_and_resends_the_cookie,
    an_expired_session_signs_nobody_in_and_its_cookie_is_dropped,
    pages_speak_korean_by_default_english_on_request_and_remember_a_choice,
    a_deleted_users_session_signs_nobody_in,
);

crate::on_both_backends_with!(
    rate_limited,
    two_logins_a_minute;
    the_login_form_is_rate_limited_like_the_api,
);
