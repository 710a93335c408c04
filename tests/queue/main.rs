//! Integration tests of the job queue, each run against a fresh SQLite file and a fresh
//! PostgreSQL database (PostgreSQL is never skipped: if it is unreachable the tests fail).
//! Timings are milliseconds so the file runs in seconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ballpark::db::Db;
use ballpark::metrics::Metrics;
use ballpark::queue::{
    self, handler_fn, store, Backoff, JobError, JobStatus, NewJob, QueueMetrics, RetryDead,
    WorkerConfig, WorkerPool,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[path = "../support/scratch.rs"]
mod scratch;

use scratch::{scratch_db, Backend, ScratchDb};

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

/// One `#[tokio::test]` per backend for each `async fn name(db: Db)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = super::test_db(super::Backend::Sqlite).await;
                    super::$name(test.db.clone()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = super::test_db(super::Backend::Postgres).await;
                    super::$name(test.db.clone()).await
                }
            )*
        }
    };
}

on_both_backends!(
    a_job_exists_only_if_its_transaction_commits,
    a_claimed_job_is_completed_and_not_claimed_again,
    a_failing_job_is_retried_after_a_backoff_then_succeeds,
    a_job_that_keeps_failing_goes_dead_with_its_last_error,
    a_dead_job_can_be_retried,
    an_expired_lease_makes_the_job_claimable_again,
    an_expired_lease_on_the_last_attempt_makes_the_job_dead,
    a_lost_lease_does_not_let_the_old_worker_complete_the_job,
    a_delayed_job_is_not_claimed_before_its_run_at,
    enqueueing_with_a_pending_dedup_key_returns_the_first_job,
    a_queue_never_runs_more_jobs_than_its_concurrency,
    heartbeats_keep_a_long_job_from_being_delivered_twice,
    shutdown_lets_in_flight_jobs_finish_and_claims_nothing_new,
    shutdown_releases_jobs_still_running_after_the_grace_period,
    a_panicking_handler_counts_as_a_failure_and_the_worker_keeps_working,
    a_wakeup_after_enqueue_starts_the_job_without_waiting_for_the_poll,
    a_pools_metrics_count_completed_failed_retried_and_dead_runs,
    an_expired_lease_is_counted_when_the_pool_gives_it_up,
    enqueue_many_creates_every_job_in_one_transaction_and_respects_dedup_keys,
    concurrent_enqueues_share_commits_and_each_caller_gets_its_own_job,
    completing_many_jobs_at_once_keeps_the_lease_check_of_each,
    the_report_shows_depth_finished_jobs_failed_runs_and_run_times,
    the_report_shows_jobs_due_later_as_scheduled_not_queued,
    the_dashboard_splits_each_queue_by_kind_with_its_depth_windows_and_run_times,
);

const LEASE: Duration = Duration::from_secs(30);

fn kinds(kind: &str) -> Vec<String> {
    vec![kind.to_string()]
}

/// Fast timings for worker pools in tests.
fn fast_config() -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_secs(5),
        heartbeat_interval: Duration::from_millis(50),
        poll_interval: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
            jitter: 0.25,
        },
        ..WorkerConfig::default()
    }
}

async fn status_of(db: &Db, id: i64) -> JobStatus {
    store::get(db, id)
        .await
        .unwrap()
        .expect("job exists")
        .status
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
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn count_jobs(db: &Db) -> i64 {
    ballpark::on_read!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs")
        .fetch_one(pool)
        .await)
    .unwrap()
}

async fn count_teams(db: &Db, key: &str) -> i64 {
    ballpark::on_read!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM teams WHERE key = $1")
        .bind(key)
        .fetch_one(pool)
        .await)
    .unwrap()
}

/// Writes a team and enqueues a job in one transaction, then commits or rolls back.
async fn write_team_and_enqueue(db: &Db, key: &str, commit: bool) {
    const INSERT_TEAM: &str = "INSERT INTO teams (key, name_ko, name_en, color, stadium) \
                               VALUES ($1, 'ko', 'en', '#000', 'park')";
    let job = NewJob::new("teams", "welcome", json!({ "team": key }));
    match db {
        Db::Sqlite { write, .. } => {
            let mut tx = write.begin().await.unwrap();
            sqlx::query(INSERT_TEAM)
                .bind(key)
                .execute(&mut *tx)
                .await
                .unwrap();
            queue::enqueue_sqlite(&mut tx, &job).await.unwrap();
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
        }
        Db::Postgres { pool, .. } => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(INSERT_TEAM)
                .bind(key)
                .execute(&mut *tx)
                .await
                .unwrap();
            queue::enqueue_postgres(&mut tx, &job).await.unwrap();
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
        }
    }
}

