//! Integration tests of the RabbitMQ backend (outbox relay, topology, consumer), each run
//! against the real RabbitMQ and a fresh SQLite file or PostgreSQL database, on queues named
//! for the test (deleted at the end). Neither RabbitMQ nor PostgreSQL is ever skipped: if one
//! is unreachable the tests fail, saying so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballpark::db::Db;
use ballpark::metrics::Metrics;
use ballpark::queue::amqp::{
    dead_letter_name, purge_processed, AmqpWorker, AmqpWorkerConfig, Broker, Relay, RelayConfig,
    Tx, TxJobHandler,
};
use ballpark::queue::{
    self, handler_fn, store, Backoff, JobError, JobStatus, NewJob, QueueMetrics, RetryDead,
};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[path = "../support/scratch.rs"]
mod scratch;

use scratch::{amqp_url, block_on_thread, scratch_db, Backend, ScratchDb};

/// A migrated database of its own; dropping it deletes it.
struct TestDb {
    db: Db,
    _scratch: ScratchDb,
}

async fn test_db(backend: Backend) -> TestDb {
    let scratch = scratch_db(backend).await;
    let db = Db::connect(&scratch.url, 8)
        .await
        .expect("database connects");
    db.migrate().await.expect("migrations apply");
    TestDb {
        db,
        _scratch: scratch,
    }
}

/// The delivery limit of the tests' queues: a failing message is delivered 3 times.
const DELIVERY_LIMIT: u32 = 2;

async fn broker() -> Broker {
    let url = amqp_url();
    match tokio::time::timeout(Duration::from_secs(10), Broker::connect(&url)).await {
        Ok(Ok(broker)) => broker.delivery_limit(DELIVERY_LIMIT),
        Ok(Err(e)) => panic!(
            "RabbitMQ is not reachable ({e:#}). The RabbitMQ tests are not skipped: start it \
             (scripts/services) or set BALLPARK_TEST_AMQP_URL."
        ),
        Err(_) => panic!(
            "RabbitMQ did not answer within 10 s at {url}. The RabbitMQ tests are not skipped: \
             start it (scripts/services) or set BALLPARK_TEST_AMQP_URL."
        ),
    }
}

/// A queue name of the test's own; dropping it deletes the queue and its dead letters.
struct TestQueue {
    name: String,
}

impl TestQueue {
    fn new(test: &str) -> Self {
        TestQueue {
            name: format!("test.{test}.{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_thread(async move {
            if let Ok(broker) = Broker::connect(&amqp_url()).await {
                if let Err(e) = broker.delete(&name).await {
                    eprintln!("could not delete test queue {name}: {e}");
                }
                broker.close().await;
            }
        });
    }
}

/// Declares the queue's topology once before the test starts its relay and workers, as the
/// app does at startup: RabbitMQ 3.10 can fail a `basic.consume` on a quorum queue that
/// another channel is still creating, and closes the whole connection when it does.
async fn declare(broker: &Broker, queue: &str) {
    let channel = broker.channel().await.expect("a channel");
    broker
        .declare(&channel, queue)
        .await
        .expect("topology declared");
    let _ = channel.close(200, "declared".into()).await;
}

/// What each test gets: its database, a broker connection and its queue name (declared).
struct Ctx {
    db: Db,
    broker: Broker,
    queue: String,
}

/// One `#[tokio::test]` per database backend for each `async fn name(ctx: Ctx)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = super::test_db(super::Backend::Sqlite).await;
                    let queue = super::TestQueue::new(stringify!($name));
                    let broker = super::broker().await;
                    super::declare(&broker, &queue.name).await;
                    let ctx = super::Ctx {
                        db: test.db.clone(),
                        broker: broker.clone(),
                        queue: queue.name.clone(),
                    };
                    super::$name(ctx).await;
                    broker.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = super::test_db(super::Backend::Postgres).await;
                    let queue = super::TestQueue::new(stringify!($name));
                    let broker = super::broker().await;
                    super::declare(&broker, &queue.name).await;
                    let ctx = super::Ctx {
                        db: test.db.clone(),
                        broker: broker.clone(),
                        queue: queue.name.clone(),
                    };
                    super::$name(ctx).await;
                    broker.close().await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_rolled_back_enqueue_publishes_nothing_and_a_committed_one_is_published,
    a_job_is_marked_published_only_once_the_broker_confirms_it,
    the_consumer_runs_the_handler_acks_and_marks_the_job_done,
    a_duplicate_delivery_has_no_second_effect,
    a_failing_job_is_retried_after_a_backoff_then_dead_lettered_when_its_attempts_run_out,
    a_permanent_failure_is_dead_lettered_at_once,
    a_delayed_job_is_not_published_before_its_run_at,
    a_retried_dead_job_is_published_again,
    shutdown_lets_in_flight_handlers_finish_and_consumes_nothing_new,
    a_transactional_handler_has_exactly_one_effect_despite_a_failure_and_duplicates,
    a_queue_is_a_durable_quorum_queue_with_a_dead_letter_queue,
    a_worker_whose_queue_disappears_stops_with_an_error,
    shutdown_returns_messages_still_running_after_the_grace_period,
    the_consumers_metrics_count_completed_retried_and_dead_lettered_jobs_and_duplicates,
);

