//! The live order streams: an order's stream ends after its terminal event, and both streams
//! open with a short-lived ticket instead of a login token for clients that cannot send a
//! header (a browser's `EventSource`).

use std::time::Duration;

use ballpark::config::Config;
use ballpark::orders::live::Follow;
use ballpark::orders::ticket::Tickets;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::orders::{fast_jobs, open_shop, pay, place, Shop};

const LONG: Duration = Duration::from_secs(20);

fn quick_vendor(config: &mut Config) {
    fast_jobs(config);
    config.sim_vendor_accept_delay_ms = 20;
    config.sim_vendor_step_delay_ms = 20;
}

/// The vendor never answers: orders stay open, so their streams do too.
fn silent_vendor(config: &mut Config) {
    fast_jobs(config);
    config.sim_vendor_accept_delay_ms = 600_000;
}

async fn placed_and_paid(app: &TestApp, shop: &Shop) -> String {
    let (status, placed) = place(app, &shop.fan, "k", &shop.order(&[(shop.beer, 1)])).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();
    let (status, paid) = pay(app, &shop.fan, &id).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    id
}

/// Opens `path` (with a login token in the header, if given) and returns the response.
async fn open(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    request.send().await.unwrap()
}

/// The (id, data) of every event of an SSE response, read until the server ends it.
/// Panics if it has not ended within [`LONG`].
async fn read_to_end(response: reqwest::Response) -> Vec<(i64, Value)> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    };
    tokio::time::timeout(LONG, read)
        .await
        .expect("the stream ended after the terminal event");
    frames(&text)
}

/// The first event of an SSE response.
async fn first_event(response: reqwest::Response) -> Value {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        while !text.contains("\n\n") || frames(&text).is_empty() {
            let chunk = body.next().await.expect("an event").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(LONG, read)
        .await
        .expect("an event in time");
    frames(&text).remove(0).1
}

fn frames(text: &str) -> Vec<(i64, Value)> {
    text.split("\n\n")
        .filter_map(|frame| {
            let id = frame.lines().find_map(|l| l.strip_prefix("id: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((id.parse().unwrap(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

async fn ticket(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = app.post(path, Some(token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn user_id(shop: &Shop, name: &str) -> i64 {
    shop.count(&format!("SELECT id FROM users WHERE username = '{name}'"))
        .await
}

async fn the_order_stream_ends_after_the_terminal_event(app: TestApp) {
    let shop = open_shop(&app).await;
    let id = placed_and_paid(&app, &shop).await;
    let path = format!("/api/orders/{id}/events");

    let events = read_to_end(open(&app, &path, Some(&shop.fan)).await).await;

    let (last_id, last) = events.last().expect("events").clone();
    assert_eq!(last["status"], "picked_up", "{events:?}");
    let again = app
        .client
        .get(app.url(&path))
        .header("Authorization", format!("Token {}", shop.fan))
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "a reconnect after the end is told to stop"
    );
}

async fn a_ticket_opens_the_order_and_store_streams_without_a_header(app: TestApp) {
    let shop = open_shop(&app).await;
    let id = placed_and_paid(&app, &shop).await;

    let order_ticket = ticket(&app, &shop.fan, &format!("/api/orders/{id}/events/ticket")).await;
    let store_path = format!("/api/stores/{}/orders/events/ticket", shop.store_id);
    let store_ticket = ticket(&app, &shop.owner, &store_path).await;
    let order_stream = open(&app, order_ticket["url"].as_str().unwrap(), None).await;
    let store_stream = open(&app, store_ticket["url"].as_str().unwrap(), None).await;

    assert_eq!(order_ticket["expiresInSecs"], 60);
    assert_eq!(order_stream.status(), StatusCode::OK);
    assert_eq!(store_stream.status(), StatusCode::OK);
    assert_eq!(first_event(order_stream).await["event"], "placed");
    assert_eq!(first_event(store_stream).await["orderId"], id.as_str());
}

async fn expired_foreign_and_login_token_tickets_are_refused_with_401(app: TestApp) {
    // Arrange: two orders of the fan, tickets minted with the app's (default) secret.
    let shop = open_shop(&app).await;
    let first = placed_and_paid(&app, &shop).await;
    let (_, second) = place(&app, &shop.fan, "k2", &shop.order(&[(shop.beer, 1)])).await;
    let second = second["order"]["id"].as_str().unwrap().to_string();
    let fan = user_id(&shop, "fan").await;
    let tickets = Tickets::new(&Config::default());
    let order = Follow::Order(first.clone());
    let fresh = tickets.issue(fan, &order).unwrap();
    let expired = tickets
        .issue_at(
            fan,
            &order,
            chrono::Utc::now() - chrono::Duration::seconds(120),
        )
        .unwrap();
    let for_second = ticket(
        &app,
        &shop.fan,
        &format!("/api/orders/{second}/events/ticket"),
    )
    .await;
    let for_store = tickets.issue(fan, &Follow::Store(shop.store_id)).unwrap();
    let events = |ticket: &str| format!("/api/orders/{first}/events?ticket={ticket}");

    // Act
    let with_fresh = open(&app, &events(&fresh), None).await.status();
    let with_expired = open(&app, &events(&expired), None).await.status();
    let with_foreign = open(&app, &events(for_second["ticket"].as_str().unwrap()), None)
        .await
        .status();
    let with_store_ticket = open(&app, &events(&for_store), None).await.status();
    let with_login_token = open(&app, &events(&shop.fan), None).await.status();
    let ticket_as_login = app
        .get(&format!("/api/orders/{first}"), Some(&fresh))
        .await
        .0;

    // Assert
    assert_eq!(with_fresh, StatusCode::OK, "the same ticket, fresh, works");
    assert_eq!(with_expired, StatusCode::UNAUTHORIZED);
    assert_eq!(with_foreign, StatusCode::UNAUTHORIZED);
    assert_eq!(with_store_ticket, StatusCode::UNAUTHORIZED);
    assert_eq!(with_login_token, StatusCode::UNAUTHORIZED);
    assert_eq!(ticket_as_login, StatusCode::UNAUTHORIZED);
}

async fn strangers_get_no_ticket(app: TestApp) {
    let shop = open_shop(&app).await;
    let stranger = app.register("stranger").await;
    let id = placed_and_paid(&app, &shop).await;

    let (order, _) = app
        .post(
            &format!("/api/orders/{id}/events/ticket"),
            Some(&stranger),
            json!({}),
        )
        .await;
    let store_path = format!("/api/stores/{}/orders/events/ticket", shop.store_id);
    let (store, _) = app.post(&store_path, Some(&stranger), json!({})).await;
    let (anonymous, _) = app
        .post(&format!("/api/orders/{id}/events/ticket"), None, json!({}))
        .await;

    assert_eq!(order, StatusCode::NOT_FOUND);
    assert_eq!(store, StatusCode::FORBIDDEN);
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
}

crate::on_both_backends_with!(ending, quick_vendor;
    the_order_stream_ends_after_the_terminal_event);
crate::on_both_backends_with!(tickets, silent_vendor;
    a_ticket_opens_the_order_and_store_streams_without_a_header,
    expired_foreign_and_login_token_tickets_are_refused_with_401,
    strangers_get_no_ticket);