async fn a_job_exists_only_if_its_transaction_commits(db: Db) {
    // Act
    write_team_and_enqueue(&db, "rolled", false).await;
    // Assert
    assert_eq!(count_teams(&db, "rolled").await, 0);
    assert_eq!(
        count_jobs(&db).await,
        0,
        "a rolled-back write leaves no job"
    );

    // Act
    write_team_and_enqueue(&db, "kept", true).await;
    // Assert
    assert_eq!(count_teams(&db, "kept").await, 1);
    assert_eq!(
        count_jobs(&db).await,
        1,
        "a committed write leaves exactly one job"
    );
    let claimed = store::claim(&db, "teams", &kinds("welcome"), "w", LEASE, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].payload, json!({ "team": "kept" }));
}

async fn a_claimed_job_is_completed_and_not_claimed_again(db: Db) {
    // Arrange
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({"n": 1})))
        .await
        .unwrap();
    // Act
    let claimed = store::claim(&db, "q", &kinds("k"), "w1", LEASE, 10)
        .await
        .unwrap();
    // Assert
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!(
        (job.id, job.status, job.attempts),
        (id, JobStatus::Running, 1)
    );
    assert_eq!(job.locked_by.as_deref(), Some("w1"));
    assert!(store::claim(&db, "q", &kinds("k"), "w2", LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(queue::complete(&db, job).await.unwrap());
    let done = store::get(&db, id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Done);
    assert!(done.finished_at.is_some() && done.locked_by.is_none());
    assert!(store::claim(&db, "q", &kinds("k"), "w2", LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    // Jobs of other kinds or queues are not claimed.
    queue::enqueue(&db, NewJob::new("q", "other", json!(null)))
        .await
        .unwrap();
    queue::enqueue(&db, NewJob::new("elsewhere", "k", json!(null)))
        .await
        .unwrap();
    assert!(store::claim(&db, "q", &kinds("k"), "w2", LEASE, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_failing_job_is_retried_after_a_backoff_then_succeeds(db: Db) {
    // Arrange
    let runs = Arc::new(AtomicUsize::new(0));
    let handler_runs = runs.clone();
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 1)).register(
        "flaky",
        handler_fn(move |_job| {
            let runs = handler_runs.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(JobError::retry("first run fails"))
                } else {
                    Ok(())
                }
            }
        }),
    );
    let id = queue::enqueue(&db, NewJob::new("q", "flaky", json!({})))
        .await
        .unwrap();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    // Act / Assert
    eventually(Duration::from_secs(5), "the job is done", || async {
        status_of(&db, id).await == JobStatus::Done
    })
    .await;
    let job = store::get(&db, id).await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(job.attempts, 2);
    assert_eq!(job.last_error.as_deref(), Some("first run fails"));
    token.cancel();
    worker.await.unwrap();
}

async fn a_job_that_keeps_failing_goes_dead_with_its_last_error(db: Db) {
    // Arrange
    let runs = Arc::new(AtomicUsize::new(0));
    let handler_runs = runs.clone();
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 2)).register(
        "doomed",
        handler_fn(move |_job| {
            let runs = handler_runs.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                Err(JobError::retry(format!("failure {n}")))
            }
        }),
    );
    let id = queue::enqueue(&db, NewJob::new("q", "doomed", json!({})).max_attempts(3))
        .await
        .unwrap();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    // Act
    eventually(Duration::from_secs(5), "the job is dead", || async {
        status_of(&db, id).await == JobStatus::Dead
    })
    .await;
    // Assert
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "no run after the last attempt"
    );
    let dead = queue::list_dead(&db, "q", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("failure 3"));
    assert!(dead[0].finished_at.is_some());
    let stats = queue::stats(&db).await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].queue.as_str(), stats[0].queued, stats[0].dead),
        ("q", 0, 1)
    );
    token.cancel();
    worker.await.unwrap();
}