fn relay_config(queue: &str) -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(20),
        ..RelayConfig::default()
    }
    .queue(queue)
}

fn worker_config(queue: &str, prefetch: usize) -> AmqpWorkerConfig {
    AmqpWorkerConfig {
        shutdown_grace: Duration::from_secs(5),
        ..AmqpWorkerConfig::default()
    }
    .queue(queue, prefetch)
}

/// Polls `check` until it holds, failing the test after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn job(db: &Db, id: i64) -> queue::Job {
    store::get(db, id).await.unwrap().expect("job exists")
}

async fn published_at_is_set(db: &Db, id: i64) -> bool {
    let published: Option<i64> = ballpark::on_read!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE id = $1 AND published_at IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)
    .unwrap();
    published.is_some()
}

async fn processed_count(db: &Db, id: i64) -> i64 {
    ballpark::on_read!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM processed_messages WHERE message_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(pool)
    .await)
    .unwrap()
}

/// Messages ready in `queue` (not counting ones delivered and unacked).
async fn ready(broker: &Broker, queue: &str) -> u32 {
    let channel = broker.channel().await.unwrap();
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = channel.close(200, "".into()).await;
    declared.message_count()
}

/// Takes one message off `queue` (acked), if there is one.
async fn take(broker: &Broker, queue: &str) -> Option<lapin::message::Delivery> {
    let channel = broker.channel().await.unwrap();
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    let _ = channel.close(200, "".into()).await;
    message.map(|m| m.delivery)
}

fn message_id(delivery: &lapin::message::Delivery) -> String {
    delivery
        .properties
        .message_id()
        .as_ref()
        .expect("a message id")
        .to_string()
}

/// Publishes a message for job `id` by hand, as a second relay would after a crash.
async fn publish_again(broker: &Broker, queue: &str, id: i64, kind: &str, body: serde_json::Value) {
    let channel = broker.channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.to_string().as_bytes(),
            BasicProperties::default()
                .with_message_id(id.to_string().into())
                .with_type(kind.into())
                .with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    let _ = channel.close(200, "".into()).await;
}

async fn enqueue_in_transaction(db: &Db, job: &NewJob, commit: bool) -> i64 {
    match db {
        Db::Sqlite { write, .. } => {
            let mut tx = write.begin().await.unwrap();
            let id = queue::enqueue_sqlite(&mut tx, job).await.unwrap();
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
            id
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await.unwrap();
            let id = queue::enqueue_postgres(&mut tx, job).await.unwrap();
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
            id
        }
    }
}

/// Counts handler runs per job id.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<i64>>>);

impl Runs {
    fn record(&self, id: i64) {
        self.0.lock().unwrap().push(id);
    }
    fn of(&self, id: i64) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|&&run| run == id)
            .count()
    }
}

/// Starts a worker for `queue` with a handler of kind `kind`; returns its token and task.
fn start_worker<F, Fut>(
    ctx: &Ctx,
    prefetch: usize,
    kind: &str,
    handler: F,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
)
where
    F: Fn(queue::Job) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
{
    let worker = AmqpWorker::new(ctx.db.clone(), worker_config(&ctx.queue, prefetch))
        .register(kind, handler_fn(handler));
    let token = CancellationToken::new();
    let task = tokio::spawn(worker.run(ctx.broker.clone(), token.clone()));
    (token, task)
}

