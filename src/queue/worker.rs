//! The worker runtime: claims jobs, runs their handlers, records outcomes, renews leases, and
//! shuts down gracefully.
//!
//! Per queue, one claim loop takes as many jobs as the queue has free slots (a semaphore of
//! `concurrency` permits), so a saturated queue waits for a slot instead of polling, and an
//! idle one sleeps `poll_interval` (or until woken through [`WorkerPool::wakeup`]). A claim
//! that drained the queue (fewer jobs than free slots) is followed by a `claim_window` pause
//! (2 ms) so that jobs trickling in are claimed several per statement rather than one each. The loop
//! gives up expired leases (of crashed workers) every `reap_interval`, not before every claim.
//! Each job's handler runs in its own task: a panic ends that task, not the worker, and counts
//! as a failed attempt. One heartbeat task renews the leases of every job in flight.
//!
//! Successful runs are recorded in batches: one completer task takes every completion waiting
//! and marks them done with one statement ([`store::complete_many`], with the same lease check
//! per job as [`store::complete`]), so under load a job costs a fraction of a commit instead of
//! one. A job gives its queue slot back when its handler returns, so the next claim overlaps
//! with the writing of the last completions. Failures are rare and are written one by one.
//!
//! Shutdown, when the token is cancelled: the claim loops stop; jobs in flight get
//! `shutdown_grace` to finish; handlers still running then are aborted and their jobs
//! released back to the queue (the interrupted run is not counted as an attempt).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::metrics::{JobInstruments, QueueMetrics};
use super::{now, store, Backoff, Job, JobError, JobHandler, JobStatus};
use crate::db::Db;

/// The default [`WorkerConfig::claim_window`].
const CLAIM_WINDOW_MS: u64 = 2;

/// Most completions the completer writes in one statement.
const MAX_COMPLETIONS: usize = 512;

/// One queue a pool works, and how many of its jobs may run at once in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    pub concurrency: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Written into `locked_by`; unique per process so leases can be told apart.
    pub worker_id: String,
    pub queues: Vec<QueueConfig>,
    /// How long a claim holds a job without a heartbeat; a crashed worker's jobs are retried
    /// after this.
    pub lease: Duration,
    /// How often leases of jobs in flight are renewed; well under `lease`.
    pub heartbeat_interval: Duration,
    /// Sleep between claims when a queue is empty.
    pub poll_interval: Duration,
    /// Pause after a claim that emptied the queue but found jobs, before claiming again:
    /// under a steady trickle of jobs, claims then take several jobs each instead of one or
    /// two. The most a job waits for it; zero turns it off.
    pub claim_window: Duration,
    /// How often a claim loop gives up expired leases in its queue (so a crashed worker's
    /// jobs run again at most this long after their lease ends).
    pub reap_interval: Duration,
    /// How long jobs in flight may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            queues: Vec::new(),
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            claim_window: Duration::from_millis(CLAIM_WINDOW_MS),
            reap_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

impl WorkerConfig {
    /// Adds a queue worked with at most `concurrency` (at least 1) jobs at once.
    pub fn queue(mut self, name: impl Into<String>, concurrency: usize) -> Self {
        self.queues.push(QueueConfig {
            name: name.into(),
            concurrency: concurrency.max(1),
        });
        self
    }
}

/// Adapts an async closure taking the job to a [`JobHandler`] (see [`handler_fn`]).
pub struct FnHandler<F>(F);

/// Makes a handler of `f`, for handlers that need no state of their own.
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    FnHandler(f)
}

#[async_trait::async_trait]
impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    async fn handle(&self, job: &Job) -> Result<(), JobError> {
        (self.0)(job.clone()).await
    }
}

/// Wakes a pool's idle claim loops (see [`WorkerPool::wakeup`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    /// Call after the transaction that enqueued has committed; earlier, the loops would find
    /// nothing and go back to sleep.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }
}

/// Works the configured queues with the registered handlers:
/// `WorkerPool::new(db, config).register("kind", handler).run(token).await`.
pub struct WorkerPool {
    db: Db,
    config: WorkerConfig,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    notify: Arc<Notify>,
    metrics: Option<QueueMetrics>,
}

