-- articles.tag_list (a sorted JSON array) is the source of truth for an article's tags;
-- article_tags is its index for `?tag=` filtering, kept in step here, by the database, so that
-- creating or re-tagging an article is one statement and the two can never disagree.
CREATE TRIGGER articles_tags_insert AFTER INSERT ON articles BEGIN
    INSERT OR IGNORE INTO tags (name) SELECT value FROM json_each(new.tag_list);
    INSERT OR IGNORE INTO article_tags (article_id, tag_id)
        SELECT new.id, t.id FROM tags t WHERE t.name IN (SELECT value FROM json_each(new.tag_list));
END;

CREATE TRIGGER articles_tags_update AFTER UPDATE OF tag_list ON articles
WHEN old.tag_list <> new.tag_list BEGIN
    DELETE FROM article_tags WHERE article_id = new.id;
    INSERT OR IGNORE INTO tags (name) SELECT value FROM json_each(new.tag_list);
    INSERT OR IGNORE INTO article_tags (article_id, tag_id)
        SELECT new.id, t.id FROM tags t WHERE t.name IN (SELECT value FROM json_each(new.tag_list));
END;
