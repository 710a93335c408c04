//! Media: turning uploaded pictures into the images the site serves.
//!
//! This module owns everything about image bytes: [`optimize`], the pure, synchronous core
//! of the image pipeline; [`storage`], where the bytes live; [`uploads`], the upload routes
//! and the queued job that calls the core; [`store`], their SQL.
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
//!   a separate entry point, [`optimize::webp_variants`], which the caller runs as a second,
//!   lower-priority job: the JPEG variants, which every browser can show, are ready as soon
//!   as possible and WebP never delays them. That second job should read the original upload
//!   (kept until it finishes), not the display JPEG: re-encoding a JPEG adds a second
//!   generation of loss and would lose a PNG's alpha channel.

pub mod optimize;
pub mod storage;
pub mod store;
pub mod uploads;

pub use optimize::{
    optimize, sniff, webp_variants, ImageError, Limits, Optimized, SourceFormat, WebpVariants,
};
