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

/// A free port on loopback (another process could take it before the server binds it; in a
/// test, that is unlikely enough).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The incident: more idle sockets than the process has file descriptors. A real `ballpark
/// serve` runs under `ulimit -n 300` with `max_connections` 150; 260 clients connect and
/// send nothing. The cap keeps the server from running out of descriptors (no accept error
/// is logged), and once the header timeout has closed the idle ones `/healthz` answers.
async fn more_idle_sockets_than_file_descriptors_do_not_lock_out_healthz(app: TestApp) {
    // Arrange
    let port = free_port();
    let media = tempfile::tempdir().expect("temp dir");
    let mut server = tokio::process::Command::new("sh")
        .args(["-c", r#"ulimit -n 300 && exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_ballpark"))
        .args(["serve", "--no-demo", "--database-url", &app.database_url])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("BALLPARK_MEDIA_DIR", media.path())
        .env("BALLPARK_HTTP_HEADER_READ_TIMEOUT_SECS", "2")
        .env("BALLPARK_MAX_CONNECTIONS", "150")
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the ballpark binary starts");
    let health = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..600 {
        if client.get(&health).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not start");
    let mut idle = Vec::new();
    for _ in 0..260 {
        idle.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connected"),
        );
    }

    // Act
    let answer = client
        .get(&health)
        .timeout(Duration::from_secs(15))
        .send()
        .await;

    // Assert
    let answer = answer.expect("/healthz answered despite the idle sockets");
    assert_eq!(answer.status(), StatusCode::OK);
    drop(idle);
    server.start_kill().unwrap();
    let output = server.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!logs.contains("accept error"), "{logs}");
    assert!(logs.contains("connection limit reached"), "{logs}");
}

crate::on_both_backends!(more_idle_sockets_than_file_descriptors_do_not_lock_out_healthz);

crate::on_both_backends_with!(tight, tight_limits;
    a_half_sent_request_is_closed_after_the_header_timeout,
    an_idle_kept_alive_connection_is_closed_after_the_header_timeout,
    at_the_connection_cap_a_new_request_waits_for_a_slot_and_the_wait_is_counted,
);
