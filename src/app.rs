//! Building and running the application: state, router, middleware, background tasks, and
//! graceful shutdown. The connection-level server (timeouts, the connection cap) is
//! `app/serve.rs`.
//!
//! Shutdown: one [`CancellationToken`] is the signal every background loop listens to. On
//! SIGTERM or Ctrl-C the server stops accepting connections, lets in-flight requests finish
//! (up to `shutdown_grace_secs`). Only then are the background tasks (tracked by a
//! [`TaskTracker`]) told to stop, with a second token, so that work done by requests during
//! the drain (views counted) is still flushed in their last round; then the pools close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::normalize_path::NormalizePath;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{LoginLimiter, Passwords, Tokens};
use crate::community::views::ViewCounter;
use crate::config::Config;
use crate::db::Db;
use crate::error::AppError;
use crate::media::storage::Storage;
use crate::metrics::Metrics;
use crate::orders::Orders;
use crate::queue::{QueueMetrics, Wakeup};

mod serve;
mod serve_lock;

/// Shared by every handler. Cheap to clone: everything inside is a handle or an `Arc`.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub tokens: Arc<Tokens>,
    pub passwords: Passwords,
    pub login_limiter: Arc<LoginLimiter>,
    /// Uploads each user may start (`upload_rate_per_minute`).
    pub upload_limiter: Arc<crate::media::rate_limit::UploadLimiter>,
    pub views: Arc<ViewCounter>,
    pub storage: Storage,
    /// Wakes this process's idle database workers after an enqueue commits (none when the
    /// workers run elsewhere or on RabbitMQ).
    pub queue_wakeup: Option<Wakeup>,
    pub orders: Orders,
    /// The chat's rooms in this process, socket slots and posting limits.
    pub chat: crate::chat::ChatHub,
    /// This application's metrics, rendered by `GET /metrics`.
    pub metrics: Metrics,
    pub queue_metrics: QueueMetrics,
}

impl FromRef<AppState> for Arc<Tokens> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

/// How long one request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole application as one service: the router behind the trailing-slash trim.
type AppService = NormalizePath<Router>;

pub struct Application {
    listener: TcpListener,
    service: AppService,
    state: AppState,
    shutdown: CancellationToken,
    /// Stops the background tasks; cancelled after the HTTP server has drained.
    background: CancellationToken,
    tasks: TaskTracker,
    simulated_vendor: Option<crate::vendor_sim::SimVendorHandle>,
    /// Held while this server runs: tells a second `serve` on the same SQLite file.
    serve_lock: Option<std::fs::File>,
}

impl Application {
    /// Connects and migrates the database, loads reference (and, if configured, demo) data,
    /// starts the background tasks and binds the listener. Binding port 0 picks a free port,
    /// which is how tests run many servers side by side.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let db = Db::connect(
            config.database_url.expose(),
            config.database_max_connections,
        )
        .await?;
        db.migrate().await?;
        let serve_lock = serve_lock::take(config.database_url.expose());
        let passwords = Passwords::new(std::thread::available_parallelism().map_or(2, |n| n.get()));
        crate::demo::load_reference_data(&db).await?;
        if config.demo {
            crate::demo::load_demo_content(&db, &passwords).await?;
        }

        let storage = Storage::from_config(&config)?;
        tracing::info!(?storage, "media storage");
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("while binding {}", config.bind))?;
        let shutdown = CancellationToken::new();
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        let server_url = format!("http://{}", listener.local_addr()?);
        let vendor = crate::orders::vendor::connect(&config, &tasks, background.clone()).await?;
        let orders = Orders::new(&db, &config, vendor.client, &server_url, shutdown.clone());
        let metrics = Metrics::new();
        let state = AppState {
            orders,
            // Sockets close when the shutdown starts, so they do not hold up the drain.
            chat: crate::chat::ChatHub::new(shutdown.clone()),
            storage,
            queue_wakeup: None,
            queue_metrics: QueueMetrics::new(&metrics),
            metrics,
            tokens: Arc::new(Tokens::new(&config)),
            passwords,
            login_limiter: Arc::new(LoginLimiter::new(
                config.login_rate_per_minute,
                config.login_ip_rate_per_minute,
            )),
            upload_limiter: Arc::new(crate::media::rate_limit::UploadLimiter::new(
                config.upload_rate_per_minute,
            )),
            views: Arc::new(ViewCounter::default()),
            config: Arc::new(config),
            db,
        };
        spawn_background_tasks(&state, &background, &tasks);
        let consume = state.config.workers;
        let services = crate::workers::Services {
            db: &state.db,
            storage: &state.storage,
            config: &state.config,
            orders: &state.orders,
            metrics: &state.queue_metrics,
        };
        let wakeup = crate::workers::start(services, consume, &tasks, background.clone()).await?;
        let state = AppState {
            queue_wakeup: wakeup,
            ..state
        };

        let service = service(state.clone());
        Ok(Application {
            listener,
            service,
            state,
            shutdown,
            background,
            tasks,
            simulated_vendor: vendor.simulated.map(|sim| sim.handle()),
            serve_lock,
        })
    }

    /// The in-process simulated vendor, when `vendor_url` is unset (tests steer it).
    pub fn simulated_vendor(&self) -> Option<crate::vendor_sim::SimVendorHandle> {
        self.simulated_vendor.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancelling this token shuts the application down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the shutdown token is cancelled, then drains and cleans up.
    pub async fn run(self) -> anyhow::Result<()> {
        let Application {
            listener,
            service,
            state,
            shutdown,
            background,
            tasks,
            serve_lock,
            ..
        } = self;
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        tracing::info!(addr = %listener.local_addr()?, "listening");
        let server = serve::serve(
            listener,
            service,
            serve::Limits::from_config(&state.config),
            &state.metrics,
            shutdown.clone(),
        );
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = server => {}
            _ = deadline => tracing::warn!(?grace, "requests still running after the grace period were cut off"),
        }
        background.cancel();
        tasks.close();
        tasks.wait().await;
        state.db.close().await;
        drop(serve_lock);
        tracing::info!("shut down cleanly");
        Ok(())
    }
}

