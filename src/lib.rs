//! ballpark: a community server for baseball fans.
//!
//! Map of the crate (each module owns one concern):
//!
//! | module        | owns |
//! |---------------|------|
//! | [`admin`]     | admin endpoints: queue depth, dead jobs and retrying them (role `admin` only) |
//! | [`config`]    | layered configuration (defaults < TOML file < environment < CLI) and its validation |
//! | [`app`]       | building the HTTP application: router, middleware, background tasks, graceful shutdown |
//! | [`backup`]    | `ballpark backup` / `restore`: a SQLite database (online, `VACUUM INTO`) and the local media directory |
//! | [`db`]        | the two database backends (SQLite, PostgreSQL) behind one handle, and migrations |
//! | [`error`]     | the one error type every handler returns, and how it becomes a response |
//! | [`auth`]      | password hashing, JWTs, the `AuthUser` extractors and the login rate limiter |
//! | [`client_ip`] | the client's address behind trusted reverse proxies (`X-Forwarded-For`), for limits and logs |
//! | [`community`] | the RealWorld ("Conduit") API plus the fan-community extras |
//! | [`chat`]      | live chat, one room per team, over WebSockets; history in the database, fan-out across processes by PostgreSQL LISTEN/NOTIFY |
//! | [`catalog`]   | the stadium catalogue: stadiums, stores, menus (prices in won, stock), reviews with hashtags |
//! | [`demo`]      | reference data (KBO teams, stadiums) on every start; demo data (fans, articles, stores with made-up prices, reviews) |
//! | [`ops`]       | health and readiness probes; serving the OpenAPI document and its docs UI |
//! | [`openapi`]   | the OpenAPI document: the generated one finished with the statuses, error bodies and input limits all operations share |
//! | [`metrics`]   | the Prometheus recorder instrumented code writes into, and `GET /metrics` |
//! | [`queue`]     | the job queue: jobs in the database, enqueued in the caller's transaction, and the worker runtime |
//! | [`workers`]   | which jobs run where: the handlers, on database workers or on RabbitMQ (relay + consumers) |
//! | [`http`]      | small HTTP helpers shared by every module (JSON extractor, request ids) |
//! | [`media`]     | image bytes: sniffing, decompression-bomb guard, decode at reduced size, EXIF orientation, metadata stripping, JPEG/WebP variants (two queued jobs), storage in a directory or an S3 bucket |
//! | [`orders`]    | snack-bar orders; [`orders::vendor`] is the contract with the stands' own systems |
//! | [`web`]       | the server-rendered web UI: articles, stadiums, stores and menus, team chat rooms (askama templates in `templates/`) |
//! | [`vendor_sim`] | the bundled simulated vendor (`ballpark vendor`, or in-process when `vendor_url` is unset): slow, down or picky on demand, webhooks with retries |
//!
//! `main.rs` only parses the command line; tests build the application exactly as `main` does,
//! through [`app::Application::build`], on port 0.

pub mod admin;
pub mod app;
pub mod auth;
pub mod backup;
pub mod catalog;
pub mod chat;
pub mod client_ip;
pub mod community;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod queue;
pub mod vendor_sim;
pub mod web;
pub mod workers;

pub use error::{AppError, Result};

// The web UI's strings (Korean and English), compiled in; `rust_i18n::t!` needs this at the
// crate root. Pages pass the request's language to every lookup (see `web::i18n`).
rust_i18n::i18n!("src/web/locales", fallback = "ko");
