-- Web UI sessions (cookie login). Only a SHA-256 of the cookie's token is stored, so a read
-- of this table does not hand out working sessions; deleting a row revokes the session.
CREATE TABLE web_sessions (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    -- Slides forward as the session is used (see src/web/session.rs).
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);