async fn a_rolled_back_enqueue_publishes_nothing_and_a_committed_one_is_published(ctx: Ctx) {
    // Arrange
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let job = NewJob::new(ctx.queue.clone(), "welcome", json!({ "team": "lions" }));
    enqueue_in_transaction(&ctx.db, &job, false).await;
    // Act
    let published = relay.relay_once().await.unwrap();
    // Assert
    assert_eq!(
        published, 0,
        "a rolled-back enqueue leaves nothing to publish"
    );
    assert_eq!(ready(&ctx.broker, &ctx.queue).await, 0);

    // Act
    let id = enqueue_in_transaction(&ctx.db, &job, true).await;
    let published = relay.relay_once().await.unwrap();
    // Assert
    assert_eq!(published, 1);
    assert_eq!(ready(&ctx.broker, &ctx.queue).await, 1);
    let message = take(&ctx.broker, &ctx.queue).await.expect("a message");
    assert_eq!(message_id(&message), id.to_string());
    let body: serde_json::Value = serde_json::from_slice(&message.data).unwrap();
    assert_eq!(body, json!({ "team": "lions" }));
    assert_eq!(
        relay.relay_once().await.unwrap(),
        0,
        "a published job is not published again"
    );
    relay.close().await;
}

async fn a_job_is_marked_published_only_once_the_broker_confirms_it(ctx: Ctx) {
    // Arrange: the queue disappears after the relay declared it, so the broker returns the
    // (mandatory) message instead of taking it.
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "k", json!({"n": 1})),
    )
    .await
    .unwrap();
    ctx.broker.delete(&ctx.queue).await.unwrap();
    // Act
    let published = relay.relay_once().await.unwrap();
    // Assert
    assert_eq!(published, 0);
    assert!(
        !published_at_is_set(&ctx.db, id).await,
        "a job the broker did not take stays unpublished"
    );

    // Arrange
    let channel = ctx.broker.channel().await.unwrap();
    ctx.broker.declare(&channel, &ctx.queue).await.unwrap();
    // Act
    let published = relay.relay_once().await.unwrap();
    // Assert
    assert_eq!(published, 1);
    assert!(published_at_is_set(&ctx.db, id).await);
    let message = take(&ctx.broker, &ctx.queue).await.expect("a message");
    assert_eq!(message_id(&message), id.to_string());
    assert_eq!(
        message.properties.kind().as_ref().map(|k| k.to_string()),
        Some("k".to_string())
    );
    assert_eq!(*message.properties.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        job(&ctx.db, id).await.status,
        JobStatus::Queued,
        "published is still queued until a consumer takes it"
    );
    relay.close().await;
}

async fn the_consumer_runs_the_handler_acks_and_marks_the_job_done(ctx: Ctx) {
    // Arrange
    let runs = Runs::default();
    let seen = runs.clone();
    let (token, worker) = start_worker(&ctx, 4, "welcome", move |job| {
        let seen = seen.clone();
        async move {
            assert_eq!(job.payload, json!({ "team": "bears" }));
            seen.record(job.id);
            Ok(())
        }
    });
    let relay_stop = CancellationToken::new();
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
    // Act
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "welcome", json!({ "team": "bears" })),
    )
    .await
    .unwrap();
    // Assert
    eventually(Duration::from_secs(10), "the job is done", || async {
        job(&ctx.db, id).await.status == JobStatus::Done
    })
    .await;
    assert_eq!(runs.of(id), 1);
    assert_eq!(processed_count(&ctx.db, id).await, 1);
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(purge_processed(&ctx.db, an_hour_ago).await.unwrap(), 0);
    let done = job(&ctx.db, id).await;
    assert_eq!(done.attempts, 1);
    assert!(done.finished_at.is_some());
    token.cancel();
    worker.await.unwrap().unwrap();
    relay_stop.cancel();
    relay_task.await.unwrap().unwrap();
    assert_eq!(
        ready(&ctx.broker, &ctx.queue).await,
        0,
        "the message was acked, not returned when the channel closed"
    );
}

