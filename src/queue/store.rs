//! The queue's SQL: every statement that touches `jobs`.
//!
//! One SQL text serves both backends; the only dialect difference is `FOR UPDATE SKIP
//! LOCKED` when claiming on PostgreSQL, where many workers claim at once. SQLite has one
//! writer connection, so a claim there is already exclusive. Lists of ids or kinds are bound
//! as `$n, $n+1, …` placeholders, which both backends accept.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection, SqliteConnection};

use super::{now, Backoff, Job, JobError, JobStatus, NewJob};
use crate::db::group_commit::BatchedWrite;
use crate::db::{Backend, Db};
use crate::{on_read, on_write};

const JOB_COLUMNS: &str = "id, queue, kind, payload, status, attempts, max_attempts, run_at, \
     locked_by, locked_until, last_error, dedup_key, created_at, started_at, finished_at";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    queue: String,
    kind: String,
    payload: String,
    status: String,
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    locked_by: Option<String>,
    locked_until: Option<DateTime<Utc>>,
    last_error: Option<String>,
    dedup_key: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobRow> for Job {
    type Error = sqlx::Error;

    fn try_from(row: JobRow) -> Result<Job, sqlx::Error> {
        let decode = |what: &str, err: String| sqlx::Error::ColumnDecode {
            index: what.into(),
            source: err.into(),
        };
        Ok(Job {
            payload: serde_json::from_str(&row.payload)
                .map_err(|e| decode("payload", e.to_string()))?,
            status: JobStatus::parse(&row.status)
                .ok_or_else(|| decode("status", format!("unknown status {:?}", row.status)))?,
            id: row.id,
            queue: row.queue,
            kind: row.kind,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            locked_by: row.locked_by,
            locked_until: row.locked_until,
            last_error: row.last_error,
            dedup_key: row.dedup_key,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

fn into_jobs(rows: Vec<JobRow>) -> Result<Vec<Job>, sqlx::Error> {
    rows.into_iter().map(Job::try_from).collect()
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const INSERT_JOB: &str = "INSERT INTO jobs \
       (queue, kind, payload, max_attempts, run_at, dedup_key, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, COALESCE($5, $6), $7, $6, $6) \
     ON CONFLICT (queue, dedup_key) \
       WHERE dedup_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING \
     RETURNING id";

const PENDING_BY_KEY: &str = "SELECT id FROM jobs \
     WHERE queue = $1 AND dedup_key = $2 AND status IN ('queued', 'running')";

/// The enqueue, written once and compiled for each backend's connection type.
///
/// With a dedup key, the insert may find a pending job holding the key; its id is returned.
/// That job can finish between our insert and our look-up, so the pair is retried.
macro_rules! enqueue_on {
    ($conn:expr, $job:expr) => {{
        let conn = $conn;
        let job: &NewJob = $job;
        let payload = job.payload.to_string();
        let mut outcome = Err(sqlx::Error::RowNotFound);
        for _ in 0..3 {
            let inserted: Option<i64> = sqlx::query_scalar(INSERT_JOB)
                .bind(&job.queue)
                .bind(&job.kind)
                .bind(&payload)
                .bind(job.max_attempts.max(1))
                .bind(job.run_at.map(super::to_millis))
                .bind(now())
                .bind(&job.dedup_key)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(id) = inserted {
                outcome = Ok(id);
                break;
            }
            let existing: Option<i64> = sqlx::query_scalar(PENDING_BY_KEY)
                .bind(&job.queue)
                .bind(&job.dedup_key)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(id) = existing {
                outcome = Ok(id);
                break;
            }
        }
        outcome
    }};
}

/// Enqueues `job` inside the caller's SQLite transaction (pass `&mut tx`): the job exists
/// exactly when the transaction commits. Returns the job id, or the id of the pending job
/// that already holds `job.dedup_key`.
pub async fn enqueue_sqlite(conn: &mut SqliteConnection, job: &NewJob) -> Result<i64, sqlx::Error> {
    enqueue_on!(conn, job)
}

/// [`enqueue_sqlite`] for a PostgreSQL transaction.
pub async fn enqueue_postgres(conn: &mut PgConnection, job: &NewJob) -> Result<i64, sqlx::Error> {
    enqueue_on!(conn, job)
}

/// Enqueues `job` on its own, for work not tied to another write. It shares a commit with the
/// other writes waiting at that moment: on SQLite through [`crate::db::group_commit`], on
/// PostgreSQL through [`PgEnqueuer`] (one statement for all). It returns once that commit is
/// done.
pub async fn enqueue(db: &Db, job: NewJob) -> Result<i64, sqlx::Error> {
    match db {
        Db::Sqlite { group, .. } => {
            let (reply, outcome) = tokio::sync::oneshot::channel();
            let write = Box::new(EnqueueWrite {
                job,
                result: None,
                reply,
            });
            if group.submit(write).await.is_err() {
                return Err(sqlx::Error::PoolClosed);
            }
            outcome.await.map_err(|_| sqlx::Error::PoolClosed)?
        }
        // A dedup key may name a pending job, whose id is the answer: the batch statement
        // cannot tell that, so such a job is enqueued on its own.
        Db::Postgres { pool, .. } if job.dedup_key.is_some() => {
            let mut conn = pool.acquire().await?;
            enqueue_postgres(&mut conn, &job).await
        }
        Db::Postgres { enqueuer, .. } => enqueuer.enqueue(job).await,
    }
}

/// Most jobs [`PgEnqueuer`] writes in one statement.
const PG_GROUP_MAX: usize = 256;

/// Standalone enqueues on PostgreSQL, written together.
///
/// Each commit on PostgreSQL costs a round trip and a WAL flush; on this project's 2-core
/// machines a round trip is about 0.35 ms, so callers enqueueing one job each would spend
/// their time committing. A task takes every enqueue waiting (up to [`PG_GROUP_MAX`]) and
/// inserts them with one statement, which is one transaction; each caller hears its job's id
/// once that statement has committed, never before. While one statement runs, the next batch
/// gathers. Durability is that of a single enqueue. A caller that stops waiting does not
/// withdraw its job: it may be stored anyway, as with any request whose answer is lost.
#[derive(Clone, Debug)]
pub struct PgEnqueuer {
    sender: tokio::sync::mpsc::Sender<PendingEnqueue>,
}

type PendingEnqueue = (
    NewJob,
    tokio::sync::oneshot::Sender<Result<i64, sqlx::Error>>,
);

impl PgEnqueuer {
    /// Starts the writing task on `pool`; it ends when every handle is dropped.
    pub fn start(pool: sqlx::PgPool) -> Self {
        // Bounded: a burst beyond this waits in `enqueue` instead of growing memory.
        let (sender, receiver) = tokio::sync::mpsc::channel(PG_GROUP_MAX * 8);
        tokio::spawn(run_pg_enqueuer(pool, receiver));
        PgEnqueuer { sender }
    }

    async fn enqueue(&self, job: NewJob) -> Result<i64, sqlx::Error> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        if self.sender.send((job, reply)).await.is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        outcome.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn run_pg_enqueuer(
    pool: sqlx::PgPool,
    mut receiver: tokio::sync::mpsc::Receiver<PendingEnqueue>,
) {
    let mut batch = Vec::with_capacity(PG_GROUP_MAX);
    while receiver.recv_many(&mut batch, PG_GROUP_MAX).await > 0 {
        let jobs: Vec<&NewJob> = batch.iter().map(|(job, _)| job).collect();
        match insert_batch_postgres(&pool, &jobs).await {
            Ok(ids) => {
                for ((_, reply), id) in batch.drain(..).zip(ids) {
                    let _ = reply.send(Ok(id));
                }
            }
            // The database refused the statement, so nothing was stored. So that one bad job
            // does not fail the others, each is tried again on its own and hears its own
            // outcome. (After any other error the statement may have committed without the
            // answer reaching us; trying again could store the jobs twice, so every caller
            // hears the error instead, as a caller of a single enqueue would.)
            Err(sqlx::Error::Database(_)) if batch.len() > 1 => {
                for (job, reply) in batch.drain(..) {
                    let outcome = match pool.acquire().await {
                        Ok(mut conn) => enqueue_postgres(&mut conn, &job).await,
                        Err(err) => Err(err),
                    };
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                for (_, reply) in batch.drain(..) {
                    let _ =
                        reply.send(Err(sqlx::Error::Io(std::io::Error::other(err.to_string()))));
                }
            }
        }
    }
}

/// New jobs as one array per column, for PostgreSQL's `unnest`.
struct JobColumns<'a> {
    queues: Vec<&'a str>,
    kinds: Vec<&'a str>,
    payloads: Vec<String>,
    max_attempts: Vec<i32>,
    run_at: Vec<Option<DateTime<Utc>>>,
    dedup_keys: Vec<Option<&'a str>>,
}

impl<'a> JobColumns<'a> {
    fn of(jobs: impl IntoIterator<Item = &'a NewJob>) -> Self {
        let mut columns = JobColumns {
            queues: Vec::new(),
            kinds: Vec::new(),
            payloads: Vec::new(),
            max_attempts: Vec::new(),
            run_at: Vec::new(),
            dedup_keys: Vec::new(),
        };
        for job in jobs {
            columns.queues.push(&job.queue);
            columns.kinds.push(&job.kind);
            columns.payloads.push(job.payload.to_string());
            columns.max_attempts.push(job.max_attempts.max(1));
            columns.run_at.push(job.run_at.map(super::to_millis));
            columns.dedup_keys.push(job.dedup_key.as_deref());
        }
        columns
    }

    /// The arguments of a PostgreSQL batch insert: `$1` the time now, then one array per
    /// column (`$2` queues … `$6` run times) and, with `dedup_keys`, `$7` the dedup keys.
    fn into_arguments(self, dedup_keys: bool) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        args.add(now()).map_err(sqlx::Error::Encode)?;
        args.add(self.queues).map_err(sqlx::Error::Encode)?;
        args.add(self.kinds).map_err(sqlx::Error::Encode)?;
        args.add(self.payloads).map_err(sqlx::Error::Encode)?;
        args.add(self.max_attempts).map_err(sqlx::Error::Encode)?;
        args.add(self.run_at).map_err(sqlx::Error::Encode)?;
        if dedup_keys {
            args.add(self.dedup_keys).map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

/// Inserts `jobs` (none with a dedup key) with one statement; returns their ids in order. The
/// ids are drawn from the table's identity sequence first, with each job's position, so the
/// answer does not depend on the order in which `RETURNING` would list the rows.
async fn insert_batch_postgres(
    pool: &sqlx::PgPool,
    jobs: &[&NewJob],
) -> Result<Vec<i64>, sqlx::Error> {
    let arguments = JobColumns::of(jobs.iter().copied()).into_arguments(false)?;
    sqlx::query_scalar_with(
        "WITH job AS ( \
           SELECT nextval(pg_get_serial_sequence('jobs', 'id')) AS id, \
             queue, kind, payload, max_attempts, run_at, position \
           FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], \
                       $6::timestamptz[]) WITH ORDINALITY \
             AS input (queue, kind, payload, max_attempts, run_at, position) \
         ), inserted AS ( \
           INSERT INTO jobs \
             (id, queue, kind, payload, max_attempts, run_at, created_at, updated_at) \
           SELECT id, queue, kind, payload, max_attempts, COALESCE(run_at, $1), $1, $1 \
           FROM job \
         ) \
         SELECT id FROM job ORDER BY position",
        arguments,
    )
    .fetch_all(pool)
    .await
}

/// An enqueue waiting to share a SQLite commit.
struct EnqueueWrite {
    job: NewJob,
    result: Option<Result<i64, sqlx::Error>>,
    reply: tokio::sync::oneshot::Sender<Result<i64, sqlx::Error>>,
}

#[async_trait::async_trait]
impl BatchedWrite for EnqueueWrite {
    async fn run(&mut self, conn: &mut SqliteConnection) {
        self.result = Some(enqueue_sqlite(conn, &self.job).await);
    }

    fn finish(self: Box<Self>, commit_error: Option<&sqlx::Error>) {
        let outcome = match (commit_error, self.result) {
            (Some(err), _) => Err(sqlx::Error::Io(std::io::Error::other(format!(
                "committing the batch failed: {err}"
            )))),
            (None, Some(result)) => result,
            (None, None) => Err(sqlx::Error::Io(std::io::Error::other(
                "the batched enqueue never ran",
            ))),
        };
        // The caller may have gone; the job is stored regardless.
        let _ = self.reply.send(outcome);
    }
}

/// Most jobs per `INSERT` statement in [`enqueue_many_sqlite`] (6 parameters each, well under
/// SQLite's limit on parameters per statement).
const MANY_CHUNK: usize = 500;

/// `INSERT` of `rows` jobs; `$1` is the time, each job binds six parameters after it.
fn insert_many_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|row| {
            let p = 2 + row * 6;
            format!(
                "(${}, ${}, ${}, ${}, COALESCE(${}, $1), ${}, $1, $1)",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO jobs \
           (queue, kind, payload, max_attempts, run_at, dedup_key, created_at, updated_at) \
         VALUES {values} \
         ON CONFLICT (queue, dedup_key) \
           WHERE dedup_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING"
    )
}

/// Enqueues many jobs inside the caller's SQLite transaction, with one statement per 500
/// jobs instead of one each: for producers that make jobs in bulk. Returns how many jobs
/// were created; a job whose dedup key a pending job (or an earlier job of the same call)
/// already holds creates none.
pub async fn enqueue_many_sqlite(
    conn: &mut SqliteConnection,
    jobs: &[NewJob],
) -> Result<u64, sqlx::Error> {
    let now = now();
    let mut created = 0u64;
    for chunk in jobs.chunks(MANY_CHUNK) {
        let sql = insert_many_sql(chunk.len());
        let payloads: Vec<String> = chunk.iter().map(|job| job.payload.to_string()).collect();
        let mut query = sqlx::query(&sql).bind(now);
        for (job, payload) in chunk.iter().zip(&payloads) {
            query = query
                .bind(&job.queue)
                .bind(&job.kind)
                .bind(payload)
                .bind(job.max_attempts.max(1))
                .bind(job.run_at.map(super::to_millis))
                .bind(&job.dedup_key);
        }
        created += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(created)
}

/// [`enqueue_many_sqlite`] for a PostgreSQL transaction. The jobs go in as one array per
/// column, so there is one statement however many jobs there are, and its text never changes
/// (prepared once per connection).
pub async fn enqueue_many_postgres(
    conn: &mut PgConnection,
    jobs: &[NewJob],
) -> Result<u64, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let arguments = JobColumns::of(jobs).into_arguments(true)?;
    let created = sqlx::query_with(
        "INSERT INTO jobs \
           (queue, kind, payload, max_attempts, run_at, dedup_key, created_at, updated_at) \
         SELECT queue, kind, payload, max_attempts, COALESCE(run_at, $1), dedup_key, $1, $1 \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::timestamptz[], \
                     $7::text[]) WITH ORDINALITY \
           AS job (queue, kind, payload, max_attempts, run_at, dedup_key, position) \
         ORDER BY position \
         ON CONFLICT (queue, dedup_key) \
           WHERE dedup_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING",
        arguments,
    )
    .execute(conn)
    .await?;
    Ok(created.rows_affected())
}

/// Enqueues `jobs` in one transaction of their own (see [`enqueue_many_sqlite`]).
pub async fn enqueue_many(db: &Db, jobs: &[NewJob]) -> Result<u64, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(0);
    }
    match db {
        Db::Sqlite { write, .. } => {
            let mut tx = write.begin().await?;
            let created = enqueue_many_sqlite(&mut tx, jobs).await?;
            tx.commit().await?;
            Ok(created)
        }
        // One statement is one transaction.
        Db::Postgres { pool, .. } => enqueue_many_postgres(&mut *pool.acquire().await?, jobs).await,
    }
}

/// Gives up leases that expired (their worker died or stalled): the job goes back to the
/// queue, or to `dead` if that was its last attempt, so a job that kills its worker every
/// time cannot loop forever. The expiry time serves as the new `run_at` / `finished_at`.
const REAP_EXPIRED: &str = "UPDATE jobs SET \
       status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
       finished_at = CASE WHEN attempts >= max_attempts THEN locked_until END, \
       run_at = locked_until, \
       last_error = 'lease expired: worker ' || COALESCE(locked_by, '?') || ' stopped renewing it', \
       locked_by = NULL, locked_until = NULL, updated_at = $1 \
     WHERE status = 'running' AND locked_until < $1 AND queue = $2 \
     RETURNING kind, status";

/// A job whose lease [`reap_expired`] gave up: its kind and where it went (`queued` or `dead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    pub kind: String,
    pub status: JobStatus,
}

/// Puts the jobs of `queue` whose lease expired back in the queue, or to `dead` on their last
/// attempt (see [`REAP_EXPIRED`]).
pub async fn reap_expired(db: &Db, queue: &str) -> Result<Vec<Reaped>, sqlx::Error> {
    let rows: Vec<(String, String)> = on_write!(db, pool => sqlx::query_as(REAP_EXPIRED)
        .bind(now())
        .bind(queue)
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(kind, status)| Reaped {
            kind,
            status: JobStatus::parse(&status).unwrap_or(JobStatus::Queued),
        })
        .collect())
}

/// Claims up to `limit` due jobs of `queue` whose kind is one of `kinds`, leasing them to
/// `worker` for `lease`. Expired leases in the queue are reclaimed first.
pub async fn claim(
    db: &Db,
    queue: &str,
    kinds: &[String],
    worker: &str,
    lease: std::time::Duration,
    limit: usize,
) -> Result<Vec<Job>, sqlx::Error> {
    if kinds.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    reap_expired(db, queue).await?;
    claim_due(db, queue, kinds, worker, lease, limit).await
}

/// [`claim`] without reclaiming expired leases first, for a worker that calls
/// [`reap_expired`] on a timer of its own instead of once per claim.
pub async fn claim_due(
    db: &Db,
    queue: &str,
    kinds: &[String],
    worker: &str,
    lease: std::time::Duration,
    limit: usize,
) -> Result<Vec<Job>, sqlx::Error> {
    if kinds.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let now = now();
    let locked_until = now + lease;
    let due = format!(
        "SELECT id FROM jobs \
         WHERE queue = $4 AND status = 'queued' AND run_at <= $3 AND kind IN ({kinds}) \
         ORDER BY run_at, id LIMIT $5",
        kinds = placeholders(6, kinds.len()),
    );
    // PostgreSQL: many workers claim at once, so the due rows are locked, skipping those
    // another claim holds. And `id = ANY(ARRAY(...))`, not `id IN (...)`: with `IN`, once
    // the table has statistics and the limit is large, the planner joins the subquery to a
    // sequential scan of the whole table (every claim reading every finished job; measured:
    // 20,000 jobs at concurrency 128 took 99 s instead of 4). SQLite has one writer
    // connection, so its claim is already exclusive, and no arrays.
    let target = match db.backend() {
        Backend::Postgres => format!("id = ANY(ARRAY({due} FOR UPDATE SKIP LOCKED))"),
        Backend::Sqlite => format!("id IN ({due})"),
    };
    // PostgreSQL plans this statement anew each time (an unnamed statement), not once per
    // connection: a plan cached while `jobs` was small (a new database, and no autovacuum
    // run since to invalidate it) scans the whole table on every claim.
    let persistent_plan = db.backend() == Backend::Sqlite;
    let sql = format!(
        "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, \
           attempts = attempts + 1, started_at = $3, updated_at = $3 \
         WHERE {target} \
         RETURNING {JOB_COLUMNS}"
    );
    let rows = on_write!(db, pool => {
        let mut query = sqlx::query_as::<_, JobRow>(&sql)
            .persistent(persistent_plan)
            .bind(worker)
            .bind(locked_until)
            .bind(now)
            .bind(queue)
            .bind(limit as i64);
        for kind in kinds {
            query = query.bind(kind);
        }
        query.fetch_all(pool).await
    })?;
    let mut jobs = into_jobs(rows)?;
    // RETURNING promises no order.
    jobs.sort_by_key(|job| (job.run_at, job.id));
    Ok(jobs)
}

/// The lease check every outcome makes: still running, held by this worker, in this attempt.
const HELD: &str = "status = 'running' AND locked_by = $2 AND attempts = $3";

/// Marks a claimed job done. `false` means the lease was lost (it expired and the job went
/// back to the queue or to another worker), so this run's outcome does not count.
pub async fn complete(db: &Db, job: &Job) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, \
           finished_at = $4, updated_at = $4 \
         WHERE id = $1 AND {HELD}"
    );
    let done = on_write!(db, pool => sqlx::query(&sql)
        .bind(job.id)
        .bind(&job.locked_by)
        .bind(job.attempts)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Most jobs [`complete_many`] marks per statement on SQLite.
const COMPLETE_CHUNK: usize = 500;

/// Marks many jobs leased to `worker` done: `leases` are `(id, attempts)` pairs as claimed.
/// The lease check is [`complete`]'s, per job. Returns the ids marked done; a job missing from
/// them had lost its lease.
///
/// PostgreSQL gets the pairs as two arrays, so the statement text is the same for every batch
/// (prepared once per connection, where a text per batch size would be parsed and planned
/// again for most batches) and each pair is found through the primary key. SQLite, which has
/// no arrays and prepares in-process, gets `VALUES` rows, 500 per statement.
pub async fn complete_many(
    db: &Db,
    worker: &str,
    leases: &[(i64, i32)],
) -> Result<Vec<i64>, sqlx::Error> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    match db {
        Db::Postgres { pool, .. } => {
            let (ids, attempts): (Vec<i64>, Vec<i32>) = leases.iter().copied().unzip();
            sqlx::query_scalar(
                "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, \
                   finished_at = $1, updated_at = $1 \
                 FROM unnest($3::bigint[], $4::integer[]) AS lease (id, attempts) \
                 WHERE jobs.id = lease.id AND jobs.attempts = lease.attempts \
                   AND jobs.status = 'running' AND jobs.locked_by = $2 \
                 RETURNING jobs.id",
            )
            // Planned each time, as the claim is (see `claim_due`). Measured with the plan
            // cached per connection instead (`cargo bench --bench queue`, 2026-11-30, three
            // runs each): `queue::enqueue` with 128 producers fell from 14,809-19,258 to
            // 2,360-4,444 jobs/s, the plan made on a small table being kept for a large one.
            .persistent(false)
            .bind(now())
            .bind(worker)
            .bind(ids)
            .bind(attempts)
            .fetch_all(pool)
            .await
        }
        Db::Sqlite { write, .. } => {
            let mut done = Vec::with_capacity(leases.len());
            for chunk in leases.chunks(COMPLETE_CHUNK) {
                let pairs = (0..chunk.len())
                    .map(|i| format!("(${}, ${})", 3 + 2 * i, 4 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(", ");
                // Row values: SQLite compares `(id, attempts)` pairs since 3.15.
                let sql = format!(
                    "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, \
                       finished_at = $1, updated_at = $1 \
                     WHERE status = 'running' AND locked_by = $2 \
                       AND (id, attempts) IN (VALUES {pairs}) \
                     RETURNING id"
                );
                let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(now()).bind(worker);
                for (id, attempts) in chunk {
                    query = query.bind(*id).bind(*attempts);
                }
                done.extend(query.fetch_all(write).await?);
            }
            Ok(done)
        }
    }
}

/// Records a failed run. With attempts left and a retryable error the job is queued again
/// after a [`Backoff`] delay; otherwise it goes to `dead`, keeping the error as its last
/// error. Returns the job's new status, or `None` if the lease was lost (see [`complete`]).
pub async fn fail(
    db: &Db,
    job: &Job,
    error: &JobError,
    backoff: &Backoff,
) -> Result<Option<JobStatus>, sqlx::Error> {
    let now = now();
    let status = if error.retryable && job.attempts < job.max_attempts {
        JobStatus::Queued
    } else {
        JobStatus::Dead
    };
    let finished_at = (status == JobStatus::Dead).then_some(now);
    let sql = format!(
        "UPDATE jobs SET status = $4, run_at = $5, last_error = $6, finished_at = $7, \
           locked_by = NULL, locked_until = NULL, updated_at = $8 \
         WHERE id = $1 AND {HELD}"
    );
    let updated = on_write!(db, pool => sqlx::query(&sql)
        .bind(job.id)
        .bind(&job.locked_by)
        .bind(job.attempts)
        .bind(status.as_str())
        .bind(if status == JobStatus::Queued { now + backoff.delay(job.attempts) } else { job.run_at })
        .bind(&error.message)
        .bind(finished_at)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok((updated == 1).then_some(status))
}

/// Extends the leases `worker` holds on `ids` until `until`. Returns how many were still held.
pub async fn heartbeat(
    db: &Db,
    worker: &str,
    ids: &[i64],
    until: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE jobs SET locked_until = $1, updated_at = $2 \
         WHERE status = 'running' AND locked_by = $3 AND id IN ({})",
        placeholders(4, ids.len())
    );
    let updated = on_write!(db, pool => {
        let mut query = sqlx::query(&sql).bind(until).bind(now()).bind(worker);
        for id in ids {
            query = query.bind(id);
        }
        query.execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(updated)
}

/// Hands jobs `worker` still holds back to the queue, due now, without counting the
/// interrupted run as an attempt (shutdown is not the job's fault).
pub async fn release(db: &Db, worker: &str, ids: &[i64]) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = $1, \
           locked_by = NULL, locked_until = NULL, updated_at = $1 \
         WHERE status = 'running' AND locked_by = $2 AND id IN ({})",
        placeholders(3, ids.len())
    );
    let updated = on_write!(db, pool => {
        let mut query = sqlx::query(&sql).bind(now()).bind(worker);
        for id in ids {
            query = query.bind(id);
        }
        query.execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(updated)
}

/// What [`retry_dead`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDead {
    /// Queued again, due now, with a fresh set of attempts.
    Requeued,
    /// No dead job has this id.
    NotDead,
    /// Another pending job holds the same dedup key; this one stays dead.
    Duplicate,
}

/// Puts a dead job back in the queue with its attempts reset (its last error is kept until
/// the next run overwrites it).
pub async fn retry_dead(db: &Db, id: i64) -> Result<RetryDead, sqlx::Error> {
    let now = now();
    let result = on_write!(db, pool => sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $2, finished_at = NULL, \
           updated_at = $2 \
         WHERE id = $1 AND status = 'dead'",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()));
    match result {
        Ok(1) => Ok(RetryDead::Requeued),
        Ok(_) => Ok(RetryDead::NotDead),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(RetryDead::Duplicate),
        Err(e) => Err(e),
    }
}

/// The dead jobs of `queue`, newest first.
pub async fn list_dead(db: &Db, queue: &str, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'dead' AND queue = $1 \
         ORDER BY id DESC LIMIT $2"
    );
    let rows = on_read!(db, pool => sqlx::query_as::<_, JobRow>(&sql)
        .bind(queue)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    into_jobs(rows)
}

/// One job by id (for admin views and tests).
pub async fn get(db: &Db, id: i64) -> Result<Option<Job>, sqlx::Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let row = on_read!(db, pool => sqlx::query_as::<_, JobRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    row.map(Job::try_from).transpose()
}

/// Jobs not yet finished, and dead ones, in one queue. `queued` includes delayed jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queue: String,
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
}

/// Depth per queue and status (finished jobs are not counted), ordered by queue name.
pub async fn stats(db: &Db) -> Result<Vec<QueueStats>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT queue, status, COUNT(*) FROM jobs WHERE status <> 'done' \
         GROUP BY queue, status ORDER BY queue",
    )
    .fetch_all(pool)
    .await)?;
    let mut stats: Vec<QueueStats> = Vec::new();
    for (queue, status, count) in rows {
        if stats.last().map(|s| &s.queue) != Some(&queue) {
            stats.push(QueueStats {
                queue,
                ..QueueStats::default()
            });
        }
        let entry = stats.last_mut().expect("pushed above");
        match status.as_str() {
            "queued" => entry.queued = count,
            "running" => entry.running = count,
            "dead" => entry.dead = count,
            _ => {}
        }
    }
    Ok(stats)
}

/// Deletes jobs that finished (done or dead) before `before`; returns how many.
pub async fn purge_finished(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = on_write!(db, pool => sqlx::query(
        "DELETE FROM jobs WHERE status IN ('done', 'dead') AND finished_at < $1",
    )
    .bind(before)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done)
}

/// Enqueueing inside a transaction of either backend, for code that writes its business
/// rows once for both (`queue::Enqueue::enqueue(&mut *tx, &job)`).
#[async_trait::async_trait]
pub trait Enqueue {
    async fn enqueue(&mut self, job: &NewJob) -> Result<i64, sqlx::Error>;
}

#[async_trait::async_trait]
impl Enqueue for SqliteConnection {
    async fn enqueue(&mut self, job: &NewJob) -> Result<i64, sqlx::Error> {
        enqueue_sqlite(self, job).await
    }
}

#[async_trait::async_trait]
impl Enqueue for PgConnection {
    async fn enqueue(&mut self, job: &NewJob) -> Result<i64, sqlx::Error> {
        enqueue_postgres(self, job).await
    }
}

/// Queued jobs that have run and failed before, per queue: waiting for another attempt.
pub async fn retrying(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(
        "SELECT queue, COUNT(*) FROM jobs WHERE status = 'queued' AND attempts > 0 \
         GROUP BY queue",
    )
    .fetch_all(pool)
    .await)
}

/// Queued jobs not due before `now`, per queue: retries waiting out their backoff, deadline
/// checks, delayed jobs.
pub async fn scheduled(db: &Db, now: DateTime<Utc>) -> Result<Vec<(String, i64)>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(
        "SELECT queue, COUNT(*) FROM jobs WHERE status = 'queued' AND run_at > $1 GROUP BY queue",
    )
    .bind(now)
    .fetch_all(pool)
    .await)
}

