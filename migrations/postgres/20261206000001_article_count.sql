-- How many articles there are, kept by the database: the unfiltered list's exact
-- `articlesCount` becomes a sum of 16 rows instead of a count of every article, a scan that
-- grows with the table (measured in docs/benchmarks.md). The number is spread over 16 rows by
-- article id so that concurrent inserts, which get consecutive ids, do not queue for one row
-- lock until they commit.
LOCK TABLE articles IN SHARE MODE; -- no insert or delete between the count and the triggers

CREATE TABLE article_count (
    shard SMALLINT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO article_count (shard, n) SELECT s, 0 FROM generate_series(0, 15) s;
UPDATE article_count SET n = (SELECT COUNT(*) FROM articles) WHERE shard = 0;

CREATE FUNCTION articles_count() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE article_count SET n = n + 1 WHERE shard = NEW.id % 16;
    ELSE
        UPDATE article_count SET n = n - 1 WHERE shard = OLD.id % 16;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER articles_count_insert AFTER INSERT ON articles
    FOR EACH ROW EXECUTE FUNCTION articles_count();
CREATE TRIGGER articles_count_delete AFTER DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION articles_count();
