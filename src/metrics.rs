//! Prometheus metrics: the recorder every instrumented part of the app writes into, and
//! `GET /metrics`, which renders it in the Prometheus text format.
//!
//! ## Why `metrics` + `metrics-exporter-prometheus`
//! Evaluated November 2026 (`cargo info`): `metrics` 0.24 / `metrics-exporter-prometheus` 0.18
//! (the metrics-rs project, released every few weeks, the common choice of the tokio ecosystem)
//! against `prometheus` 0.14 (TiKV's client, released about once a year, protobuf by default).
//! Both would do; the first is the better kept, and its recorder renders to a string without
//! its own HTTP listener (default features off), so `/metrics` is one more axum route.
//!
//! ## What a newcomer must know
//! - **One recorder per [`Metrics`], not the crate's global one.** Instrumented code gets its
//!   handles from the `Metrics` it was given ([`Metrics::counter`] …), never from the
//!   `metrics::counter!` macros, so tests that run many applications in one process each see
//!   only their own figures.
//! - **Upkeep**: histogram samples are buffered until drained; [`Metrics::run_upkeep`] drains
//!   them every few seconds (the application runs it as a background task) and each scrape
//!   drains them too, so memory stays flat when nobody scrapes.
//! - **Access**: with `metrics_token` set, `/metrics` needs `Authorization: Bearer <token>`
//!   (what Prometheus sends with `authorization: {credentials: …}` in its scrape config);
//!   without a token it is open in development and answers 404 in production, so a server on
//!   the internet never shows its figures to anyone by default. `ballpark worker` has no HTTP
//!   server; with `metrics_bind` set it serves `/metrics` alone on that address, same rules. The figures are not secret
//!   (queue names, counts, durations), but they are not the public's either.
//! - **HTTP figures** ([`track_http`]) are labelled with the matched route *template*
//!   (`/api/orders/{id}`), never the raw path, so ids cannot blow up the number of series;
//!   the middleware is a `route_layer`, so requests that match no route are not counted.
//!   A series appears with its first request (no zeros for routes nobody called).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use anyhow::Context;
use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::AppState;
use crate::config::{Environment, Secret};
use crate::db::Db;
use crate::error::AppError;
use crate::queue::QueueMetrics;

/// Buckets of every `*_seconds` histogram: from a no-op job (well under a millisecond) to an
/// image job on a slow machine (seconds) and a stuck one (minutes).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

const HTTP_REQUESTS: &str = "ballpark_http_requests_total";
const HTTP_DURATION: &str = "ballpark_http_request_duration_seconds";

/// How often [`Metrics::run_upkeep`] drains histogram samples.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A Prometheus recorder and the handle that renders it. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a registration comes from; the Prometheus recorder ignores it.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics {
            recorder: Arc::new(recorder),
            handle,
        };
        metrics.describe_counter(
            HTTP_REQUESTS,
            None,
            "HTTP requests answered, by method, route template and status class.",
        );
        metrics.describe_histogram(
            HTTP_DURATION,
            Some(Unit::Seconds),
            "Time to answer an HTTP request (to its response head; a stream's life is not included), by method, route template and status class.",
        );
        metrics
    }

    /// The counter `name` with `labels`; the same name and labels give the same counter.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    /// The `# HELP` line of `name` (and its unit).
    pub fn describe_counter(&self, name: &'static str, unit: Option<Unit>, help: &'static str) {
        self.recorder
            .describe_counter(name.into(), unit, help.into());
    }

    pub fn describe_gauge(&self, name: &'static str, unit: Option<Unit>, help: &'static str) {
        self.recorder.describe_gauge(name.into(), unit, help.into());
    }

    pub fn describe_histogram(&self, name: &'static str, unit: Option<Unit>, help: &'static str) {
        self.recorder
            .describe_histogram(name.into(), unit, help.into());
    }

    /// Everything recorded so far, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Drains histogram samples every [`UPKEEP_INTERVAL`] until `shutdown`.
    pub async fn run_upkeep(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.handle.run_upkeep(),
                _ = shutdown.cancelled() => break,
            }
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(name, value)| Label::new(*name, value.to_string()))
        .collect();
    Key::from_parts(name, labels)
}

