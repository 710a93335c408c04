//! The consumer side: runs the registered [`JobHandler`]s on deliveries from RabbitMQ.
//!
//! One channel per queue, with `basic_qos(prefetch)`, so the broker never has more than
//! `prefetch` unacked messages of a queue with this process: that is the queue's concurrency
//! limit, and no semaphore is needed. Each delivery is handled in its own task (a panicking
//! handler fails its delivery, not the worker). A plain handler's success is recorded by one
//! recorder task that writes every record waiting in one transaction, and the delivery is
//! acked once its record is committed.
//!
//! Shutdown, when the token is cancelled: the consumers are cancelled (the broker sends no
//! more), handlers in flight get `shutdown_grace` to finish and be acked; those still running
//! then are aborted, their job rows released (the run is not counted as an attempt) and their
//! messages nacked back to the queue (which the broker does count towards the delivery
//! limit); the channels are closed, which returns any message fetched but not started.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::Channel;
use serde_json::Value;
use sqlx::{PgConnection, SqliteConnection};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{header_int, Broker};
use crate::db::Db;
use crate::queue::metrics::{JobInstruments, QueueMetrics};
use crate::queue::{
    now, Backoff, Job, JobError, JobHandler, JobStatus, QueueConfig, DEFAULT_MAX_ATTEMPTS,
};
use crate::{on_read, on_write};

#[derive(Debug, Clone, PartialEq)]
pub struct AmqpWorkerConfig {
    /// Written into the job rows' `locked_by` and the consumer tags.
    pub worker_id: String,
    /// The queues to consume; `concurrency` is the channel's prefetch.
    pub queues: Vec<QueueConfig>,
    /// How long handlers in flight may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Delay before a failed job runs again (the outbox republishes it then).
    pub backoff: Backoff,
}

