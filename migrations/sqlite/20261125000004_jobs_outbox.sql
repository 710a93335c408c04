-- The RabbitMQ backend (see src/queue/amqp.rs), SQLite dialect.
-- `jobs` stays the outbox: a job row exists iff its business write committed. The relay
-- publishes due, unpublished jobs and sets `published_at` only after the broker confirmed
-- them. The database worker ignores the column, so the embedded backend is unchanged.

ALTER TABLE jobs ADD COLUMN published_at TEXT;

-- The relay's scan: due jobs not yet handed to the broker, oldest first.
CREATE INDEX jobs_outbox ON jobs (queue, run_at, id)
    WHERE status = 'queued' AND published_at IS NULL;

-- A dead job retried by an admin must be published again.
CREATE TRIGGER jobs_retry_republishes AFTER UPDATE OF status ON jobs
    WHEN OLD.status = 'dead' AND NEW.status = 'queued'
BEGIN
    UPDATE jobs SET published_at = NULL WHERE id = NEW.id;
END;

-- Message ids (job ids) a consumer has handled, so a redelivered message has no second
-- effect. Written in the transaction that records the outcome; purged by age.
CREATE TABLE processed_messages (
    message_id   TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL
);
CREATE INDEX processed_messages_age ON processed_messages (processed_at);
