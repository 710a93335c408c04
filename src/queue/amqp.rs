//! The RabbitMQ backend, for when one machine is not enough: the `jobs` table stays the
//! outbox, a [`Relay`] hands committed jobs to RabbitMQ, and an [`AmqpWorker`] runs the same
//! [`JobHandler`](super::JobHandler)s as the database worker on the deliveries.
//!
//! ## How a job flows
//! 1. The business transaction inserts the job row ([`enqueue_sqlite`](super::enqueue_sqlite)
//!    / [`enqueue_postgres`](super::enqueue_postgres)), exactly as on the database backend, so
//!    a rolled-back write never reaches the broker.
//! 2. The [`Relay`] reads due (`run_at <= now`), unpublished (`published_at IS NULL`) jobs in
//!    batches, publishes them persistent and `mandatory` on a confirm-mode channel, and sets
//!    `published_at` only for the jobs the broker acknowledged. A crash between the confirm
//!    and the mark publishes a job twice; consumers dedupe. On PostgreSQL the batch is read
//!    `FOR UPDATE SKIP LOCKED` inside a transaction held across the confirms, so several
//!    relays do not publish the same jobs; on SQLite (one node) the single write connection
//!    is not held while waiting for the broker, so the mark applies only to rows still
//!    `queued` with the attempts the relay read: a job a fast consumer already ran (and
//!    perhaps put back for a retry) is not marked, and is published again when due.
//! 3. Each queue is a durable quorum queue with a delivery limit and a dead-letter exchange
//!    `<queue>.dead` (fanout) bound to a `<queue>.dead` queue, declared identically by relay
//!    and worker (see [`Broker::declare`]).
//! 4. The [`AmqpWorker`] consumes with manual acks and a per-queue prefetch (which is the
//!    queue's concurrency limit). Per delivery: skip (ack) if the message id is in
//!    `processed_messages`; otherwise mark the job row `running`, run the handler, then record
//!    the id and mark the row `done` in one transaction, and only then ack. The records of
//!    deliveries that finish together share that transaction (one commit for many messages).
//!
//! ## What a newcomer must know
//! - **Message id = job id**, and dedup is by that id in `processed_messages`. A
//!   [`TxJobHandler`] (registered with [`AmqpWorker::register_transactional`]) writes its
//!   effect in the transaction that inserts the id and marks the job done, so its effect
//!   happens exactly once, across processes too. A plain [`JobHandler`](super::JobHandler)
//!   takes no transaction: its id is recorded right after it succeeds, so a redelivery after
//!   that is acked without running, but a crash between the effect and the record runs it
//!   again; such handlers stay idempotent, as on the database backend. Duplicates arriving
//!   at the same time in one process wait for each other.
//! - **Retries go back through the outbox, with backoff.** A retryable failure puts the job
//!   row back to `queued` with `run_at` = now + the backoff delay (exponential, with jitter)
//!   and `published_at` cleared, and only then acks the delivery; the relay publishes it again
//!   when it is due. (RabbitMQ has no per-message delay without a plugin; a plain requeue
//!   would retry at once, hammering a vendor that is down.) A permanent error, or a job out
//!   of its `max_attempts`, is rejected without requeue and goes to the dead-letter queue at
//!   once. The broker's `x-delivery-limit` still bounds a message that never gets settled
//!   (its consumer dies mid-run every time). The job row follows (`queued` / `dead` with
//!   `last_error`), so `stats` and the dead-job admin views work on this backend too;
//!   retrying a dead job clears `published_at` (a trigger), so the relay publishes it again.
//! - **Run one backend per queue.** The database [`WorkerPool`](super::WorkerPool) does not
//!   look at `published_at`; a queue worked by both would run jobs twice.
//! - **Declare the topology once at startup** ([`Broker::declare`]), before starting relays
//!   and workers. They declare their queues again (idempotent), but RabbitMQ 3.10 can fail a
//!   `basic.consume` on a quorum queue that another channel is still creating, and then
//!   closes the whole connection (541 INTERNAL_ERROR; seen in this crate's tests).
//! - Changing a queue's delivery limit means deleting the queue first: RabbitMQ refuses a
//!   redeclaration with different arguments.

pub mod relay;
pub mod worker;

use std::sync::Arc;

use anyhow::Context;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

pub use relay::{Relay, RelayConfig};
pub use worker::{AmqpWorker, AmqpWorkerConfig, InTransaction, Tx, TxJobHandler};

/// Failed deliveries a message gets before the broker dead-letters it, unless
/// [`Broker::delivery_limit`] says otherwise.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 5;

/// A connection to RabbitMQ and the queue settings every declaration uses. Cheap to clone;
/// clones share the connection.
#[derive(Clone)]
pub struct Broker {
    connection: Arc<Connection>,
    delivery_limit: u32,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connected", &self.connection.status().connected())
            .field("delivery_limit", &self.delivery_limit)
            .finish()
    }
}

/// The name of the dead-letter exchange and queue of `queue`.
pub fn dead_letter_name(queue: &str) -> String {
    format!("{queue}.dead")
}

