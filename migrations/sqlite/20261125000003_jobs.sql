-- The job queue (see src/queue.rs), SQLite dialect.
-- Timestamps are RFC 3339 text written by the application (always UTC, `+00:00`, optional
-- fraction), which sorts as text in time order, so comparisons need no date functions.
-- Rows stay after they finish ('done', 'dead'); finished jobs are purged by age.

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at       TEXT NOT NULL,
    -- The lease: which worker holds a running job, and until when.
    locked_by    TEXT,
    locked_until TEXT,
    last_error   TEXT,
    dedup_key    TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
);

-- Claiming: the due jobs of one queue, oldest first.
CREATE INDEX jobs_claim ON jobs (queue, run_at, id) WHERE status = 'queued';
-- Finding expired leases.
CREATE INDEX jobs_leases ON jobs (locked_until) WHERE status = 'running';
-- Stats and the dead-letter list, without scanning the finished jobs.
CREATE INDEX jobs_open ON jobs (status, queue, id) WHERE status <> 'done';
-- A dedup key names at most one pending (queued or running) job per queue; once that job has
-- finished, the same key may be enqueued again.
CREATE UNIQUE INDEX jobs_dedup ON jobs (queue, dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('queued', 'running');
