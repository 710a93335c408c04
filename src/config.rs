//! Configuration: built-in defaults, overridden by a TOML file, overridden by `BALLPARK_*`
//! environment variables, overridden by command-line flags. Everything is validated once, at
//! start, so a bad value stops the server with a message naming the setting instead of
//! surfacing later as a confusing runtime error.
//!
//! Secrets (the JWT key, the vendor webhook key, database passwords inside URLs, S3 keys) are
//! wrapped so that `Debug` and the start-up log never print them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The development JWT key. Fine on a laptop; refused in production.
pub const DEV_JWT_SECRET: &str = "ballpark-development-secret-do-not-use-in-production";

/// The development key for vendor webhook signatures, shared by `serve` and `ballpark vendor`
/// out of the box. Refused in production.
pub const DEV_VENDOR_WEBHOOK_SECRET: &str = "ballpark-development-vendor-webhook-secret";

/// The settings that may come from `BALLPARK_*` variables. Listing them keeps unrelated
/// variables with the same prefix (used by scripts and tests) from being read as settings.
const ENV_KEYS: &[&str] = &[
    "bind",
    "database_url",
    "database_max_connections",
    "env",
    "jwt_secret",
    "jwt_ttl_hours",
    "demo",
    "body_limit_bytes",
    "cors_origins",
    "login_rate_per_minute",
    "login_ip_rate_per_minute",
    "view_flush_interval_ms",
    "shutdown_grace_secs",
    "workers",
    "media_dir",
    "storage_url",
    "s3_endpoint",
    "s3_region",
    "s3_access_key_id",
    "s3_secret_access_key",
    "upload_limit_bytes",
    "max_image_pixels",
    "image_workers",
    "image_worker_nice",
    "broker",
    "images_queue",
    "job_lease_secs",
    "orders_queue",
    "orders_workers",
    "job_retry_base_ms",
    "payment_timeout_ms",
    "payment_window_secs",
    "vendor_accept_deadline_secs",
    "sim_payment_mode",
    "sim_payment_latency_ms",
    "public_url",
    "vendor_url",
    "vendor_webhook_secret",
    "vendor_timeout_ms",
    "sim_vendor_response_delay_ms",
    "sim_vendor_accept_delay_ms",
    "sim_vendor_step_delay_ms",
    "sim_vendor_reject_rate",
    "metrics_token",
    "metrics_bind",
    "trusted_proxies",
    "http_header_read_timeout_secs",
    "max_connections",
    "image_job_timeout_secs",
    "upload_rate_per_minute",
    "web_session_days",
];

