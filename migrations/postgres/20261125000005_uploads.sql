-- Uploaded images. The original is stored at once; a queued job optimises it and fills in the
-- variant columns (status pending -> ready | failed).
CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    owner_id       BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status         TEXT NOT NULL DEFAULT 'pending',
    source_format  TEXT NOT NULL,
    original_bytes BIGINT NOT NULL,
    width          BIGINT,
    height         BIGINT,
    thumb_width    BIGINT,
    thumb_height   BIGINT,
    display_bytes  BIGINT,
    thumb_bytes    BIGINT,
    error          TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX uploads_owner ON uploads(owner_id);
