-- Replies one level deep: a reply names the top-level comment it answers. Deleting the
-- parent deletes its replies.
ALTER TABLE comments ADD COLUMN parent_id BIGINT REFERENCES comments(id) ON DELETE CASCADE;
CREATE INDEX comments_parent ON comments(parent_id);
