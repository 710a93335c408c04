//! Group commit for SQLite writes.
//!
//! SQLite has one writer, and every commit appends the changed pages to the WAL. When many
//! requests write at once, committing each on its own makes the commit, not the write, the
//! bottleneck. Writes sent here are queued; one task takes everything waiting (up to
//! [`MAX_BATCH`]), runs the writes one after another inside a single transaction on the
//! writer connection, commits once, and only then tells each caller its outcome. Durability
//! is unchanged: no caller hears "done" before the commit that contains its write.
//!
//! A write that fails (a constraint, say) fails alone: SQLite undoes just that statement and
//! the transaction goes on. If the commit itself fails, every write in the batch is told so.

use async_trait::async_trait;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::mpsc;

/// Most writes committed together; bounds the time a batch holds the writer.
pub const MAX_BATCH: usize = 64;

/// One write that can share a transaction with others.
#[async_trait]
pub trait BatchedWrite: Send {
    /// Runs the write inside the shared transaction, keeping its own outcome.
    async fn run(&mut self, conn: &mut SqliteConnection);
    /// Reports the outcome once the batch is committed, or `commit_error` if it was not.
    fn finish(self: Box<Self>, commit_error: Option<&sqlx::Error>);
}

#[derive(Clone, Debug)]
pub struct GroupCommit {
    sender: mpsc::Sender<Box<dyn BatchedWrite>>,
}

impl std::fmt::Debug for dyn BatchedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchedWrite")
    }
}

impl GroupCommit {
    /// Starts the committing task on `writer`. It ends when every handle is dropped.
    pub fn start(writer: SqlitePool) -> Self {
        // Bounded: a burst beyond this waits at `submit` instead of growing memory.
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 16);
        tokio::spawn(run(writer, receiver));
        Self { sender }
    }

    /// Queues a write; its `finish` is called when its batch is done. Returns the write back
    /// if the committing task is gone (the database is closing).
    pub async fn submit(&self, write: Box<dyn BatchedWrite>) -> Result<(), Box<dyn BatchedWrite>> {
        self.sender.send(write).await.map_err(|e| e.0)
    }
}

async fn run(writer: SqlitePool, mut receiver: mpsc::Receiver<Box<dyn BatchedWrite>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcome = commit_batch(&writer, &mut batch).await;
        for write in batch.drain(..) {
            write.finish(outcome.as_ref().err());
        }
    }
}

async fn commit_batch(
    writer: &SqlitePool,
    batch: &mut [Box<dyn BatchedWrite>],
) -> Result<(), sqlx::Error> {
    let mut conn = writer.acquire().await?;
    let mut tx = conn.begin().await?;
    for write in batch.iter_mut() {
        write.run(&mut tx).await;
    }
    tx.commit().await
}
