//! The outbox relay: publishes committed, due jobs to RabbitMQ and marks them published once
//! the broker has confirmed them (see the parent module for the guarantees).

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use tokio_util::sync::CancellationToken;

use super::Broker;
use crate::db::Db;
use crate::queue::metrics::QueueMetrics;
use crate::queue::now;

#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// The queues whose jobs this relay publishes.
    pub queues: Vec<String>,
    /// Jobs read and published per round trip to the database.
    pub batch: usize,
    /// Sleep between scans when nothing was due. Also how late a delayed job may be
    /// published after its `run_at`.
    pub poll_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            queues: Vec::new(),
            batch: 200,
            poll_interval: Duration::from_millis(200),
        }
    }
}

impl RelayConfig {
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queues.push(name.into());
        self
    }
}

/// A job as the relay needs it.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    queue: String,
    kind: String,
    payload: String,
    max_attempts: i32,
    /// Runs started so far; the mark below only applies if no consumer has run it since.
    attempts: i32,
    run_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

/// Publishes the outbox of a set of queues on one confirm-mode channel.
pub struct Relay {
    db: Db,
    channel: Channel,
    config: RelayConfig,
    metrics: Option<QueueMetrics>,
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Relay {
    /// Opens a confirm-mode channel and declares the configured queues.
    pub async fn new(broker: &Broker, db: Db, config: RelayConfig) -> Result<Relay, lapin::Error> {
        let channel = broker.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        for queue in &config.queues {
            broker.declare(&channel, queue).await?;
        }
        Ok(Relay {
            db,
            channel,
            config,
            metrics: None,
        })
    }

    /// Counts the jobs published per queue in `metrics`.
    pub fn metrics(mut self, metrics: QueueMetrics) -> Self {
        for queue in &self.config.queues {
            let _ = metrics.published(queue);
        }
        self.metrics = Some(metrics);
        self
    }

    fn count_published(&self, jobs: &[OutboxRow], confirmed: &[i64]) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let confirmed: std::collections::HashSet<i64> = confirmed.iter().copied().collect();
        for queue in &self.config.queues {
            let published = jobs
                .iter()
                .filter(|job| &job.queue == queue && confirmed.contains(&job.id))
                .count();
            if published > 0 {
                metrics.published(queue).increment(published as u64);
            }
        }
    }

    /// Publishes one batch of due, unpublished jobs and marks the confirmed ones. Returns how
    /// many were marked. A job the broker did not confirm (nack, or returned as unroutable)
    /// stays unmarked and is tried again in the next batch.
    pub async fn relay_once(&self) -> anyhow::Result<usize> {
        if self.config.queues.is_empty() || self.config.batch == 0 {
            return Ok(0);
        }
        let queues = placeholders(3, self.config.queues.len());
        let select = |lock: &str| {
            format!(
                "SELECT id, queue, kind, payload, max_attempts, attempts, run_at, created_at FROM jobs \
                 WHERE status = 'queued' AND published_at IS NULL AND run_at <= $1 \
                   AND queue IN ({queues}) \
                 ORDER BY run_at, id LIMIT $2 {lock}"
            )
        };
        macro_rules! due_jobs {
            ($conn:expr, $sql:expr) => {{
                let mut query = sqlx::query_as::<_, OutboxRow>($sql)
                    .bind(now())
                    .bind(self.config.batch as i64);
                for queue in &self.config.queues {
                    query = query.bind(queue);
                }
                query.fetch_all($conn).await?
            }};
        }
        // A consumer may have run a job, and even put it back for a retry, before its confirm
        // was recorded here (on SQLite nothing locks the rows meanwhile): such a row is left
        // alone, or it would count as published without being due again in the broker.
        macro_rules! mark_published {
            ($conn:expr, $jobs:expr, $ids:expr) => {{
                let ids: &[i64] = $ids;
                if !ids.is_empty() {
                    let sql = mark_published_sql(ids.len());
                    let attempts: std::collections::HashMap<i64, i32> =
                        $jobs.iter().map(|j| (j.id, j.attempts)).collect();
                    let mut query = sqlx::query(&sql).bind(now());
                    for id in ids {
                        query = query.bind(*id).bind(attempts.get(id).copied().unwrap_or(0));
                    }
                    query.execute($conn).await?;
                }
            }};
        }
        match &self.db {
            Db::Postgres { pool, .. } => {
                // Held across the confirms: the row locks keep other relays off this batch.
                let mut tx = pool.begin().await?;
                let sql = select("FOR UPDATE SKIP LOCKED");
                let jobs = due_jobs!(&mut *tx, &sql);
                let (confirmed, failure) = self.publish(&jobs).await;
                mark_published!(&mut *tx, jobs, &confirmed);
                tx.commit().await?;
                self.count_published(&jobs, &confirmed);
                failure.map_or(Ok(confirmed.len()), Err)
            }
            Db::Sqlite { read, write, .. } => {
                let sql = select("");
                let jobs = due_jobs!(read, &sql);
                let (confirmed, failure) = self.publish(&jobs).await;
                let mut conn = write.acquire().await?;
                mark_published!(&mut *conn, jobs, &confirmed);
                self.count_published(&jobs, &confirmed);
                failure.map_or(Ok(confirmed.len()), Err)
            }
        }
    }

