//! Team chat over WebSockets: rooms, the backlog a socket starts with, history paging,
//! signing in on the socket, limits, shutdown, presence, and (PostgreSQL) fan-out of messages
//! and presence between two server processes sharing one database.

use std::time::Duration;

use ballpark::config::Secret;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{spawn_app_with, Backend, TestApp};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn try_connect(
    app: &TestApp,
    team: &str,
    token: Option<&str>,
) -> Result<Socket, WsError> {
    let mut request = format!("ws://{}/api/teams/{team}/chat", app.addr)
        .into_client_request()
        .expect("a valid URL");
    if let Some(token) = token {
        request.headers_mut().insert(
            "Authorization",
            format!("Token {token}").parse().expect("a header value"),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Connects and returns the socket with its `hello` frame read.
pub(crate) async fn connect(app: &TestApp, team: &str, token: Option<&str>) -> (Socket, Value) {
    let mut socket = try_connect(app, team, token).await.expect("socket opens");
    let hello = next_frame(&mut socket).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (socket, hello)
}

/// The next JSON frame (pings and `presence` frames skipped); fails the test after 5 s.
pub(crate) async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let frame = next_any_frame(socket).await;
        if frame["type"] != "presence" {
            return frame;
        }
    }
}

/// The usernames of the next `presence` frame that names exactly `expected` (earlier ones
/// skipped, as presence may settle in steps); fails the test after 5 s without one.
async fn presence_becomes(socket: &mut Socket, expected: &[&str]) {
    let wait = async {
        loop {
            let frame = next_any_frame(socket).await;
            if frame["type"] != "presence" {
                continue;
            }
            let names: Vec<&str> = frame["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| u["username"].as_str().expect("username"))
                .collect();
            if names == expected {
                return frame;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("presence never became {expected:?}"));
}

/// The next JSON frame of any type (pings skipped); fails the test after 5 s.
async fn next_any_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The code of the close frame that ends the socket (other frames skipped); `None` if it ends
/// without one. Fails the test after 5 s.
async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    let ended = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .expect("the socket ends within 5 s")
}

pub(crate) async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("frame sent");
}

async fn post(app: &TestApp, team: &str, token: &str, body: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/teams/{team}/chat/messages"),
        Some(token),
        json!({"message": {"body": body}}),
    )
    .await
}

async fn a_message_sent_on_a_socket_reaches_every_socket_of_its_room_and_no_other(app: TestApp) {
    // Arrange: a signed-in fan and a reader in LG's room, a reader in Doosan's.
    let token = app.register("twins_fan").await;
    let (mut sender, hello) = connect(&app, "lg", Some(&token)).await;
    assert_eq!(hello["username"], "twins_fan");
    assert_eq!(hello["messages"], json!([]));
    let (mut reader, _) = connect(&app, "lg", None).await;
    let (mut other_room, _) = connect(&app, "doosan", None).await;

    // Act
    send(&mut sender, json!({"type": "send", "body": "  무적 LG!  "})).await;

    // Assert: both LG sockets get it, trimmed, the sender included.
    for socket in [&mut sender, &mut reader] {
        let frame = next_frame(socket).await;
        assert_eq!(frame["type"], "message", "{frame}");
        assert_eq!(frame["message"]["body"], "무적 LG!");
        assert_eq!(frame["message"]["team"], "lg");
        assert_eq!(frame["message"]["author"]["username"], "twins_fan");
    }
    // Doosan's socket gets the next Doosan message first: the LG one never came.
    let (status, body) = post(&app, "doosan", &token, "hello bears").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let frame = next_frame(&mut other_room).await;
    assert_eq!(frame["message"]["body"], "hello bears", "{frame}");
}

async fn a_socket_starts_with_the_rooms_recent_messages_and_history_pages_back(app: TestApp) {
    // Arrange: three messages in KIA's room.
    let token = app.register("tigers_fan").await;
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        let (status, created) = post(&app, "kia", &token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["message"]["id"].as_i64().expect("id"));
    }

    // Act
    let (_socket, hello) = connect(&app, "kia", None).await;
    let (status, newest) = app.get("/api/teams/kia/chat/messages?limit=2", None).await;
    let (_, older) = app
        .get(
            &format!("/api/teams/kia/chat/messages?before={}", ids[1]),
            None,
        )
        .await;

    // Assert: the backlog oldest first; history newest first, paged by id.
    let bodies = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|m| m["body"].as_str().expect("body").to_string())
            .collect()
    };
    assert_eq!(bodies(&hello["messages"]), ["one", "two", "three"]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bodies(&newest["messages"]), ["three", "two"]);
    assert_eq!(bodies(&older["messages"]), ["one"]);
}

