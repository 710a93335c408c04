-- Users an admin muted in chat (see src/chat/moderation.rs): they may read but not post
-- until `until`. One row per user; muting again replaces it.
CREATE TABLE chat_mutes (
    user_id    BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    until      TIMESTAMPTZ NOT NULL,
    muted_by   BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL
);