/// A value that must never be logged.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[serde(alias = "dev")]
    Development,
    #[serde(alias = "prod")]
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub database_url: Secret,
    /// Connections per pool. SQLite uses this many readers and always one writer.
    pub database_max_connections: u32,
    pub env: Environment,
    /// HMAC key for the JWTs. Production refuses to start with the development default.
    pub jwt_secret: Secret,
    /// How long a login token stays valid.
    pub jwt_ttl_hours: i64,
    /// Load the demo content (a few users, articles and reviews) into an empty database, and
    /// the demo stores (made-up prices and stock) that are missing, on every start.
    pub demo: bool,
    /// Largest accepted JSON request body, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS; `["*"]` allows any origin (no credentials are used: the API
    /// authenticates with a header, not cookies).
    pub cors_origins: Vec<String>,
    /// Login attempts allowed per account per minute before 429.
    pub login_rate_per_minute: u32,
    /// Login attempts allowed per client IP per minute before 429.
    pub login_ip_rate_per_minute: u32,
    /// How often buffered article view counts are written to the database. A crash loses at
    /// most this much of the counts.
    pub view_flush_interval_ms: u64,
    /// How long in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Run the queue workers inside `serve` (turn off when `ballpark worker` processes run them).
    pub workers: bool,
    /// Directory where uploads and their variants are stored, unless `storage_url` is set.
    pub media_dir: String,
    /// `s3://bucket[/prefix]` to store uploads in an S3-compatible bucket instead of
    /// `media_dir`.
    pub storage_url: Option<String>,
    /// `http(s)://host:port` of an S3-compatible service other than AWS (MinIO, moto, R2).
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// S3 credentials; unset falls back to the `AWS_*` environment variables.
    pub s3_access_key_id: Option<Secret>,
    pub s3_secret_access_key: Option<Secret>,
    /// Largest accepted upload, in bytes; larger bodies get 413.
    pub upload_limit_bytes: usize,
    /// Largest accepted image, in pixels (width × height, read from the header before decoding).
    pub max_image_pixels: u64,
    /// Images decoded at once per process (each holds a decoded picture in memory). Defaults
    /// to half the cores (at least 1), so image work never takes every core from the API.
    pub image_workers: usize,
    /// The niceness (0-19) of the image threads (Linux): how far image work yields the CPU to
    /// requests when both want it. 0 gives it the same priority as the API.
    pub image_worker_nice: i32,
    /// `amqp://user:password@host:port/vhost` to run jobs through RabbitMQ; unset runs them
    /// from the database.
    pub broker: Option<Secret>,
    /// Name of the queue image jobs go to (a deployment sharing a broker picks its own).
    pub images_queue: String,
    /// How long a claimed job stays leased without a heartbeat: the time after which the job of
    /// a crashed worker runs again (database backend). Heartbeats come every third of it.
    pub job_lease_secs: u64,
    /// Name of the queue order jobs go to (vendor hand-off, deadlines, refunds).
    pub orders_queue: String,
    /// Order jobs run at once per process (they mostly wait on the vendor or the gateway).
    pub orders_workers: usize,
    /// First retry delay of a failed job, doubling per attempt (with jitter) up to an hour.
    pub job_retry_base_ms: u64,
    /// How long `POST /api/orders/{id}/payment` waits for the gateway; after that the answer
    /// is 202 and a queued job settles the payment.
    pub payment_timeout_ms: u64,
    /// An order not paid within this long is cancelled and its stock released.
    pub payment_window_secs: u64,
    /// An order the vendor has not accepted within this long is cancelled (and refunded).
    pub vendor_accept_deadline_secs: u64,
    /// The bundled simulated payment gateway: `approve`, `decline`, `timeout` (takes the
    /// money, then never answers the first attempt) or `unavailable`.
    pub sim_payment_mode: String,
    /// How long the simulated gateway takes to answer.
    pub sim_payment_latency_ms: u64,
    /// Where vendors reach this server (`https://ballpark.example`): the base of the webhook
    /// callback URL every process that hands orders over gives them (`serve`, and a separate
    /// `ballpark worker`, which cannot know where `serve` listens). Required in production;
    /// unset in development, `serve` uses its own listening address and a worker its `bind`.
    pub public_url: Option<String>,
    /// Base URL of the snack bars' vendor API. Unset: `serve` starts the simulated vendor
    /// ([`crate::vendor_sim`]) in-process on a free local port.
    pub vendor_url: Option<String>,
    /// Key the vendor signs its webhooks with (HMAC-SHA256). Production refuses the
    /// development default.
    pub vendor_webhook_secret: Secret,
    /// How long one call to the vendor may take before it counts as unavailable (and is
    /// retried by the job).
    pub vendor_timeout_ms: u64,
    /// Simulated vendor: how long it takes to answer `POST /orders`.
    pub sim_vendor_response_delay_ms: u64,
    /// Simulated vendor: from receiving an order to its `accepted` (or `rejected`) webhook.
    pub sim_vendor_accept_delay_ms: u64,
    /// Simulated vendor: between `accepted`, `preparing`, `ready` and `picked_up`.
    pub sim_vendor_step_delay_ms: u64,
    /// Simulated vendor: the share of orders it rejects (by webhook), from 0.0 to 1.0.
    pub sim_vendor_reject_rate: f64,
    /// Bearer token `GET /metrics` requires. Unset: `/metrics` is open in development and
    /// absent (404) in production.
    pub metrics_token: Option<Secret>,
    /// Where `ballpark worker` serves `GET /metrics`, `/healthz` and `/readyz` (it has no
    /// other HTTP); unset: nowhere.
    /// `serve` ignores it: its `/metrics` is on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client, for
    /// the login limits and the request log; empty trusts no one (see [`crate::client_ip`]).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// How long a connection may take to send a whole request head: a new connection, or a
    /// kept-alive one between requests (so this is also the keep-alive idle timeout).
    pub http_header_read_timeout_secs: u64,
    /// Client connections open at once; at the cap, new ones wait in the listen backlog.
    /// Below the usual 1,024 open-file limit, leaving room for database connections, files
    /// and outgoing HTTP.
    pub max_connections: usize,
    /// How long one image job may decode, resize and encode before it gives up and its
    /// upload ends `failed`. Checked cooperatively inside the work (see `media::optimize`),
    /// so the thread and its `image_workers` slot are free again when it ends.
    pub image_job_timeout_secs: u64,
    /// Uploads each user may start per minute: a burst of this many, then one every
    /// `60 / n` seconds; more get 429 with `Retry-After`. Per process, like the login limits.
    pub upload_rate_per_minute: u32,
    /// How long a web UI login lasts without being used; each use slides it forward.
    pub web_session_days: i64,
}

