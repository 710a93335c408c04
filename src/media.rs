//! Media: turning uploaded pictures into the images the site serves.
//!
//! This module owns everything about image bytes: [`optimize`], the pure, synchronous core
//! of the image pipeline; [`storage`], where the bytes live (a directory or an S3 bucket);
//! [`uploads`], the upload routes; [`rate_limit`], how many uploads each user may start;
//! [`jobs`], the queued jobs that call the core; [`store`], their SQL; [`files`], the names of
//! an upload's files.
//!
//! Decisions a newcomer must know:
//!
//! - **Nothing here trusts the client or touches the network, the database or the async
//!   runtime.** [`optimize::optimize`] takes bytes and returns bytes. It is CPU-bound (tens of
//!   milliseconds per photo) and must run on a blocking pool or a rayon pool, never on the
//!   executor. The type is sniffed from magic bytes; dimensions are read from the header and
//!   checked against [`optimize::Limits::max_pixels`] *before* any pixel buffer is allocated,
//!   so a decompression bomb costs a few hundred bytes of parsing. No input panics: codec
//!   failures (libjpeg reports them by unwinding) are caught and become an
//!   [`optimize::ImageError`] with a reason fit to show the uploader.
//! - **JPEG output is made in one job, WebP in a second one.** A 12-MP JPEG is decoded at
//!   reduced size (libjpeg-turbo DCT scaling to the smallest scale at or above the display
//!   size — the main speed trick), resized, turned upright from its EXIF orientation, and
//!   encoded with mozjpeg (progressive, optimised Huffman tables) with no metadata at all, GPS
//!   included. WebP encoding (libwebp, lossy) costs several times the whole JPEG job, so it is
//!   a separate entry point, [`optimize::webp_variants`], run by a second job
//!   (`image.webp`) that the first enqueues when it marks the upload ready: the JPEG
//!   variants, which every browser can show, are ready as soon as possible and WebP never
//!   delays them. The second job reads the stored display JPEG, because the original is
//!   deleted once the upload is ready; [`jobs`] says what that costs.

pub mod jobs;
pub mod optimize;
pub mod pool;
pub mod rate_limit;
pub mod storage;
pub mod store;
pub mod uploads;

pub use optimize::{
    optimize, sniff, webp_variants, ImageError, Limits, Optimized, SourceFormat, WebpVariants,
};

/// The names of an upload's files in [`storage`], all under `<upload id>/`, and the URLs
/// they are served at.
pub mod files {
    /// The uploaded bytes, kept only until the upload is ready.
    pub const ORIGINAL: &str = "original";
    pub const DISPLAY_JPEG: &str = "display.jpg";
    pub const THUMB_JPEG: &str = "thumb.jpg";
    pub const DISPLAY_WEBP: &str = "display.webp";
    pub const THUMB_WEBP: &str = "thumb.webp";
    /// The optimised variants: written once, never changed.
    pub const VARIANTS: [&str; 4] = [DISPLAY_JPEG, THUMB_JPEG, DISPLAY_WEBP, THUMB_WEBP];

    /// The storage key of `file` of upload `id`.
    pub fn key(id: &str, file: &str) -> String {
        format!("{id}/{file}")
    }

    /// Where `file` of upload `id` is served.
    pub fn url(id: &str, file: &str) -> String {
        format!("/media/{id}/{file}")
    }

    /// The picture and thumbnail to show for an upload in `status`: the JPEG variants once
    /// ready; the original (no thumbnail yet) while pending; nothing once failed.
    pub fn image_urls(id: &str, status: &str) -> (Option<String>, Option<String>) {
        match status {
            "ready" => (Some(url(id, DISPLAY_JPEG)), Some(url(id, THUMB_JPEG))),
            "pending" => (Some(url(id, ORIGINAL)), None),
            _ => (None, None),
        }
    }
}

/// An upload's id as a client names it (an article's cover, say): a UUID, kept in the
/// lowercase hyphenated form the server issues, so it compares equal to the stored id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn parse(text: &str) -> Result<Self, String> {
        uuid::Uuid::parse_str(text.trim())
            .map(|id| Self(id.hyphenated().to_string()))
            .map_err(|_| "is not an upload id".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
