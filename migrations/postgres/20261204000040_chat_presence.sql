-- Who is in a chat room now (see src/chat/presence.rs), PostgreSQL dialect: a row per server
-- process, room and signed-in user with at least one socket open there. Each process
-- refreshes seen_at for its rows every 30 s and deletes them as sockets close; rows of a
-- process that died stop counting once seen_at is 90 s old, and are then deleted.
CREATE TABLE chat_presence (
    process  TEXT NOT NULL,
    team     TEXT NOT NULL REFERENCES teams(key),
    user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seen_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (process, team, user_id)
);
CREATE INDEX chat_presence_team ON chat_presence (team, seen_at);