/// Half the cores this process may use, at least 1: on 2 cores one image worker leaves a core
/// to the API (see docs/benchmarks.md, `bench/saturation`).
pub fn default_image_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).max(1)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: ([127, 0, 0, 1], 8080).into(),
            database_url: Secret::new("sqlite://data/ballpark.db"),
            database_max_connections: 16,
            env: Environment::Development,
            jwt_secret: Secret::new(DEV_JWT_SECRET),
            jwt_ttl_hours: 24 * 14,
            demo: true,
            body_limit_bytes: 1024 * 1024,
            cors_origins: vec!["*".into()],
            login_rate_per_minute: 10,
            login_ip_rate_per_minute: 60,
            view_flush_interval_ms: 1000,
            shutdown_grace_secs: 10,
            workers: true,
            media_dir: "data/media".into(),
            storage_url: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            upload_limit_bytes: 20 * 1024 * 1024,
            max_image_pixels: 50_000_000,
            image_workers: default_image_workers(),
            image_worker_nice: 5,
            broker: None,
            images_queue: "images".into(),
            job_lease_secs: 30,
            orders_queue: "orders".into(),
            orders_workers: 16,
            job_retry_base_ms: 2000,
            payment_timeout_ms: 5000,
            payment_window_secs: 15 * 60,
            vendor_accept_deadline_secs: 120,
            sim_payment_mode: "approve".into(),
            sim_payment_latency_ms: 50,
            public_url: None,
            vendor_url: None,
            vendor_webhook_secret: Secret::new(DEV_VENDOR_WEBHOOK_SECRET),
            vendor_timeout_ms: 5000,
            sim_vendor_response_delay_ms: 0,
            sim_vendor_accept_delay_ms: 500,
            sim_vendor_step_delay_ms: 2000,
            sim_vendor_reject_rate: 0.0,
            metrics_token: None,
            metrics_bind: None,
            trusted_proxies: Default::default(),
            http_header_read_timeout_secs: 10,
            max_connections: 768,
            image_job_timeout_secs: 30,
            upload_rate_per_minute: 10,
            web_session_days: 14,
        }
    }
}

/// Values given on the command line; `None` leaves the layer below in force.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_webhook_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_vendor_response_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_vendor_accept_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_vendor_step_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_vendor_reject_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    /// An unknown key (a typo, most likely) is named with the setting it is closest to,
    /// instead of figment's message, which lists all the settings there are.
    fn from_figment(err: figment::Error) -> Self {
        let figment::error::Kind::UnknownField(key, _) = &err.kind else {
            return ConfigError::Parse(Box::new(err));
        };
        let place = err
            .metadata
            .as_ref()
            .and_then(|m| m.source.as_ref())
            .map(|source| format!(" in {source}"))
            .unwrap_or_default();
        let hint = match closest_setting(key) {
            Some(setting) => format!("; did you mean `{setting}`?"),
            None => "; the settings are listed in the README's Configuration section".into(),
        };
        ConfigError::Invalid(format!("unknown setting `{key}`{place}{hint}"))
    }
}

