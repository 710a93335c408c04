//! The connection-level HTTP server: accepts TCP connections and hands each to hyper, as
//! `axum::serve` does, plus the limits `axum::serve` does not expose.
//!
//! - **Header-read timeout.** A connection that has not sent a whole request head within
//!   `http_header_read_timeout_secs` is closed. hyper starts that clock whenever it waits for
//!   a head, so it also closes a kept-alive connection left idle between requests for as
//!   long: this one setting is both the slow-client and the keep-alive idle timeout.
//! - **HTTP/1.1 only.** hyper-util's auto (HTTP/1.1 or cleartext HTTP/2) server first waits,
//!   with no timeout, for the bytes that tell the two apart, so a client that connects and
//!   sends nothing would never be timed out. Cleartext HTTP/2 with prior knowledge is rare
//!   before an application server (browsers speak HTTP/2 only over TLS, which a proxy ends).
//! - **A cap on open connections** (`max_connections`), so that idle or slow clients cannot
//!   use up the process's file descriptors (1,050 idle sockets under a 1,024-file limit once
//!   made even `/healthz` time out). At the cap the loop stops accepting: new connections wait
//!   in the kernel's listen backlog until one closes, and a warning is logged (at most once
//!   per [`CAP_WARNING_EVERY`]) and counted (`ballpark_http_connection_limit_reached_total`). A slot is
//!   held by the socket itself, so a WebSocket or an event stream keeps its slot after the
//!   upgrade until it closes.
//! - **Accept errors back off** (50 ms doubling to 1 s) instead of spinning: `EMFILE` would
//!   otherwise fail again at once, in a loop, until a descriptor frees.
//!
//! Shutdown is as with `axum::serve(...).with_graceful_shutdown`: once the token is cancelled
//! nothing more is accepted, idle connections close, in-flight requests finish, and the
//! future returns when the last connection has closed ([`super::Application::run`] bounds that
//! wait with `shutdown_grace_secs`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use metrics::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::AppService;
use crate::config::Config;
use crate::metrics::Metrics;

/// How often, at most, the "connection limit reached" warning is logged.
pub const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);
/// The first and the longest pause after a failed accept.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(config.http_header_read_timeout_secs),
            max_connections: config.max_connections,
        }
    }
}

/// Serves `service` on `listener` until `shutdown` is cancelled and every connection has
/// closed.
pub async fn serve(
    listener: TcpListener,
    service: AppService,
    limits: Limits,
    metrics: &Metrics,
    shutdown: CancellationToken,
) {
    metrics.describe_counter(
        "ballpark_http_connection_limit_reached_total",
        None,
        "Times a connection had to wait because max_connections were open.",
    );
    metrics.describe_gauge(
        "ballpark_http_connections_open",
        None,
        "Open client connections.",
    );
    let limit_reached = metrics.counter("ballpark_http_connection_limit_reached_total", &[]);
    let open = metrics.gauge("ballpark_http_connections_open", &[]);

    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);

    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut last_cap_warning: Option<Instant> = None;
    let mut backoff = ACCEPT_BACKOFF_FIRST;

    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                limit_reached.increment(1);
                if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                    last_cap_warning = Some(Instant::now());
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = ACCEPT_BACKOFF_FIRST;
                    accepted
                }
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    tracing::error!(error = %err, pause = ?backoff, "accept error; pausing before the next accept");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let socket = Counted::new(stream, permit, open.clone());
        let service = service
            .clone()
            .map_request(move |request: axum::http::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection(TokioIo::new(socket), TowerToHyperService::new(service))
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = shutdown.cancelled() => {
                    // Finish the request in flight, if any, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                // Timeouts, resets and malformed requests: the client's doing, not ours.
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }

    drop(listener);
    connections.close();
    connections.wait().await;
}

/// `ConnectionRefused`, `ConnectionAborted`, `ConnectionReset`: one client's connection
/// failed before it was accepted; the next accept can go ahead at once.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A client socket holding one of the `max_connections` slots until it is dropped, which
/// for an upgraded connection is when the WebSocket closes, not when hyper lets go of it.
struct Counted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    open: Gauge,
}

impl Counted {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, open: Gauge) -> Self {
        open.increment(1.0);
        Counted {
            stream,
            _slot: slot,
            open,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