/// What the claim loops, job tasks and heartbeat share.
struct Shared {
    db: Db,
    config: WorkerConfig,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    /// Jobs whose handler is running, with the handle that aborts it after the grace period.
    in_flight: Mutex<HashMap<i64, AbortHandle>>,
    metrics: Option<QueueMetrics>,
    /// Per queue, per registered kind, looked up once here rather than per job.
    instruments: HashMap<String, HashMap<String, JobInstruments>>,
}

impl Shared {
    fn in_flight_ids(&self) -> Vec<i64> {
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.keys().copied().collect()
    }

    fn instruments(&self, queue: &str, kind: &str) -> JobInstruments {
        if let Some(found) = self
            .instruments
            .get(queue)
            .and_then(|kinds| kinds.get(kind))
        {
            return found.clone();
        }
        match &self.metrics {
            Some(metrics) => metrics.job(queue, kind),
            None => JobInstruments::noop(),
        }
    }
}

/// A successful run waiting for the completer to record it.
struct Completion {
    id: i64,
    attempts: i32,
    /// Whether the job was marked done (`false`: the lease was lost), or why it could not be.
    reply: oneshot::Sender<Result<bool, String>>,
}

impl WorkerPool {
    pub fn new(db: Db, config: WorkerConfig) -> Self {
        WorkerPool {
            db,
            config,
            handlers: HashMap::new(),
            notify: Arc::new(Notify::new()),
            metrics: None,
        }
    }

    /// Records job outcomes and durations in `metrics` (see [`super::metrics`]).
    pub fn metrics(mut self, metrics: QueueMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs `handler` for jobs of `kind`. Only registered kinds are claimed, so workers with
    /// different handlers can share a queue.
    pub fn register(mut self, kind: impl Into<String>, handler: impl JobHandler) -> Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    /// A handle to wake the idle claim loops at once, instead of at their next poll, after an
    /// enqueue in this process has committed.
    pub fn wakeup(&self) -> Wakeup {
        Wakeup(self.notify.clone())
    }

    /// Works until `shutdown` is cancelled, then shuts down as the module note describes.
    pub async fn run(self, shutdown: CancellationToken) {
        let WorkerPool {
            db,
            config,
            handlers,
            notify,
            metrics,
        } = self;
        let mut kinds: Vec<String> = handlers.keys().cloned().collect();
        kinds.sort();
        let instruments = config
            .queues
            .iter()
            .map(|queue| {
                let per_kind = kinds
                    .iter()
                    .map(|kind| {
                        let instruments = match &metrics {
                            Some(metrics) => metrics.job(&queue.name, kind),
                            None => JobInstruments::noop(),
                        };
                        (kind.clone(), instruments)
                    })
                    .collect();
                (queue.name.clone(), per_kind)
            })
            .collect();
        let shared = Arc::new(Shared {
            db,
            config,
            handlers,
            in_flight: Mutex::new(HashMap::new()),
            metrics,
            instruments,
        });
        let (completions, received) = mpsc::channel(MAX_COMPLETIONS * 4);
        let completer_stop = CancellationToken::new();
        let completer = tokio::spawn(complete_loop(
            shared.clone(),
            received,
            completer_stop.clone(),
        ));
        let jobs = TaskTracker::new();
        let loops = TaskTracker::new();
        for queue in shared.config.queues.clone() {
            loops.spawn(claim_loop(
                shared.clone(),
                queue,
                kinds.clone(),
                notify.clone(),
                jobs.clone(),
                completions.clone(),
                shutdown.clone(),
            ));
        }
        drop(completions);
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(shared.clone(), heartbeat_stop.clone()));

        shutdown.cancelled().await;
        loops.close();
        loops.wait().await;
        jobs.close();
        let grace = shared.config.shutdown_grace;
        if tokio::time::timeout(grace, jobs.wait()).await.is_err() {
            let handles: Vec<AbortHandle> = {
                let in_flight = shared.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                in_flight.values().cloned().collect()
            };
            tracing::warn!(
                jobs = handles.len(),
                ?grace,
                "jobs still running after the grace period are released"
            );
            for handle in &handles {
                handle.abort();
            }
            // Aborted handlers end at their next await, and their tasks release the jobs. A
            // handler stuck without awaiting cannot be stopped; release its job directly.
            if tokio::time::timeout(Duration::from_secs(1), jobs.wait())
                .await
                .is_err()
            {
                let ids = shared.in_flight_ids();
                if let Err(err) = store::release(&shared.db, &shared.config.worker_id, &ids).await {
                    tracing::error!(error = %err, "could not release jobs at shutdown");
                }
            }
        }
        completer_stop.cancel();
        let _ = completer.await;
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
    }
}

