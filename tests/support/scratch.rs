//! What every integration-test binary needs to give a test its own real database: a fresh
//! SQLite file or a fresh PostgreSQL database on the server this machine runs, deleted when
//! the test is done, and the addresses of the real services. Included by each binary with
//! `#[path = "../support/scratch.rs"] mod scratch;`; each uses only part of it.
//!
//! Nothing here is ever skipped: if PostgreSQL is unreachable, creating a scratch database
//! panics with a message that says so.
#![allow(dead_code)]

use std::future::Future;

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where test databases are created (`BALLPARK_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("BALLPARK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The broker the RabbitMQ tests use (`BALLPARK_TEST_AMQP_URL`, default the local one).
pub fn amqp_url() -> String {
    std::env::var("BALLPARK_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// An empty database of a test's own; dropping it deletes it.
pub struct ScratchDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_database: Option<String>,
}

pub async fn scratch_db(backend: Backend) -> ScratchDb {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            ScratchDb {
                url: format!("sqlite://{}", dir.path().join("test.db").display()),
                _dir: Some(dir),
                pg_database: None,
            }
        }
        Backend::Postgres => {
            let name = format!("ballpark_test_{}", uuid::Uuid::new_v4().simple());
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin} ({e}). The PostgreSQL tests are not \
                     skipped: start the server (scripts/services) or set BALLPARK_TEST_POSTGRES_URL."
                )
            });
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            ScratchDb {
                url: format!("{base}/{name}"),
                _dir: None,
                pg_database: Some(name),
            }
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_database.take() {
            let admin = postgres_admin_url();
            block_on_thread(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        }
    }
}

/// Runs `cleanup` to completion on a runtime of its own on another thread: `Drop` runs
/// outside async code, possibly inside a runtime that must not be blocked.
pub fn block_on_thread(cleanup: impl Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(cleanup);
        }
    })
    .join();
}
