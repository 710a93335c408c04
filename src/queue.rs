//! The job queue: jobs in a table of the app's own database, enqueued in the same transaction
//! as the write that causes them, worked by a [`WorkerPool`] in this or another process.
//!
//! ## Why our own core (evaluated November 2026, `cargo info` + the crates' sources)
//! - **apalis 1.0** (+ apalis-sqlite / apalis-postgres 1.0): a tower-based runtime with
//!   retries, timeouts and panic catching, SKIP LOCKED on PostgreSQL, but its storages own
//!   their pool and schema and push through their own handle (no enqueue into a caller's
//!   transaction that we found), and they are built on sqlx 0.9.
//! - **riverqueue 0.5**: the closest fit (PostgreSQL and SQLite, transactional insert, unique
//!   jobs, snooze/retry), but it is built on sqlx 0.9 and jiff; our pools and transactions are
//!   sqlx 0.8 and chrono, so it cannot share them without migrating the whole app first.
//! - **underway 0.2**: sqlx 0.8 and transactional enqueue, but PostgreSQL only.
//! - **graphile_worker 0.14** (Rust port): PostgreSQL only (sqlx 0.9), its own schema.
//!
//! None enqueues into the caller's sqlx 0.8 transaction on SQLite *and* PostgreSQL, and each
//! would have to be wrapped again for the RabbitMQ backend. The core below is small: one
//! table, a dozen statements ([`store`]) and one runtime ([`worker`]); handlers see only
//! [`Job`] and [`JobHandler`], so a RabbitMQ consumer can call the same handlers later.
//!
//! ## What a newcomer must know
//! - **At-least-once.** A job whose worker dies (or whose lease expires) runs again; a job
//!   interrupted by shutdown runs again. Handlers must be idempotent.
//! - **Leases, not locks.** Claiming marks a job `running` with `locked_by`/`locked_until`; the
//!   worker renews the lease while the handler runs. An expired lease puts the job back (or
//!   to `dead` when its attempts are used up). Completion only counts if the lease is still
//!   the caller's (`locked_by` and `attempts` match), so a worker that lost its lease cannot
//!   overwrite the outcome of the one that took over.
//! - **Time comes from the application clock** (milliseconds, UTC), bound as parameters, so
//!   the same SQL runs on both backends; on PostgreSQL the worker machines' clocks must agree
//!   to well within a lease.
//!
//! ## The RabbitMQ backend ([`amqp`])
//! For more than one machine's worth of work, the same `jobs` table is the outbox of a relay
//! that publishes committed, due jobs to RabbitMQ (publisher confirms; `published_at` is set
//! only after the confirm), and consumers run the same [`JobHandler`]s on the deliveries,
//! deduplicating by message id (= job id) in `processed_messages`. Retries and dead letters
//! are then the broker's (quorum queues with a delivery limit and a dead-letter exchange);
//! the job rows still follow, so stats and dead-job admin work on both. A queue is worked by
//! one backend, never both.

pub mod amqp;
pub mod dashboard;
pub mod metrics;
pub mod report;
pub mod store;
pub mod worker;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;

pub use metrics::QueueMetrics;
pub use report::{report, QueueReport, Report};
pub use store::{
    complete, discard_dead, enqueue, enqueue_many, enqueue_many_postgres, enqueue_many_sqlite,
    enqueue_postgres, enqueue_sqlite, fail, list_dead, retry_dead, stats, Enqueue, QueueStats,
    RetryDead,
};
pub use worker::{handler_fn, QueueConfig, Wakeup, WorkerConfig, WorkerPool};

/// Attempts a job gets unless [`NewJob::max_attempts`] says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;

/// A job to enqueue. `payload` is what the handler gets; keep it small (ids, not blobs).
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    /// Not before this time; `None` is now.
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// At most one pending (queued or running) job per queue carries a given key; enqueueing
    /// another returns the pending job's id instead.
    pub dedup_key: Option<String>,
}

impl NewJob {
    pub fn new(queue: impl Into<String>, kind: impl Into<String>, payload: Value) -> Self {
        NewJob {
            queue: queue.into(),
            kind: kind.into(),
            payload,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dedup_key: None,
        }
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// At least 1: the first run is an attempt.
    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "dead" => JobStatus::Dead,
            _ => return None,
        })
    }
}

/// A job as stored. A claimed job carries its lease (`locked_by`, and `attempts`, which the
/// claim incremented), which [`complete`] and [`fail`] check.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub status: JobStatus,
    /// Runs started so far, this one included once claimed.
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub dedup_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the current (or last) run started.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Why a handler did not finish its job. Retryable errors are tried again after a backoff
/// until the attempts run out; permanent ones go to `dead` at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub message: String,
    pub retryable: bool,
}

impl JobError {
    pub fn retry(message: impl fmt::Display) -> Self {
        JobError {
            message: message.to_string(),
            retryable: true,
        }
    }

    /// For input that will never work (a missing upload, a corrupt file): no more attempts.
    pub fn permanent(message: impl fmt::Display) -> Self {
        JobError {
            message: message.to_string(),
            retryable: false,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `?` on an `anyhow` error in a handler makes a retryable failure, keeping the whole chain.
impl From<anyhow::Error> for JobError {
    fn from(err: anyhow::Error) -> Self {
        JobError::retry(format!("{err:#}"))
    }
}

/// Does the work of one kind of job. Registered on a [`WorkerPool`] under the job's `kind`.
///
/// Delivery is at-least-once: the same job may be handled again after a crash, a lost lease
/// or a shutdown, so a handler must be idempotent (check whether its effect already exists,
/// or make the effect an upsert).
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, job: &Job) -> Result<(), JobError>;
}

/// Retry delays: `base * 2^(attempt-1)`, at most `max`, then moved by up to `jitter`
/// (a fraction) either way so that jobs failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The delay before the run after `attempts` failed runs.
    pub fn delay(&self, attempts: i32) -> Duration {
        let exponent = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let raw = self.base.saturating_mul(2u32.saturating_pow(exponent));
        let capped = raw.min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 {
            1.0 + rand::thread_rng().gen_range(-jitter..=jitter)
        } else {
            1.0
        };
        capped.mul_f64(factor)
    }
}

/// The application clock at millisecond precision, what both databases store exactly.
pub(crate) use crate::db::{now, to_millis};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_within_its_jitter_and_stops_at_its_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.2,
        };
        for (attempts, expected_ms) in [(1, 100.0), (2, 200.0), (3, 400.0), (4, 800.0), (9, 1000.0)]
        {
            for _ in 0..50 {
                let ms = backoff.delay(attempts).as_secs_f64() * 1000.0;
                assert!(
                    (expected_ms * 0.8..=expected_ms * 1.2).contains(&ms),
                    "attempt {attempts}: {ms} ms"
                );
            }
        }
        let exact = Backoff {
            jitter: 0.0,
            ..backoff
        };
        assert_eq!(exact.delay(i32::MAX), Duration::from_secs(1));
        assert_eq!(exact.delay(0), Duration::from_millis(100));
    }
}
