//! Integration tests of the HTTP API, each run against SQLite and against PostgreSQL (except
//! `vendor_sim`, which needs no database).

#[path = "../support/scratch.rs"]
mod scratch;

mod helpers;
#[path = "../support/shop.rs"]
mod shop;

mod admin;
mod article_images;
mod articles;
mod catalog;
mod chat;
mod comments;
mod crash;
mod extras;
mod metrics;
mod ops;
mod orders;
mod orders_flow;
mod profiles;
mod storage_s3;
mod uploads;
mod users;
mod vendor_sim;
mod web;
mod web_accounts;
mod web_chat;
mod web_client;
mod web_orders;