impl Broker {
    /// Connects to `url` (`amqp://user:password@host:port/vhost`).
    pub async fn connect(url: &str) -> anyhow::Result<Broker> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .with_context(|| format!("while connecting to RabbitMQ at {}", redact(url)))?;
        Ok(Broker {
            connection: Arc::new(connection),
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
        })
    }

    /// Sets the `x-delivery-limit` of the queues this broker declares (at least 1).
    pub fn delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    pub fn configured_delivery_limit(&self) -> u32 {
        self.delivery_limit
    }

    pub async fn channel(&self) -> Result<Channel, lapin::Error> {
        self.connection.create_channel().await
    }

    /// Declares `queue` (durable quorum queue with a delivery limit) and its dead-letter
    /// exchange and queue. Idempotent while the arguments stay the same.
    pub async fn declare(&self, channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
        let dead = dead_letter_name(queue);
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .exchange_declare(
                dead.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), long_string("quorum"));
        channel
            .queue_declare(dead.as_str().into(), durable, dead_args)
            .await?;
        channel
            .queue_bind(
                dead.as_str().into(),
                dead.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_string("quorum"));
        args.insert("x-dead-letter-exchange".into(), long_string(&dead));
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.delivery_limit.min(i32::MAX as u32) as i32),
        );
        // At-least-once dead-lettering: the message leaves the queue only once the dead
        // queue has it (the default, at-most-once, may lose it). Requires `reject-publish`.
        args.insert(
            "x-dead-letter-strategy".into(),
            long_string("at-least-once"),
        );
        args.insert("x-overflow".into(), long_string("reject-publish"));
        channel.queue_declare(queue.into(), durable, args).await?;
        Ok(())
    }

    /// Deletes `queue`, its dead-letter queue and exchange, with their messages (tests and
    /// tooling; nothing in the app deletes queues).
    pub async fn delete(&self, queue: &str) -> Result<(), lapin::Error> {
        let channel = self.channel().await?;
        let dead = dead_letter_name(queue);
        channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await?;
        channel
            .queue_delete(dead.as_str().into(), QueueDeleteOptions::default())
            .await?;
        channel
            .exchange_delete(dead.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
        channel.close(200, "deleted".into()).await
    }

    /// Closes the connection (after the relay and workers have closed their channels).
    pub async fn close(&self) {
        if self.connection.status().connected() {
            if let Err(err) = self.connection.close(200, "shutdown".into()).await {
                tracing::warn!(error = %err, "closing the RabbitMQ connection failed");
            }
        }
    }
}

/// Forgets processed message ids recorded before `before`; returns how many. Only safe for
/// ids no copy of which can still be in a queue or in flight: purge well after the longest a
/// message can wait (hours or days, not minutes).
pub async fn purge_processed(
    db: &crate::db::Db,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sqlx::Error> {
    crate::on_write!(db, pool => sqlx::query(
        "DELETE FROM processed_messages WHERE processed_at < $1",
    )
    .bind(before)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
}

fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(text.into())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// An integer header of a message, whatever integer type the sender used.
fn header_int(headers: &Option<FieldTable>, name: &str) -> Option<i64> {
    let value = headers.as_ref()?.inner().get(&ShortString::from(name))?;
    Some(match value {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok()?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
    }

    #[test]
    fn integer_headers_are_read_whatever_their_width() {
        let mut table = FieldTable::default();
        table.insert("a".into(), AMQPValue::LongLongInt(7));
        table.insert("b".into(), AMQPValue::ShortUInt(3));
        table.insert("c".into(), long_string("x"));
        let headers = Some(table);
        assert_eq!(header_int(&headers, "a"), Some(7));
        assert_eq!(header_int(&headers, "b"), Some(3));
        assert_eq!(header_int(&headers, "c"), None);
        assert_eq!(header_int(&headers, "d"), None);
        assert_eq!(header_int(&None, "a"), None);
    }
}

/// One broker queue's depth as RabbitMQ reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerQueue {
    pub name: String,
    /// Messages ready for delivery (not counting those delivered and not yet acknowledged).
    pub messages: u32,
    pub consumers: u32,
}

/// Each of `queues` and its dead-letter queue, by passive declare (which creates nothing and
/// fails for a queue that does not exist), within `limit` in all: the admin dashboard shows
/// "unavailable" instead of waiting on a broker that does not answer.
pub async fn queue_depths(
    url: &str,
    queues: &[String],
    limit: std::time::Duration,
) -> anyhow::Result<Vec<BrokerQueue>> {
    let read = async {
        let broker = Broker::connect(url).await?;
        let mut depths = Vec::new();
        let result: anyhow::Result<()> = async {
            for queue in queues {
                for name in [queue.clone(), dead_letter_name(queue)] {
                    // A failed passive declare closes its channel: one channel per queue.
                    let channel = broker.channel().await?;
                    let declared = channel
                        .queue_declare(
                            name.as_str().into(),
                            QueueDeclareOptions {
                                passive: true,
                                ..QueueDeclareOptions::default()
                            },
                            FieldTable::default(),
                        )
                        .await
                        .with_context(|| format!("while reading the depth of {name}"))?;
                    depths.push(BrokerQueue {
                        name,
                        messages: declared.message_count(),
                        consumers: declared.consumer_count(),
                    });
                    let _ = channel.close(200, "done".into()).await;
                }
            }
            Ok(())
        }
        .await;
        broker.close().await;
        result.map(|()| depths)
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| anyhow::anyhow!("RabbitMQ did not answer within {limit:?}"))?
}
