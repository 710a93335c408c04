//! Test images made at test time, so the corpus needs no binary files in the repository:
//! JPEGs with hand-built EXIF blocks, PNGs with alpha, and headers that lie about their size.

use mozjpeg::{ColorSpace, Compress, Marker};

/// A `width × height` RGB image: gray, with a red block in the given corner region
/// (`x0..x1`, `y0..y1`) and a smooth gradient so the encoder has real work.
pub fn rgb_with_red_block(width: u32, height: u32, block: (u32, u32, u32, u32)) -> Vec<u8> {
    let (x0, x1, y0, y1) = block;
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                data.extend_from_slice(&[230, 20, 20]);
            } else {
                let g = 100 + ((x + y) % 40) as u8;
                data.extend_from_slice(&[g, g, g]);
            }
        }
    }
    data
}

/// Noisy pixels: compress badly, so a truncated file is missing real scan data.
pub fn noise_rgb(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..width * height * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// Encodes RGB pixels as a baseline JPEG, writing each `(app_number, payload)` as a marker.
pub fn jpeg(width: u32, height: u32, rgb: &[u8], markers: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut compress = Compress::new(ColorSpace::JCS_RGB);
    compress.set_size(width as usize, height as usize);
    compress.set_quality(90.0);
    let mut started = compress.start_compress(Vec::new()).expect("start");
    for (app, payload) in markers {
        started.write_marker(Marker::APP(*app), payload);
    }
    started.write_scanlines(rgb).expect("scanlines");
    started.finish().expect("finish")
}

/// An APP1 payload: `Exif\0\0` and a big-endian TIFF with IFD0 holding Orientation and, if
/// asked, a GPS IFD (latitude ref N, latitude 37°33'59", longitude ref E).
pub fn exif_app1(orientation: u16, with_gps: bool) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2A\0\0\0\x08");
    let ifd0_entries: u16 = if with_gps { 2 } else { 1 };
    tiff.extend_from_slice(&ifd0_entries.to_be_bytes());
    // Orientation: tag 0x0112, SHORT (3), count 1, value left-justified.
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    if with_gps {
        // GPSInfo IFD pointer: tag 0x8825, LONG (4), count 1, offset of the GPS IFD.
        let gps_offset: u32 = 8 + 2 + 12 * 2 + 4;
        tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
        tiff.extend_from_slice(&gps_offset.to_be_bytes());
    }
    tiff.extend_from_slice(&[0, 0, 0, 0]); // no IFD1
    if with_gps {
        let rationals_offset: u32 = tiff.len() as u32 + 2 + 12 * 3 + 4;
        tiff.extend_from_slice(&3u16.to_be_bytes());
        // GPSLatitudeRef "N\0": tag 1, ASCII (2), count 2.
        tiff.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
        // GPSLatitude: tag 2, RATIONAL (5), count 3, at rationals_offset.
        tiff.extend_from_slice(&[0, 2, 0, 5, 0, 0, 0, 3]);
        tiff.extend_from_slice(&rationals_offset.to_be_bytes());
        // GPSLongitudeRef "E\0": tag 3.
        tiff.extend_from_slice(&[0, 3, 0, 2, 0, 0, 0, 2, b'E', 0, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        for (num, den) in [(37u32, 1u32), (33, 1), (59, 1)] {
            tiff.extend_from_slice(&num.to_be_bytes());
            tiff.extend_from_slice(&den.to_be_bytes());
        }
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    app1
}

/// A PNG of RGBA pixels, through the `image` crate's encoder.
pub fn png_rgba(width: u32, height: u32, rgba: Vec<u8>) -> Vec<u8> {
    let image = image::RgbaImage::from_raw(width, height, rgba).expect("buffer size");
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A PNG signature and an IHDR chunk (with a correct CRC) that declare `width × height`, and
/// nothing else: a decompression-bomb header.
pub fn png_bomb_header(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    // An IDAT that would inflate to gigabytes is not even needed: the header is refused first.
    png
}

/// A real small JPEG whose SOF header is rewritten to claim `width × height`.
pub fn jpeg_bomb(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(16, 16, &noise_rgb(16, 16, 7), &[]);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2])
        .expect("SOF marker");
    // FF Cx, length (2), precision (1), height (2), width (2)
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The marker codes of a JPEG's header segments, from SOI up to and including SOS.
pub fn jpeg_header_markers(jpeg: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "not a JPEG");
    let mut markers = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        assert_eq!(jpeg[at], 0xFF, "segment must start with 0xFF at {at}");
        let marker = jpeg[at + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        at += 2 + len;
    }
    markers
}

/// Decodes a JPEG to RGB with libjpeg, for checking what we produced.
pub fn decode_jpeg(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
    let decompress = mozjpeg::Decompress::new_mem(jpeg).expect("header");
    let mut started = decompress.rgb().expect("rgb");
    let (w, h) = (started.width() as u32, started.height() as u32);
    let data = started.read_scanlines::<u8>().expect("pixels");
    (w, h, data)
}

/// The RGB pixel at `(x, y)` of a decoded image `width` wide.
pub fn pixel(data: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
    let at = ((y * width + x) * 3) as usize;
    [data[at], data[at + 1], data[at + 2]]
}

pub fn is_reddish([r, g, b]: [u8; 3]) -> bool {
    r > 180 && g < 80 && b < 80
}

/// Noisy, fully random RGBA pixels (alpha included).
pub fn noise_rgba(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut rgba = noise_rgb(width, height * 2, seed);
    rgba.truncate((width * height * 4) as usize);
    rgba
}

/// A progressive JPEG of a `width × height` gradient with `scans` scans: mozjpeg's own scans, then
/// its smallest scan repeated. The shape of the scan bomb: a small file that costs libjpeg a
/// pass over the whole image per repeat.
pub fn jpeg_with_scans(width: u32, height: u32, scans: usize) -> Vec<u8> {
    let mut compress = Compress::new(ColorSpace::JCS_RGB);
    compress.set_size(width as usize, height as usize);
    compress.set_quality(90.0);
    compress.set_progressive_mode();
    let mut started = compress.start_compress(Vec::new()).expect("start");
    started
        .write_scanlines(&rgb_with_red_block(width, height, (0, 0, 0, 0)))
        .expect("scanlines");
    let mut bytes = started.finish().expect("finish");
    let starts = scan_starts(&bytes);
    assert!(
        starts.len() > 1 && starts.len() <= scans,
        "{} scans",
        starts.len()
    );
    assert_eq!(bytes[bytes.len() - 2..], [0xFF, 0xD9], "ends with EOI");
    bytes.truncate(bytes.len() - 2);
    let mut ends: Vec<usize> = starts[1..].to_vec();
    ends.push(bytes.len());
    // The smallest scan (a refinement pass, a few hundred bytes) keeps the file small.
    let (start, end) = starts
        .iter()
        .zip(&ends)
        .min_by_key(|(start, end)| *end - *start)
        .unwrap();
    let repeated = bytes[*start..*end].to_vec();
    for _ in starts.len()..scans {
        bytes.extend_from_slice(&repeated);
    }
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// Where each SOS segment of a JPEG starts, by walking its segments and entropy-coded data.
pub fn scan_starts(jpeg: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at + 1] != 0xD9 {
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if jpeg[at + 1] == 0xDA {
            starts.push(at);
            at += 2 + len;
            while jpeg[at] != 0xFF || matches!(jpeg[at + 1], 0x00 | 0xD0..=0xD7) {
                at += 1;
            }
        } else {
            at += 2 + len;
        }
    }
    starts
}

/// A 51-byte GIF whose logical screen is 7000×7000 (49 megapixels, under the pixel limit)
/// and whose one frame is a single pixel: the GIF canvas bomb.
pub fn gif_canvas_bomb() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    // Logical screen: 7000 × 7000, a global colour table of 2 entries, background 0.
    gif.extend_from_slice(&7000u16.to_le_bytes());
    gif.extend_from_slice(&7000u16.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0]);
    gif.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    // Graphic control extension (colour 0 transparent) and a 4-byte comment.
    gif.extend_from_slice(&[0x21, 0xF9, 4, 1, 0, 0, 0, 0]);
    gif.extend_from_slice(&[0x21, 0xFE, 4, b'b', b'o', b'm', b'b', 0]);
    // One frame: 1 × 1 at (0, 0), LZW minimum code size 2, codes clear, 0, end (3 bits each).
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0]);
    gif.push(0x3B);
    assert_eq!(gif.len(), 51);
    gif
}
