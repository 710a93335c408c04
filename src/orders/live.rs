//! Live order updates over server-sent events: a customer follows one order
//! (`GET /api/orders/{id}/events`), a store owner follows every order of the store
//! (`GET /api/stores/{id}/orders/events`).
//!
//! ## Where the events come from
//! The order history table is the source: a stream sends the history rows after its cursor
//! (the last row id it sent, which the browser returns as `Last-Event-ID` on reconnect). A
//! transition may commit in another process (a `ballpark worker`), so streams re-read the
//! table every [`POLL`]; a transition committed in this process also pokes the [`LiveHub`],
//! which wakes the streams at once.
//!
//! ## When a stream ends
//! An order's stream ends after it has sent the order's terminal event (picked up, payment
//! failed, refunded, or cancelled with no money in flight): the state is read *before* the
//! history, and both are written in one transaction, so a terminal state seen means its row
//! is in the batch read next. A store's stream runs until the client leaves or the server
//! shuts down.
//!
//! On PostgreSQL, ids from a sequence are handed out before commit, so a store's stream could
//! see id 8 before id 7 commits. One order's rows are written under the order's row lock, so
//! per order they commit in id order; the store stream therefore re-reads a short window
//! behind its cursor and skips rows it has already sent.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::store::{self, HistoryRow, HistoryScope};
use crate::db::Db;

/// How often a stream re-reads the history without being poked.
pub const POLL: Duration = Duration::from_secs(1);
/// How far behind its cursor a store stream looks again (see the module notes).
const REREAD_WINDOW: i64 = 64;
/// History rows read at once.
const BATCH: i64 = 200;
/// Live streams open at once per process; each holds a task and reads the database once a
/// second. More are refused with 429 (`Retry-After`).
pub const MAX_STREAMS: usize = 1024;

/// Wakes this process's streams after a transition commits. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    tx: watch::Sender<u64>,
    streams: Arc<Semaphore>,
    /// Ends every stream when the server starts shutting down, so open streams do not hold
    /// up the drain.
    shutdown: CancellationToken,
}

impl LiveHub {
    pub fn new(shutdown: CancellationToken) -> Self {
        LiveHub {
            tx: watch::channel(0).0,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            shutdown,
        }
    }

    pub fn poke(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

/// Which history a stream follows.
#[derive(Debug, Clone)]
pub enum Follow {
    Order(String),
    Store(i64),
}

/// The SSE stream of history rows after `after`, ending after an order's terminal event or
/// at shutdown; `None` when [`MAX_STREAMS`] are open already.
pub fn stream(
    db: Db,
    hub: LiveHub,
    follow: Follow,
    after: i64,
) -> Option<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let permit = hub.streams.clone().try_acquire_owned().ok()?;
    let mut poked = hub.subscribe();
    let shutdown = hub.shutdown.clone();
    let stream = async_stream(move |yielder| async move {
        let _permit = permit;
        let mut cursor = after;
        let mut sent: BTreeSet<i64> = BTreeSet::new();
        loop {
            let (scope, from) = match &follow {
                Follow::Order(id) => (HistoryScope::Order(id), cursor),
                Follow::Store(id) => (
                    HistoryScope::Store(*id),
                    (cursor - REREAD_WINDOW).max(after),
                ),
            };
            let finished = match &follow {
                Follow::Order(id) => store::is_terminal(&db, id).await.unwrap_or(false),
                Follow::Store(_) => false,
            };
            match store::history_after(&db, scope, from, BATCH).await {
                Ok(rows) => {
                    let complete = (rows.len() as i64) < BATCH;
                    for row in rows {
                        if row.id <= after || !sent.insert(row.id) {
                            continue;
                        }
                        cursor = cursor.max(row.id);
                        if yielder.send(Ok(event(&row))).await.is_err() {
                            return; // the client went away
                        }
                    }
                    // Forget what the re-read window can no longer return.
                    sent = sent.split_off(&(cursor - REREAD_WINDOW));
                    if finished && complete {
                        return; // the terminal event is sent: end the stream
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "live order stream could not read the history")
                }
            }
            tokio::select! {
                _ = poked.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = yielder.closed() => return, // the client went away
                _ = shutdown.cancelled() => return,
            }
        }
    });
    Some(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn event(row: &HistoryRow) -> Event {
    let data = serde_json::json!({
        "orderId": row.order_id,
        "storeId": row.store_id,
        "event": row.event,
        "status": row.status,
        "detail": row.detail,
        "at": crate::community::timestamp(row.at),
    });
    Event::default()
        .id(row.id.to_string())
        .event("order")
        .data(data.to_string())
}

/// A stream fed by a task through a bounded channel (the task stops when the receiver drops).
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Event, Infallible>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