async fn a_reader_signs_in_with_an_auth_frame_before_posting(app: TestApp) {
    // Arrange
    let token = app.register("giants_fan").await;
    let (mut socket, hello) = connect(&app, "lotte", None).await;
    assert_eq!(hello["username"], Value::Null);

    // Act / Assert: posting signed out, then a bad token, are refused; the socket stays open.
    send(&mut socket, json!({"type": "send", "body": "hi"})).await;
    assert_eq!(next_frame(&mut socket).await["code"], "unauthorized");
    send(&mut socket, json!({"type": "auth", "token": "not-a-token"})).await;
    assert_eq!(next_frame(&mut socket).await["code"], "unauthorized");
    send(&mut socket, json!({"type": "auth", "token": token})).await;
    let frame = next_frame(&mut socket).await;
    assert_eq!(frame["type"], "authenticated", "{frame}");
    assert_eq!(frame["username"], "giants_fan");
    send(&mut socket, json!({"type": "send", "body": "부산 갈매기"})).await;
    let frame = next_frame(&mut socket).await;
    assert_eq!(
        frame["message"]["author"]["username"], "giants_fan",
        "{frame}"
    );
}

async fn bad_frames_and_bodies_get_error_frames_and_nothing_is_stored(app: TestApp) {
    // Arrange
    let token = app.register("eagles_fan").await;
    let (mut socket, _) = connect(&app, "hanwha", Some(&token)).await;

    // Act / Assert
    socket.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next_frame(&mut socket).await["code"], "bad_frame");
    send(&mut socket, json!({"type": "shout", "body": "x"})).await;
    assert_eq!(next_frame(&mut socket).await["code"], "bad_frame");
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut socket).await["code"], "bad_frame");
    send(&mut socket, json!({"type": "send", "body": "   "})).await;
    assert_eq!(next_frame(&mut socket).await["code"], "invalid");
    send(
        &mut socket,
        json!({"type": "send", "body": "가".repeat(501)}),
    )
    .await;
    let frame = next_frame(&mut socket).await;
    assert_eq!(frame["code"], "invalid");
    assert!(
        frame["message"].as_str().unwrap().contains("500"),
        "{frame}"
    );
    let (status, body) = post(&app, "hanwha", &token, &"가".repeat(501)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, history) = app.get("/api/teams/hanwha/chat/messages", None).await;
    assert_eq!(history["messages"], json!([]));

    // A frame over 16 KiB ends the socket (close code 1009, message too big).
    send(
        &mut socket,
        json!({"type": "send", "body": "x".repeat(20_000)}),
    )
    .await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));
}

