-- Uploads an article uses: its cover picture (role 'cover', at most one) and the uploads its
-- body embeds (role 'body', in order of first appearance). Written with the article; read
-- with a join on the article's primary key, so lists stay one statement.
CREATE TABLE article_uploads (
    article_id BIGINT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    upload_id  TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('cover', 'body')),
    position   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (article_id, role, upload_id)
);
CREATE UNIQUE INDEX article_uploads_one_cover ON article_uploads(article_id) WHERE role = 'cover';
CREATE INDEX article_uploads_upload ON article_uploads(upload_id);
