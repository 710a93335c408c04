//! No-op job throughput of the database queue (enqueue + claim + complete), on SQLite and
//! PostgreSQL, against a baseline measured in the same run: the same number of rows written
//! and then updated with one plain statement each, by the same number of tasks. The
//! baseline is the floor cost of "two writes per job" without any queue machinery, so the
//! ratio shows what claiming, leasing and completing add.
//!
//! Run: `cargo bench --bench queue` (env: `JOBS`, default 20000; `PRODUCERS`, default 8;
//! `CONCURRENCY`, default 32; `BALLPARK_TEST_POSTGRES_URL` for the server to use).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ballpark::db::Db;
use ballpark::queue::{self, handler_fn, NewJob, WorkerConfig, WorkerPool};
use ballpark::{on_read, on_write};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Fresh {
    db: Db,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

async fn fresh(backend: &str) -> anyhow::Result<Fresh> {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            let db = Db::connect(&url, 8).await?;
            db.migrate().await?;
            Ok(Fresh {
                db,
                _dir: Some(dir),
                drop_pg: None,
            })
        }
        _ => {
            let admin = std::env::var("BALLPARK_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("bench_queue_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .with_context(|| format!("PostgreSQL is not reachable at {admin}"))?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            let db = Db::connect(&format!("{base}/{name}"), 16).await?;
            db.migrate().await?;
            Ok(Fresh {
                db,
                _dir: None,
                drop_pg: Some((admin, name)),
            })
        }
    }
}

impl Fresh {
    async fn cleanup(self) -> anyhow::Result<()> {
        self.db.close().await;
        if let Some((admin, name)) = self.drop_pg {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// Two plain writes per "job" (insert, then update by id), `producers` tasks in parallel.
async fn baseline(db: &Db, jobs: usize, producers: usize) -> anyhow::Result<Duration> {
    on_write!(db, pool => sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, payload TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0)")
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in (p..jobs).step_by(producers) {
                let id = i as i64;
                on_write!(&db, pool => {
                    sqlx::query("INSERT INTO bench_rows (id, payload) VALUES ($1, $2)")
                        .bind(id)
                        .bind(r#"{"n":1}"#)
                        .execute(pool)
                        .await?;
                    sqlx::query("UPDATE bench_rows SET done = 1 WHERE id = $1")
                        .bind(id)
                        .execute(pool)
                        .await?;
                    Ok::<_, sqlx::Error>(())
                })?;
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

/// Enqueues `jobs` no-op jobs from `producers` tasks while a worker pool works them; the clock
/// stops when the last one is done.
async fn queue_run(
    db: &Db,
    jobs: usize,
    producers: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let config = WorkerConfig {
        poll_interval: Duration::from_millis(5),
        ..WorkerConfig::default()
    }
    .queue("bench", concurrency);
    let pool =
        WorkerPool::new(db.clone(), config).register("noop", handler_fn(|_job| async { Ok(()) }));
    let wakeup = Arc::new(pool.wakeup());
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let worker = tokio::spawn(pool.run(shutdown.clone()));
    let mut tasks = Vec::new();
    for p in 0..producers {
        let db = db.clone();
        let wakeup = wakeup.clone();
        tasks.push(tokio::spawn(async move {
            for i in (p..jobs).step_by(producers) {
                queue::enqueue(
                    &db,
                    NewJob::new("bench", "noop", serde_json::json!({ "n": i })),
                )
                .await?;
                wakeup.wake();
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    loop {
        let done: i64 = on_read!(db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE queue = 'bench' AND status = 'done'")
            .fetch_one(pool)
            .await)?;
        if done as usize >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    shutdown.cancel();
    worker.await?;
    Ok(elapsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs = env_usize("JOBS", 20_000);
    let producers = env_usize("PRODUCERS", 8);
    let concurrency = env_usize("CONCURRENCY", 32);
    println!(
        "queue benchmark: {jobs} no-op jobs, {producers} producer tasks, worker concurrency {concurrency}"
    );
    println!();
    println!("| backend | run | seconds | jobs/s | ratio to baseline |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for backend in ["sqlite", "postgres"] {
        let fresh = fresh(backend).await?;
        let base = baseline(&fresh.db, jobs, producers).await?;
        let run = queue_run(&fresh.db, jobs, producers, concurrency).await?;
        let rate = |d: Duration| jobs as f64 / d.as_secs_f64();
        println!(
            "| {backend} | baseline: insert + update per row | {:.2} | {:.0} | 1.00 |",
            base.as_secs_f64(),
            rate(base)
        );
        println!(
            "| {backend} | queue: enqueue + claim + complete | {:.2} | {:.0} | {:.2} |",
            run.as_secs_f64(),
            rate(run),
            rate(run) / rate(base)
        );
        fresh.cleanup().await?;
    }
    Ok(())
}