/// Jobs of one queue that finished since a time (see [`finished_since`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Finished {
    pub queue: String,
    pub done: i64,
    pub dead: i64,
    /// All runs of the dead jobs, all but the last of the done ones.
    pub failed_runs: i64,
}

/// Per queue, the jobs that finished (done or dead) at or after `since`.
pub async fn finished_since(db: &Db, since: DateTime<Utc>) -> Result<Vec<Finished>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(
        "SELECT queue, \
           SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done, \
           SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS dead, \
           SUM(CASE WHEN status = 'done' THEN attempts - 1 ELSE attempts END) AS failed_runs \
         FROM jobs WHERE status IN ('done', 'dead') AND finished_at >= $1 \
         GROUP BY queue",
    )
    .bind(since)
    .fetch_all(pool)
    .await)
}

/// How long the last runs of one queue's jobs done since a time took, in seconds (see
/// [`run_durations_since`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunDurations {
    pub queue: String,
    pub runs: i64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

/// Per queue, the median, 95th percentile (nearest rank) and longest duration of the last run
/// of jobs done at or after `since`.
pub async fn run_durations_since(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<Vec<RunDurations>, sqlx::Error> {
    // The one dialect difference: seconds between two timestamps.
    let seconds = match db.backend() {
        Backend::Sqlite => "unixepoch(finished_at, 'subsec') - unixepoch(started_at, 'subsec')",
        Backend::Postgres => "EXTRACT(EPOCH FROM finished_at - started_at)::float8",
    };
    let sql = format!(
        "WITH runs AS ( \
           SELECT queue, {seconds} AS secs FROM jobs \
           WHERE status = 'done' AND finished_at >= $1 AND started_at IS NOT NULL \
         ), ranked AS ( \
           SELECT queue, secs, \
             ROW_NUMBER() OVER (PARTITION BY queue ORDER BY secs) AS pos, \
             COUNT(*) OVER (PARTITION BY queue) AS runs \
           FROM runs \
         ) \
         SELECT queue, MAX(runs) AS runs, \
           MIN(CASE WHEN pos >= 0.5 * runs THEN secs END) AS p50, \
           MIN(CASE WHEN pos >= 0.95 * runs THEN secs END) AS p95, \
           MAX(secs) AS max \
         FROM ranked GROUP BY queue"
    );
    on_read!(db, pool => sqlx::query_as(&sql).bind(since).fetch_all(pool).await)
}

/// One queue and kind's jobs now and over two recent windows, for the admin dashboard (see
/// [`kind_counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct KindCounts {
    pub queue: String,
    pub kind: String,
    /// Queued and due: a worker may take them now.
    pub queued: i64,
    /// Queued, not due yet.
    pub scheduled: i64,
    pub running: i64,
    /// Queued after failing before: waiting for another attempt (also in `queued` or
    /// `scheduled`).
    pub retrying: i64,
    pub dead: i64,
    /// Jobs done, and failed runs of the jobs that finished (as in [`finished_since`]), since
    /// the short and the long window's start.
    pub done_short: i64,
    pub failed_short: i64,
    pub done_long: i64,
    pub failed_long: i64,
}

