//! No-op job throughput of the queue, enqueue to done, on SQLite and PostgreSQL, against
//! baselines measured in the same run.
//!
//! Database queue (both databases):
//! - **baseline**: the same number of rows written with one plain `INSERT` and then one plain
//!   `UPDATE` each, by the same number of tasks: the floor cost of "two writes per job"
//!   without any queue machinery.
//! - **ceiling**: the same tasks writing only the `INSERT`, one row per commit: how many
//!   commits per second the database makes on this machine, which bounds any queue that
//!   commits each job on its own.
//! - **queue**, five runs, each with producer tasks enqueueing while a `WorkerPool` (woken
//!   on enqueue) claims and completes; the clock stops when the pool has recorded the last job
//!   done (read from its own counter, not by polling the database):
//!   - **1 job per transaction**: each job in a transaction of its own (`enqueue_sqlite` /
//!     `enqueue_postgres` between `begin` and `commit`), as a job enqueued with the business
//!     write that causes it; `PRODUCERS` tasks, concurrency `CONCURRENCY`, and again with
//!     `BUSY_PRODUCERS` tasks;
//!   - **`queue::enqueue`**: one job per call, for work not tied to another write; concurrent
//!     calls share a commit (SQLite's group commit, PostgreSQL's `PgEnqueuer`); `PRODUCERS`
//!     tasks, concurrency `CONCURRENCY`;
//!   - the same with `HIGH_CONCURRENCY` producer tasks and concurrency, as a busy server has
//!     many requests enqueueing at once: each task waits for its own commit, so only many
//!     tasks give the commits many jobs to share;
//!   - **`queue::enqueue_many`**: `BATCH` jobs per call, as a bulk producer would enqueue;
//!     `PRODUCERS` tasks, concurrency `CONCURRENCY`;
//!   - the same with concurrency `HIGH_CONCURRENCY`, where claims can take more jobs at once.
//!
//! RabbitMQ (when the broker answers at `BALLPARK_TEST_AMQP_URL`, default the local one):
//! - **baseline**: raw lapin: `AMQP_JOBS` persistent messages published on a confirm-mode
//!   channel in batches of 200 (waiting for the confirms of each batch, as the relay does)
//!   into a quorum queue declared like the app's, while a consumer with prefetch
//!   `CONCURRENCY` acks each; the clock stops at the last ack.
//! - **queue**: `PRODUCERS` tasks enqueue one job per transaction into the outbox while a
//!   `Relay` publishes them (confirms) and an `AmqpWorker` (prefetch `CONCURRENCY`) runs the
//!   no-op handler and records each job done; the clock stops when the last job is done.
//!
//! Run: `cargo bench --bench queue` (env: `JOBS` default 20000, `AMQP_JOBS` default 5000,
//! `PRODUCERS` default 8, `BUSY_PRODUCERS` default 64, `CONCURRENCY` default 32,
//! `HIGH_CONCURRENCY` default 128, `BATCH` default 100,
//! `PG_POOL` (PostgreSQL connections, default 16 as in the server), `PG_SYNCHRONOUS_COMMIT`
//! (sets `synchronous_commit` for the whole bench database, for comparisons),
//! `BALLPARK_TEST_POSTGRES_URL`, `BALLPARK_TEST_AMQP_URL`, `BENCH_CASES` (a comma-separated
//! subset of `sqlite,postgres,amqp`). The workers record into a Prometheus recorder, as in the
//! server, and the completed counter is printed as a check. Under `cargo test` (no `--bench`
//! argument) it makes a smoke run of 500 / 200 jobs instead.

use std::time::{Duration, Instant};

use anyhow::Context;
use ballpark::db::Db;
use ballpark::metrics::Metrics;
use ballpark::queue::amqp::{AmqpWorker, AmqpWorkerConfig, Broker, Relay, RelayConfig};
use ballpark::queue::{self, handler_fn, NewJob, QueueMetrics, WorkerConfig, WorkerPool};
use ballpark::{on_read, on_write};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