async fn a_duplicate_delivery_has_no_second_effect(ctx: Ctx) {
    // Arrange: the job is published twice (as after a relay crash between confirm and
    // mark) before the consumer starts, so both copies can be in flight at once.
    let effects = Arc::new(AtomicUsize::new(0));
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let id = queue::enqueue(&ctx.db, NewJob::new(ctx.queue.clone(), "count", json!({})))
        .await
        .unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    publish_again(&ctx.broker, &ctx.queue, id, "count", json!({})).await;
    assert_eq!(ready(&ctx.broker, &ctx.queue).await, 2);
    // Act
    let counter = effects.clone();
    let (token, worker) = start_worker(&ctx, 4, "count", move |_job| {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    eventually(Duration::from_secs(10), "the job is done", || async {
        job(&ctx.db, id).await.status == JobStatus::Done
    })
    .await;
    // A copy arriving after the first was processed is skipped too.
    publish_again(&ctx.broker, &ctx.queue, id, "count", json!({})).await;
    eventually(
        Duration::from_secs(10),
        "every copy is consumed",
        || async { ready(&ctx.broker, &ctx.queue).await == 0 },
    )
    .await;
    token.cancel();
    worker.await.unwrap().unwrap();
    // Assert
    assert_eq!(
        effects.load(Ordering::SeqCst),
        1,
        "one effect for three deliveries"
    );
    assert_eq!(processed_count(&ctx.db, id).await, 1);
    assert_eq!(
        ready(&ctx.broker, &ctx.queue).await,
        0,
        "duplicates are acked, not requeued"
    );
    relay.close().await;
}

async fn a_failing_job_is_retried_after_a_backoff_then_dead_lettered_when_its_attempts_run_out(
    ctx: Ctx,
) {
    // Arrange: three attempts, 200 ms apart at least (no jitter).
    let runs: Arc<Mutex<Vec<tokio::time::Instant>>> = Arc::default();
    let seen = runs.clone();
    let worker = AmqpWorker::new(
        ctx.db.clone(),
        AmqpWorkerConfig {
            backoff: Backoff {
                base: Duration::from_millis(200),
                max: Duration::from_secs(1),
                jitter: 0.0,
            },
            ..worker_config(&ctx.queue, 1)
        },
    )
    .register(
        "flaky",
        handler_fn(move |_job| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(tokio::time::Instant::now());
                Err(JobError::retry("the vendor is down"))
            }
        }),
    );
    let token = CancellationToken::new();
    let worker = tokio::spawn(worker.run(ctx.broker.clone(), token.clone()));
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let relay_token = CancellationToken::new();
    let relaying = tokio::spawn(relay.run(relay_token.clone()));
    // Act
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "flaky", json!({})).max_attempts(3),
    )
    .await
    .unwrap();
    // Assert
    let dead_queue = dead_letter_name(&ctx.queue);
    eventually(
        Duration::from_secs(10),
        "the message is in the dead-letter queue",
        || async { ready(&ctx.broker, &dead_queue).await == 1 },
    )
    .await;
    token.cancel();
    worker.await.unwrap().unwrap();
    relay_token.cancel();
    relaying.await.unwrap().unwrap();
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3, "one run per attempt");
    assert!(runs[1] - runs[0] >= Duration::from_millis(200), "{runs:?}");
    assert!(
        runs[2] - runs[1] >= Duration::from_millis(400),
        "backoff doubles: {runs:?}"
    );
    let dead = job(&ctx.db, id).await;
    assert_eq!(dead.status, JobStatus::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("the vendor is down"));
    assert_eq!(dead.attempts, 3);
    assert_eq!(processed_count(&ctx.db, id).await, 0);
    assert_eq!(ready(&ctx.broker, &ctx.queue).await, 0);
    let letter = take(&ctx.broker, &dead_queue).await.expect("a dead letter");
    assert_eq!(message_id(&letter), id.to_string());
    let stats = queue::stats(&ctx.db).await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].dead, stats[0].queued, stats[0].running),
        (1, 0, 0)
    );
}

async fn a_permanent_failure_is_dead_lettered_at_once(ctx: Ctx) {
    // Arrange
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let (token, worker) = start_worker(&ctx, 1, "corrupt", move |_job| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Err(JobError::permanent("not an image"))
        }
    });
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    // Act
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "corrupt", json!({})),
    )
    .await
    .unwrap();
    relay.relay_once().await.unwrap();
    // Assert
    let dead_queue = dead_letter_name(&ctx.queue);
    eventually(
        Duration::from_secs(10),
        "the message is in the dead-letter queue",
        || async { ready(&ctx.broker, &dead_queue).await == 1 },
    )
    .await;
    token.cancel();
    worker.await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let dead = job(&ctx.db, id).await;
    assert_eq!(dead.status, JobStatus::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("not an image"));
    relay.close().await;
}