/// Per queue and kind: the depth at `now` and what finished since `short` and since `long`
/// (`short` after `long`). Done jobs older than `long` are not read.
pub async fn kind_counts(
    db: &Db,
    now: DateTime<Utc>,
    short: DateTime<Utc>,
    long: DateTime<Utc>,
) -> Result<Vec<KindCounts>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as(
        "SELECT queue, kind, \
           SUM(CASE WHEN status = 'queued' AND run_at <= $1 THEN 1 ELSE 0 END) AS queued, \
           SUM(CASE WHEN status = 'queued' AND run_at > $1 THEN 1 ELSE 0 END) AS scheduled, \
           SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running, \
           SUM(CASE WHEN status = 'queued' AND attempts > 0 THEN 1 ELSE 0 END) AS retrying, \
           SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS dead, \
           SUM(CASE WHEN status = 'done' AND finished_at >= $2 THEN 1 ELSE 0 END) AS done_short, \
           SUM(CASE WHEN status IN ('done', 'dead') AND finished_at >= $2 THEN \
                 CASE WHEN status = 'done' THEN attempts - 1 ELSE attempts END \
               ELSE 0 END) AS failed_short, \
           SUM(CASE WHEN status = 'done' AND finished_at >= $3 THEN 1 ELSE 0 END) AS done_long, \
           SUM(CASE WHEN status IN ('done', 'dead') AND finished_at >= $3 THEN \
                 CASE WHEN status = 'done' THEN attempts - 1 ELSE attempts END \
               ELSE 0 END) AS failed_long \
         FROM jobs WHERE status <> 'done' OR finished_at >= $3 \
         GROUP BY queue, kind ORDER BY queue, kind",
    )
    .bind(now)
    .bind(short)
    .bind(long)
    .fetch_all(pool)
    .await)
}