struct Settings {
    jobs: usize,
    amqp_jobs: usize,
    producers: usize,
    concurrency: usize,
    high_concurrency: usize,
    /// Producer tasks of the busy one-job-per-transaction run (issue 13: 64).
    busy_producers: usize,
    batch: usize,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
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
            // Experiments only: every session on the database commits this way.
            if let Ok(mode) = std::env::var("PG_SYNCHRONOUS_COMMIT") {
                anyhow::ensure!(
                    ["on", "off", "local", "remote_write", "remote_apply"].contains(&mode.as_str()),
                    "PG_SYNCHRONOUS_COMMIT={mode} is not a synchronous_commit value"
                );
                sqlx::query(&format!(
                    "ALTER DATABASE {name} SET synchronous_commit = '{mode}'"
                ))
                .execute(&mut conn)
                .await?;
            }
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            let pool = env_usize("PG_POOL", 16) as u32;
            let db = Db::connect(&format!("{base}/{name}"), pool).await?;
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

/// Two plain writes per "job" (insert, then update by id), `producers` tasks in parallel; with
/// `insert_only`, just the insert: one single-row commit per job, the most commits per second
/// the database makes here, so the ceiling of any queue that commits each job on its own.
async fn baseline(
    db: &Db,
    jobs: usize,
    producers: usize,
    insert_only: bool,
) -> anyhow::Result<Duration> {
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
                    if !insert_only {
                        sqlx::query("UPDATE bench_rows SET done = 1 WHERE id = $1")
                            .bind(id)
                            .execute(pool)
                            .await?;
                    }
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

async fn done_jobs(db: &Db, queue: &str) -> anyhow::Result<i64> {
    Ok(on_read!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE status = 'done' AND queue = $1")
        .bind(queue)
        .fetch_one(pool)
        .await)?)
}

/// The sum of the pool's `completed` counters (jobs recorded done in the database).
fn completed_total(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("ballpark_queue_jobs_completed_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until the pool has recorded `jobs` jobs done and returns the time since `start`
/// then; afterwards checks in the database that `jobs` are. The wait reads the pool's own
/// counter, in process: polling `COUNT(*)` of the open jobs every few milliseconds (as this
/// benchmark did before) costs the database, on the same two cores, a good part of what the
/// queue being measured gets.
async fn wait_all_done(
    db: &Db,
    metrics: &Metrics,
    queue: &str,
    jobs: usize,
    start: Instant,
) -> anyhow::Result<Duration> {
    while completed_total(metrics) < jobs as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    let done = done_jobs(db, queue).await?;
    anyhow::ensure!(done as usize == jobs, "{done} of {jobs} jobs done");
    Ok(elapsed)
}

/// How the producers enqueue.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// One job per transaction of the producer's own (`enqueue_sqlite` / `enqueue_postgres`
    /// in `begin` … `commit`): a job enqueued with the business write that causes it.
    OwnTransaction,
    /// `queue::enqueue`, one job per call: concurrent calls share a commit.
    Enqueue,
    /// `queue::enqueue_many`, this many jobs per call (one transaction).
    Many(usize),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::OwnTransaction => "1 job per transaction (enqueue inside a caller's tx)".into(),
            Mode::Enqueue => {
                "queue::enqueue, 1 job per call (concurrent calls share commits)".into()
            }
            Mode::Many(n) => format!("queue::enqueue_many, {n} jobs per call"),
        }
    }
}

/// One job in a transaction of its own, as an enqueue next to a business write would be.
async fn enqueue_in_transaction(db: &Db, job: &NewJob) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite { write, .. } => {
            let mut tx = write.begin().await?;
            queue::enqueue_sqlite(&mut tx, job).await?;
            tx.commit().await
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await?;
            queue::enqueue_postgres(&mut tx, job).await?;
            tx.commit().await
        }
    }
}