async fn a_dead_job_can_be_retried(db: Db) {
    // Arrange: a permanent error kills the job on its first attempt.
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({})))
        .await
        .unwrap();
    let job = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    let status = queue::fail(
        &db,
        &job,
        &JobError::permanent("corrupt input"),
        &Backoff::default(),
    )
    .await
    .unwrap();
    assert_eq!(status, Some(JobStatus::Dead));
    // Act
    let retried = queue::retry_dead(&db, id).await.unwrap();
    // Assert
    assert_eq!(retried, RetryDead::Requeued);
    assert_eq!(
        queue::retry_dead(&db, id).await.unwrap(),
        RetryDead::NotDead
    );
    let again = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (id, 1));
    assert!(queue::complete(&db, &again[0]).await.unwrap());
    assert!(queue::list_dead(&db, "q", 10).await.unwrap().is_empty());
}

async fn an_expired_lease_makes_the_job_claimable_again(db: Db) {
    // Arrange: a worker claims with a short lease and then "crashes" (never reports).
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({})))
        .await
        .unwrap();
    let short = Duration::from_millis(100);
    let first = store::claim(&db, "q", &kinds("k"), "crashed", short, 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(store::claim(&db, "q", &kinds("k"), "other", LEASE, 1)
        .await
        .unwrap()
        .is_empty());
    // Act
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = store::claim(&db, "q", &kinds("k"), "other", LEASE, 1)
        .await
        .unwrap();
    // Assert
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id, second[0].attempts), (id, 2));
    assert_eq!(second[0].locked_by.as_deref(), Some("other"));
    assert!(second[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("lease expired"));
}

async fn an_expired_lease_on_the_last_attempt_makes_the_job_dead(db: Db) {
    // Arrange
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({})).max_attempts(1))
        .await
        .unwrap();
    store::claim(
        &db,
        "q",
        &kinds("k"),
        "crashed",
        Duration::from_millis(50),
        1,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Act
    let claimed = store::claim(&db, "q", &kinds("k"), "other", LEASE, 1)
        .await
        .unwrap();
    // Assert
    assert!(claimed.is_empty());
    assert_eq!(status_of(&db, id).await, JobStatus::Dead);
}

async fn a_lost_lease_does_not_let_the_old_worker_complete_the_job(db: Db) {
    // Arrange
    queue::enqueue(&db, NewJob::new("q", "k", json!({})))
        .await
        .unwrap();
    let stale = store::claim(&db, "q", &kinds("k"), "slow", Duration::from_millis(50), 1)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let current = store::claim(&db, "q", &kinds("k"), "fast", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    // Act
    let stale_completed = queue::complete(&db, &stale).await.unwrap();
    let stale_failed = queue::fail(&db, &stale, &JobError::retry("late"), &Backoff::default())
        .await
        .unwrap();
    // Assert
    assert!(!stale_completed);
    assert_eq!(stale_failed, None);
    assert_eq!(status_of(&db, current.id).await, JobStatus::Running);
    assert!(queue::complete(&db, &current).await.unwrap());
}

async fn a_delayed_job_is_not_claimed_before_its_run_at(db: Db) {
    // Arrange
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({})).run_at(at))
        .await
        .unwrap();
    // Act / Assert
    assert!(store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let claimed = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
}

async fn enqueueing_with_a_pending_dedup_key_returns_the_first_job(db: Db) {
    // Arrange
    let job = || NewJob::new("q", "k", json!({})).dedup_key("upload:7");
    let first = queue::enqueue(&db, job()).await.unwrap();
    // Act
    let second = queue::enqueue(&db, job()).await.unwrap();
    let other_queue = queue::enqueue(&db, NewJob::new("q2", "k", json!({})).dedup_key("upload:7"))
        .await
        .unwrap();
    // Assert
    assert_eq!(first, second);
    assert_ne!(first, other_queue, "keys are per queue");
    assert_eq!(count_jobs(&db).await, 2);
    // A running job still holds the key; a finished one releases it.
    let claimed = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(queue::enqueue(&db, job()).await.unwrap(), first);
    assert!(queue::complete(&db, &claimed).await.unwrap());
    let third = queue::enqueue(&db, job()).await.unwrap();
    assert_ne!(third, first);
}

