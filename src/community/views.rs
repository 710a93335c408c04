//! Article view counts, buffered in memory and written in batches.
//!
//! A write transaction per `GET /api/articles/:slug` would turn the hottest read into a write
//! and serialise it behind SQLite's single writer. Instead each view bumps a counter in memory;
//! a background task adds the counts to the database every `view_flush_interval_ms`, and once
//! more at shutdown. The trade-off, stated in the README: a crash (not a clean shutdown) loses
//! at most the views of the last interval.
//!
//! A response shows the stored count plus the views still in memory. So that no reader sees a
//! count go backwards, the two must be read consistently with a flush: reads hold a shared
//! gate while they read both; a flush holds it exclusively while it writes and subtracts what
//! it wrote. The exclusive hold starts once the write connection is in hand, so it lasts one
//! small batched write per interval, not the wait for the writer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard};
use tokio_util::sync::CancellationToken;

use crate::community::store::articles;
use crate::db::Db;

#[derive(Default)]
pub struct ViewCounter {
    pending: Mutex<HashMap<i64, i64>>,
    gate: RwLock<()>,
}

impl ViewCounter {
    /// Hold this while reading an article from the database and then its unflushed views.
    pub async fn read_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Records one view and returns the views not yet flushed for this article (including
    /// this one), so the response can show an up-to-date count.
    pub fn record(&self, article_id: i64) -> i64 {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let count = pending.entry(article_id).or_insert(0);
        *count += 1;
        *count
    }

    /// Views recorded but not yet written, for articles shown without recording a view.
    pub fn unflushed(&self, article_id: i64) -> i64 {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(&article_id).copied().unwrap_or(0)
    }

    /// Writes the buffered counts. They stay in memory until the write commits, then what was
    /// written is subtracted; on failure nothing is lost and the next flush retries.
    pub async fn flush(&self, db: &Db) {
        if self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            return;
        }
        let written = articles::add_views(db, || async {
            let exclusive = self.gate.write().await;
            let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let batch = pending.iter().map(|(id, count)| (*id, *count)).collect();
            (exclusive, batch)
        })
        .await;
        match written {
            Ok((_exclusive, batch)) => {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for (id, written) in batch {
                    if let Some(count) = pending.get_mut(&id) {
                        *count -= written;
                        if *count <= 0 {
                            pending.remove(&id);
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "flushing view counts failed; will retry"),
        }
    }

    /// Flushes every `interval` until `shutdown`, then flushes a last time.
    pub async fn run(&self, db: Db, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.flush(&db).await,
                _ = shutdown.cancelled() => break,
            }
        }
        self.flush(&db).await;
    }
}