async fn a_delayed_job_is_not_published_before_its_run_at(ctx: Ctx) {
    // Arrange
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let run_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "later", json!({})).run_at(run_at),
    )
    .await
    .unwrap();
    // Act
    let early = relay.relay_once().await.unwrap();
    // Assert
    assert_eq!(early, 0);
    assert!(!published_at_is_set(&ctx.db, id).await);
    assert_eq!(ready(&ctx.broker, &ctx.queue).await, 0);

    // Act
    let wait = (run_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let due = relay.relay_once().await.unwrap();
    // Assert
    assert_eq!(due, 1);
    assert!(published_at_is_set(&ctx.db, id).await);
    assert_eq!(ready(&ctx.broker, &ctx.queue).await, 1);
    relay.close().await;
}

async fn a_retried_dead_job_is_published_again(ctx: Ctx) {
    // Arrange: a job dies on its first (permanent) failure.
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let runs = Runs::default();
    let (flag, seen) = (fail.clone(), runs.clone());
    let (token, worker) = start_worker(&ctx, 1, "fixable", move |job| {
        let (flag, seen) = (flag.clone(), seen.clone());
        async move {
            seen.record(job.id);
            if flag.load(Ordering::SeqCst) {
                Err(JobError::permanent("bad configuration"))
            } else {
                Ok(())
            }
        }
    });
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "fixable", json!({})),
    )
    .await
    .unwrap();
    relay.relay_once().await.unwrap();
    eventually(Duration::from_secs(10), "the job is dead", || async {
        job(&ctx.db, id).await.status == JobStatus::Dead
    })
    .await;
    // Act: the cause is fixed and an admin retries the job.
    fail.store(false, Ordering::SeqCst);
    assert_eq!(
        queue::retry_dead(&ctx.db, id).await.unwrap(),
        RetryDead::Requeued
    );
    assert!(
        !published_at_is_set(&ctx.db, id).await,
        "retrying clears the published mark"
    );
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    // Assert
    eventually(Duration::from_secs(10), "the job is done", || async {
        job(&ctx.db, id).await.status == JobStatus::Done
    })
    .await;
    assert_eq!(runs.of(id), 2);
    token.cancel();
    worker.await.unwrap().unwrap();
    relay.close().await;
}

async fn shutdown_lets_in_flight_handlers_finish_and_consumes_nothing_new(ctx: Ctx) {
    // Arrange
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (s, f) = (started.clone(), finished.clone());
    let (token, worker) = start_worker(&ctx, 1, "slow", move |_job| {
        let (started, finished) = (s.clone(), f.clone());
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let first = queue::enqueue(&ctx.db, NewJob::new(ctx.queue.clone(), "slow", json!({})))
        .await
        .unwrap();
    relay.relay_once().await.unwrap();
    eventually(Duration::from_secs(10), "the handler started", || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    // Act
    token.cancel();
    let second = queue::enqueue(&ctx.db, NewJob::new(ctx.queue.clone(), "slow", json!({})))
        .await
        .unwrap();
    relay.relay_once().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops within its grace period")
        .unwrap()
        .unwrap();
    // Assert
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the in-flight handler finished"
    );
    assert_eq!(started.load(Ordering::SeqCst), 1, "nothing new was started");
    assert_eq!(job(&ctx.db, first).await.status, JobStatus::Done);
    assert_eq!(job(&ctx.db, second).await.status, JobStatus::Queued);
    assert_eq!(
        ready(&ctx.broker, &ctx.queue).await,
        1,
        "the finished job was acked; the new one waits in the queue"
    );
    relay.close().await;
}

/// Inserts the team named in the payload; fails (after writing) on its first run.
struct AddTeam {
    runs: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl TxJobHandler for AddTeam {
    async fn handle_in(&self, job: &queue::Job, tx: Tx<'_>) -> Result<(), JobError> {
        const INSERT_TEAM: &str = "INSERT INTO teams (key, name_ko, name_en, color, stadium) \
                                   VALUES ($1, 'ko', 'en', '#000', 'park')";
        let key = job.payload["team"].as_str().unwrap_or_default().to_string();
        let inserted = match tx {
            Tx::Sqlite(conn) => sqlx::query(INSERT_TEAM)
                .bind(&key)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()),
            Tx::Postgres(conn) => sqlx::query(INSERT_TEAM)
                .bind(&key)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()),
        };
        // A second effect would violate the primary key.
        inserted.map_err(|e| JobError::permanent(format!("second effect: {e}")))?;
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(JobError::retry("failed after writing"));
        }
        Ok(())
    }
}

