//! Integration tests of the HTTP API, each run against SQLite and against PostgreSQL.

#[path = "../support/scratch.rs"]
mod scratch;

mod helpers;

mod admin;
mod articles;
mod comments;
mod crash;
mod extras;
mod metrics;
mod ops;
mod profiles;
mod uploads;
mod users;