impl Default for AmqpWorkerConfig {
    fn default() -> Self {
        AmqpWorkerConfig {
            worker_id: format!("amqp-worker-{}", uuid::Uuid::new_v4().simple()),
            queues: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

impl AmqpWorkerConfig {
    /// Adds a queue consumed with a prefetch of `prefetch` (at least 1, at most 65535).
    pub fn queue(mut self, name: impl Into<String>, prefetch: usize) -> Self {
        self.queues.push(QueueConfig {
            name: name.into(),
            concurrency: prefetch.clamp(1, u16::MAX as usize),
        });
        self
    }
}

/// The transaction a [`TxJobHandler`] writes its effect in.
pub enum Tx<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// A handler whose effect is writes to the app's database. They run in the transaction that
/// records the message id as processed and the job as done, so the effect happens exactly
/// once however often the message is delivered: a failure or panic rolls it back with the
/// record, and a duplicate finds the id already recorded. On SQLite the transaction holds
/// the one write connection, so keep these handlers short and write only through `tx`.
///
/// [`InTransaction`] runs the same handler on the database backend's
/// [`WorkerPool`](crate::queue::WorkerPool).
#[async_trait::async_trait]
pub trait TxJobHandler: Send + Sync + 'static {
    async fn handle_in(&self, job: &Job, tx: Tx<'_>) -> Result<(), JobError>;
}

/// A [`TxJobHandler`] as a [`JobHandler`], each run in a transaction of its own.
pub struct InTransaction<H> {
    db: Db,
    handler: H,
}

impl<H: TxJobHandler> InTransaction<H> {
    pub fn new(db: Db, handler: H) -> Self {
        InTransaction { db, handler }
    }
}

#[async_trait::async_trait]
impl<H: TxJobHandler> JobHandler for InTransaction<H> {
    async fn handle(&self, job: &Job) -> Result<(), JobError> {
        let failed = |err: sqlx::Error| JobError::retry(format!("transaction: {err}"));
        match &self.db {
            Db::Sqlite { write, .. } => {
                let mut tx = write.begin().await.map_err(failed)?;
                self.handler.handle_in(job, Tx::Sqlite(&mut tx)).await?;
                tx.commit().await.map_err(failed)
            }
            Db::Postgres { pool, .. } => {
                let mut tx = pool.begin().await.map_err(failed)?;
                self.handler.handle_in(job, Tx::Postgres(&mut tx)).await?;
                tx.commit().await.map_err(failed)
            }
        }
    }
}

/// Consumes queues from RabbitMQ and runs handlers, the counterpart of
/// [`WorkerPool`](crate::queue::WorkerPool).
pub struct AmqpWorker {
    db: Db,
    config: AmqpWorkerConfig,
    handlers: HashMap<String, Handler>,
    metrics: Option<QueueMetrics>,
}

/// A registered handler: plain (runs anywhere; the outcome is recorded after it) or
/// transactional (its writes commit with the record of the message).
#[derive(Clone)]
enum Handler {
    Plain(Arc<dyn JobHandler>),
    Transactional(Arc<dyn TxJobHandler>),
}

struct Shared {
    db: Db,
    worker_id: String,
    delivery_limit: u32,
    backoff: Backoff,
    handlers: HashMap<String, Handler>,
    in_flight: InFlight,
    /// Cancelled when the grace period is over: handlers still running are abandoned.
    abandon: CancellationToken,
    metrics: Option<QueueMetrics>,
    /// Successful runs of plain handlers, waiting to be recorded together.
    records: mpsc::Sender<Record>,
}

/// A plain handler's successful run, waiting for the recorder (see [`record_loop`]).
struct Record {
    message_id: String,
    job_id: i64,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Most runs the recorder writes in one transaction.
const MAX_RECORDS: usize = 256;

impl Shared {
    fn instruments(&self, queue: &str, kind: &str) -> JobInstruments {
        match &self.metrics {
            Some(metrics) => metrics.job(queue, kind),
            None => JobInstruments::noop(),
        }
    }
}

impl AmqpWorker {
    pub fn new(db: Db, config: AmqpWorkerConfig) -> Self {
        AmqpWorker {
            db,
            config,
            handlers: HashMap::new(),
            metrics: None,
        }
    }

    /// Records job outcomes and durations in `metrics` (see [`crate::queue::metrics`]).
    pub fn metrics(mut self, metrics: QueueMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs `handler` for messages whose type is `kind`.
    pub fn register(mut self, kind: impl Into<String>, handler: impl JobHandler) -> Self {
        self.handlers
            .insert(kind.into(), Handler::Plain(Arc::new(handler)));
        self
    }

    /// Runs `handler` for messages whose type is `kind`, inside the transaction that records
    /// the message as processed (see [`TxJobHandler`]).
    pub fn register_transactional(
        mut self,
        kind: impl Into<String>,
        handler: impl TxJobHandler,
    ) -> Self {
        self.handlers
            .insert(kind.into(), Handler::Transactional(Arc::new(handler)));
        self
    }

    /// Declares and starts consuming every configured queue, then works until `shutdown` is
    /// cancelled and shuts down as the module note describes. Fails if a queue cannot be set
    /// up (before consuming anything), or, after the same graceful stop, if the broker ends a
    /// consumer (connection lost): reconnecting is the caller's decision.
    pub async fn run(self, broker: Broker, shutdown: CancellationToken) -> anyhow::Result<()> {
        let AmqpWorker {
            db,
            config,
            handlers,
            metrics,
        } = self;
        if let Some(metrics) = &metrics {
            // Shown at 0 from the start rather than from the first job of each kind.
            for queue in &config.queues {
                for kind in handlers.keys() {
                    metrics.job(&queue.name, kind);
                }
                let _ = metrics.duplicates(&queue.name);
            }
        }
        let mut consumers = Vec::with_capacity(config.queues.len());
        for queue in &config.queues {
            let channel = broker.channel().await?;
            channel
                .basic_qos(queue.concurrency as u16, BasicQosOptions::default())
                .await?;
            broker.declare(&channel, &queue.name).await?;
            let tag = format!("{}.{}", config.worker_id, queue.name);
            let consumer = channel
                .basic_consume(
                    queue.name.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            consumers.push((queue.name.clone(), channel, tag, consumer));
        }
        let (records, received) = mpsc::channel(MAX_RECORDS * 4);
        let recorder_stop = CancellationToken::new();
        let recorder = tokio::spawn(record_loop(db.clone(), received, recorder_stop.clone()));
        let shared = Arc::new(Shared {
            records,
            db,
            worker_id: config.worker_id.clone(),
            delivery_limit: broker.configured_delivery_limit(),
            backoff: config.backoff,
            handlers,
            in_flight: InFlight::default(),
            abandon: CancellationToken::new(),
            metrics,
        });
        let deliveries = TaskTracker::new();
        let loops = TaskTracker::new();
        // Stops every loop: on shutdown, or when one queue's consumer fails.
        let stop = shutdown.child_token();
        let failure: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
        let mut channels = Vec::with_capacity(consumers.len());
        for (queue, channel, tag, consumer) in consumers {
            channels.push(channel.clone());
            let (shared, deliveries, stop, failure) = (
                shared.clone(),
                deliveries.clone(),
                stop.clone(),
                failure.clone(),
            );
            loops.spawn(async move {
                let consumed =
                    consume_loop(shared, &queue, channel, tag, consumer, deliveries, &stop).await;
                if let Err(err) = consumed {
                    tracing::error!(%queue, error = %err, "consuming failed; the worker stops");
                    failure
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(err.context(format!("while consuming {queue}")));
                    stop.cancel();
                }
            });
        }

        stop.cancelled().await;
        loops.close();
        loops.wait().await;
        deliveries.close();
        let grace = config.shutdown_grace;
        if tokio::time::timeout(grace, deliveries.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "handlers still running after the grace period are abandoned"
            );
            shared.abandon.cancel();
            deliveries.wait().await;
        }
        recorder_stop.cancel();
        let _ = recorder.await;
        for channel in channels {
            if channel.status().connected() {
                if let Err(err) = channel.close(200, "worker stopped".into()).await {
                    tracing::warn!(error = %err, "closing a consumer channel failed");
                }
            }
        }
        let failed = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
        match failed {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// Takes deliveries of one queue and starts a task for each, until `stop`; then cancels the
/// consumer so the broker sends no more. Fails when the broker ends the consumer (a lost
/// connection, a deleted queue): the caller decides whether to reconnect.
async fn consume_loop(
    shared: Arc<Shared>,
    queue: &str,
    channel: Channel,
    tag: String,
    mut consumer: lapin::Consumer,
    deliveries: TaskTracker,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                deliveries.spawn(handle_delivery(shared.clone(), queue.to_string(), delivery));
            }
            Some(Err(err)) => return Err(err.into()),
            None => anyhow::bail!("the broker cancelled the consumer"),
        }
    }
    if channel.status().connected() {
        if let Err(err) = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(%queue, error = %err, "cancelling the consumer failed");
        }
    }
    Ok(())
}

/// What to tell the broker about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ack,
    /// Back to the queue; counts as a failed delivery towards the delivery limit.
    Requeue,
    /// To the dead-letter exchange at once.
    DeadLetter,
}

async fn handle_delivery(shared: Arc<Shared>, queue: String, delivery: Delivery) {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_string());
    let span =
        tracing::info_span!("delivery", %queue, message_id = message_id.as_deref().unwrap_or("-"));
    let verdict = process(&shared, &queue, &delivery, message_id)
        .instrument(span.clone())
        .await;
    let answered = match verdict {
        Verdict::Ack => delivery.ack(BasicAckOptions::default()).await,
        Verdict::Requeue => {
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
        Verdict::DeadLetter => delivery.reject(BasicRejectOptions { requeue: false }).await,
    };
    if let Err(err) = answered {
        // The channel is gone; the broker redelivers the message, and the processed-messages
        // record keeps a finished one from running again.
        tracing::warn!(parent: &span, error = %err, ?verdict, "could not answer a delivery");
    }
}

async fn process(
    shared: &Shared,
    queue: &str,
    delivery: &Delivery,
    message_id: Option<String>,
) -> Verdict {
    let Some((message_id, job_id)) =
        message_id.and_then(|id| id.parse::<i64>().ok().map(|job| (id, job)))
    else {
        tracing::error!("a message without a job id as its message id is dead-lettered");
        return Verdict::DeadLetter;
    };
    // Duplicates handled at the same time in this process would both pass the check below.
    let _exclusive = shared.in_flight.acquire(&message_id).await;
    match already_processed(&shared.db, &message_id).await {
        Ok(true) => {
            if let Some(metrics) = &shared.metrics {
                metrics.duplicates(queue).increment(1);
            }
            tracing::info!("duplicate delivery of a processed message; acked without running");
            return Verdict::Ack;
        }
        Ok(false) => {}
        Err(err) => {
            tracing::error!(error = %err, "could not check processed messages; requeued");
            return Verdict::Requeue;
        }
    }
    let failed_before = header_int(delivery.properties.headers(), "x-delivery-count")
        .unwrap_or(0)
        .max(0);
    let job = match start(shared, queue, job_id, delivery, failed_before).await {
        Ok(job) => job,
        Err(err) => {
            tracing::error!(error = %err, "could not mark the job running; requeued");
            return Verdict::Requeue;
        }
    };
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
    let job = Arc::new(job);
    let task = match shared.handlers.get(&job.kind).cloned() {
        Some(Handler::Plain(handler)) => {
            let job = job.clone();
            tokio::spawn(
                async move { handler.handle(&job).await.map(|()| Ran::NeedsRecord) }
                    .instrument(span.clone()),
            )
        }
        Some(Handler::Transactional(handler)) => tokio::spawn(
            run_in_transaction(shared.db.clone(), message_id.clone(), job.clone(), handler)
                .instrument(span.clone()),
        ),
        None => {
            let error =
                JobError::permanent(format!("no handler for kind {:?} in this worker", job.kind));
            return settle(shared, &message_id, &job, Err(error), failed_before)
                .instrument(span)
                .await
                .recorded(shared, &job, Duration::ZERO);
        }
    };
    tokio::pin!(task);
    let started = std::time::Instant::now();
    let outcome = tokio::select! {
        joined = &mut task => match joined {
            Ok(result) => result,
            Err(err) if err.is_panic() => Err(JobError::retry(format!(
                "handler panicked: {}",
                panic_message(err.into_panic())
            ))),
            Err(_) => Err(JobError::retry("handler task was cancelled")),
        },
        _ = shared.abandon.cancelled() => {
            task.abort();
            if let Err(err) = release(&shared.db, &job).instrument(span.clone()).await {
                tracing::error!(parent: &span, error = %err, "could not release an abandoned job");
            }
            return Verdict::Requeue;
        }
    };
    settle(shared, &message_id, &job, outcome, failed_before)
        .instrument(span)
        .await
        .recorded(shared, &job, started.elapsed())
}

/// How a handler run ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// A plain handler succeeded; the message and the job's outcome are still to be recorded.
    NeedsRecord,
    /// A transactional handler's effect and the records were committed together.
    Committed,
    /// Another delivery of the message was processed first; nothing ran.
    Duplicate,
}

/// What became of a run, for the metrics, with what the broker is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settled {
    verdict: Verdict,
    outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    /// A failed run, and the status the job row was given.
    Failed(JobStatus),
    /// Another delivery of the message was processed first.
    Duplicate,
}

impl Settled {
    fn new(verdict: Verdict, outcome: Outcome) -> Self {
        Settled {
            verdict,
            outcome: Some(outcome),
        }
    }