async fn a_queue_never_runs_more_jobs_than_its_concurrency(db: Db) {
    // Arrange
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (r, p, f) = (running.clone(), peak.clone(), finished.clone());
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 2)).register(
        "slow",
        handler_fn(move |_job| {
            let (running, peak, finished) = (r.clone(), p.clone(), f.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(60)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
    );
    for n in 0..6 {
        queue::enqueue(&db, NewJob::new("q", "slow", json!({ "n": n })))
            .await
            .unwrap();
    }
    let token = CancellationToken::new();
    // Act
    let worker = tokio::spawn(pool.run(token.clone()));
    eventually(Duration::from_secs(5), "all six jobs ran", || async {
        finished.load(Ordering::SeqCst) == 6
    })
    .await;
    // Assert
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    token.cancel();
    worker.await.unwrap();
}

async fn heartbeats_keep_a_long_job_from_being_delivered_twice(db: Db) {
    // Arrange: the job outlives its lease several times over; heartbeats renew it.
    let runs = Arc::new(AtomicUsize::new(0));
    let handler_runs = runs.clone();
    let config = WorkerConfig {
        lease: Duration::from_millis(150),
        heartbeat_interval: Duration::from_millis(30),
        ..fast_config()
    }
    .queue("q", 1);
    let pool = WorkerPool::new(db.clone(), config).register(
        "long",
        handler_fn(move |_job| {
            let runs = handler_runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok(())
            }
        }),
    );
    let id = queue::enqueue(&db, NewJob::new("q", "long", json!({})))
        .await
        .unwrap();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    // Act: a second claimer keeps trying while the job runs.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..10 {
        let stolen = store::claim(&db, "q", &kinds("long"), "thief", LEASE, 1)
            .await
            .unwrap();
        assert!(stolen.is_empty(), "a renewed lease is not reclaimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Assert
    eventually(Duration::from_secs(5), "the job is done", || async {
        status_of(&db, id).await == JobStatus::Done
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    token.cancel();
    worker.await.unwrap();
}

async fn shutdown_lets_in_flight_jobs_finish_and_claims_nothing_new(db: Db) {
    // Arrange
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 1)).register(
        "slow",
        handler_fn(move |_job| {
            let started = s.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(())
            }
        }),
    );
    let first = queue::enqueue(&db, NewJob::new("q", "slow", json!({})))
        .await
        .unwrap();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    eventually(Duration::from_secs(5), "the first job started", || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    let second = queue::enqueue(&db, NewJob::new("q", "slow", json!({})))
        .await
        .unwrap();
    // Act
    token.cancel();
    tokio::time::timeout(Duration::from_secs(3), worker)
        .await
        .expect("the pool stops within its grace period")
        .unwrap();
    // Assert
    assert_eq!(status_of(&db, first).await, JobStatus::Done);
    assert_eq!(status_of(&db, second).await, JobStatus::Queued);
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

async fn shutdown_releases_jobs_still_running_after_the_grace_period(db: Db) {
    // Arrange
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let config = WorkerConfig {
        shutdown_grace: Duration::from_millis(100),
        ..fast_config()
    }
    .queue("q", 1);
    let pool = WorkerPool::new(db.clone(), config).register(
        "endless",
        handler_fn(move |_job| {
            let started = s.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
        }),
    );
    let id = queue::enqueue(&db, NewJob::new("q", "endless", json!({})))
        .await
        .unwrap();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    eventually(Duration::from_secs(5), "the job started", || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    // Act
    token.cancel();
    tokio::time::timeout(Duration::from_secs(3), worker)
        .await
        .expect("the pool stops soon after its grace period")
        .unwrap();
    // Assert: back in the queue, the interrupted run not counted, claimable at once.
    let job = store::get(&db, id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Queued, 0));
    assert!(job.locked_by.is_none());
    let again = store::claim(&db, "q", &kinds("endless"), "next", LEASE, 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
}

async fn a_panicking_handler_counts_as_a_failure_and_the_worker_keeps_working(db: Db) {
    // Arrange
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 1)).register(
        "boom",
        handler_fn(|job| async move {
            if job.payload["panic"] == json!(true) {
                panic!("kaboom");
            }
            Ok(())
        }),
    );
    let bad = queue::enqueue(
        &db,
        NewJob::new("q", "boom", json!({ "panic": true })).max_attempts(1),
    )
    .await
    .unwrap();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    // Act
    eventually(
        Duration::from_secs(5),
        "the panicking job is dead",
        || async { status_of(&db, bad).await == JobStatus::Dead },
    )
    .await;
    let good = queue::enqueue(&db, NewJob::new("q", "boom", json!({ "panic": false })))
        .await
        .unwrap();
    // Assert
    eventually(Duration::from_secs(5), "a later job is done", || async {
        status_of(&db, good).await == JobStatus::Done
    })
    .await;
    let dead = store::get(&db, bad).await.unwrap().unwrap();
    assert!(
        dead.last_error.as_deref().unwrap().contains("kaboom"),
        "{:?}",
        dead.last_error
    );
    token.cancel();
    worker.await.unwrap();
}

/// Many claimers at once on PostgreSQL (`SKIP LOCKED`): every job is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_on_postgres_never_get_the_same_job() {
    // Arrange
    let test = test_db(Backend::Postgres).await;
    let db = test.db.clone();
    for n in 0..200 {
        queue::enqueue(&db, NewJob::new("q", "k", json!({ "n": n })))
            .await
            .unwrap();
    }
    // Act
    let claimers: Vec<_> = (0..6)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                let mut ids = Vec::new();
                loop {
                    let jobs = store::claim(&db, "q", &kinds("k"), &worker, LEASE, 7)
                        .await
                        .unwrap();
                    if jobs.is_empty() {
                        break ids;
                    }
                    ids.extend(jobs.iter().map(|j| j.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    // Assert
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(total, 200, "every job claimed");
    assert_eq!(all.len(), 200, "no job claimed twice");
}

async fn a_wakeup_after_enqueue_starts_the_job_without_waiting_for_the_poll(db: Db) {
    // Arrange: a poll interval far longer than the test may take.
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(60),
        ..fast_config()
    }
    .queue("q", 1);
    let pool =
        WorkerPool::new(db.clone(), config).register("k", handler_fn(|_job| async { Ok(()) }));
    let wakeup = pool.wakeup();
    let token = CancellationToken::new();
    let worker = tokio::spawn(pool.run(token.clone()));
    // Let the loop find the queue empty and go to sleep.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Act
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({})))
        .await
        .unwrap();
    wakeup.wake();
    // Assert
    eventually(Duration::from_secs(3), "the job is done", || async {
        status_of(&db, id).await == JobStatus::Done
    })
    .await;
    token.cancel();
    worker.await.unwrap();
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

async fn a_pools_metrics_count_completed_failed_retried_and_dead_runs(db: Db) {
    // Arrange: "ok" succeeds; "doomed" fails twice and has two attempts.
    let metrics = Metrics::new();
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 2))
        .register("ok", handler_fn(|_job| async { Ok(()) }))
        .register(
            "doomed",
            handler_fn(|_job| async { Err(JobError::retry("no luck")) }),
        )
        .metrics(QueueMetrics::new(&metrics));
    let ok = queue::enqueue(&db, NewJob::new("q", "ok", json!({})))
        .await
        .unwrap();
    let doomed = queue::enqueue(&db, NewJob::new("q", "doomed", json!({})).max_attempts(2))
        .await
        .unwrap();
    let token = CancellationToken::new();
    // Act
    let worker = tokio::spawn(pool.run(token.clone()));
    eventually(Duration::from_secs(5), "both jobs finished", || async {
        status_of(&db, ok).await == JobStatus::Done
            && status_of(&db, doomed).await == JobStatus::Dead
    })
    .await;
    token.cancel();
    worker.await.unwrap();
    // Assert
    let text = metrics.render();
    let of =
        |name: &str, kind: &str| sample(&text, &format!("{name}{{queue=\"q\",kind=\"{kind}\"}}"));
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
        of("ballpark_queue_jobs_completed_total", "doomed"),
        None,
        "{text}"
    );
    assert_eq!(
        of("ballpark_queue_jobs_failed_total", "doomed"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        of("ballpark_queue_jobs_retried_total", "doomed"),
        Some(1.0),
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
            r#"ballpark_queue_job_duration_seconds_count{queue="q",kind="doomed",outcome="failed"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ballpark_queue_job_duration_seconds_count{queue="q",kind="ok",outcome="completed"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // The depth is read from the database when asked for.
    let queue_metrics = QueueMetrics::new(&metrics);
    queue_metrics.refresh_depth(&db).await.unwrap();
    let text = metrics.render();
    assert_eq!(
        sample(&text, r#"ballpark_queue_jobs{queue="q",status="dead"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"ballpark_queue_jobs{queue="q",status="queued"}"#),
        Some(0.0),
        "{text}"
    );
}

async fn an_expired_lease_is_counted_when_the_pool_gives_it_up(db: Db) {
    // Arrange: a worker that "crashed" holds the only attempt of a job; its lease expires.
    let metrics = Metrics::new();
    let id = queue::enqueue(&db, NewJob::new("q", "k", json!({})).max_attempts(1))
        .await
        .unwrap();
    store::claim(
        &db,
        "q",
        &kinds("k"),
        "crashed",
        Duration::from_millis(50),
        1,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pool = WorkerPool::new(db.clone(), fast_config().queue("q", 1))
        .register("k", handler_fn(|_job| async { Ok(()) }))
        .metrics(QueueMetrics::new(&metrics));
    let token = CancellationToken::new();
    // Act
    let worker = tokio::spawn(pool.run(token.clone()));
    eventually(Duration::from_secs(5), "the job is dead", || async {
        status_of(&db, id).await == JobStatus::Dead
    })
    .await;
    token.cancel();
    worker.await.unwrap();
    // Assert
    let text = metrics.render();
    let of = |name: &str| sample(&text, &format!("{name}{{queue=\"q\",kind=\"k\"}}"));
    assert_eq!(
        of("ballpark_queue_leases_expired_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(of("ballpark_queue_jobs_dead_total"), Some(1.0), "{text}");
    assert_eq!(of("ballpark_queue_jobs_completed_total"), None, "{text}");
}

async fn enqueue_many_creates_every_job_in_one_transaction_and_respects_dedup_keys(db: Db) {
    // Arrange: a pending job holds one key; the batch repeats another.
    queue::enqueue(&db, NewJob::new("q", "k", json!({})).dedup_key("held"))
        .await
        .unwrap();
    let mut jobs: Vec<NewJob> = (0..1200)
        .map(|n| NewJob::new("q", "k", json!({ "n": n })))
        .collect();
    jobs.push(NewJob::new("q", "k", json!({})).dedup_key("held"));
    jobs.push(NewJob::new("q", "k", json!({ "first": true })).dedup_key("twice"));
    jobs.push(NewJob::new("q", "k", json!({ "first": false })).dedup_key("twice"));
    // Act
    let created = queue::enqueue_many(&db, &jobs).await.unwrap();
    // Assert: 1200 plain jobs (three statements' worth) and the first "twice".
    assert_eq!(created, 1201);
    assert_eq!(count_jobs(&db).await, 1202);
    let claimed = store::claim(&db, "q", &kinds("k"), "w", LEASE, 2000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1202);
    assert_eq!(
        claimed[1].payload,
        json!({ "n": 0 }),
        "jobs keep their order"
    );
    let twice: Vec<_> = claimed
        .iter()
        .filter(|job| job.dedup_key.as_deref() == Some("twice"))
        .collect();
    assert_eq!(twice.len(), 1);
    assert_eq!(twice[0].payload, json!({ "first": true }));
    assert_eq!(queue::enqueue_many(&db, &[]).await.unwrap(), 0);
}

async fn concurrent_enqueues_share_commits_and_each_caller_gets_its_own_job(db: Db) {
    // Arrange: one pending job holds a dedup key.
    let held = queue::enqueue(&db, NewJob::new("q", "k", json!({})).dedup_key("held"))
        .await
        .unwrap();
    // Act: 300 callers enqueue at once (they share statements and commits), one of them with
    // the held key, and one with a run_at in the future.
    let later = ballpark::db::now() + chrono::Duration::hours(1);
    let callers: Vec<_> = (0..300)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                let job = match n {
                    7 => NewJob::new("q", "k", json!({ "n": n })).dedup_key("held"),
                    8 => NewJob::new("q", "k", json!({ "n": n })).run_at(later),
                    _ => NewJob::new("q", "k", json!({ "n": n })),
                };
                (n, queue::enqueue(&db, job).await.unwrap())
            })
        })
        .collect();
    let mut ids = Vec::new();
    for caller in callers {
        ids.push(caller.await.unwrap());
    }
    // Assert: each caller got the id of the job it enqueued (the held key: the pending job's).
    for (n, id) in &ids {
        let job = store::get(&db, *id).await.unwrap().expect("the job exists");
        if *n == 7 {
            assert_eq!(*id, held, "the pending job holding the key");
            continue;
        }
        assert_eq!(job.payload, json!({ "n": n }), "job {id} of caller {n}");
        assert_eq!(job.status, JobStatus::Queued);
        if *n == 8 {
            assert_eq!(job.run_at, later);
        }
    }
    let distinct: std::collections::HashSet<i64> = ids.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        distinct.len(),
        300,
        "one id per caller, the held key's included"
    );
    assert_eq!(count_jobs(&db).await, 300, "the held job and 299 new ones");
}

