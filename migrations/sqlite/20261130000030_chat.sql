-- Team chat (see src/chat.rs), SQLite dialect: one room per KBO team; messages are kept, so
-- a client that connects (or reconnects) gets the recent ones first.
CREATE TABLE chat_messages (
    id         INTEGER PRIMARY KEY,
    team       TEXT NOT NULL REFERENCES teams(key),
    author_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- A room's history, newest first, and paging back with `before`.
CREATE INDEX chat_messages_team ON chat_messages (team, id);