fn spawn_background_tasks(state: &AppState, shutdown: &CancellationToken, tasks: &TaskTracker) {
    tasks.spawn(state.metrics.clone().run_upkeep(shutdown.clone()));
    tasks.spawn(crate::chat::hub::run(
        state.chat.clone(),
        state.db.clone(),
        shutdown.clone(),
    ));

    let views = state.views.clone();
    let db = state.db.clone();
    let interval = Duration::from_millis(state.config.view_flush_interval_ms);
    let token = shutdown.clone();
    tasks.spawn(async move { views.run(db, interval, token).await });

    let limiter = state.login_limiter.clone();
    let token = shutdown.clone();
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = ticker.tick() => limiter.prune(),
                _ = token.cancelled() => break,
            }
        }
    });

    let uploads = state.upload_limiter.clone();
    let token = shutdown.clone();
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = ticker.tick() => uploads.prune(),
                _ = token.cancelled() => break,
            }
        }
    });
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
            _ = term => tracing::info!("SIGTERM received, shutting down"),
        }
        token.cancel();
    });
}

/// The router, wrapped so that `/api/articles/` reaches the same handler as `/api/articles`
/// (a Conduit frontend posts there). The slash is trimmed before routing, which is why this
/// wraps the router as a service instead of being one of its layers (a router's layers run
/// after it has matched a route); and it is a rewrite, not a redirect, because a client that
/// follows a redirected POST drops its body. `/` stays `/`.
fn service(state: AppState) -> AppService {
    NormalizePath::trim_trailing_slash(router(state))
}

fn router(state: AppState) -> Router {
    // Each router refuses a declared Content-Length over its limit before reading any of it;
    // the extractors' limits (DefaultBodyLimit) still catch chunked bodies as they stream in.
    let (api, openapi) = crate::community::router()
        .layer(RequestBodyLimitLayer::new(state.config.body_limit_bytes))
        .merge(
            crate::admin::router().layer(RequestBodyLimitLayer::new(state.config.body_limit_bytes)),
        )
        .merge(
            crate::orders::api::router()
                .layer(RequestBodyLimitLayer::new(state.config.body_limit_bytes)),
        )
        .merge(
            crate::catalog::router()
                .layer(RequestBodyLimitLayer::new(state.config.body_limit_bytes)),
        )
        .merge(
            crate::chat::router().layer(RequestBodyLimitLayer::new(state.config.body_limit_bytes)),
        )
        .merge(
            crate::media::uploads::router(state.config.upload_limit_bytes)
                .layer(RequestBodyLimitLayer::new(state.config.upload_limit_bytes)),
        )
        .split_for_parts();
    let openapi = Arc::new(crate::openapi::finish(openapi));
    let x_request_id = HeaderName::from_static("x-request-id");
    let trusted_proxies = state.config.trusted_proxies.clone();

    Router::new()
        .merge(api)
        .merge(crate::ops::router(openapi))
        .merge(crate::metrics::router())
        .merge(crate::media::uploads::media_router())
        .merge(crate::web::router(state.clone()))
        .fallback(|| async { AppError::NotFound("route") })
        .route_layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track_http))
        .layer(axum::middleware::from_fn(crate::http::reject_nul))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(cors(&state.config.cors_origins))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Outside the timeout, so that its 408 is a page on the web UI's paths...
        .layer(axum::middleware::from_fn(crate::web::errors::pages_for_errors))
        // ...and gets the API's error shape everywhere else.
        .layer(axum::middleware::from_fn(crate::http::json_errors))
        .layer(axum::middleware::from_fn(crate::http::scope_request_id))
        // gzip or br when the client accepts it. The default predicate leaves alone bodies of
        // 32 bytes or less, images (already compressed) and event streams (which must reach
        // the client event by event). Level 4 rather than brotli's default 11, which is
        // meant for compressing once ahead of time and is far too slow per request.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(move |request: &Request<_>| {
                    let id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    let client = crate::client_ip::of_request(request, &trusted_proxies).map(tracing::field::display);
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id, client)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(Any)
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(3600));
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}
