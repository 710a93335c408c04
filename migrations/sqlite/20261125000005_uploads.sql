-- Uploaded images. The original is stored at once; a queued job optimises it and fills in the
-- variant columns (status pending -> ready | failed).
CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    owner_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status         TEXT NOT NULL DEFAULT 'pending',
    source_format  TEXT NOT NULL,
    original_bytes INTEGER NOT NULL,
    width          INTEGER,
    height         INTEGER,
    thumb_width    INTEGER,
    thumb_height   INTEGER,
    display_bytes  INTEGER,
    thumb_bytes    INTEGER,
    error          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX uploads_owner ON uploads(owner_id);
