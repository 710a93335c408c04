-- When the current (or last) run of a job started, SQLite dialect. Set when a database
-- worker claims the job or a RabbitMQ consumer starts it; `finished_at - started_at` of a
-- finished job is how long its last run took (what `ballpark queue stats` reports).
-- No index on it or on finished_at: only the stats command reads them (a scan of the jobs
-- not yet purged), and an index would cost every claim or completion one more write.

ALTER TABLE jobs ADD COLUMN started_at TEXT;