/// Enqueues `jobs` no-op jobs into `queue` from `producers` tasks as `mode` says; `after`
/// runs after each commit.
async fn produce(
    db: &Db,
    queue_name: &str,
    jobs: usize,
    producers: usize,
    mode: Mode,
    after: impl Fn() + Clone + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (db, after, queue_name) = (db.clone(), after.clone(), queue_name.to_string());
        tasks.push(tokio::spawn(async move {
            let mine: Vec<usize> = (p..jobs).step_by(producers).collect();
            let job = |i: &usize| NewJob::new(&queue_name, "noop", serde_json::json!({ "n": i }));
            match mode {
                Mode::OwnTransaction => {
                    for i in &mine {
                        enqueue_in_transaction(&db, &job(i)).await?;
                        after();
                    }
                }
                Mode::Enqueue => {
                    for i in &mine {
                        queue::enqueue(&db, job(i)).await?;
                        after();
                    }
                }
                Mode::Many(size) => {
                    for chunk in mine.chunks(size) {
                        let jobs: Vec<NewJob> = chunk.iter().map(job).collect();
                        queue::enqueue_many(&db, &jobs).await?;
                        after();
                    }
                }
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The database queue: producers enqueue while a worker pool works; returns the time until
/// the last job is done and the pool's completed counter.
async fn queue_run(
    db: &Db,
    settings: &Settings,
    mode: Mode,
    producers: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, String)> {
    let queue_name = "bench";
    let config = WorkerConfig {
        poll_interval: Duration::from_millis(5),
        ..WorkerConfig::default()
    }
    .queue(queue_name, concurrency);
    let metrics = Metrics::new();
    let pool = WorkerPool::new(db.clone(), config)
        .register("noop", handler_fn(|_job| async { Ok(()) }))
        .metrics(QueueMetrics::new(&metrics));
    let wakeup = pool.wakeup();
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let worker = tokio::spawn(pool.run(shutdown.clone()));
    produce(db, queue_name, settings.jobs, producers, mode, move || {
        wakeup.wake()
    })
    .await?;
    let elapsed = wait_all_done(db, &metrics, queue_name, settings.jobs, start).await?;
    shutdown.cancel();
    worker.await?;
    Ok((elapsed, completed_counter(&metrics)))
}

/// The `completed` counter lines of the render, for the printed check.
fn completed_counter(metrics: &Metrics) -> String {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("ballpark_queue_jobs_completed_total"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn amqp_url() -> String {
    std::env::var("BALLPARK_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A quorum queue of the bench's own, declared like the app's; deleted by `cleanup`.
async fn amqp_queue(broker: &Broker, what: &str) -> anyhow::Result<String> {
    let name = format!("bench.{what}.{}", uuid::Uuid::new_v4().simple());
    let channel = broker.channel().await?;
    broker.declare(&channel, &name).await?;
    channel.close(200, "declared".into()).await?;
    Ok(name)
}

/// Raw lapin: publish `jobs` persistent messages with confirms (200 per batch) while one
/// consumer with manual acks takes them; the time until the last ack.
async fn amqp_baseline(broker: &Broker, jobs: usize, prefetch: usize) -> anyhow::Result<Duration> {
    let queue_name = amqp_queue(broker, "baseline").await?;
    let consumer_channel = broker.channel().await?;
    consumer_channel
        .basic_qos(prefetch as u16, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue_name.as_str().into(),
            "bench-baseline".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let publisher = broker.channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let start = Instant::now();
    let consuming = tokio::spawn(async move {
        let mut acked = 0;
        while acked < jobs {
            let delivery = consumer.next().await.context("the consumer ended")??;
            delivery.ack(BasicAckOptions::default()).await?;
            acked += 1;
        }
        Ok::<_, anyhow::Error>(())
    });
    let ids: Vec<usize> = (0..jobs).collect();
    for chunk in ids.chunks(200) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for i in chunk {
            let body = serde_json::json!({ "n": i }).to_string();
            confirms.push(
                publisher
                    .basic_publish(
                        "".into(),
                        queue_name.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        body.as_bytes(),
                        BasicProperties::default()
                            .with_message_id(i.to_string().into())
                            .with_delivery_mode(2),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            anyhow::ensure!(confirm.await?.is_ack(), "the broker refused a message");
        }
    }
    consuming.await??;
    let elapsed = start.elapsed();
    publisher.close(200, "done".into()).await?;
    consumer_channel.close(200, "done".into()).await?;
    broker.delete(&queue_name).await?;
    Ok(elapsed)
}

/// The RabbitMQ backend: outbox → relay → broker → consumer → done.
async fn amqp_run(
    db: &Db,
    broker: &Broker,
    settings: &Settings,
) -> anyhow::Result<(Duration, String)> {
    let queue_name = amqp_queue(broker, "queue").await?;
    let metrics = Metrics::new();
    let queue_metrics = QueueMetrics::new(&metrics);
    let shutdown = CancellationToken::new();
    let relay = Relay::new(
        broker,
        db.clone(),
        RelayConfig {
            poll_interval: Duration::from_millis(5),
            ..RelayConfig::default()
        }
        .queue(&queue_name),
    )
    .await?
    .metrics(queue_metrics.clone());
    let worker = AmqpWorker::new(
        db.clone(),
        AmqpWorkerConfig::default().queue(&queue_name, settings.concurrency),
    )
    .register("noop", handler_fn(|_job| async { Ok(()) }))
    .metrics(queue_metrics);
    let start = Instant::now();
    let relaying = tokio::spawn(relay.run(shutdown.clone()));
    let working = tokio::spawn(worker.run(broker.clone(), shutdown.clone()));
    produce(
        db,
        &queue_name,
        settings.amqp_jobs,
        settings.producers,
        Mode::OwnTransaction,
        || {},
    )
    .await?;
    let elapsed = wait_all_done(db, &metrics, &queue_name, settings.amqp_jobs, start).await?;
    shutdown.cancel();
    relaying.await??;
    working.await??;
    broker.delete(&queue_name).await?;
    Ok((elapsed, completed_counter(&metrics)))
}

fn row(backend: &str, run: &str, jobs: usize, took: Duration, baseline: Duration) {
    let rate = |d: Duration| jobs as f64 / d.as_secs_f64();
    println!(
        "| {backend} | {run} | {jobs} | {:.2} | {:.0} | {:.2} |",
        took.as_secs_f64(),
        rate(took),
        rate(took) / rate(baseline)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`. `cargo test --all-targets` (scripts/test, CI) runs this
    // binary too, without it: then a small smoke run checks every case in seconds.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let (jobs, amqp_jobs) = if smoke { (500, 200) } else { (20_000, 5_000) };
    let settings = Settings {
        jobs: env_usize("JOBS", jobs),
        amqp_jobs: env_usize("AMQP_JOBS", amqp_jobs),
        producers: env_usize("PRODUCERS", 8),
        concurrency: env_usize("CONCURRENCY", 32),
        high_concurrency: env_usize("HIGH_CONCURRENCY", 128),
        busy_producers: env_usize("BUSY_PRODUCERS", 64),
        batch: env_usize("BATCH", 100),
    };
    let cases = std::env::var("BENCH_CASES").unwrap_or_else(|_| "sqlite,postgres,amqp".into());
    let wanted = |case: &str| cases.split(',').any(|c| c.trim() == case);
    println!(
        "queue benchmark: {} no-op jobs ({} through RabbitMQ), {} producer tasks, worker \
         concurrency / prefetch {} (and {} where a run says so), enqueue_many batches \
         of {}; {} cores; {}",
        settings.jobs,
        settings.amqp_jobs,
        settings.producers,
        settings.concurrency,
        settings.high_concurrency,
        settings.batch,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    if smoke {
        println!("smoke run (cargo test, not cargo bench): the figures are not measurements");
    }
    println!();
    println!("| backend | run | jobs | seconds | jobs/s | ratio to baseline |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let mut checks = Vec::new();
    for backend in ["sqlite", "postgres"] {
        if !wanted(backend) {
            continue;
        }
        // Each run on a database of its own, so none inherits the rows of another.
        let db = fresh(backend).await?;
        let base = baseline(&db.db, settings.jobs, settings.producers, false).await?;
        db.cleanup().await?;
        let jobs = settings.jobs;
        row(
            backend,
            "baseline: insert + update per row",
            jobs,
            base,
            base,
        );
        let db = fresh(backend).await?;
        let ceiling = baseline(&db.db, settings.jobs, settings.producers, true).await?;
        db.cleanup().await?;
        row(
            backend,
            "ceiling: one single-row INSERT per commit, nothing else",
            jobs,
            ceiling,
            base,
        );
        let (few, many) = (settings.producers, settings.high_concurrency);
        let runs = [
            (Mode::OwnTransaction, few, settings.concurrency),
            (
                Mode::OwnTransaction,
                settings.busy_producers,
                settings.concurrency,
            ),
            (Mode::Enqueue, few, settings.concurrency),
            (Mode::Enqueue, many, settings.high_concurrency),
            (Mode::Many(settings.batch), few, settings.concurrency),
            (Mode::Many(settings.batch), few, settings.high_concurrency),
        ];
        for (mode, producers, concurrency) in runs {
            let db = fresh(backend).await?;
            let (took, check) = queue_run(&db.db, &settings, mode, producers, concurrency).await?;
            db.cleanup().await?;
            let label = format!(
                "queue: {}, {producers} producers + claim + complete, concurrency {concurrency}",
                mode.label()
            );
            row(backend, &label, jobs, took, base);
            checks.push(format!("{backend}, {label}: {check}"));
        }
    }
    if wanted("amqp") {
        let url = amqp_url();
        match tokio::time::timeout(Duration::from_secs(5), Broker::connect(&url)).await {
            Ok(Ok(broker)) => {
                let base = amqp_baseline(&broker, settings.amqp_jobs, settings.concurrency).await?;
                let jobs = settings.amqp_jobs;
                row(
                    "rabbitmq",
                    "baseline: raw lapin publish (confirms) + consume + ack",
                    jobs,
                    base,
                    base,
                );
                for backend in ["sqlite", "postgres"] {
                    let fresh = fresh(backend).await?;
                    let (took, check) = amqp_run(&fresh.db, &broker, &settings).await?;
                    let label =
                        format!("queue on {backend}: enqueue (1 job/tx) → relay → consumer → done");
                    row("rabbitmq", &label, jobs, took, base);
                    checks.push(format!("rabbitmq on {backend}: {check}"));
                    fresh.cleanup().await?;
                }
                broker.close().await;
            }
            _ => println!("| rabbitmq | not run: no broker answered at {url} | | | | |"),
        }
    }
    println!();
    for check in checks {
        println!("check (the pools' own counters): {check}");
    }
    Ok(())
}
