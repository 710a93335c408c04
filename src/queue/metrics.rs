//! The queue's metrics: what the database workers and the RabbitMQ consumers and relay record
//! per queue and kind, and the depth gauges read from the `jobs` table when scraped.
//!
//! | metric | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `ballpark_queue_jobs` | gauge | queue, status | jobs `queued` (delayed ones too), `running` and `dead`, read from the database at each scrape |
//! | `ballpark_queue_job_duration_seconds` | histogram | queue, kind, outcome | how long each handler run took; outcome `completed` or `failed` |
//! | `ballpark_queue_jobs_completed_total` | counter | queue, kind | runs that finished and were recorded done |
//! | `ballpark_queue_jobs_failed_total` | counter | queue, kind | runs that failed (an error or a panic) |
//! | `ballpark_queue_jobs_retried_total` | counter | queue, kind | failed runs after which the job was queued again |
//! | `ballpark_queue_jobs_dead_total` | counter | queue, kind | jobs that went `dead` (failed their last attempt, failed permanently, or their worker died on their last attempt) |
//! | `ballpark_queue_leases_expired_total` | counter | queue, kind | runs given up because their worker stopped renewing the lease (database backend) |
//! | `ballpark_queue_duplicate_deliveries_total` | counter | queue | deliveries acked without running because the message was already processed (RabbitMQ) |
//! | `ballpark_queue_published_total` | counter | queue | jobs the relay handed to RabbitMQ (confirmed) |
//!
//! ## What a newcomer must know
//! - **Counters are per process; depth is the database's.** Each worker process counts what
//!   it ran, so sum counters across instances. The depth gauges are read from the shared
//!   `jobs` table at scrape time, so every instance reports the same figure (take the max,
//!   never the sum), and they are right however many processes enqueue and work.
//! - A series appears with its first event, not at 0 before it: a worker serves every kind
//!   on every queue it is given, so most queue × kind combinations never happen. Absent
//!   means zero (PromQL: `or vector(0)`). The depth gauges are the exception: a watched
//!   queue shows 0 when empty.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Unit};

use super::store;
use crate::db::Db;
use crate::metrics::Metrics;

const DEPTH: &str = "ballpark_queue_jobs";
const DURATION: &str = "ballpark_queue_job_duration_seconds";
const COMPLETED: &str = "ballpark_queue_jobs_completed_total";
const FAILED: &str = "ballpark_queue_jobs_failed_total";
const RETRIED: &str = "ballpark_queue_jobs_retried_total";
const DEAD: &str = "ballpark_queue_jobs_dead_total";
const EXPIRED: &str = "ballpark_queue_leases_expired_total";
const DUPLICATES: &str = "ballpark_queue_duplicate_deliveries_total";
const PUBLISHED: &str = "ballpark_queue_published_total";

/// The queue's instruments in a [`Metrics`] recorder. Cheap to clone.
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    metrics: Metrics,
    /// Queues whose depth is reported: a queue that emptied must show 0, not its last value.
    queues: Arc<Mutex<BTreeSet<String>>>,
}