/// The setting whose name is nearest to `key`, if one is near enough to be a typo of it.
fn closest_setting(key: &str) -> Option<&'static str> {
    ENV_KEYS
        .iter()
        .map(|setting| (strsim::damerau_levenshtein(key, setting), *setting))
        .filter(|(distance, _)| *distance <= 2.max(key.chars().count() / 4))
        .min()
        .map(|(_, setting)| setting)
}

impl Config {
    /// Loads the layers in order. `file` is optional; a named file that does not exist is an
    /// error, because silently ignoring a typo in `--config` hides the real settings.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(Env::prefixed("BALLPARK_").only(ENV_KEYS))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return invalid("database_url must start with sqlite:, postgres: or postgresql:");
        }
        if self.env == Environment::Production {
            let key = self.jwt_secret.expose();
            if key == DEV_JWT_SECRET || key.is_empty() {
                return invalid(
                    "jwt_secret must be set (BALLPARK_JWT_SECRET) in production; the development default is refused",
                );
            }
            if key.len() < 32 {
                return invalid("jwt_secret must be at least 32 bytes in production");
            }
            let key = self.vendor_webhook_secret.expose();
            if key == DEV_VENDOR_WEBHOOK_SECRET || key.is_empty() {
                return invalid(
                    "vendor_webhook_secret must be set (BALLPARK_VENDOR_WEBHOOK_SECRET) in production; the development default is refused",
                );
            }
            if self.public_url.is_none() {
                return invalid(
                    "public_url must be set (BALLPARK_PUBLIC_URL) in production: vendors post their webhooks there, and every process that hands orders over (serve, ballpark worker) must give them the same address",
                );
            }
        }
        if let Some(url) = &self.public_url {
            let parsed = reqwest::Url::parse(url);
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || !parsed.is_ok_and(|u| u.host().is_some())
            {
                return invalid("public_url must be an http:// or https:// URL with a host");
            }
        }
        if self.vendor_webhook_secret.expose().is_empty() {
            return invalid("vendor_webhook_secret must not be empty");
        }
        if let Some(url) = &self.vendor_url {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err()
            {
                return invalid("vendor_url must be an http:// or https:// URL");
            }
        }
        if self.vendor_timeout_ms == 0 {
            return invalid("vendor_timeout_ms must be positive");
        }
        if !(0.0..=1.0).contains(&self.sim_vendor_reject_rate) {
            return invalid("sim_vendor_reject_rate must be between 0.0 and 1.0");
        }
        if self.database_max_connections == 0 {
            return invalid("database_max_connections must be at least 1");
        }
        if self.jwt_ttl_hours <= 0 {
            return invalid("jwt_ttl_hours must be positive");
        }
        if !(1..=365).contains(&self.web_session_days) {
            return invalid("web_session_days must be between 1 and 365");
        }
        if self.body_limit_bytes < 1024 {
            return invalid("body_limit_bytes must be at least 1024");
        }
        if self.login_rate_per_minute == 0 || self.login_ip_rate_per_minute == 0 {
            return invalid("login rate limits must be at least 1 per minute");
        }
        if let Some(url) = &self.broker {
            if !(url.expose().starts_with("amqp://") || url.expose().starts_with("amqps://")) {
                return invalid("broker must be an amqp:// or amqps:// URL");
            }
        }
        if let Some(url) = &self.storage_url {
            let bucket = url.strip_prefix("s3://").map(|rest| rest.split('/').next());
            if !matches!(bucket, Some(Some(b)) if !b.is_empty()) {
                return invalid("storage_url must be an s3://bucket[/prefix] URL");
            }
        }
        if let Some(endpoint) = &self.s3_endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return invalid("s3_endpoint must be an http:// or https:// URL");
            }
        }
        if self.s3_access_key_id.is_some() != self.s3_secret_access_key.is_some() {
            return invalid("s3_access_key_id and s3_secret_access_key must be set together");
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|token| token.expose().len() < 16)
        {
            return invalid("metrics_token must be at least 16 characters");
        }
        if self.job_lease_secs == 0 {
            return invalid("job_lease_secs must be at least 1");
        }
        if self.images_queue.trim().is_empty() {
            return invalid("images_queue must not be empty");
        }
        if self.image_workers == 0 {
            return invalid("image_workers must be at least 1");
        }
        if !(0..=19).contains(&self.image_worker_nice) {
            return invalid("image_worker_nice must be between 0 and 19");
        }
        if self.image_job_timeout_secs == 0 {
            return invalid("image_job_timeout_secs must be at least 1");
        }
        if self.upload_rate_per_minute == 0 {
            return invalid("upload_rate_per_minute must be at least 1");
        }
        if self.orders_queue.is_empty() || self.orders_queue == self.images_queue {
            return invalid("orders_queue must be set and differ from images_queue");
        }
        if self.orders_workers == 0 || self.job_retry_base_ms == 0 || self.payment_timeout_ms == 0 {
            return invalid(
                "orders_workers, job_retry_base_ms and payment_timeout_ms must be positive",
            );
        }
        if crate::orders::payment::SimMode::parse(&self.sim_payment_mode).is_none() {
            return invalid(
                "sim_payment_mode must be one of approve, decline, timeout, unavailable",
            );
        }
        if self.max_image_pixels == 0 || self.upload_limit_bytes < 1024 {
            return invalid(
                "max_image_pixels must be positive and upload_limit_bytes at least 1024",
            );
        }
        if self.view_flush_interval_ms == 0 {
            return invalid("view_flush_interval_ms must be positive");
        }
        if self.http_header_read_timeout_secs == 0 || self.max_connections == 0 {
            return invalid("http_header_read_timeout_secs and max_connections must be positive");
        }
        Ok(())
    }

    /// The database URL with any password replaced, for logs.
    pub fn database_url_for_log(&self) -> String {
        let url = self.database_url.expose();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &url[scheme_end + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
            }
            _ => url.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_in_the_file_is_named_with_the_closest_setting() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ballpark.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9\"\njob_retry_bse_ms = 10\n").unwrap();

        // Act
        let err = Config::load(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();

        // Assert
        assert!(err.contains("unknown setting `job_retry_bse_ms`"), "{err}");
        assert!(err.contains("did you mean `job_retry_base_ms`?"), "{err}");
        assert!(err.contains("ballpark.toml"), "{err}");
        assert!(!err.contains("database_max_connections"), "{err}");
    }

    #[test]
    fn a_key_like_no_setting_gets_no_suggestion() {
        assert_eq!(closest_setting("colour_scheme"), None);
        assert_eq!(closest_setting("bindd"), Some("bind"));
    }

    #[test]
    fn every_environment_variable_read_is_in_the_readme_settings_table() {
        // Arrange: the rows of the Configuration section's table.
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a Configuration section");
        let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();

        // Act
        let missing: Vec<&str> = ENV_KEYS
            .iter()
            .copied()
            .filter(|key| {
                let variable = format!("`BALLPARK_{}`", key.to_uppercase());
                !rows
                    .iter()
                    .any(|row| row.contains(&format!("`{key}`")) && row.contains(&variable))
            })
            .collect();

        // Assert
        assert!(missing.is_empty(), "not in the README's table: {missing:?}");
    }

    #[test]
    fn the_readme_gives_each_setting_the_default_the_code_has() {
        // Only the one that drifted before: image_worker_nice.
        let readme = include_str!("../README.md");
        let default = Config::default().image_worker_nice;
        assert!(readme.contains(&format!(
            "| `image_worker_nice` | `BALLPARK_IMAGE_WORKER_NICE` | `{default}` |"
        )));
        assert!(readme.contains(&format!("`image_worker_nice`, default {default})")));
    }

    #[test]
    fn production_refuses_the_default_secret() {
        let config = Config {
            env: Environment::Production,
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("jwt_secret"), "{err}");
    }

    #[test]
    fn production_accepts_a_long_secret() {
        let config = Config {
            env: Environment::Production,
            jwt_secret: Secret::new("x".repeat(40)),
            vendor_webhook_secret: Secret::new("whsec_issued_by_the_vendor"),
            public_url: Some("https://ballpark.example".into()),
            ..Config::default()
        };
        config.validate().unwrap();
    }

    #[test]
    fn production_refuses_to_start_without_public_url() {
        let config = Config {
            env: Environment::Production,
            jwt_secret: Secret::new("x".repeat(40)),
            vendor_webhook_secret: Secret::new("whsec_issued_by_the_vendor"),
            public_url: None,
            ..Config::default()
        };

        let err = config.validate().unwrap_err().to_string();

        assert!(err.contains("public_url must be set"), "{err}");
    }

    #[test]
    fn a_public_url_that_is_not_an_http_url_is_refused() {
        for url in ["ballpark.example", "ftp://ballpark.example", "http://"] {
            let config = Config {
                public_url: Some(url.into()),
                ..Config::default()
            };

            let err = config.validate().unwrap_err().to_string();

            assert!(err.contains("public_url"), "{url}: {err}");
        }
    }

    #[test]
    fn production_refuses_the_default_vendor_webhook_secret() {
        let config = Config {
            env: Environment::Production,
            jwt_secret: Secret::new("x".repeat(40)),
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("vendor_webhook_secret"), "{err}");
    }

    #[test]
    fn vendor_settings_out_of_range_are_refused() {
        let bad = [
            Config {
                vendor_url: Some("vendor.example:8090".into()),
                ..Config::default()
            },
            Config {
                vendor_timeout_ms: 0,
                ..Config::default()
            },
            Config {
                sim_vendor_reject_rate: 1.5,
                ..Config::default()
            },
            Config {
                sim_vendor_reject_rate: f64::NAN,
                ..Config::default()
            },
            Config {
                vendor_webhook_secret: Secret::new(""),
                ..Config::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        let good = Config {
            vendor_url: Some("https://vendor.example/api".into()),
            sim_vendor_reject_rate: 1.0,
            ..Config::default()
        };
        good.validate().unwrap();
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let config = Config {
            jwt_secret: Secret::new("super-secret-value"),
            vendor_webhook_secret: Secret::new("vendor-secret-value"),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-value"));
        assert!(!shown.contains("vendor-secret-value"));
    }

    #[test]
    fn passwords_in_database_urls_are_masked_for_logs() {
        let config = Config {
            database_url: Secret::new("postgres://app:hunter2@db:5432/ballpark"),
            ..Config::default()
        };
        assert_eq!(
            config.database_url_for_log(),
            "postgres://app:***@db:5432/ballpark"
        );
    }

    #[test]
    fn storage_urls_must_name_an_s3_bucket() {
        let with = |url: &str| Config {
            storage_url: Some(url.into()),
            ..Config::default()
        };
        assert!(with("s3://media").validate().is_ok());
        assert!(with("s3://media/prefix").validate().is_ok());
        assert!(with("s3://").validate().is_err());
        assert!(with("/srv/media").validate().is_err());
    }

    #[test]
    fn s3_keys_come_in_pairs_and_stay_out_of_debug_output() {
        let config = Config {
            s3_access_key_id: Some(Secret::new("AKIDEXAMPLE")),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        let config = Config {
            s3_secret_access_key: Some(Secret::new("very-secret-key")),
            ..config
        };
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("very-secret-key"));
    }

    #[test]
    fn image_workers_default_to_half_the_cores_and_at_least_one() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(Config::default().image_workers, (cores / 2).max(1));
        assert!(Config::default().image_workers >= 1);
    }

    #[test]
    fn a_short_metrics_token_is_refused() {
        let config = Config {
            metrics_token: Some(Secret::new("short")),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn unknown_database_schemes_are_refused() {
        let config = Config {
            database_url: Secret::new("mysql://x"),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}
