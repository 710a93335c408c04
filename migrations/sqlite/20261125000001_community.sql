-- Community schema (RealWorld + fan extras), SQLite dialect.
-- Timestamps are RFC 3339 text written by the application (UTC, millisecond precision).
-- Lists are ordered by id (monotonic), so timestamps are for display only.

CREATE TABLE teams (
    key      TEXT PRIMARY KEY,
    name_ko  TEXT NOT NULL,
    name_en  TEXT NOT NULL,
    color    TEXT NOT NULL,
    stadium  TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    bio           TEXT,
    image         TEXT,
    team          TEXT REFERENCES teams(key),
    role          TEXT NOT NULL DEFAULT 'fan',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    followee_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_followee ON follows(followee_id);

CREATE TABLE articles (
    id              INTEGER PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    body            TEXT NOT NULL,
    -- Sorted JSON array, denormalised from article_tags so reads need no join or aggregate.
    tag_list        TEXT NOT NULL DEFAULT '[]',
    category        TEXT NOT NULL DEFAULT 'free',
    author_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    favorites_count INTEGER NOT NULL DEFAULT 0,
    view_count      INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX articles_author ON articles(author_id, id);
CREATE INDEX articles_category ON articles(category, id);

CREATE TABLE tags (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (article_id, tag_id)
);
CREATE INDEX article_tags_tag ON article_tags(tag_id, article_id);

CREATE TABLE favorites (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, article_id)
);
CREATE INDEX favorites_article ON favorites(article_id);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    author_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX comments_article ON comments(article_id, id);

-- Full-text search. The trigram tokenizer indexes every 3-character window, so it needs no
-- word segmentation and works for Hangul (직관 inside 직관모집). Queries shorter than three
-- characters cannot use it; the application falls back to a substring scan for those.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, description, body,
    content = 'articles', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts(rowid, title, description, body)
    VALUES (new.id, new.title, new.description, new.body);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, description, body)
    VALUES ('delete', old.id, old.title, old.description, old.body);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, description, body ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, description, body)
    VALUES ('delete', old.id, old.title, old.description, old.body);
    INSERT INTO articles_fts(rowid, title, description, body)
    VALUES (new.id, new.title, new.description, new.body);
END;
