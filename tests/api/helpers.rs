//! The test harness: every test gets its own application on port 0 with its own fresh
//! database (a temporary SQLite file, or a new PostgreSQL database on the server this machine
//! runs), built exactly as `main` builds it.
//!
//! PostgreSQL is never skipped silently: if it is not reachable, the test fails with a message
//! saying so. The server is `BALLPARK_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::net::SocketAddr;

use ballpark::app::Application;
use ballpark::config::{Config, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use crate::scratch::{amqp_url, Backend};
use crate::scratch::{block_on_thread, scratch_db, ScratchDb};

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub database_url: String,
    /// The in-process simulated vendor (the app's `vendor_url` is unset in tests).
    pub vendor: Option<ballpark::vendor_sim::SimVendorHandle>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _database: ScratchDb,
    /// Where this app stores uploads; removed with the app.
    _media: tempfile::TempDir,
    /// The RabbitMQ queues this app declared, if it runs jobs through a broker; deleted with
    /// the app.
    broker_queues: Option<(String, Vec<String>)>,
}

/// Options a test may change before the app starts.
pub fn test_config(database_url: String) -> Config {
    Config {
        bind: ([127, 0, 0, 1], 0).into(),
        database_url: Secret::new(database_url),
        database_max_connections: 4,
        demo: false,
        view_flush_interval_ms: 50,
        shutdown_grace_secs: 5,
        ..Config::default()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database = scratch_db(backend).await;
    let database_url = database.url.clone();
    let media = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(database_url.clone());
    config.media_dir = media.path().display().to_string();
    adjust(&mut config);
    let broker_queues = config.broker.as_ref().map(|url| {
        (
            url.expose().to_string(),
            vec![config.images_queue.clone(), config.orders_queue.clone()],
        )
    });
    let app = Application::build(config)
        .await
        .expect("application builds");
    let addr = app.local_addr();
    let vendor = app.simulated_vendor();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());
    TestApp {
        addr,
        client: reqwest::Client::new(),
        backend,
        database_url,
        vendor,
        shutdown,
        server: Some(server),
        _database: database,
        _media: media,
        broker_queues,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a JSON request and returns the status and the parsed body (`Value::Null` when
    /// the body is empty or not JSON).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Registers `name` (email `name@example.com`, password `password123`); returns the token.
    pub async fn register(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/users",
                None,
                json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {name}: {body}");
        body["user"]["token"].as_str().expect("token").to_string()
    }

    /// Creates an article; returns its JSON.
    pub async fn create_article(&self, token: &str, title: &str, tags: &[&str]) -> Value {
        let (status, body) = self
            .post(
                "/api/articles",
                Some(token),
                json!({"article": {"title": title, "description": "desc", "body": "body text", "tagList": tags}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create article: {body}");
        body["article"].clone()
    }

    /// Shuts the server down gracefully and waits for it, as SIGTERM would.
    pub async fn stop(mut self) {
        self.stop_keeping_database().await;
    }
}
/// Percent-encodes a slug for use in a path (slugs may hold Hangul).
pub fn enc(slug: &str) -> String {
    percent_encoding::utf8_percent_encode(slug, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl TestApp {
    /// Where this app stores uploads (what a separate `ballpark worker` must be given).
    pub fn media_dir(&self) -> &std::path::Path {
        self._media.path()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((url, queues)) = self.broker_queues.take() {
            block_on_thread(async move {
                if let Ok(broker) = ballpark::queue::amqp::Broker::connect(&url).await {
                    for queue in &queues {
                        let _ = broker.delete(queue).await;
                    }
                    broker.close().await;
                }
            });
        }
    }
}

/// Generates one `#[tokio::test]` per backend for each named test function
/// `async fn name(app: TestApp)`: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await
                }
            )*
        }
    };
}

impl TestApp {
    /// Shuts the server down gracefully, as [`TestApp::stop`] does, but keeps the `TestApp`
    /// and so its database (which dropping it deletes), for tests that check what the
    /// shutdown wrote.
    pub async fn stop_keeping_database(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

/// Like [`on_both_backends!`] for tests that need a non-default configuration: `$adjust` is
/// a `fn(&mut Config)`; the tests land in `$module::sqlite` and `$module::postgres`.
#[macro_export]
macro_rules! on_both_backends_with {
    ($module:ident, $adjust:ident; $($name:ident),* $(,)?) => {
        mod $module {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, super::super::$adjust).await;
                        super::super::$name(app).await
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, super::super::$adjust).await;
                        super::super::$name(app).await
                    }
                )*
            }
        }
    };
}