async fn count_teams(db: &Db, key: &str) -> i64 {
    ballpark::on_read!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM teams WHERE key = $1")
        .bind(key)
        .fetch_one(pool)
        .await)
    .unwrap()
}

async fn a_transactional_handler_has_exactly_one_effect_despite_a_failure_and_duplicates(ctx: Ctx) {
    // Arrange: the job is published twice; its first run writes and then fails.
    let runs = Arc::new(AtomicUsize::new(0));
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let id = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "add-team", json!({ "team": "eagles" })),
    )
    .await
    .unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    publish_again(
        &ctx.broker,
        &ctx.queue,
        id,
        "add-team",
        json!({ "team": "eagles" }),
    )
    .await;
    // Act
    let worker = AmqpWorker::new(ctx.db.clone(), worker_config(&ctx.queue, 4))
        .register_transactional("add-team", AddTeam { runs: runs.clone() });
    let token = CancellationToken::new();
    let task = tokio::spawn(worker.run(ctx.broker.clone(), token.clone()));
    eventually(Duration::from_secs(10), "the job is done", || async {
        job(&ctx.db, id).await.status == JobStatus::Done
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "every copy is consumed",
        || async { ready(&ctx.broker, &ctx.queue).await == 0 },
    )
    .await;
    token.cancel();
    task.await.unwrap().unwrap();
    // Assert
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the failed run and the one that succeeded; the duplicate did not run"
    );
    assert_eq!(
        count_teams(&ctx.db, "eagles").await,
        1,
        "exactly one effect"
    );
    assert_eq!(processed_count(&ctx.db, id).await, 1);
    assert_eq!(ready(&ctx.broker, &dead_letter_name(&ctx.queue)).await, 0);
    relay.close().await;
}

async fn a_queue_is_a_durable_quorum_queue_with_a_dead_letter_queue(ctx: Ctx) {
    // Arrange
    let channel = ctx.broker.channel().await.unwrap();
    ctx.broker.declare(&channel, &ctx.queue).await.unwrap();
    // Act: declaring it again the same way is fine; as a classic queue it is refused.
    ctx.broker.declare(&channel, &ctx.queue).await.unwrap();
    let mut classic = FieldTable::default();
    classic.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("classic".into()),
    );
    let refused = channel
        .queue_declare(
            ctx.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            classic,
        )
        .await;
    // Assert
    assert!(refused.is_err(), "the queue exists as a quorum queue");
    assert_eq!(ready(&ctx.broker, &dead_letter_name(&ctx.queue)).await, 0);
    let _ = ctx.db;
}

