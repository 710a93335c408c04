-- Tags are one per spelling regardless of ASCII case, as review hashtags are: the application
-- stores them ASCII-lowercased and looks `?tag=` up the same way. Existing articles' tags are
-- rewritten to that form (sorted by bytes, without duplicates, as the application writes
-- them); the update trigger re-indexes article_tags. translate(), not lower(): lower() would
-- also change non-ASCII letters, which the application keeps as written.
UPDATE articles SET tag_list = (
    SELECT COALESCE(json_agg(tag ORDER BY tag COLLATE "C"), '[]'::json)::text FROM (
        SELECT DISTINCT translate(value, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') AS tag
        FROM json_array_elements_text(articles.tag_list::json)
    ) AS lowered
)
WHERE tag_list <> translate(tag_list, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
