-- WebP variants, made by a second job (image.webp) after the JPEG ones. NULL until that job
-- has written display.webp and thumb.webp; their dimensions are those of the JPEG variants.
ALTER TABLE uploads ADD COLUMN display_webp_bytes INTEGER;
ALTER TABLE uploads ADD COLUMN thumb_webp_bytes INTEGER;
