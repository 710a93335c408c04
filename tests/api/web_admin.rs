//! Admins in the browser (`/admin`, `/admin/moderation`) and the moderation the API and the
//! web share: the queue dashboard and its Retry / Discard buttons, muting, deleting chat
//! messages (live, on open sockets) and anyone's articles and comments; nobody else may.

use ballpark::db::Db;
use ballpark::queue::{self, NewJob};
use reqwest::StatusCode;
use serde_json::json;

use crate::admin::{admin_token, dead_job};
use crate::chat::{connect, next_frame};
use crate::helpers::{enc, TestApp};
use crate::uploads::via_rabbitmq;
use crate::web_client::{Browser, Page};

/// A browser signed in as a new admin called `name`, and their API token.
async fn admin_browser<'a>(app: &'a TestApp, db: &Db, name: &str) -> (Browser<'a>, String) {
    let token = admin_token(app, db, name).await;
    let mut browser = Browser::new(app);
    browser.accept_language = Some("en".into());
    let login = browser
        .login(&format!("{name}@example.com"), "password123")
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.html);
    (browser, token)
}

/// The number in the dashboard cell `col` of the line for `queue` and `kind`.
fn cell(page: &Page, queue: &str, kind: &str, col: &str) -> i64 {
    let row = page
        .html
        .split(&format!(r#"data-queue="{queue}" data-kind="{kind}""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no line for {queue}/{kind}: {}", page.html));
    let row = row.split("</tr>").next().unwrap();
    row.split(&format!(r#"data-col="{col}">"#))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {col} cell in {row}"))
}

async fn the_admin_pages_send_a_visitor_to_log_in_and_show_a_fan_a_403_page(app: TestApp) {
    // Arrange
    let mut visitor = Browser::new(&app);
    let mut fan = Browser::new(&app);
    fan.register("plain_fan").await;

    for path in ["/admin", "/admin/moderation"] {
        // Act
        let redirected = visitor.get(path).await;
        let refused = fan.get(path).await;

        // Assert
        assert_eq!(redirected.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            redirected.location().starts_with("/login?next="),
            "{}",
            redirected.location()
        );
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            refused.html.contains("권한이 없습니다."),
            "{}",
            refused.html
        );
    }
    // A fan's buttons are refused too, even with a good CSRF token.
    let csrf = fan.get("/").await.csrf();
    let posted = fan
        .post(
            "/admin/moderation/mute",
            &[("csrf", &csrf), ("username", "plain_fan"), ("minutes", "5")],
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    // And the header shows the admin link to admins only.
    assert!(!fan.get("/").await.html.contains(r#"href="/admin""#));
}

async fn the_dashboard_counts_jobs_per_queue_and_kind_and_lists_dead_ones_with_their_error(
    app: TestApp,
) {
    // Arrange: one job waiting in a queue nobody serves, one dead one.
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    queue::enqueue(&db, NewJob::new("ops-test", "waits", json!({})))
        .await
        .unwrap();
    let dead = dead_job(&db).await;
    let (mut admin, _) = admin_browser(&app, &db, "queue_admin").await;

    // Act
    let page = admin.get("/admin").await;

    // Assert
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(cell(&page, "ops-test", "waits", "queued"), 1);
    assert_eq!(cell(&page, "ops-test", "waits", "dead"), 0);
    assert_eq!(cell(&page, "ops-test", "never.handled", "dead"), 1);
    assert_eq!(cell(&page, "ops-test", "never.handled", "queued"), 0);
    assert!(page.html.contains(&format!(r#"id="job-{dead}""#)));
    assert!(page.html.contains("the vendor said no"), "{}", page.html);
    assert!(
        page.html.contains(r#"href="/admin""#),
        "the header links to /admin"
    );
}

async fn retry_and_discard_buttons_act_on_dead_jobs_and_need_the_csrf_token(app: TestApp) {
    // Arrange
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let retried = dead_job(&db).await;
    let discarded = dead_job(&db).await;
    let (mut admin, _) = admin_browser(&app, &db, "button_admin").await;
    let csrf = admin.get("/admin").await.csrf();

    // Act
    let without_token = admin
        .post(&format!("/admin/jobs/{discarded}/discard"), &[])
        .await;
    let retry = admin
        .post(&format!("/admin/jobs/{retried}/retry"), &[("csrf", &csrf)])
        .await;
    let discard = admin
        .post(
            &format!("/admin/jobs/{discarded}/discard"),
            &[("csrf", &csrf)],
        )
        .await;
    let again = admin
        .post(
            &format!("/admin/jobs/{discarded}/discard"),
            &[("csrf", &csrf)],
        )
        .await;

    // Assert
    assert_eq!(without_token.status, StatusCode::FORBIDDEN);
    assert_eq!(retry.status, StatusCode::SEE_OTHER);
    assert_eq!(retry.location(), "/admin?notice=retried");
    assert_eq!(discard.location(), "/admin?notice=discarded");
    assert_eq!(again.location(), "/admin?notice=not_dead");
    let job = queue::store::get(&db, retried).await.unwrap().unwrap();
    assert_eq!(job.status, queue::JobStatus::Queued);
    assert!(queue::store::get(&db, discarded).await.unwrap().is_none());
    let page = admin.get("/admin?notice=discarded").await;
    assert!(
        page.html.contains("The job was discarded."),
        "{}",
        page.html
    );
    assert!(!page.html.contains(&format!(r#"id="job-{discarded}""#)));
}

async fn the_api_discards_dead_jobs_for_admins_only(app: TestApp) {
    // Arrange
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let id = dead_job(&db).await;
    let admin = admin_token(&app, &db, "api_admin").await;
    let fan = app.register("api_fan").await;

    // Act
    let (by_fan, _) = app
        .delete(&format!("/api/admin/jobs/{id}"), Some(&fan))
        .await;
    let (by_admin, _) = app
        .delete(&format!("/api/admin/jobs/{id}"), Some(&admin))
        .await;
    let (again, _) = app
        .delete(&format!("/api/admin/jobs/{id}"), Some(&admin))
        .await;

    // Assert
    assert_eq!(by_fan, StatusCode::FORBIDDEN);
    assert_eq!(by_admin, StatusCode::NO_CONTENT);
    assert_eq!(again, StatusCode::NOT_FOUND);
}

async fn a_fan_muted_on_the_moderation_page_cannot_chat_until_unmuted(app: TestApp) {
    // Arrange
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let fan = app.register("loud_fan").await;
    let (mut admin, _) = admin_browser(&app, &db, "mod_admin").await;
    let csrf = admin.get("/admin/moderation").await.csrf();
    let say = |body: &'static str| {
        let fan = fan.clone();
        let app = &app;
        async move {
            app.post(
                "/api/teams/lg/chat/messages",
                Some(&fan),
                json!({"message": {"body": body}}),
            )
            .await
            .0
        }
    };

    // Act
    let muted = admin
        .post(
            "/admin/moderation/mute",
            &[("csrf", &csrf), ("username", "loud_fan"), ("minutes", "30")],
        )
        .await;
    let while_muted = say("들리나요?").await;
    let page = admin.get("/admin/moderation").await;
    let bad = admin
        .post(
            "/admin/moderation/mute",
            &[("csrf", &csrf), ("username", "loud_fan"), ("minutes", "0")],
        )
        .await;
    let nobody = admin
        .post(
            "/admin/moderation/mute",
            &[
                ("csrf", &csrf),
                ("username", "nobody_here"),
                ("minutes", "5"),
            ],
        )
        .await;
    let unmuted = admin
        .post(
            "/admin/moderation/unmute",
            &[("csrf", &csrf), ("username", "loud_fan")],
        )
        .await;
    let after = say("이제 들리나요?").await;

    // Assert
    assert_eq!(muted.location(), "/admin/moderation?notice=muted");
    assert_eq!(while_muted, StatusCode::FORBIDDEN);
    assert!(
        page.html.contains(r#"href="/profiles/loud_fan""#),
        "{}",
        page.html
    );
    assert_eq!(bad.location(), "/admin/moderation?notice=bad_minutes");
    assert_eq!(nobody.location(), "/admin/moderation?notice=no_user");
    assert_eq!(unmuted.location(), "/admin/moderation?notice=unmuted");
    assert_eq!(after, StatusCode::CREATED);
}

async fn an_admin_deletes_a_chat_message_and_open_sockets_are_told(app: TestApp) {
    // Arrange: two messages; a reader has the room open.
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let fan = app.register("chatty_fan").await;
    let (mut admin, admin_token) = admin_browser(&app, &db, "chat_admin").await;
    let mut ids = Vec::new();
    for body in ["첫 번째", "두 번째"] {
        let (status, posted) = app
            .post(
                "/api/teams/lg/chat/messages",
                Some(&fan),
                json!({"message": {"body": body}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{posted}");
        ids.push(posted["message"]["id"].as_i64().expect("id"));
    }
    let (mut reader, _) = connect(&app, "lg", None).await;
    let page = admin.get("/admin/moderation").await;
    assert!(page.html.contains("두 번째"), "{}", page.html);

    // Act: one through the page, one through the API; the fan tries too.
    let (by_fan, _) = app
        .delete(&format!("/api/admin/chat/messages/{}", ids[1]), Some(&fan))
        .await;
    let deleted = admin
        .post(
            &format!("/admin/chat/{}/delete", ids[0]),
            &[("csrf", &page.csrf())],
        )
        .await;
    let first = next_frame(&mut reader).await;
    let (by_api, _) = app
        .delete(
            &format!("/api/admin/chat/messages/{}", ids[1]),
            Some(&admin_token),
        )
        .await;
    let second = next_frame(&mut reader).await;
    let (again, _) = app
        .delete(
            &format!("/api/admin/chat/messages/{}", ids[1]),
            Some(&admin_token),
        )
        .await;

    // Assert
    assert_eq!(by_fan, StatusCode::FORBIDDEN);
    assert_eq!(deleted.location(), "/admin/moderation?notice=deleted");
    assert_eq!(first, json!({"type": "deleted", "id": ids[0]}));
    assert_eq!(by_api, StatusCode::NO_CONTENT);
    assert_eq!(second, json!({"type": "deleted", "id": ids[1]}));
    assert_eq!(again, StatusCode::NOT_FOUND);
    let (_, history) = app.get("/api/teams/lg/chat/messages", None).await;
    assert_eq!(history["messages"], json!([]), "{history}");
    // The newest message's id is not given to the next one (SQLite reuses a deleted
    // highest rowid; pages and sockets skip ids they have shown).
    let (_, next) = app
        .post(
            "/api/teams/lg/chat/messages",
            Some(&fan),
            json!({"message": {"body": "세 번째"}}),
        )
        .await;
    assert!(next["message"]["id"].as_i64().unwrap() > ids[1], "{next}");
    assert_eq!(next_frame(&mut reader).await["type"], "message");
}

async fn an_admin_deletes_anyones_article_and_comment_on_the_web_and_the_api_but_a_fan_cannot(
    app: TestApp,
) {
    // Arrange: a fan writes two articles and comments on each.
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let author = app.register("writer_fan").await;
    let other = app.register("other_fan").await;
    let (mut admin, admin_token) = admin_browser(&app, &db, "article_admin").await;
    let web = app.create_article(&author, "Web moderated", &[]).await;
    let api = app.create_article(&author, "API moderated", &[]).await;
    let web_slug = web["slug"].as_str().unwrap().to_string();
    let api_slug = api["slug"].as_str().unwrap().to_string();
    let mut comments = Vec::new();
    for slug in [&web_slug, &api_slug] {
        let (status, body) = app
            .post(
                &format!("/api/articles/{}/comments", enc(slug)),
                Some(&author),
                json!({"comment": {"body": "a comment"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        comments.push(body["comment"]["id"].as_i64().unwrap());
    }

    // Act
    let (fan_article, _) = app
        .delete(&format!("/api/articles/{}", enc(&api_slug)), Some(&other))
        .await;
    let (fan_comment, _) = app
        .delete(
            &format!("/api/articles/{}/comments/{}", enc(&api_slug), comments[1]),
            Some(&other),
        )
        .await;
    let page = admin.get(&format!("/articles/{}", enc(&web_slug))).await;
    let csrf = page.csrf();
    let web_comment = admin
        .post(
            &format!(
                "/articles/{}/comments/{}/delete",
                enc(&web_slug),
                comments[0]
            ),
            &[("csrf", &csrf)],
        )
        .await;
    let web_article = admin
        .post(
            &format!("/articles/{}/delete", enc(&web_slug)),
            &[("csrf", &csrf)],
        )
        .await;
    let (api_comment, _) = app
        .delete(
            &format!("/api/articles/{}/comments/{}", enc(&api_slug), comments[1]),
            Some(&admin_token),
        )
        .await;
    let (api_article, _) = app
        .delete(
            &format!("/api/articles/{}", enc(&api_slug)),
            Some(&admin_token),
        )
        .await;

    // Assert
    assert_eq!(fan_article, StatusCode::FORBIDDEN);
    assert_eq!(fan_comment, StatusCode::FORBIDDEN);
    assert!(page.html.contains("Delete (admin)"), "{}", page.html);
    assert!(
        !page.html.contains(&format!("/editor/{}", enc(&web_slug))),
        "an admin may delete, not edit"
    );
    assert_eq!(web_comment.status, StatusCode::SEE_OTHER);
    assert_eq!(web_article.status, StatusCode::SEE_OTHER);
    assert_eq!(api_comment, StatusCode::NO_CONTENT);
    assert_eq!(api_article, StatusCode::NO_CONTENT);
    for slug in [&web_slug, &api_slug] {
        let (status, _) = app.get(&format!("/api/articles/{}", enc(slug)), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // A fan sees no delete button on someone else's article.
    let mut fan = Browser::new(&app);
    fan.register("button_looker").await;
    let other_article = app.create_article(&author, "Not yours", &[]).await;
    let slug = other_article["slug"].as_str().unwrap();
    let seen = fan.get(&format!("/articles/{}", enc(slug))).await;
    assert!(!seen.html.contains("/delete\""), "{}", seen.html);
}

crate::on_both_backends!(
    the_admin_pages_send_a_visitor_to_log_in_and_show_a_fan_a_403_page,
    the_dashboard_counts_jobs_per_queue_and_kind_and_lists_dead_ones_with_their_error,
    retry_and_discard_buttons_act_on_dead_jobs_and_need_the_csrf_token,
    the_api_discards_dead_jobs_for_admins_only,
    a_fan_muted_on_the_moderation_page_cannot_chat_until_unmuted,
    an_admin_deletes_a_chat_message_and_open_sockets_are_told,
    an_admin_deletes_anyones_article_and_comment_on_the_web_and_the_api_but_a_fan_cannot,
);

fn with_demo(config: &mut ballpark::config::Config) {
    config.demo = true;
}

async fn the_demo_admin_sees_the_demo_dead_jobs_with_their_errors(app: TestApp) {
    // Arrange
    let mut admin = Browser::new(&app);
    let login = admin
        .login("demo_admin@demo.ballpark.invalid", "demo-password")
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.html);

    // Act
    let page = admin.get("/admin").await;

    // Assert: three dead jobs in the `demo` queue, each with its made-up error.
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(cell(&page, "demo", "demo.newsletter", "dead"), 2);
    assert_eq!(cell(&page, "demo", "demo.thumbnail", "dead"), 1);
    assert!(
        page.html.contains("(데모) 원본 이미지가 없음"),
        "{}",
        page.html
    );
}

crate::on_both_backends_with!(demo, with_demo;
    the_demo_admin_sees_the_demo_dead_jobs_with_their_errors,
);

async fn with_rabbitmq_the_dashboard_shows_the_brokers_queues(app: TestApp) {
    // Arrange: the app declared its two queues (and their dead-letter queues) at start.
    let db = Db::connect(&app.database_url, 1).await.unwrap();
    let (mut admin, _) = admin_browser(&app, &db, "broker_admin").await;

    // Act
    let page = admin.get("/admin").await;

    // Assert
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("RabbitMQ"), "{}", page.html);
    let images = page.html.split("<td>images-test-").count();
    assert_eq!(
        images, 3,
        "the images queue and its dead letters: {}",
        page.html
    );
    assert!(!page.html.contains("RabbitMQ's counts are unavailable"));
}

crate::on_both_backends_with!(rabbitmq, via_rabbitmq;
    with_rabbitmq_the_dashboard_shows_the_brokers_queues,
);

#[tokio::test]
async fn broker_counts_fail_fast_when_rabbitmq_refuses_or_does_not_answer() {
    let queues = ["images".to_string()];
    let limit = std::time::Duration::from_millis(1500);
    // A port nobody listens on refuses at once; an unroutable address never answers.
    for url in [
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "amqp://guest:guest@10.255.255.1:5672/%2f",
    ] {
        let started = std::time::Instant::now();
        let read = ballpark::queue::amqp::queue_depths(url, &queues, limit).await;
        assert!(read.is_err(), "{url}: {read:?}");
        assert!(
            started.elapsed() < limit + std::time::Duration::from_millis(500),
            "{url}: {:?}",
            started.elapsed()
        );
    }
}

/// Two server processes on one PostgreSQL database: a message deleted through one leaves the
/// open rooms of the other (the `deleted:<team>:<id>` notification).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_message_deleted_on_one_server_leaves_sockets_on_another() {
    // Arrange
    let first = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await;
    let url = first.database_url.clone();
    let second = crate::helpers::spawn_app_with(crate::helpers::Backend::Postgres, move |config| {
        config.database_url = ballpark::config::Secret::new(url);
    })
    .await;
    let db = Db::connect(&first.database_url, 1).await.unwrap();
    let admin = admin_token(&first, &db, "cluster_admin").await;
    let fan = first.register("cluster_fan").await;
    let (status, posted) = first
        .post(
            "/api/teams/ssg/chat/messages",
            Some(&fan),
            json!({"message": {"body": "곧 지워짐"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let id = posted["message"]["id"].as_i64().unwrap();
    let (mut on_second, hello) = connect(&second, "ssg", None).await;
    assert_eq!(hello["messages"][0]["id"], id, "{hello}");

    // Act
    let (deleted, _) = first
        .delete(&format!("/api/admin/chat/messages/{id}"), Some(&admin))
        .await;

    // Assert
    assert_eq!(deleted, StatusCode::NO_CONTENT);
    assert_eq!(
        next_frame(&mut on_second).await,
        json!({"type": "deleted", "id": id})
    );
}
