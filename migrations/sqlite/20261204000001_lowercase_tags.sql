-- Tags are one per spelling regardless of ASCII case, as review hashtags are: the application
-- stores them ASCII-lowercased and looks `?tag=` up the same way. Existing articles' tags are
-- rewritten to that form (sorted, without duplicates, as the application writes them); the
-- update trigger re-indexes article_tags. SQLite's lower() changes ASCII letters only, like
-- Rust's to_ascii_lowercase.
UPDATE articles SET tag_list = (
    SELECT json_group_array(tag) FROM (
        SELECT DISTINCT lower(value) AS tag FROM json_each(articles.tag_list) ORDER BY tag
    )
)
WHERE tag_list <> lower(tag_list);