/// Records successful runs, as many per statement as are waiting, until every sender is gone
/// or `stop` (then the completions already sent are still written).
async fn complete_loop(
    shared: Arc<Shared>,
    mut received: mpsc::Receiver<Completion>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_COMPLETIONS);
    loop {
        let count = tokio::select! {
            count = received.recv_many(&mut batch, MAX_COMPLETIONS) => count,
            _ = stop.cancelled() => {
                received.close();
                received.recv_many(&mut batch, MAX_COMPLETIONS).await
            }
        };
        if count == 0 {
            break;
        }
        let leases: Vec<(i64, i32)> = batch.iter().map(|c| (c.id, c.attempts)).collect();
        match store::complete_many(&shared.db, &shared.config.worker_id, &leases).await {
            Ok(done) => {
                let done: std::collections::HashSet<i64> = done.into_iter().collect();
                for completion in batch.drain(..) {
                    let _ = completion.reply.send(Ok(done.contains(&completion.id)));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for completion in batch.drain(..) {
                    let _ = completion.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Hands a successful run to the completer and waits until it is recorded.
async fn record_done(completions: &mpsc::Sender<Completion>, job: &Job) -> Result<bool, String> {
    let (reply, outcome) = oneshot::channel();
    let completion = Completion {
        id: job.id,
        attempts: job.attempts,
        reply,
    };
    if completions.send(completion).await.is_err() {
        return Err("the completer has stopped".to_string());
    }
    outcome
        .await
        .unwrap_or_else(|_| Err("the completer has stopped".to_string()))
}

/// Gives up the expired leases of `queue` and counts them.
async fn reap(shared: &Shared, queue: &str) {
    match store::reap_expired(&shared.db, queue).await {
        Ok(reaped) => {
            for job in reaped {
                tracing::warn!(%queue, kind = %job.kind, status = job.status.as_str(),
                    "a lease expired; its worker stopped renewing it");
                let instruments = shared.instruments(queue, &job.kind);
                instruments.lease_expired();
                if job.status == JobStatus::Dead {
                    instruments.dead();
                }
            }
        }
        Err(err) => tracing::error!(%queue, error = %err, "giving up expired leases failed"),
    }
}

/// Claims and starts jobs of one queue while slots are free, until `shutdown`.
async fn claim_loop(
    shared: Arc<Shared>,
    queue: QueueConfig,
    kinds: Vec<String>,
    notify: Arc<Notify>,
    jobs: TaskTracker,
    completions: mpsc::Sender<Completion>,
    shutdown: CancellationToken,
) {
    if kinds.is_empty() {
        return;
    }
    let slots = Arc::new(Semaphore::new(queue.concurrency));
    let config = &shared.config;
    let mut next_reap = tokio::time::Instant::now();
    loop {
        // Registered before claiming, so a wake-up during the claim is not lost.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        // Jobs that finished together give their slots back one after another; letting them
        // run first makes one claim of many jobs instead of several claims of a few (on
        // PostgreSQL in `cargo bench --bench queue`: about 12 → 16 jobs per claim).
        tokio::task::yield_now().await;
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if shutdown.is_cancelled() {
            break;
        }
        if tokio::time::Instant::now() >= next_reap {
            reap(&shared, &queue.name).await;
            next_reap = tokio::time::Instant::now() + config.reap_interval;
        }
        let wanted = permits.len();
        let claimed = match store::claim_due(
            &shared.db,
            &queue.name,
            &kinds,
            &config.worker_id,
            config.lease,
            wanted,
        )
        .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::error!(queue = %queue.name, error = %err, "claiming jobs failed");
                Vec::new()
            }
        };
        let idle = claimed.is_empty();
        let drained = claimed.len() < wanted;
        for job in claimed {
            let permit = permits.pop().expect("claimed at most one job per permit");
            jobs.spawn(run_job(shared.clone(), job, completions.clone(), permit));
        }
        drop(permits);
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = woken => {}
                _ = shutdown.cancelled() => break,
            }
        } else if drained && !config.claim_window.is_zero() {
            // The queue had fewer due jobs than free slots: claiming again at once would
            // take the one or two enqueued meanwhile, a statement each. Let them gather.
            tokio::select! {
                _ = tokio::time::sleep(config.claim_window) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }
}

/// Runs one job's handler in its own task and records the outcome. The queue slot is given
/// back as soon as the handler has finished, so the claim loop can claim the next jobs while
/// this outcome is being written (claims and completions overlap instead of alternating).
async fn run_job(
    shared: Arc<Shared>,
    job: Job,
    completions: mpsc::Sender<Completion>,
    slot: OwnedSemaphorePermit,
) {
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
    let job = Arc::new(job);
    let Some(handler) = shared.handlers.get(&job.kind).cloned() else {
        // Not reachable: only registered kinds are claimed.
        return;
    };
    let instruments = shared.instruments(&job.queue, &job.kind);
    let task = {
        let job = job.clone();
        tokio::spawn(async move { handler.handle(&job).await }.instrument(span.clone()))
    };
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(job.id, task.abort_handle());
    let started = std::time::Instant::now();
    let outcome = task.await;
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&job.id);
    let elapsed = started.elapsed();
    drop(slot);
    let db = &shared.db;
    async {
        let failure = match outcome {
            Ok(Ok(())) => {
                match record_done(&completions, &job).await {
                    Ok(true) => {
                        instruments.completed(elapsed);
                        tracing::info!(?elapsed, "job done");
                    }
                    Ok(false) => tracing::warn!("job done, but its lease was lost; it may run again"),
                    Err(err) => tracing::error!(error = %err, "could not record a finished job; it will run again"),
                }
                return;
            }
            Ok(Err(err)) => err,
            Err(err) if err.is_panic() => JobError::retry(format!(
                "handler panicked: {}",
                panic_message(err.into_panic())
            )),
            Err(_) => {
                // Aborted at the end of the shutdown grace period.
                if let Err(err) = store::release(db, &shared.config.worker_id, &[job.id]).await {
                    tracing::error!(error = %err, "could not release an interrupted job");
                }
                return;
            }
        };
        instruments.failed(elapsed);
        match store::fail(db, &job, &failure, &shared.config.backoff).await {
            Ok(Some(JobStatus::Dead)) => {
                instruments.dead();
                tracing::error!(error = %failure, ?elapsed, "job failed for the last time; dead")
            }
            Ok(Some(_)) => {
                instruments.retried();
                tracing::warn!(error = %failure, ?elapsed, "job failed; will retry")
            }
            Ok(None) => tracing::warn!(error = %failure, "job failed, but its lease was lost"),
            Err(err) => tracing::error!(error = %err, "could not record a failed job; it will run again"),
        }
    }
    .instrument(span)
    .await
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

/// Renews the leases of every job in flight until `stop`.
async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let mut ticker = tokio::time::interval(config.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => break,
        }
        let ids = shared.in_flight_ids();
        if ids.is_empty() {
            continue;
        }
        let until = now() + config.lease;
        match store::heartbeat(&shared.db, &config.worker_id, &ids, until).await {
            Ok(held) if held < ids.len() as u64 => tracing::warn!(
                lost = ids.len() as u64 - held,
                "some leases were lost; those jobs may run twice"
            ),
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "renewing leases failed"),
        }
    }
}