async fn posting_faster_than_the_limit_is_refused_on_the_api_and_the_socket(app: TestApp) {
    // Arrange: the burst of 5 used up through the API.
    let token = app.register("wiz_fan").await;
    for n in 0..5 {
        let (status, body) = post(&app, "kt", &token, &format!("message {n}")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // Act
    let (status, body) = post(&app, "kt", &token, "one too many").await;
    let (mut socket, _) = connect(&app, "kt", Some(&token)).await;
    send(&mut socket, json!({"type": "send", "body": "and another"})).await;
    let frame = next_frame(&mut socket).await;

    // Assert: refused both ways, with when to retry; another user is not affected.
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(frame["code"], "rate_limited", "{frame}");
    assert!(frame["retryAfterMs"].as_u64().unwrap() > 0, "{frame}");
    let other = app.register("wiz_fan_two").await;
    let (status, _) = post(&app, "kt", &other, "my turn").await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn an_unknown_team_has_no_room(app: TestApp) {
    let refused = try_connect(&app, "yankees", None).await;
    match refused {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected a 404 handshake, got {other:?}"),
    }
    let (status, _) = app.get("/api/teams/yankees/chat/messages", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/teams/lg/chat/messages?limit=101", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn shutting_down_closes_open_sockets_with_going_away(mut app: TestApp) {
    // Arrange
    let (mut socket, _) = connect(&app, "samsung", None).await;

    // Act
    app.stop_keeping_database().await;

    // Assert
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Away));
}

async fn presence_names_the_signed_in_users_of_a_room_until_they_leave(app: TestApp) {
    // Arrange: a fan with a header token, a reader who signs in with an auth frame, and a
    // reader who stays anonymous, all in NC's room; a fan in another room.
    let first = app.register("dinos_fan").await;
    let second = app.register("another_fan").await;
    let (mut watcher, _) = connect(&app, "nc", Some(&first)).await;
    presence_becomes(&mut watcher, &["dinos_fan"]).await;
    let (_anonymous, _) = connect(&app, "nc", None).await;
    let (_elsewhere, _) = connect(&app, "kt", Some(&second)).await;

    // Act: the second fan joins NC's room by signing in on the socket.
    let (mut joining, _) = connect(&app, "nc", None).await;
    send(&mut joining, json!({"type": "auth", "token": second})).await;

    // Assert: both are listed, readers and other rooms are not.
    presence_becomes(&mut watcher, &["another_fan", "dinos_fan"]).await;
    presence_becomes(&mut joining, &["another_fan", "dinos_fan"]).await;

    // Act: the second fan closes their socket.
    joining.close(None).await.expect("closed");

    // Assert
    presence_becomes(&mut watcher, &["dinos_fan"]).await;
}

async fn a_user_with_two_sockets_stays_present_until_the_last_closes(app: TestApp) {
    // Arrange: one fan with two tabs open on Hanwha's room, watched by another fan.
    let watcher_token = app.register("eagles_watch").await;
    let token = app.register("eagles_fan").await;
    let (mut watcher, _) = connect(&app, "hanwha", Some(&watcher_token)).await;
    let (mut tab1, _) = connect(&app, "hanwha", Some(&token)).await;
    let (mut tab2, _) = connect(&app, "hanwha", Some(&token)).await;
    presence_becomes(&mut watcher, &["eagles_fan", "eagles_watch"]).await;

    // Act: one tab closes, then a message is posted (a marker that the close was handled).
    tab1.close(None).await.expect("closed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = post(&app, "hanwha", &watcher_token, "marker").await;
    assert_eq!(status, StatusCode::CREATED);

    // Assert: no presence change before the marker; after the last tab, the fan leaves.
    let mut before_marker = Vec::new();
    loop {
        let frame = next_any_frame(&mut watcher).await;
        if frame["type"] == "message" {
            break;
        }
        before_marker.push(frame);
    }
    assert!(before_marker.is_empty(), "{before_marker:?}");
    tab2.close(None).await.expect("closed");
    presence_becomes(&mut watcher, &["eagles_watch"]).await;
}

async fn an_admin_mutes_a_user_who_then_cannot_post_anywhere_until_unmuted(app: TestApp) {
    // Arrange: an admin, a noisy fan with a socket open.
    let admin = app.register("chat_admin").await;
    let db = ballpark::db::Db::connect(&app.database_url, 1)
        .await
        .unwrap();
    ballpark::community::store::users::set_role(&db, "chat_admin", "admin")
        .await
        .unwrap();
    let noisy = app.register("noisy_fan").await;
    let (mut socket, _) = connect(&app, "lg", Some(&noisy)).await;

    // Act
    let (status, muted) = app
        .put(
            "/api/admin/chat/mutes/noisy_fan",
            Some(&admin),
            json!({"mute": {"minutes": 30}}),
        )
        .await;

    // Assert: refused on the API and on the socket, in any room; allowed again once unmuted.
    assert_eq!(status, StatusCode::OK, "{muted}");
    assert_eq!(muted["username"], "noisy_fan");
    let (status, _) = post(&app, "doosan", &noisy, "still talking").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    send(&mut socket, json!({"type": "send", "body": "hello?"})).await;
    let frame = next_frame(&mut socket).await;
    assert_eq!(frame["code"], "muted", "{frame}");
    let (status, _) = app
        .delete("/api/admin/chat/mutes/noisy_fan", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = post(&app, "lg", &noisy, "sorry").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn muting_is_for_admins_with_a_length_from_a_minute_to_a_week(app: TestApp) {
    // Arrange
    let fan = app.register("plain_fan").await;
    let target = app.register("target_fan").await;
    let admin = app.register("mute_admin").await;
    let db = ballpark::db::Db::connect(&app.database_url, 1)
        .await
        .unwrap();
    ballpark::community::store::users::set_role(&db, "mute_admin", "admin")
        .await
        .unwrap();
    let path = "/api/admin/chat/mutes/target_fan";

    // Act
    let (by_fan, _) = app
        .put(path, Some(&fan), json!({"mute": {"minutes": 5}}))
        .await;
    let (anonymous, _) = app.put(path, None, json!({"mute": {"minutes": 5}})).await;
    let (too_long, body) = app
        .put(path, Some(&admin), json!({"mute": {"minutes": 10081}}))
        .await;
    let (zero, _) = app
        .put(path, Some(&admin), json!({"mute": {"minutes": 0}}))
        .await;
    let (nobody, _) = app
        .put(
            "/api/admin/chat/mutes/nobody_here",
            Some(&admin),
            json!({"mute": {"minutes": 5}}),
        )
        .await;

    // Assert
    assert_eq!(by_fan, StatusCode::FORBIDDEN);
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
    assert_eq!(too_long, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("minutes"), "{body}");
    assert_eq!(zero, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nobody, StatusCode::NOT_FOUND);
    // None of the refused requests muted anyone.
    let (status, body) = post(&app, "lg", &target, "ok").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

crate::on_both_backends!(
    an_admin_mutes_a_user_who_then_cannot_post_anywhere_until_unmuted,
    muting_is_for_admins_with_a_length_from_a_minute_to_a_week,
    presence_names_the_signed_in_users_of_a_room_until_they_leave,
    a_user_with_two_sockets_stays_present_until_the_last_closes,
    a_message_sent_on_a_socket_reaches_every_socket_of_its_room_and_no_other,
    a_socket_starts_with_the_rooms_recent_messages_and_history_pages_back,
    a_reader_signs_in_with_an_auth_frame_before_posting,
    bad_frames_and_bodies_get_error_frames_and_nothing_is_stored,
    posting_faster_than_the_limit_is_refused_on_the_api_and_the_socket,
    an_unknown_team_has_no_room,
    shutting_down_closes_open_sockets_with_going_away,
);

/// Two server processes on one PostgreSQL database (as behind a load balancer): a message
/// posted through one reaches the sockets of the other, through LISTEN/NOTIFY. SQLite has no
/// such case: it is one process by design.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_message_posted_on_one_server_reaches_sockets_on_another() {
    // Arrange
    let first = crate::helpers::spawn_app(Backend::Postgres).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, move |config| {
        config.database_url = Secret::new(url);
    })
    .await;
    let token = first.register("landers_fan").await;
    let (mut on_second, _) = connect(&second, "ssg", None).await;

    // Act
    let (status, body) = post(&first, "ssg", &token, "랜더스 화이팅").await;

    // Assert
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let frame = next_frame(&mut on_second).await;
    assert_eq!(frame["message"]["body"], "랜더스 화이팅", "{frame}");
    assert_eq!(frame["message"]["id"], body["message"]["id"]);
}

/// Presence spans processes: a fan on one server sees a fan who joined on another, and sees
/// them leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_presence_spans_server_processes() {
    // Arrange
    let first = crate::helpers::spawn_app(Backend::Postgres).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, move |config| {
        config.database_url = Secret::new(url);
    })
    .await;
    let here = first.register("wiz_here").await;
    let there = first.register("wiz_there").await;
    let (mut watcher, _) = connect(&first, "kt", Some(&here)).await;
    presence_becomes(&mut watcher, &["wiz_here"]).await;

    // Act
    let (mut remote, _) = connect(&second, "kt", Some(&there)).await;

    // Assert
    presence_becomes(&mut watcher, &["wiz_here", "wiz_there"]).await;
    presence_becomes(&mut remote, &["wiz_here", "wiz_there"]).await;
    remote.close(None).await.expect("closed");
    presence_becomes(&mut watcher, &["wiz_here"]).await;
}

/// The rows of a process that died without deleting them stop counting after the expiry, and
/// the heartbeat deletes them.
#[tokio::test]
async fn presence_rows_of_a_process_that_is_gone_expire() {
    // Arrange: a fan present through a process that stopped refreshing 91 s ago.
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    app.register("ghost_fan").await;
    let db = ballpark::db::Db::connect(&app.database_url, 1)
        .await
        .unwrap();
    let stale = ballpark::db::now() - chrono::Duration::seconds(91);
    let fresh = ballpark::db::now();
    ballpark::on_write!(&db, pool => sqlx::query(
        "INSERT INTO chat_presence (process, team, user_id, seen_at)          SELECT $1, 'lg', id, $2 FROM users WHERE username = 'ghost_fan'")
        .bind("dead-process")
        .bind(stale)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();
    ballpark::on_write!(&db, pool => sqlx::query(
        "INSERT INTO chat_presence (process, team, user_id, seen_at)          SELECT $1, 'kia', id, $2 FROM users WHERE username = 'ghost_fan'")
        .bind("live-process")
        .bind(fresh)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap();

    // Act
    let in_lg = ballpark::chat::presence::in_room(&db, "lg").await.unwrap();
    let in_kia = ballpark::chat::presence::in_room(&db, "kia").await.unwrap();
    ballpark::chat::presence::heartbeat(&db, "live-process")
        .await
        .unwrap();

    // Assert
    assert!(in_lg.is_empty(), "{in_lg:?}");
    assert_eq!(in_kia.len(), 1);
    let left: i64 = ballpark::on_read!(&db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM chat_presence")
        .fetch_one(pool)
        .await)
    .unwrap();
    assert_eq!(left, 1, "only the live process's row is kept");
}

/// The LISTEN connection is cut (as a failover or a network blip would): the process
/// reconnects and its sockets keep getting new messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sockets_keep_getting_messages_after_the_listen_connection_is_cut() {
    // Arrange
    let app = crate::helpers::spawn_app(Backend::Postgres).await;
    let token = app.register("heroes_fan").await;
    let (mut socket, _) = connect(&app, "kiwoom", None).await;
    presence_becomes(&mut socket, &[]).await;
    let admin = ballpark::db::Db::connect(&app.database_url, 1)
        .await
        .unwrap();

    // Act: end the backend that LISTENs, then post.
    let cut = ballpark::on_read!(&admin, pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%') AS ended")
        .fetch_one(pool)
        .await)
    .unwrap();
    let mut seen = None;
    for attempt in 0..20 {
        let (status, body) = post(&app, "kiwoom", &token, &format!("still here {attempt}")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(2), socket.next()).await
        {
            seen = Some(text.to_string());
            break;
        }
    }

    // Assert
    assert_eq!(cut, 1, "one backend was listening");
    let seen = seen.expect("a message reached the socket after the cut");
    assert!(seen.contains("still here"), "{seen}");
}
