-- How many articles there are, kept by the database, so that the unfiltered list's exact
-- `articlesCount` reads one row instead of counting every article (a scan that grows with the
-- table). One row: SQLite has one writer, so there is no lock to spread (PostgreSQL uses 16).
CREATE TABLE article_count (
    shard INTEGER PRIMARY KEY, -- always 0
    n INTEGER NOT NULL
);
INSERT INTO article_count (shard, n) SELECT 0, COUNT(*) FROM articles;

CREATE TRIGGER articles_count_insert AFTER INSERT ON articles
BEGIN
    UPDATE article_count SET n = n + 1 WHERE shard = 0;
END;
CREATE TRIGGER articles_count_delete AFTER DELETE ON articles
BEGIN
    UPDATE article_count SET n = n - 1 WHERE shard = 0;
END;
