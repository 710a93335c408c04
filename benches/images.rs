//! Image optimisation throughput: the 12-MP JPEGs of `shared/bench-images` through
//! [`ballpark::media::optimize`] (1600 px + 400 px JPEG q82) on a fixed number of worker
//! threads, then the WebP variants on their own.
//!
//! Run through `bench/images`, which also measures vipsthumbnail in the same invocation.
//! Usage: `cargo bench --bench images -- [DIR]`; environment: `THREADS` (2), `ROUNDS` (3),
//! `WEBP_ROUNDS` (1), `PATTERN` (file-name prefixes, default `00_..09_`), `OUT_DIR` (write the
//! warm-up round's JPEGs there, to look at).
//!
//! Prints human lines and, last, `RESULT key=value ...` lines that the script parses.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ballpark::media::{optimize, webp_variants, Limits};

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/bench-images"));
    let threads: usize = env_or("THREADS", 2);
    // `cargo bench` passes `--bench`. `cargo test --all-targets` (scripts/test, CI) runs this
    // binary too, without it, unoptimised: then one image, one round, as a smoke run.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let rounds: usize = if smoke { 1 } else { env_or("ROUNDS", 3) };
    let prefixes: Vec<String> = std::env::var("PATTERN")
        .map(|p| p.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|_| {
            let count = if smoke { 1 } else { 10 };
            (0..count).map(|i| format!("{i:02}_")).collect()
        });
    if smoke {
        println!("smoke run (cargo test, not cargo bench): the figures are not measurements");
    }

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            prefixes.iter().any(|pre| name.starts_with(pre.as_str()))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no images in {}", dir.display());
    let inputs: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p).expect("read image"))
        })
        .collect();
    let input_bytes: usize = inputs.iter().map(|(_, b)| b.len()).sum();
    println!(
        "{} images ({} MB in), {threads} threads, {rounds} rounds",
        inputs.len(),
        input_bytes / 1_000_000
    );

    let limits = Limits::default();
    let out_dir = std::env::var_os("OUT_DIR").map(PathBuf::from);

    // One unmeasured pass: warms caches and checks every image succeeds; also the byte counts.
    let mut jpeg_bytes = 0usize;
    for (name, bytes) in &inputs {
        let out = optimize(bytes, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        jpeg_bytes += out.display_jpeg.len() + out.thumb_jpeg.len();
        if let Some(dir) = &out_dir {
            std::fs::create_dir_all(dir).expect("out dir");
            let stem = name.trim_end_matches(".jpg");
            std::fs::write(dir.join(format!("{stem}-1600.jpg")), &out.display_jpeg).unwrap();
            std::fs::write(dir.join(format!("{stem}-400.jpg")), &out.thumb_jpeg).unwrap();
        }
    }

    let jpeg_time = run_parallel(&inputs, threads, rounds, |bytes| {
        let out = optimize(bytes, &limits).expect("optimize");
        std::hint::black_box(out.display_jpeg.len());
    });
    let jobs = inputs.len() * rounds;
    let jpeg_rate = jobs as f64 / jpeg_time.as_secs_f64();
    println!(
        "jpeg: {jobs} images in {:.2} s = {jpeg_rate:.2} images/s, {jpeg_bytes} bytes out per round",
        jpeg_time.as_secs_f64()
    );

    let mut webp_bytes = 0usize;
    for (name, bytes) in &inputs {
        let out = webp_variants(bytes, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        webp_bytes += out.display_webp.len() + out.thumb_webp.len();
    }
    // WebP is several times slower; one round is enough for a stable figure.
    let webp_rounds: usize = env_or("WEBP_ROUNDS", 1);
    let webp_time = run_parallel(&inputs, threads, webp_rounds, |bytes| {
        let out = webp_variants(bytes, &limits).expect("webp");
        std::hint::black_box(out.display_webp.len());
    });
    let webp_jobs = inputs.len() * webp_rounds;
    let webp_rate = webp_jobs as f64 / webp_time.as_secs_f64();
    println!(
        "webp: {webp_jobs} images in {:.2} s = {webp_rate:.2} images/s, {webp_bytes} bytes out per round",
        webp_time.as_secs_f64()
    );
    println!(
        "RESULT kind=jpeg images={} threads={threads} rounds={rounds} seconds={:.3} rate={jpeg_rate:.3} bytes={jpeg_bytes}",
        inputs.len(),
        jpeg_time.as_secs_f64()
    );
    println!(
        "RESULT kind=webp images={} threads={threads} rounds={webp_rounds} seconds={:.3} rate={webp_rate:.3} bytes={webp_bytes}",
        inputs.len(),
        webp_time.as_secs_f64()
    );
}

/// Runs `work` over `inputs × rounds` on `threads` threads pulling from one shared counter,
/// the way a pool of blocking workers drains a queue. Returns the wall time.
fn run_parallel(
    inputs: &[(String, Vec<u8>)],
    threads: usize,
    rounds: usize,
    work: impl Fn(&[u8]) + Sync,
) -> Duration {
    let next = AtomicUsize::new(0);
    let total = inputs.len() * rounds;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                work(&inputs[i % inputs.len()].1);
            });
        }
    });
    start.elapsed()
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