    /// Counts the outcome in the metrics and returns the verdict.
    fn recorded(self, shared: &Shared, job: &Job, took: Duration) -> Verdict {
        let Some(outcome) = self.outcome else {
            return self.verdict;
        };
        if shared.metrics.is_none() {
            return self.verdict;
        }
        let instruments = shared.instruments(&job.queue, &job.kind);
        match outcome {
            Outcome::Completed => instruments.completed(took),
            Outcome::Failed(status) => {
                instruments.failed(took);
                if status == JobStatus::Dead {
                    instruments.dead();
                } else {
                    instruments.retried();
                }
            }
            Outcome::Duplicate => {
                if let Some(metrics) = &shared.metrics {
                    metrics.duplicates(&job.queue).increment(1);
                }
            }
        }
        self.verdict
    }
}

/// Records the outcome of a run and decides what the broker is told.
async fn settle(
    shared: &Shared,
    message_id: &str,
    job: &Job,
    outcome: Result<Ran, JobError>,
    failed_before: i64,
) -> Settled {
    match outcome {
        Ok(Ran::NeedsRecord) => match record_finished(shared, message_id, job).await {
            Ok(()) => {
                tracing::info!("job done");
                Settled::new(Verdict::Ack, Outcome::Completed)
            }
            Err(err) => {
                tracing::error!(error = %err, "could not record a finished job; it will run again");
                Settled {
                    verdict: Verdict::Requeue,
                    outcome: None,
                }
            }
        },
        Ok(Ran::Committed) => {
            tracing::info!("job done");
            Settled::new(Verdict::Ack, Outcome::Completed)
        }
        Ok(Ran::Duplicate) => {
            tracing::info!("duplicate delivery of a processed message; acked without effect");
            Settled::new(Verdict::Ack, Outcome::Duplicate)
        }
        Err(error) => {
            let out_of_attempts = !error.retryable || job.attempts >= job.max_attempts;
            // This delivery failed too; past the limit the broker dead-letters it anyway.
            let broker_gives_up = failed_before + 1 > i64::from(shared.delivery_limit);
            if out_of_attempts || broker_gives_up {
                if let Err(err) = record_failure(&shared.db, job, JobStatus::Dead, &error).await {
                    tracing::error!(error = %err, "could not record a failed job");
                }
                tracing::error!(error = %error, "job failed for the last time; dead-lettered");
                let verdict = if out_of_attempts {
                    Verdict::DeadLetter
                } else {
                    Verdict::Requeue
                };
                return Settled::new(verdict, Outcome::Failed(JobStatus::Dead));
            }
            // Retry after a backoff: the row goes back to the outbox with a later run_at,
            // and the relay publishes it again when it is due. The delivery is acked only
            // once that is recorded; if recording fails, the broker redelivers at once.
            let delay = shared.backoff.delay(job.attempts);
            match reschedule(&shared.db, job, &error, delay).await {
                Ok(()) => {
                    tracing::warn!(error = %error, ?delay, "job failed; retrying after a backoff");
                    Settled::new(Verdict::Ack, Outcome::Failed(JobStatus::Queued))
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not reschedule a failed job; requeued");
                    Settled::new(Verdict::Requeue, Outcome::Failed(JobStatus::Queued))
                }
            }
        }
    }
}

/// Claims the message id, runs the handler and marks the job done in one transaction: a
/// failure or panic rolls the effect back with the claim, and a second delivery (in this
/// process or another) finds the id taken, on PostgreSQL waiting for the first to commit.
async fn run_in_transaction(
    db: Db,
    message_id: String,
    job: Arc<Job>,
    handler: Arc<dyn TxJobHandler>,
) -> Result<Ran, JobError> {
    let recording = |err: sqlx::Error| JobError::retry(format!("recording the outcome: {err}"));
    let now = now();
    macro_rules! in_transaction {
        ($pool:expr, $variant:ident) => {{
            let mut tx = $pool.begin().await.map_err(recording)?;
            let claimed = sqlx::query(CLAIM_MESSAGE)
                .bind(&message_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(recording)?
                .rows_affected();
            if claimed == 0 {
                return Ok(Ran::Duplicate);
            }
            handler.handle_in(&job, Tx::$variant(&mut tx)).await?;
            sqlx::query(MARK_DONE)
                .bind(job.id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(recording)?;
            tx.commit().await.map_err(recording)?;
            Ok(Ran::Committed)
        }};
    }
    match &db {
        Db::Sqlite { write, .. } => in_transaction!(write, Sqlite),
        Db::Postgres { pool, .. } => in_transaction!(pool, Postgres),
    }
}

const CLAIM_MESSAGE: &str = "INSERT INTO processed_messages (message_id, processed_at) \
     VALUES ($1, $2) ON CONFLICT (message_id) DO NOTHING";

const MARK_DONE: &str = "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, \
       finished_at = $2, updated_at = $2 \
     WHERE id = $1";

async fn already_processed(db: &Db, message_id: &str) -> Result<bool, sqlx::Error> {
    on_read!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM processed_messages WHERE message_id = $1",
    )
    .bind(message_id)
    .fetch_one(pool)
    .await)
    .map(|count| count > 0)
}

#[derive(sqlx::FromRow)]
struct StartedRow {
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    dedup_key: Option<String>,
    created_at: DateTime<Utc>,
}

/// Marks the job row `running` (counting the attempt) and builds the [`Job`] the handler
/// sees. A message whose row is gone (purged, or published by hand) still runs, described
/// by its properties and headers.
async fn start(
    shared: &Shared,
    queue: &str,
    job_id: i64,
    delivery: &Delivery,
    failed_before: i64,
) -> Result<Job, sqlx::Error> {
    let now = now();
    let row: Option<StartedRow> = on_write!(&shared.db, pool => sqlx::query_as::<_, StartedRow>(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $2, \
           locked_until = NULL, started_at = $3, updated_at = $3 \
         WHERE id = $1 AND status IN ('queued', 'running') \
         RETURNING attempts, max_attempts, run_at, dedup_key, created_at",
    )
    .bind(job_id)
    .bind(&shared.worker_id)
    .bind(now)
    .fetch_optional(pool)
    .await)?;
    let properties = &delivery.properties;
    let payload: Value = serde_json::from_slice(&delivery.data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&delivery.data).into_owned()));
    let headers = properties.headers();
    let StartedRow {
        attempts,
        max_attempts,
        run_at,
        dedup_key,
        created_at,
    } = row.unwrap_or_else(|| {
        let attempts = i32::try_from(failed_before + 1).unwrap_or(i32::MAX);
        let max_attempts = header_int(headers, "x-max-attempts")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let run_at = header_text(headers, "x-run-at")
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or(now);
        StartedRow {
            attempts,
            max_attempts,
            run_at,
            dedup_key: None,
            created_at: run_at,
        }
    });
    Ok(Job {
        id: job_id,
        queue: queue.to_string(),
        kind: properties
            .kind()
            .as_ref()
            .map(|kind| kind.as_str().to_string())
            .unwrap_or_default(),
        payload,
        status: JobStatus::Running,
        attempts,
        max_attempts,
        run_at,
        locked_by: Some(shared.worker_id.clone()),
        locked_until: None,
        last_error: None,
        dedup_key,
        created_at,
        started_at: Some(now),
        finished_at: None,
    })
}

