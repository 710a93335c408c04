-- Chat messages an admin deleted (see src/chat/moderation.rs) keep their row, emptied and
-- marked; the same as on SQLite, where a deleted newest row would give its id to the next
-- message.
ALTER TABLE chat_messages ADD COLUMN deleted_at TIMESTAMPTZ;
ALTER TABLE chat_messages ADD COLUMN deleted_by BIGINT REFERENCES users(id) ON DELETE SET NULL;
