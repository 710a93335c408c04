//! Which jobs this server runs, and on what: the handlers it registers (`image.optimize` and
//! `image.webp`, both on the images queue), and the runtime the configuration picks. Without `broker`, database workers claim jobs from the `jobs` table.
//! With `broker = "amqp://…"`, a relay publishes committed jobs from that table (the outbox)
//! to RabbitMQ and consumers run the same handlers on the deliveries.
//!
//! `serve` starts this in-process (unless `workers = false`); `ballpark worker` starts only
//! this. The RabbitMQ relay and consumers reconnect on their own, with backoff, when the
//! broker goes away; the broker must be reachable at start, so a wrong URL fails loudly.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::Db;
use crate::media::jobs::{self, ImageJobs, MakeWebp, OptimizeImage};
use crate::media::pool::ImagePool;
use crate::media::storage::Storage;
use crate::orders::jobs::OrderJobs;
use crate::orders::metrics::OrderMetrics;
use crate::orders::{Orders, JOB_KINDS as ORDER_JOBS};
use crate::queue::amqp::relay::{Relay, RelayConfig};
use crate::queue::amqp::worker::{AmqpWorker, AmqpWorkerConfig};
use crate::queue::amqp::Broker;
use crate::queue::{QueueMetrics, Wakeup, WorkerConfig, WorkerPool};

/// What the image jobs share; `pool` is shared by both kinds, so `image_workers` caps the
/// pictures decoded at once in this process whichever job decodes them.
fn image_jobs(
    db: &Db,
    storage: &Storage,
    config: &Config,
    pool: &ImagePool,
    wakeup: Option<Wakeup>,
) -> ImageJobs {
    ImageJobs {
        db: db.clone(),
        storage: storage.clone(),
        limits: crate::media::Limits {
            max_pixels: config.max_image_pixels,
            time_budget: Some(std::time::Duration::from_secs(
                config.image_job_timeout_secs,
            )),
            ..crate::media::Limits::default()
        },
        queue: config.images_queue.clone(),
        pool: pool.clone(),
        wakeup,
    }
}

/// What the job handlers work with.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    pub db: &'a Db,
    pub storage: &'a Storage,
    pub config: &'a Config,
    pub orders: &'a Orders,
    pub metrics: &'a QueueMetrics,
}

/// Starts the job runtime on `tasks`; it stops when `shutdown` is cancelled. `consume` says
/// whether this process runs handlers (the relay always runs when a broker is configured,
/// since this process may enqueue). Returns a handle that wakes in-process database workers
/// after an enqueue, if there are any.
pub async fn start(
    services: Services<'_>,
    consume: bool,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<Wakeup>> {
    let Services {
        db,
        storage,
        config,
        orders,
        metrics,
    } = services;
    let queue = config.images_queue.clone();
    let Some(url) = config.broker.as_ref().map(|u| u.expose().to_string()) else {
        if !consume {
            return Ok(None);
        }
        let mut pool = WorkerPool::new(
            db.clone(),
            WorkerConfig {
                lease: Duration::from_secs(config.job_lease_secs),
                heartbeat_interval: Duration::from_secs(config.job_lease_secs).div_f64(3.0),
                backoff: backoff(config),
                ..WorkerConfig::default()
            }
            .queue(&queue, config.image_workers)
            .queue(&config.orders_queue, config.orders_workers),
        )
        .metrics(metrics.clone());
        let order_metrics = OrderMetrics::new(metrics.recorder());
        for kind in ORDER_JOBS {
            pool = pool.register(kind, OrderJobs(orders.clone(), order_metrics.clone()));
        }
        let wakeup = pool.wakeup();
        let images_pool = ImagePool::new(config.image_workers, config.image_worker_nice)?;
        let images = image_jobs(db, storage, config, &images_pool, Some(wakeup.clone()));
        let pool = pool
            .register(jobs::OPTIMIZE, OptimizeImage(images.clone()))
            .register(jobs::WEBP, MakeWebp(images));
        tasks.spawn(pool.run(shutdown));
        return Ok(Some(wakeup));
    };

    // Declare the topology once before relays and consumers start (see queue::amqp).
    let broker = Broker::connect(&url).await?;
    let channel = broker.channel().await?;
    broker.declare(&channel, &queue).await?;
    broker.declare(&channel, &config.orders_queue).await?;
    broker.close().await;

    let relay = {
        let (db, url, token) = (db.clone(), url.clone(), shutdown.clone());
        let queues = [queue.clone(), config.orders_queue.clone()];
        let metrics = metrics.clone();
        supervise("outbox relay", shutdown.clone(), move || {
            let (db, url, queues, token) = (db.clone(), url.clone(), queues.clone(), token.clone());
            let metrics = metrics.clone();
            async move {
                let broker = Broker::connect(&url).await?;
                let relay_config = queues
                    .into_iter()
                    .fold(RelayConfig::default(), RelayConfig::queue);
                let relay = Relay::new(&broker, db, relay_config)
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
        let orders = orders.clone();
        let (token, metrics) = (shutdown.clone(), metrics.clone());
        tasks.spawn(supervise("amqp consumer", shutdown, move || {
            let (db, storage, config, url, token, orders, metrics) = (
                db.clone(),
                storage.clone(),
                config.clone(),
                url.clone(),
                token.clone(),
                orders.clone(),
                metrics.clone(),
            );
            async move {
                let broker = Broker::connect(&url).await?;
                let images_pool = ImagePool::new(config.image_workers, config.image_worker_nice)?;
                let images = image_jobs(&db, &storage, &config, &images_pool, None);
                let mut worker = AmqpWorker::new(
                    db.clone(),
                    AmqpWorkerConfig {
                        backoff: backoff(&config),
                        ..AmqpWorkerConfig::default()
                    }
                    .queue(&config.images_queue, config.image_workers)
                    .queue(&config.orders_queue, config.orders_workers),
                )
                .register(jobs::OPTIMIZE, OptimizeImage(images.clone()))
                .register(jobs::WEBP, MakeWebp(images))
                .metrics(metrics.clone());
                let order_metrics = OrderMetrics::new(metrics.recorder());
                for kind in ORDER_JOBS {
                    worker =
                        worker.register(kind, OrderJobs(orders.clone(), order_metrics.clone()));
                }
                let result = worker.run(broker.clone(), token).await;
                broker.close().await;
                result
            }
        }));
    }
    Ok(None)
}

/// Retry delays of failed jobs (`job_retry_base_ms`, doubling, at most an hour, ±25 %).
fn backoff(config: &Config) -> crate::queue::Backoff {
    crate::queue::Backoff {
        base: Duration::from_millis(config.job_retry_base_ms),
        ..crate::queue::Backoff::default()
    }
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
