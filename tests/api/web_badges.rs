//! A fan's team badge (the team's short name on its colour, linking to the team's page)
//! beside their name wherever the web UI shows it, in the page's language; and a team page
//! with the team's articles as well as its chat.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, TestApp};
use crate::web_client::Browser;

const BADGE: &str = r#"class="badge mini team-doosan" href="/teams/doosan""#;

/// A Doosan fan (signed up through the form) who wrote an article, commented on it and
/// spoke in the team's room; returns the article's slug.
async fn a_doosan_fan_who_wrote_everywhere(app: &TestApp) -> String {
    let mut fan = Browser::new(app);
    fan.register("bears_fan").await;
    let csrf = fan.get("/").await.csrf();
    let answer = fan
        .post_with_header("/session/token", ("x-csrf-token", &csrf))
        .await;
    let token = serde_json::from_str::<Value>(&answer.html).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let article = app.create_article(&token, "허슬두", &[]).await;
    let slug = article["slug"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &format!("/api/articles/{}/comments", enc(&slug)),
            Some(&token),
            json!({"comment": {"body": "첫 댓글"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            "/api/teams/doosan/chat/messages",
            Some(&token),
            json!({"message": {"body": "안녕"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    slug
}

async fn a_fans_badge_shows_beside_their_name_in_lists_articles_comments_and_chat(app: TestApp) {
    // Arrange
    let slug = a_doosan_fan_who_wrote_everywhere(&app).await;
    let mut reader = Browser::new(&app);

    // Act
    let home = reader.get("/").await;
    let article = reader.get(&format!("/articles/{}", enc(&slug))).await;
    let team = reader.get("/teams/doosan").await;
    let profile = reader.get("/profiles/bears_fan").await;

    // Assert
    assert!(home.html.contains(BADGE), "{}", home.html);
    assert_eq!(
        article.html.matches(BADGE).count(),
        2,
        "the author's and the comment's: {}",
        article.html
    );
    assert!(
        team.html.matches(BADGE).count() >= 2,
        "the chat's message and the article's card: {}",
        team.html
    );
    assert!(profile.html.contains(BADGE), "{}", profile.html);
    assert!(
        home.html.contains(r#"title="두산 베어스">두산</a>"#),
        "{}",
        home.html
    );
}

async fn badges_and_the_team_page_follow_the_pages_language(app: TestApp) {
    // Arrange
    a_doosan_fan_who_wrote_everywhere(&app).await;
    let mut reader = Browser::new(&app);
    reader.accept_language = Some("en".into());

    // Act
    let home = reader.get("/").await;
    let team = reader.get("/teams/doosan").await;

    // Assert
    assert!(home.html.contains(r#">Doosan</a>"#), "{}", home.html);
    assert!(
        team.html.contains("<title>Doosan Bears chat"),
        "{}",
        team.html
    );
    assert!(
        team.html.contains("<small>두산 베어스</small>"),
        "the name in the other language: {}",
        team.html
    );
    assert!(
        team.html.contains("허슬두"),
        "the team's articles: {}",
        team.html
    );
    assert!(team.html.contains("안녕"), "the team's chat: {}", team.html);
}

crate::on_both_backends!(
    a_fans_badge_shows_beside_their_name_in_lists_articles_comments_and_chat,
    badges_and_the_team_page_follow_the_pages_language,
);
