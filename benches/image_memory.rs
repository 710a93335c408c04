//! Peak memory and time of one image job: [`ballpark::media::optimize`] (the JPEG variants)
//! and then [`ballpark::media::webp_variants`] on one file, in a process of its own, reporting
//! the resident set (`VmRSS`) before and the peak (`VmHWM`) after.
//!
//! The input is read first; then the peak is reset (`5` into `/proc/self/clear_refs`, Linux),
//! so the figure is what the job itself adds on top of the file's bytes, as in a worker.
//! Run through `bench/image-memory`, which also makes the hostile and the large inputs.
//! Usage: `cargo bench --bench image_memory -- FILE` (release) or `cargo test --bench
//! image_memory -- FILE` (debug: the memory is the same, the time is not). Without a file
//! (`cargo test --all-targets`) it measures a small generated JPEG as a smoke run.
//!
//! Prints `RESULT file=... bytes=... rss_before_mb=... peak_mb=... seconds=... outcome=...`.

use std::time::Instant;

use ballpark::media::{optimize, webp_variants, Limits};

fn main() {
    let file = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (name, input) = match &file {
        Some(path) => (
            path.clone(),
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}")),
        ),
        None => {
            println!("smoke run (no file given): the figures are not measurements");
            ("generated".to_string(), small_jpeg())
        }
    };
    // No time budget: the point is what a whole job costs.
    let limits = Limits {
        time_budget: None,
        ..Limits::default()
    };
    reset_peak();
    let before = status_mb("VmRSS");
    let start = Instant::now();
    let outcome = match optimize(&input, &limits) {
        Ok(_) => match webp_variants(&input, &limits) {
            Ok(_) => "ready".to_string(),
            Err(err) => format!("webp-failed:{err}"),
        },
        Err(err) => format!("failed:{err}"),
    };
    let seconds = start.elapsed().as_secs_f64();
    let peak = status_mb("VmHWM");
    println!(
        "RESULT file={name} bytes={} rss_before_mb={before:.0} peak_mb={peak:.0} seconds={seconds:.3} outcome={}",
        input.len(),
        outcome.replace(' ', "_")
    );
}

/// Resets `VmHWM` to the current resident set (Linux 4.0+).
fn reset_peak() {
    if let Err(err) = std::fs::write("/proc/self/clear_refs", "5") {
        println!("could not reset the peak ({err}): it includes reading the input");
    }
}

/// A field of `/proc/self/status`, in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn small_jpeg() -> Vec<u8> {
    let (w, h) = (64, 48);
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(w, h);
    let mut started = compress.start_compress(Vec::new()).expect("start");
    started.write_scanlines(&pixels).expect("scanlines");
    started.finish().expect("finish")
}