async fn completing_many_jobs_at_once_keeps_the_lease_check_of_each(db: Db) {
    // Arrange: w1 claims three jobs; one of them expires and w2 takes it over.
    for n in 0..3 {
        queue::enqueue(&db, NewJob::new("q", "k", json!({ "n": n })))
            .await
            .unwrap();
    }
    let short = Duration::from_millis(300);
    let mine = store::claim(&db, "q", &kinds("k"), "w1", short, 3)
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Renew two leases, so only the third one is lost.
    let until = chrono::Utc::now() + chrono::Duration::seconds(30);
    store::heartbeat(&db, "w1", &[mine[0].id, mine[1].id], until)
        .await
        .unwrap();
    let stolen = store::claim(&db, "q", &kinds("k"), "w2", LEASE, 3)
        .await
        .unwrap();
    assert_eq!(stolen.len(), 1);
    assert_eq!(stolen[0].id, mine[2].id);
    let leases: Vec<(i64, i32)> = mine.iter().map(|job| (job.id, job.attempts)).collect();
    // Act
    let mut done = store::complete_many(&db, "w1", &leases).await.unwrap();
    // Assert
    done.sort_unstable();
    assert_eq!(done, vec![mine[0].id, mine[1].id]);
    assert_eq!(status_of(&db, mine[0].id).await, JobStatus::Done);
    assert_eq!(status_of(&db, mine[2].id).await, JobStatus::Running);
    // The same attempt of another worker does not count either.
    assert!(
        store::complete_many(&db, "w1", &[(stolen[0].id, stolen[0].attempts)])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store::complete_many(&db, "w2", &[(stolen[0].id, stolen[0].attempts)])
            .await
            .unwrap(),
        vec![stolen[0].id]
    );
}

