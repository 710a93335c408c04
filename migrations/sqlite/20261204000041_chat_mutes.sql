-- Users an admin muted in chat (see src/chat/moderation.rs): they may read but not post
-- until `until`. One row per user; muting again replaces it.
CREATE TABLE chat_mutes (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    until      TEXT NOT NULL,
    muted_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
);