/// How long the last runs of one queue and kind's jobs done since a time took, in seconds.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct KindDurations {
    pub queue: String,
    pub kind: String,
    pub runs: i64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

/// [`run_durations_since`], per queue and kind.
pub async fn run_durations_by_kind_since(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<Vec<KindDurations>, sqlx::Error> {
    let seconds = match db.backend() {
        Backend::Sqlite => "unixepoch(finished_at, 'subsec') - unixepoch(started_at, 'subsec')",
        Backend::Postgres => "EXTRACT(EPOCH FROM finished_at - started_at)::float8",
    };
    let sql = format!(
        "WITH runs AS ( \
           SELECT queue, kind, {seconds} AS secs FROM jobs \
           WHERE status = 'done' AND finished_at >= $1 AND started_at IS NOT NULL \
         ), ranked AS ( \
           SELECT queue, kind, secs, \
             ROW_NUMBER() OVER (PARTITION BY queue, kind ORDER BY secs) AS pos, \
             COUNT(*) OVER (PARTITION BY queue, kind) AS runs \
           FROM runs \
         ) \
         SELECT queue, kind, MAX(runs) AS runs, \
           MIN(CASE WHEN pos >= 0.5 * runs THEN secs END) AS p50, \
           MIN(CASE WHEN pos >= 0.95 * runs THEN secs END) AS p95, \
           MAX(secs) AS max \
         FROM ranked GROUP BY queue, kind"
    );
    on_read!(db, pool => sqlx::query_as(&sql).bind(since).fetch_all(pool).await)
}

/// The newest dead jobs of every queue, newest first.
pub async fn recent_dead(db: &Db, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    let sql =
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'dead' ORDER BY id DESC LIMIT $1");
    let rows = on_read!(db, pool => sqlx::query_as::<_, JobRow>(&sql)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    into_jobs(rows)
}

/// Deletes a dead job for good (an admin decided it will never be worth running); `false` if
/// no dead job has this id. Only dead jobs: a queued or running one belongs to the workers.
pub async fn discard_dead(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let deleted = on_write!(db, pool => sqlx::query(
        "DELETE FROM jobs WHERE id = $1 AND status = 'dead'",
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(deleted == 1)
}