async fn the_report_shows_depth_finished_jobs_failed_runs_and_run_times(db: Db) {
    // Arrange: in queue "q", one job done after a run of at least 40 ms, one dead after its
    // only attempt, one that failed and waits for its second attempt, one never run.
    let ids: Vec<i64> = enqueue_jobs(&db, 3).await;
    let slow = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(queue::complete(&db, &slow).await.unwrap());
    let doomed = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    queue::fail(
        &db,
        &doomed,
        &JobError::permanent("broken"),
        &Backoff::default(),
    )
    .await
    .unwrap();
    let flaky = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    queue::fail(&db, &flaky, &JobError::retry("later"), &Backoff::default())
        .await
        .unwrap();
    queue::enqueue(&db, NewJob::new("other", "k", json!({})))
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    // Act
    let report = queue::report(&db, Duration::from_secs(15 * 60))
        .await
        .unwrap();
    // Assert
    assert_eq!(report.queues.len(), 2);
    let (other, q) = (&report.queues[0], &report.queues[1]);
    assert_eq!(
        (other.queue.as_str(), other.queued, other.done_recent),
        ("other", 1, 0)
    );
    assert_eq!(q.queue, "q");
    // The retry waits out its backoff: scheduled, not queued.
    assert_eq!(
        (q.queued, q.scheduled, q.running, q.retrying, q.dead),
        (0, 1, 0, 1, 1)
    );
    assert_eq!(
        (q.done_recent, q.dead_recent, q.failed_runs_recent),
        (1, 1, 1)
    );
    let p50 = q.run_p50.expect("a run time");
    assert!(
        (Duration::from_millis(40)..Duration::from_secs(5)).contains(&p50),
        "{p50:?}"
    );
    assert_eq!(q.run_p95, Some(p50));
    assert_eq!(q.run_max, Some(p50));
    let table = report.to_string();
    assert!(table.lines().any(|line| line.starts_with("q ")), "{table}");
    // With a window that ends before anything finished, only the depth is left.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let recent = queue::report(&db, Duration::from_millis(5)).await.unwrap();
    let q = &recent.queues[1];
    assert_eq!((q.scheduled, q.retrying, q.dead), (1, 1, 1));
    assert_eq!(
        (q.done_recent, q.dead_recent, q.failed_runs_recent),
        (0, 0, 0)
    );
    assert_eq!(q.run_p50, None);
}