    /// Publishes `jobs` and waits for the broker's confirms. Returns the ids it acknowledged,
    /// and the error that stopped publishing, if any (the ids confirmed before it still
    /// count).
    async fn publish(&self, jobs: &[OutboxRow]) -> (Vec<i64>, Option<anyhow::Error>) {
        let mut pending = Vec::with_capacity(jobs.len());
        let mut failure = None;
        for job in jobs {
            let published = self
                .channel
                .basic_publish(
                    "".into(),
                    job.queue.as_str().into(),
                    // Mandatory: a message no queue takes comes back instead of vanishing.
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    job.payload.as_bytes(),
                    properties(job),
                )
                .await;
            match published {
                Ok(confirm) => pending.push((job.id, confirm)),
                Err(err) => {
                    failure = Some(anyhow::Error::new(err).context("while publishing jobs"));
                    break;
                }
            }
        }
        let mut confirmed = Vec::with_capacity(pending.len());
        for (id, confirm) in pending {
            match confirm.await {
                Ok(confirmation) => {
                    let acked = confirmation.is_ack();
                    let returned = confirmation.take_message();
                    if acked && returned.is_none() {
                        confirmed.push(id);
                    } else {
                        tracing::warn!(
                            job = id,
                            returned = ?returned.map(|m| m.reply_text.to_string()),
                            "the broker did not take a job; it will be published again"
                        );
                    }
                }
                Err(err) => {
                    failure.get_or_insert_with(|| {
                        anyhow::Error::new(err).context("while waiting for publisher confirms")
                    });
                }
            }
        }
        (confirmed, failure)
    }

    /// Relays until `shutdown`, then closes the channel. A failed scan is logged and retried
    /// after the poll interval; a closed channel (the broker connection is lost) ends the
    /// relay with an error, as it will not recover: reconnecting is the caller's decision.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let idle = match self.relay_once().await {
                Ok(published) => published < self.config.batch,
                Err(err) if !self.channel.status().connected() => {
                    return Err(err.context("the relay's channel is closed"));
                }
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "relaying jobs failed");
                    true
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        self.close().await;
        Ok(())
    }

    pub async fn close(&self) {
        if self.channel.status().connected() {
            if let Err(err) = self.channel.close(200, "relay stopped".into()).await {
                tracing::warn!(error = %err, "closing the relay channel failed");
            }
        }
    }
}

/// Persistent, id = job id, type = kind, body = payload; the headers carry what a consumer
/// needs when the job row is gone (purged) and for diagnosis.
fn properties(job: &OutboxRow) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "x-max-attempts".into(),
        AMQPValue::LongInt(job.max_attempts),
    );
    headers.insert(
        "x-run-at".into(),
        AMQPValue::LongString(job.run_at.to_rfc3339().into()),
    );
    BasicProperties::default()
        .with_message_id(job.id.to_string().into())
        .with_type(job.kind.as_str().into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_timestamp(job.created_at.timestamp().max(0) as u64)
        .with_headers(headers)
}

/// `UPDATE … SET published_at` for `count` (id, attempts) pairs, bound from `$2`: only rows
/// still queued with the attempts the relay read.
fn mark_published_sql(count: usize) -> String {
    let pairs: Vec<String> = (0..count)
        .map(|i| format!("(id = ${} AND attempts = ${})", 2 + 2 * i, 3 + 2 * i))
        .collect();
    format!(
        "UPDATE jobs SET published_at = $1, updated_at = $1 \
         WHERE published_at IS NULL AND status = 'queued' AND ({})",
        pairs.join(" OR ")
    )
}
