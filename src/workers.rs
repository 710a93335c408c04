//! Which jobs this server runs, and on what: the handlers it registers, and the runtime the
//! configuration picks. Without `broker`, database workers claim jobs from the `jobs` table.
//! With `broker = "amqp://…"`, a relay publishes committed jobs from that table (the outbox)
//! to RabbitMQ and consumers run the same handlers on the deliveries.
//!
//! `serve` starts this in-process (unless `workers = false`); `ballpark worker` starts only
//! this. The RabbitMQ relay and consumers reconnect on their own, with backoff, when the
//! broker goes away; the broker must be reachable at start, so a wrong URL fails loudly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::Db;
use crate::media::storage::Storage;
use crate::media::uploads::{OptimizeImage, KIND as IMAGE_JOB};
use crate::queue::amqp::relay::{Relay, RelayConfig};
use crate::queue::amqp::worker::{AmqpWorker, AmqpWorkerConfig};
use crate::queue::amqp::Broker;
use crate::queue::{QueueMetrics, Wakeup, WorkerConfig, WorkerPool};

fn image_handler(db: &Db, storage: &Storage, config: &Config) -> OptimizeImage {
    OptimizeImage {
        db: db.clone(),
        storage: storage.clone(),
        limits: crate::media::Limits {
            max_pixels: config.max_image_pixels,
            ..crate::media::Limits::default()
        },
        permits: Arc::new(tokio::sync::Semaphore::new(config.image_workers)),
    }
}

/// Starts the job runtime on `tasks`; it stops when `shutdown` is cancelled. `consume` says
/// whether this process runs handlers (the relay always runs when a broker is configured,
/// since this process may enqueue). Returns a handle that wakes in-process database workers
/// after an enqueue, if there are any.
pub async fn start(
    db: &Db,
    storage: &Storage,
    config: &Config,
    metrics: &QueueMetrics,
    consume: bool,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<Wakeup>> {
    let queue = config.images_queue.clone();
    let Some(url) = config.broker.as_ref().map(|u| u.expose().to_string()) else {
        if !consume {
            return Ok(None);
        }
        let pool = WorkerPool::new(
            db.clone(),
            WorkerConfig {
                lease: Duration::from_secs(config.job_lease_secs),
                heartbeat_interval: Duration::from_secs(config.job_lease_secs).div_f64(3.0),
                ..WorkerConfig::default()
            }
            .queue(&queue, config.image_workers),
        )
        .register(IMAGE_JOB, image_handler(db, storage, config))
        .metrics(metrics.clone());
        let wakeup = pool.wakeup();
        tasks.spawn(pool.run(shutdown));
        return Ok(Some(wakeup));
    };

    // Declare the topology once before relays and consumers start (see queue::amqp).
    let broker = Broker::connect(&url).await?;
    broker.declare(&broker.channel().await?, &queue).await?;
    broker.close().await;

    let relay = {
        let (db, url, queue, token) = (db.clone(), url.clone(), queue.clone(), shutdown.clone());
        let metrics = metrics.clone();
        supervise("outbox relay", shutdown.clone(), move || {
            let (db, url, queue, token) = (db.clone(), url.clone(), queue.clone(), token.clone());
            let metrics = metrics.clone();
            async move {
                let broker = Broker::connect(&url).await?;
                let relay = Relay::new(&broker, db, RelayConfig::default().queue(queue))
                    .await?
                    .metrics(metrics);
                let result = relay.run(token).await;
                broker.close().await;
                result
            }
        })
    };
    tasks.spawn(relay);
    if consume {
        let (db, storage, config) = (db.clone(), storage.clone(), config.clone());
        let (token, metrics) = (shutdown.clone(), metrics.clone());
        tasks.spawn(supervise("amqp consumer", shutdown, move || {
            let (db, storage, config, url, token, metrics) = (
                db.clone(),
                storage.clone(),
                config.clone(),
                url.clone(),
                token.clone(),
                metrics.clone(),
            );
            async move {
                let broker = Broker::connect(&url).await?;
                let worker = AmqpWorker::new(
                    db.clone(),
                    AmqpWorkerConfig::default().queue(&config.images_queue, config.image_workers),
                )
                .register(IMAGE_JOB, image_handler(&db, &storage, &config))
                .metrics(metrics);
                let result = worker.run(broker.clone(), token).await;
                broker.close().await;
                result
            }
        }));
    }
    Ok(None)
}

/// Runs `run` until it returns `Ok` (a clean stop) or `shutdown` is cancelled; after an error
/// it waits (1 s, doubling to 30 s) and starts it again.
async fn supervise<F, Fut>(name: &'static str, shutdown: CancellationToken, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut delay = Duration::from_secs(1);
    loop {
        match run().await {
            Ok(()) => break,
            Err(err) => tracing::error!(
                task = name,
                error = format!("{err:#}"),
                ?delay,
                "stopped; restarting"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