async fn the_report_shows_jobs_due_later_as_scheduled_not_queued(db: Db) {
    // Arrange: one job due now, two due in an hour (as a deadline check would be).
    let later = ballpark::db::now() + chrono::Duration::hours(1);
    queue::enqueue(&db, NewJob::new("q", "k", json!({})))
        .await
        .unwrap();
    for n in 0..2 {
        queue::enqueue(&db, NewJob::new("q", "k", json!({ "n": n })).run_at(later))
            .await
            .unwrap();
    }

    // Act
    let report = queue::report(&db, Duration::from_secs(60)).await.unwrap();

    // Assert
    let q = &report.queues[0];
    assert_eq!((q.queue.as_str(), q.queued, q.scheduled), ("q", 1, 2));
    let table = report.to_string();
    assert!(table.contains("scheduled"), "{table}");
}

async fn the_dashboard_splits_each_queue_by_kind_with_its_depth_windows_and_run_times(db: Db) {
    // Arrange: kind "k" of queue "q": one done after at least 40 ms, one dead, one waiting
    // for its second attempt; kind "j": one running, one queued.
    enqueue_jobs(&db, 3).await;
    let slow = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(queue::complete(&db, &slow).await.unwrap());
    let doomed = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    let permanent = JobError::permanent("broken");
    queue::fail(&db, &doomed, &permanent, &Backoff::default())
        .await
        .unwrap();
    let flaky = store::claim(&db, "q", &kinds("k"), "w", LEASE, 1)
        .await
        .unwrap()
        .remove(0);
    queue::fail(&db, &flaky, &JobError::retry("later"), &Backoff::default())
        .await
        .unwrap();
    for n in 0..2 {
        queue::enqueue(&db, NewJob::new("q", "j", json!({ "j": n })))
            .await
            .unwrap();
    }
    store::claim(&db, "q", &kinds("j"), "w", LEASE, 1)
        .await
        .unwrap();

    // Act
    let board = queue::dashboard::dashboard(&db).await.unwrap();

    // Assert
    let kinds_seen: Vec<(&str, &str)> = board
        .lines
        .iter()
        .map(|l| (l.counts.queue.as_str(), l.counts.kind.as_str()))
        .collect();
    assert_eq!(kinds_seen, [("q", "j"), ("q", "k")]);
    let (j, k) = (&board.lines[0], &board.lines[1]);
    let c = &j.counts;
    assert_eq!(
        (c.queued, c.scheduled, c.running, c.retrying, c.dead),
        (1, 0, 1, 0, 0)
    );
    assert_eq!(j.run_p50, None);
    let c = &k.counts;
    assert_eq!(
        (c.queued, c.scheduled, c.running, c.retrying, c.dead),
        (0, 1, 0, 1, 1)
    );
    assert_eq!(
        (c.done_short, c.failed_short, c.done_long, c.failed_long),
        (1, 1, 1, 1)
    );
    let p50 = k.run_p50.expect("a run time");
    assert!(
        (Duration::from_millis(40)..Duration::from_secs(5)).contains(&p50),
        "{p50:?}"
    );
    assert_eq!((k.run_p95, k.run_max), (Some(p50), Some(p50)));
    assert_eq!(board.dead.len(), 1);
    assert_eq!(board.dead[0].id, doomed.id);
    assert_eq!(board.dead[0].last_error.as_deref(), Some("broken"));
    // Discarding takes the dead job only, once.
    assert!(!store::discard_dead(&db, flaky.id).await.unwrap());
    assert!(store::discard_dead(&db, doomed.id).await.unwrap());
    assert!(!store::discard_dead(&db, doomed.id).await.unwrap());
    assert!(store::get(&db, doomed.id).await.unwrap().is_none());
}

/// Enqueues `count` jobs of kind "k" in queue "q", one after another (so they are claimed in
/// that order).
async fn enqueue_jobs(db: &Db, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(
            queue::enqueue(db, NewJob::new("q", "k", json!({ "n": n })))
                .await
                .unwrap(),
        );
    }
    ids
}
