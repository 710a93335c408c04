//! Connection limits: a client that never finishes its request head, or leaves a kept-alive
//! connection idle, is disconnected after the header-read timeout, and at `max_connections`
//! a new connection waits for a slot instead of the process running out of descriptors.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ballpark::config::Config;

use crate::helpers::TestApp;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Room for a loaded machine on top of the timeout.
const MARGIN: Duration = Duration::from_secs(3);
const CAP: usize = 4;

fn tight_limits(config: &mut Config) {
    config.http_header_read_timeout_secs = HEADER_TIMEOUT.as_secs();
    config.max_connections = CAP;
}

/// Reads until the server closes the connection; how long that took, or `None` if it was
/// still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    let closed = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, closed)
        .await
        .ok()
        .map(|()| start.elapsed())
}

/// A connection that sent the first line of a request and nothing more.
async fn half_sent(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connected");
    stream
        .write_all(b"GET / HTTP/1.1\r\n")
        .await
        .expect("request line sent");
    stream
}

async fn a_half_sent_request_is_closed_after_the_header_timeout(app: TestApp) {
    // Arrange
    let mut stream = half_sent(&app).await;

    // Act
    let closed = closed_within(&mut stream, HEADER_TIMEOUT + MARGIN).await;

    // Assert
    assert!(
        closed.is_some(),
        "still open {:?} after the request line",
        HEADER_TIMEOUT + MARGIN
    );
}

async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout(app: TestApp) {
    // Arrange: one whole request on a keep-alive connection, answered.
    let mut stream = TcpStream::connect(app.addr).await.expect("connected");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ballpark\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    while !String::from_utf8_lossy(&response).contains(r#"{"status":"ok"}"#) {
        let mut buffer = [0u8; 1024];
        let n = stream.read(&mut buffer).await.expect("the answer");
        assert!(n > 0, "closed before answering");
        response.extend_from_slice(&buffer[..n]);
    }

    // Act: send nothing more.
    let closed = closed_within(&mut stream, HEADER_TIMEOUT + MARGIN).await;

    // Assert
    assert!(
        String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert!(
        closed.is_some(),
        "an idle keep-alive connection stayed open"
    );
}

async fn at_the_connection_cap_a_new_request_waits_for_a_slot_and_the_wait_is_counted(
    app: TestApp,
) {
    // Arrange: every slot taken by a client that will never finish its request.
    let mut stalled = Vec::new();
    for _ in 0..CAP {
        stalled.push(half_sent(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();

    // Act
    let start = Instant::now();
    let health = client
        .get(app.url("/healthz"))
        .timeout(HEADER_TIMEOUT + MARGIN)
        .send()
        .await;
    let waited = start.elapsed();

    // Assert: answered once the stalled connections timed out, not before, and not never.
    let health = health.expect("/healthz answered once a slot was free");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        waited >= HEADER_TIMEOUT / 2,
        "answered after {waited:?}: the cap did not hold"
    );
    let metrics = client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reached: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ballpark_http_connection_limit_reached_total "))
        .expect("the cap counter is rendered")
        .trim()
        .parse()
        .unwrap();
    assert!(reached >= 1.0, "{metrics}");
}

crate::on_both_backends_with!(tight, tight_limits;
    a_half_sent_request_is_closed_after_the_header_timeout,
    an_idle_kept_alive_connection_is_closed_after_the_header_timeout,
    at_the_connection_cap_a_new_request_waits_for_a_slot_and_the_wait_is_counted,
);