impl QueueMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        metrics.describe_gauge(
            DEPTH,
            None,
            "Jobs per queue and status (queued includes delayed jobs), read from the database at scrape time.",
        );
        metrics.describe_histogram(
            DURATION,
            Some(Unit::Seconds),
            "How long job handler runs took, by outcome (completed or failed).",
        );
        metrics.describe_counter(
            COMPLETED,
            None,
            "Job runs that finished and were recorded done.",
        );
        metrics.describe_counter(FAILED, None, "Job runs that failed (an error or a panic).");
        metrics.describe_counter(
            RETRIED,
            None,
            "Failed job runs after which the job was queued again.",
        );
        metrics.describe_counter(DEAD, None, "Jobs that went dead.");
        metrics.describe_counter(
            EXPIRED,
            None,
            "Job runs given up because their worker stopped renewing the lease.",
        );
        metrics.describe_counter(
            DUPLICATES,
            None,
            "Deliveries acked without running because the message was already processed.",
        );
        metrics.describe_counter(PUBLISHED, None, "Jobs the outbox relay handed to RabbitMQ.");
        QueueMetrics {
            metrics: metrics.clone(),
            queues: Arc::default(),
        }
    }

    /// The instruments of jobs of `kind` in `queue`, and the queue's depth reported from now
    /// on. The series themselves appear with their first event: every worker is set up for
    /// every kind on every queue it serves, and registering all those combinations up front
    /// filled a scrape with zeros that never move (84 KB of them).
    pub fn job(&self, queue: &str, kind: &str) -> JobInstruments {
        self.watch(queue);
        JobInstruments {
            target: Some(Arc::new(Target {
                metrics: self.metrics.clone(),
                queue: queue.to_owned(),
                kind: kind.to_owned(),
            })),
        }
    }

    /// The recorder these instruments write into (for other parts of a worker process).
    pub fn recorder(&self) -> &Metrics {
        &self.metrics
    }

    pub fn duplicates(&self, queue: &str) -> Counter {
        self.watch(queue);
        self.metrics.counter(DUPLICATES, &[("queue", queue)])
    }

    pub fn published(&self, queue: &str) -> Counter {
        self.watch(queue);
        self.metrics.counter(PUBLISHED, &[("queue", queue)])
    }

    fn watch(&self, queue: &str) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if !queues.contains(queue) {
            queues.insert(queue.to_string());
        }
    }

    fn depth(&self, queue: &str, status: &str) -> Gauge {
        self.metrics
            .gauge(DEPTH, &[("queue", queue), ("status", status)])
    }

    /// Sets the depth gauges from the database: every queue it has jobs in, and every queue
    /// seen before (at 0 once it has none).
    pub async fn refresh_depth(&self, db: &Db) -> Result<(), sqlx::Error> {
        let stats = store::stats(db).await?;
        let queues: Vec<String> = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.extend(stats.iter().map(|s| s.queue.clone()));
            queues.iter().cloned().collect()
        };
        for queue in queues {
            let depth = stats
                .iter()
                .find(|s| s.queue == queue)
                .cloned()
                .unwrap_or_default();
            self.depth(&queue, "queued").set(depth.queued as f64);
            self.depth(&queue, "running").set(depth.running as f64);
            self.depth(&queue, "dead").set(depth.dead as f64);
        }
        Ok(())
    }
}

/// The instruments of one queue and kind; each series is registered at its first event.
#[derive(Clone, Debug)]
pub struct JobInstruments {
    target: Option<Arc<Target>>,
}

#[derive(Debug)]
struct Target {
    metrics: Metrics,
    queue: String,
    kind: String,
}

impl Target {
    fn counter(&self, name: &'static str) -> Counter {
        self.metrics
            .counter(name, &[("queue", &self.queue), ("kind", &self.kind)])
    }

    fn seconds(&self, outcome: &str) -> Histogram {
        self.metrics.histogram(
            DURATION,
            &[
                ("queue", &self.queue),
                ("kind", &self.kind),
                ("outcome", outcome),
            ],
        )
    }
}

impl JobInstruments {
    /// Instruments that record nothing, for workers given no [`QueueMetrics`].
    pub fn noop() -> Self {
        JobInstruments { target: None }
    }

    fn count(&self, name: &'static str) {
        if let Some(target) = &self.target {
            target.counter(name).increment(1);
        }
    }

    /// A run that finished and was recorded done.
    pub fn completed(&self, took: Duration) {
        self.count(COMPLETED);
        if let Some(target) = &self.target {
            target.seconds("completed").record(took.as_secs_f64());
        }
    }

    /// A run that failed (whatever becomes of the job: see [`retried`](Self::retried) and
    /// [`dead`](Self::dead)).
    pub fn failed(&self, took: Duration) {
        self.count(FAILED);
        if let Some(target) = &self.target {
            target.seconds("failed").record(took.as_secs_f64());
        }
    }

    pub fn retried(&self) {
        self.count(RETRIED);
    }

    pub fn dead(&self) {
        self.count(DEAD);
    }

    pub fn lease_expired(&self) {
        self.count(EXPIRED);
    }
}
