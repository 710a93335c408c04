//! Integration tests of the HTTP API, each run against SQLite and against PostgreSQL.

#[path = "../support/scratch.rs"]
mod scratch;

mod helpers;

mod admin;
mod article_images;
mod articles;
mod comments;
mod crash;
mod extras;
mod ops;
mod profiles;
mod storage_s3;
mod uploads;
mod users;