/// What a scrape needs: the recorder, the queue's depth gauges and their database, and who
/// may read them.
#[derive(Clone)]
pub struct Scrape {
    pub metrics: Metrics,
    pub queue_metrics: QueueMetrics,
    pub db: Db,
    pub token: Option<Secret>,
    pub env: Environment,
}

impl FromRef<AppState> for Scrape {
    fn from_ref(state: &AppState) -> Self {
        Scrape {
            metrics: state.metrics.clone(),
            queue_metrics: state.queue_metrics.clone(),
            db: state.db.clone(),
            token: state.config.metrics_token.clone(),
            env: state.config.env,
        }
    }
}

/// `GET /metrics` on the application's router.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// `GET /metrics` and the health probes alone, for `ballpark worker` (no other HTTP), on
/// `metrics_bind`.
pub fn standalone(scrape_state: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .merge(crate::ops::probes(scrape_state.db.clone()))
        .fallback(|| async { AppError::NotFound("route") })
        .with_state(scrape_state)
}

/// Binds `bind` and serves [`standalone`] there, on `tasks`, until `shutdown`. Returns the
/// bound address.
pub async fn spawn_standalone(
    bind: SocketAddr,
    scrape_state: Scrape,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("while binding metrics_bind {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics");
    let router = standalone(scrape_state);
    tasks.spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics listener failed");
        }
    });
    Ok(addr)
}

/// `GET /metrics`: refreshes the gauges read from the database, then renders everything.
async fn scrape(State(state): State<Scrape>, headers: HeaderMap) -> Result<Response, AppError> {
    match (&state.token, state.env) {
        (Some(token), _) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if !presented.is_some_and(|p| same_secret(p.as_bytes(), token.expose().as_bytes())) {
                return Err(AppError::Unauthorized);
            }
        }
        (None, Environment::Production) => return Err(AppError::NotFound("route")),
        (None, Environment::Development) => {}
    }
    state.queue_metrics.refresh_depth(&state.db).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}

/// Middleware, applied as a `route_layer` (so the matched route is known): counts each request
/// and records how long it took, by method, route template and status class (`2xx`…).
pub async fn track_http(
    State(metrics): State<Metrics>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    // Only the methods the API uses; anything else is one label value, not one per verb sent.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = route.map(|r| r.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let labels = [
        ("method", method),
        ("route", route.as_deref().unwrap_or("unmatched")),
        ("status", class),
    ];
    metrics.counter(HTTP_REQUESTS, &labels).increment(1);
    metrics
        .histogram(HTTP_DURATION, &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Compares without stopping at the first difference, so response times do not tell how much
/// of a guessed token was right.
fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    presented
        .iter()
        .zip(expected)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_with_the_same_name_and_labels_are_one_counter_and_render_as_prometheus_text() {
        let metrics = Metrics::new();
        metrics.describe_counter("jobs_total", None, "Jobs.");
        metrics
            .counter("jobs_total", &[("queue", "a")])
            .increment(2);
        metrics
            .counter("jobs_total", &[("queue", "a")])
            .increment(1);
        metrics
            .counter("jobs_total", &[("queue", "b")])
            .increment(1);
        metrics
            .histogram("run_seconds", &[("queue", "a")])
            .record(0.003);

        let text = metrics.render();

        assert!(text.contains("# HELP jobs_total Jobs."), "{text}");
        assert!(text.contains("jobs_total{queue=\"a\"} 3"), "{text}");
        assert!(text.contains("jobs_total{queue=\"b\"} 1"), "{text}");
        assert!(
            text.contains("run_seconds_bucket{queue=\"a\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("run_seconds_count{queue=\"a\"} 1"), "{text}");
    }

    #[test]
    fn metrics_of_two_recorders_do_not_mix() {
        let (one, two) = (Metrics::new(), Metrics::new());
        one.counter("jobs_total", &[]).increment(1);
        assert!(!two.render().contains("jobs_total"));
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
    }
}
