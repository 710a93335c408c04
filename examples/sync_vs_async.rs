//! Sync vs async, blocking vs non-blocking: the classic three-lookups demo.
//!
//! Three "user lookups" need 3, 2 and 1 steps, and each step waits one second
//! (standing in for a database or network round trip). The example runs them twice:
//!
//! 1. **One after another** (`a().await; b().await; c().await`): every wait blocks the
//!    whole program, so the waits add up: 3 + 2 + 1 = about 6 s.
//! 2. **Concurrently** with `tokio::join!`: while one lookup waits on its timer, the
//!    runtime polls the others. The waits overlap, so the run takes as long as the
//!    slowest lookup: about 3 s.
//!
//! The runtime here is deliberately `current_thread`: there is exactly one thread, so the
//! speed-up comes from not blocking, not from parallelism. That is why the steps use
//! `tokio::time::sleep` (which yields to the runtime) and never `std::thread::sleep`
//! (which would block the only thread and make the concurrent run as slow as the
//! sequential one). The same rule holds in the server: never block inside a handler.
//!
//! Run it with `cargo run --example sync_vs_async`.

use std::time::{Duration, Instant};

/// How long one step of a lookup waits.
const STEP: Duration = Duration::from_secs(1);

/// One pretend lookup: `steps` waits of [`STEP`], reporting progress after each.
async fn lookup(user: &str, steps: u32) -> String {
    for step in 1..=steps {
        tokio::time::sleep(STEP).await;
        println!("  user {user} step {step}/{steps}");
    }
    format!("user {user} done")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("sequential: each lookup waits for the one before it");
    let started = Instant::now();
    let a = lookup("A", 3).await;
    let b = lookup("B", 2).await;
    let c = lookup("C", 1).await;
    let sequential = started.elapsed();
    println!("  -> {a}, {b}, {c}");
    println!("sequential took {:.2} s\n", sequential.as_secs_f64());

    println!("concurrent (tokio::join!): the lookups take turns on one thread");
    let started = Instant::now();
    let (a, b, c) = tokio::join!(lookup("A", 3), lookup("B", 2), lookup("C", 1));
    let concurrent = started.elapsed();
    println!("  -> {a}, {b}, {c}");
    println!("concurrent took {:.2} s\n", concurrent.as_secs_f64());

    let ratio = sequential.as_secs_f64() / concurrent.as_secs_f64();
    println!("speed-up: {ratio:.2}x (ideal: 6 s / 3 s = 2.00x)");

    // The example checks its own claim rather than having a test: six one-second waits
    // that overlap must finish well under the time they take end to end. 1.5x leaves
    // room for a slow, busy machine while still failing if the waits ever serialise.
    assert!(
        ratio > 1.5,
        "concurrent run was not faster: sequential {sequential:?}, concurrent {concurrent:?}"
    );
}
