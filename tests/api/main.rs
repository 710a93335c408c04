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
mod backup;
mod catalog;
mod chat;
mod cli;
mod comments;
mod compression;
mod connections;
mod crash;
mod deleted_user;
mod extras;
mod hostile_input;
mod metrics;
mod openapi_walk;
mod ops;
mod orders;
mod orders_flow;
mod orders_stream;
mod orders_worker;
mod profiles;
mod proxy;
mod routes;
mod serve_lock;
mod storage_s3;
mod tags;
mod upload_errors;
mod uploads;
mod users;
mod vendor_sim;
mod web;
mod web_accounts;
mod web_admin;
mod web_badges;
mod web_chat;
mod web_client;
mod web_community;
mod web_errors;
mod web_orders;
mod web_owner;
mod web_shop;
mod worker_probes;