/// Hands a plain handler's successful run to the recorder and waits until the message is
/// recorded as processed and the job as done (only then is the delivery acked).
async fn record_finished(shared: &Shared, message_id: &str, job: &Job) -> Result<(), String> {
    let (reply, recorded) = oneshot::channel();
    let record = Record {
        message_id: message_id.to_string(),
        job_id: job.id,
        reply,
    };
    if shared.records.send(record).await.is_err() {
        return Err("the recorder has stopped".to_string());
    }
    recorded
        .await
        .unwrap_or_else(|_| Err("the recorder has stopped".to_string()))
}

/// Records plain handlers' successful runs, as many per transaction as are waiting (the
/// deliveries in flight finish at about the same time), until every sender is gone or `stop`
/// (the records already sent are still written). One transaction per batch instead of one
/// per message: the same outcome per message, a fraction of the commits.
async fn record_loop(db: Db, mut received: mpsc::Receiver<Record>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(MAX_RECORDS);
    loop {
        let count = tokio::select! {
            count = received.recv_many(&mut batch, MAX_RECORDS) => count,
            _ = stop.cancelled() => {
                received.close();
                received.recv_many(&mut batch, MAX_RECORDS).await
            }
        };
        if count == 0 {
            break;
        }
        let finished: Vec<(&str, i64)> = batch
            .iter()
            .map(|r| (r.message_id.as_str(), r.job_id))
            .collect();
        let outcome = finish_many(&db, &finished).await.map_err(|e| e.to_string());
        for record in batch.drain(..) {
            let _ = record.reply.send(outcome.clone());
        }
    }
}

