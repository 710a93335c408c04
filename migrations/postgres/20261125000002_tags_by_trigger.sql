-- articles.tag_list (a sorted JSON array) is the source of truth for an article's tags;
-- article_tags is its index for `?tag=` filtering, kept in step here, by the database, so that
-- creating or re-tagging an article is one statement and the two can never disagree.
CREATE FUNCTION articles_sync_tags() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM article_tags WHERE article_id = NEW.id;
    END IF;
    INSERT INTO tags (name)
        SELECT value FROM json_array_elements_text(NEW.tag_list::json)
        ON CONFLICT (name) DO NOTHING;
    INSERT INTO article_tags (article_id, tag_id)
        SELECT NEW.id, t.id FROM tags t
        WHERE t.name IN (SELECT value FROM json_array_elements_text(NEW.tag_list::json))
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER articles_tags_insert AFTER INSERT ON articles
    FOR EACH ROW EXECUTE FUNCTION articles_sync_tags();
CREATE TRIGGER articles_tags_update AFTER UPDATE OF tag_list ON articles
    FOR EACH ROW WHEN (OLD.tag_list IS DISTINCT FROM NEW.tag_list)
    EXECUTE FUNCTION articles_sync_tags();