async fn a_worker_whose_queue_disappears_stops_with_an_error(ctx: Ctx) {
    // Arrange
    let (_token, worker) = start_worker(&ctx, 1, "k", |_job| async { Ok(()) });
    let channel = ctx.broker.channel().await.unwrap();
    ctx.broker.declare(&channel, &ctx.queue).await.unwrap();
    eventually(Duration::from_secs(10), "the worker consumes", || async {
        let declared = channel
            .queue_declare(
                ctx.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        declared.consumer_count() == 1
    })
    .await;
    // Act
    ctx.broker.delete(&ctx.queue).await.unwrap();
    // Assert
    let stopped = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops by itself")
        .unwrap();
    let error = stopped.expect_err("a worker that lost its queue reports it");
    assert!(
        format!("{error:#}").contains(&ctx.queue),
        "the error names the queue: {error:#}"
    );
    let _ = ctx.db;
}

async fn shutdown_returns_messages_still_running_after_the_grace_period(ctx: Ctx) {
    // Arrange: a handler far slower than the grace period.
    let worker = AmqpWorker::new(
        ctx.db.clone(),
        AmqpWorkerConfig {
            shutdown_grace: Duration::from_millis(200),
            ..AmqpWorkerConfig::default()
        }
        .queue(&ctx.queue, 1),
    )
    .register(
        "stuck",
        handler_fn(|_job| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }),
    );
    let token = CancellationToken::new();
    let task = tokio::spawn(worker.run(ctx.broker.clone(), token.clone()));
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap();
    let id = queue::enqueue(&ctx.db, NewJob::new(ctx.queue.clone(), "stuck", json!({})))
        .await
        .unwrap();
    relay.relay_once().await.unwrap();
    eventually(Duration::from_secs(10), "the job is running", || async {
        job(&ctx.db, id).await.status == JobStatus::Running
    })
    .await;
    // Act
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the worker stops soon after its grace period")
        .unwrap()
        .unwrap();
    // Assert
    let released = job(&ctx.db, id).await;
    assert_eq!(released.status, JobStatus::Queued);
    assert_eq!(released.attempts, 0, "the interrupted run is not counted");
    eventually(
        Duration::from_secs(5),
        "the message is back in the queue",
        || async { ready(&ctx.broker, &ctx.queue).await == 1 },
    )
    .await;
    assert_eq!(processed_count(&ctx.db, id).await, 0);
    relay.close().await;
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

async fn the_consumers_metrics_count_completed_retried_and_dead_lettered_jobs_and_duplicates(
    ctx: Ctx,
) {
    // Arrange: "ok" succeeds; "doomed" always fails and has 3 attempts, so it runs 3 times:
    // 2 retries (back through the outbox after a short backoff), then dead.
    let metrics = Metrics::new();
    let queue_metrics = QueueMetrics::new(&metrics);
    let config = AmqpWorkerConfig {
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
            jitter: 0.0,
        },
        ..worker_config(&ctx.queue, 2)
    };
    let worker = AmqpWorker::new(ctx.db.clone(), config)
        .register("ok", handler_fn(|_job| async { Ok(()) }))
        .register(
            "doomed",
            handler_fn(|_job| async { Err(JobError::retry("no luck")) }),
        )
        .metrics(queue_metrics.clone());
    let token = CancellationToken::new();
    let worker = tokio::spawn(worker.run(ctx.broker.clone(), token.clone()));
    let relay = Relay::new(&ctx.broker, ctx.db.clone(), relay_config(&ctx.queue))
        .await
        .unwrap()
        .metrics(queue_metrics.clone());
    let ok = queue::enqueue(&ctx.db, NewJob::new(ctx.queue.clone(), "ok", json!({})))
        .await
        .unwrap();
    let doomed = queue::enqueue(
        &ctx.db,
        NewJob::new(ctx.queue.clone(), "doomed", json!({})).max_attempts(3),
    )
    .await
    .unwrap();
    // Act
    let relay_token = CancellationToken::new();
    let relaying = tokio::spawn(relay.run(relay_token.clone()));
    eventually(Duration::from_secs(15), "both jobs finished", || async {
        job(&ctx.db, ok).await.status == JobStatus::Done
            && job(&ctx.db, doomed).await.status == JobStatus::Dead
    })
    .await;
    // A copy of the done job, as a relay that crashed before marking it would publish.
    publish_again(&ctx.broker, &ctx.queue, ok, "ok", json!({})).await;
    let duplicates = format!(
        "ballpark_queue_duplicate_deliveries_total{{queue=\"{}\"}}",
        ctx.queue
    );
    eventually(
        Duration::from_secs(10),
        "the duplicate was acked",
        || async { sample(&metrics.render(), &duplicates) == Some(1.0) },
    )
    .await;
    token.cancel();
    worker.await.unwrap().unwrap();
    relay_token.cancel();
    relaying.await.unwrap().unwrap();
    // Assert
    let text = metrics.render();
    let of = |name: &str, kind: &str| {
        sample(
            &text,
            &format!("{name}{{queue=\"{}\",kind=\"{kind}\"}}", ctx.queue),
        )
    };
    assert_eq!(
        of("ballpark_queue_jobs_completed_total", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        of("ballpark_queue_jobs_failed_total", "ok"),
        None, // series appear with their first event
        "{text}"
    );
    assert_eq!(
        of("ballpark_queue_jobs_failed_total", "doomed"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        of("ballpark_queue_jobs_retried_total", "doomed"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        of("ballpark_queue_jobs_dead_total", "doomed"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "ballpark_queue_job_duration_seconds_count{{queue=\"{}\",kind=\"ok\",outcome=\"completed\"}}",
                ctx.queue
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("ballpark_queue_published_total{{queue=\"{}\"}}", ctx.queue)
        ),
        Some(4.0),
        "{text}"
    );
    let started = job(&ctx.db, ok).await;
    assert!(started.started_at.is_some() && started.started_at <= started.finished_at);
}