/// Records the messages as processed and their jobs as done, in one transaction.
async fn finish_many(db: &Db, finished: &[(&str, i64)]) -> Result<(), sqlx::Error> {
    let now = now();
    let messages = (0..finished.len())
        .map(|i| format!("(${}, $1)", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let claim = format!(
        "INSERT INTO processed_messages (message_id, processed_at) VALUES {messages} \
         ON CONFLICT (message_id) DO NOTHING"
    );
    let ids = (0..finished.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let mark = format!(
        "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, \
           finished_at = $1, updated_at = $1 \
         WHERE id IN ({ids})"
    );
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut query = sqlx::query(&claim).bind(now);
        for (message_id, _) in finished {
            query = query.bind(*message_id);
        }
        query.execute(&mut *tx).await?;
        let mut query = sqlx::query(&mark).bind(now);
        for (_, job_id) in finished {
            query = query.bind(*job_id);
        }
        query.execute(&mut *tx).await?;
        tx.commit().await
    })
}

/// Moves the job row to `status` (`queued` for a requeue, `dead` for a dead letter) with the
/// error as its last error.
async fn record_failure(
    db: &Db,
    job: &Job,
    status: JobStatus,
    error: &JobError,
) -> Result<(), sqlx::Error> {
    let now = now();
    let finished_at = (status == JobStatus::Dead).then_some(now);
    on_write!(db, pool => sqlx::query(
        "UPDATE jobs SET status = $2, last_error = $3, finished_at = $4, locked_by = NULL, \
           locked_until = NULL, updated_at = $5 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job.id)
    .bind(status.as_str())
    .bind(&error.message)
    .bind(finished_at)
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// Puts a failed job back into the outbox, due after `delay`.
async fn reschedule(
    db: &Db,
    job: &Job,
    error: &JobError,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    let now = now();
    let run_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
    on_write!(db, pool => sqlx::query(
        "UPDATE jobs SET status = 'queued', last_error = $2, run_at = $3, published_at = NULL, \
           locked_by = NULL, locked_until = NULL, updated_at = $4 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job.id)
    .bind(&error.message)
    .bind(run_at)
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// Hands a job interrupted by shutdown back without counting the run as an attempt.
async fn release(db: &Db, job: &Job) -> Result<(), sqlx::Error> {
    on_write!(db, pool => sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = attempts - 1, locked_by = NULL, \
           updated_at = $2 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job.id)
    .bind(now())
    .execute(pool)
    .await
    .map(|_| ()))
}

fn header_text(headers: &Option<FieldTable>, name: &str) -> Option<String> {
    match headers.as_ref()?.inner().get(&ShortString::from(name))? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.as_str().to_string()),
        _ => None,
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

/// Message ids being handled in this process, so a duplicate waits for the first delivery
/// to finish and then finds it processed.
#[derive(Default)]
struct InFlight {
    ids: Mutex<HashSet<String>>,
    released: Notify,
}

struct Exclusive<'a> {
    in_flight: &'a InFlight,
    id: String,
}

impl InFlight {
    async fn acquire(&self, id: &str) -> Exclusive<'_> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release in between is not missed.
            released.as_mut().enable();
            if self
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.to_string())
            {
                return Exclusive {
                    in_flight: self,
                    id: id.to_string(),
                };
            }
            released.await;
        }
    }
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        self.in_flight
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.in_flight.released.notify_waiters();
    }
}
