//! What every integration-test binary needs to give a test its own real database: a fresh
//! SQLite file or a fresh PostgreSQL database on the server this machine runs, deleted when
//! the test is done, and the addresses of the real services. Included by each binary with
//! `#[path = "../support/scratch.rs"] mod scratch;`; each uses only part of it.
//!
//! PostgreSQL and RabbitMQ are never skipped: if PostgreSQL is unreachable, creating a scratch
//! database panics with a message that says so. The S3-compatible server is the one
//! exception outside CI: [`scratch_bucket`] prints why it skips and returns `None`, because
//! it is a Python tool (moto) that a developer may not have installed yet; with `CI=true` an
//! unreachable server fails the test like the others.
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

/// The S3-compatible server of the S3 storage tests (`BALLPARK_TEST_S3_URL`, default the
/// moto server `scripts/services` starts). It must accept unsigned bucket creation, as moto
/// does, since each test makes a bucket of its own.
pub fn s3_endpoint() -> String {
    std::env::var("BALLPARK_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

/// An empty bucket of a test's own on [`s3_endpoint`]; dropping it deletes it and all its
/// objects.
pub struct ScratchBucket {
    pub endpoint: String,
    pub name: String,
}

/// Creates a bucket of the test's own. If the server is unreachable: in CI (`CI=true`) the
/// test fails; elsewhere this prints the reason the test is skipped and returns `None`.
pub async fn scratch_bucket(test: &str) -> Option<ScratchBucket> {
    let endpoint = s3_endpoint();
    let name = format!("ballpark-test-{}", uuid::Uuid::new_v4().simple());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await;
    match created {
        Ok(response) if response.status().is_success() => Some(ScratchBucket { endpoint, name }),
        Ok(response) => panic!(
            "the S3 server at {endpoint} refused to create bucket {name}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        ),
        Err(err) => {
            let reason = format!(
                "no S3-compatible server at {endpoint} ({err}); start the local one (moto) with \
                 scripts/services, or set BALLPARK_TEST_S3_URL"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{reason}. In CI the S3 tests are not skipped.");
            }
            // Straight to stderr, not eprintln!: the test harness captures the macros'
            // output of passing tests, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
            None
        }
    }
}

impl ScratchBucket {
    /// Any key pair works with moto; it checks no signatures.
    pub const ACCESS_KEY_ID: &'static str = "ballpark-test";
    pub const SECRET_ACCESS_KEY: &'static str = "ballpark-test-secret";

    /// The bucket as the S3 storage's settings, under `prefix` (`""` for the bucket's root).
    pub fn settings(&self, prefix: &str) -> ballpark::media::storage::S3Settings {
        ballpark::media::storage::S3Settings {
            url: format!("s3://{}/{prefix}", self.name),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            access_key_id: Some(Self::ACCESS_KEY_ID.into()),
            secret_access_key: Some(Self::SECRET_ACCESS_KEY.into()),
        }
    }

    /// The bucket's own view: every object key in it, sorted.
    pub async fn keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let store = self.raw_store();
        let mut keys: Vec<String> = store
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("list the bucket");
        keys.sort();
        keys
    }

    fn raw_store(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.name)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(Self::ACCESS_KEY_ID)
            .with_secret_access_key(Self::SECRET_ACCESS_KEY)
            .build()
            .expect("S3 client")
    }
}

impl Drop for ScratchBucket {
    fn drop(&mut self) {
        let store = self.raw_store();
        let url = format!("{}/{}", self.endpoint, self.name);
        block_on_thread(async move {
            use futures::TryStreamExt;
            use object_store::{ObjectStore, ObjectStoreExt};
            let keys: Vec<_> = store
                .list(None)
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .unwrap_or_default();
            for key in keys {
                let _ = store.delete(&key).await;
            }
            let _ = reqwest::Client::new().delete(url).send().await;
        });
    }
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
