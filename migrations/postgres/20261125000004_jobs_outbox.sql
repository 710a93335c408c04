-- The RabbitMQ backend (see src/queue/amqp.rs), PostgreSQL dialect.
-- `jobs` stays the outbox: a job row exists iff its business write committed. The relay
-- publishes due, unpublished jobs and sets `published_at` only after the broker confirmed
-- them. The database worker ignores the column, so the embedded backend is unchanged.

ALTER TABLE jobs ADD COLUMN published_at TIMESTAMPTZ;

-- The relay's scan: due jobs not yet handed to the broker, oldest first.
CREATE INDEX jobs_outbox ON jobs (queue, run_at, id)
    WHERE status = 'queued' AND published_at IS NULL;

-- A dead job retried by an admin must be published again.
CREATE FUNCTION jobs_retry_republishes() RETURNS trigger AS $$
BEGIN
    NEW.published_at := NULL;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_retry_republishes BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status = 'dead' AND NEW.status = 'queued')
    EXECUTE FUNCTION jobs_retry_republishes();

-- Message ids (job ids) a consumer has handled, so a redelivered message has no second
-- effect. Written in the transaction that records the outcome; purged by age.
CREATE TABLE processed_messages (
    message_id   TEXT PRIMARY KEY,
    processed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX processed_messages_age ON processed_messages (processed_at);
