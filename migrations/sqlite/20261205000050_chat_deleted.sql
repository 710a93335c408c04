-- Chat messages an admin deleted (see src/chat/moderation.rs) keep their row, emptied and
-- marked, so that SQLite never hands their id to a new message (a rowid table reuses the
-- highest id once that row is gone, and sockets and pages skip ids they have shown).
ALTER TABLE chat_messages ADD COLUMN deleted_at TEXT;
ALTER TABLE chat_messages ADD COLUMN deleted_by INTEGER REFERENCES users(id) ON DELETE SET NULL;
