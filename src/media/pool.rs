//! The threads image work runs on: `image_workers` of them, off the async executor, at a
//! lower CPU priority than the rest of the process.
//!
//! Decoding and encoding a 12-megapixel photo takes a core for tens of milliseconds. On a
//! machine where the API and the image jobs share the cores, a request that arrives while both
//! want the CPU should win: image jobs are background work and can wait a little, a reader
//! should not. So the pool's threads (a rayon pool of their own, not tokio's blocking pool,
//! which also runs other blocking work) lower their own priority when they start (Linux
//! `setpriority` on the thread, niceness `image_worker_nice`, default 5). A thread cannot
//! raise its priority again without privileges, which is why the threads are dedicated.

use std::sync::Arc;

use anyhow::Context;

/// A bounded pool for CPU-heavy image work. Cheap to clone.
#[derive(Clone)]
pub struct ImagePool {
    pool: Arc<rayon::ThreadPool>,
}

impl std::fmt::Debug for ImagePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagePool")
            .field("threads", &self.pool.current_num_threads())
            .finish()
    }
}

impl ImagePool {
    /// `threads` threads (at least 1), each at niceness `nice` (0-19; ignored off Linux).
    pub fn new(threads: usize, nice: i32) -> anyhow::Result<ImagePool> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("image-{i}"))
            .start_handler(move |_| lower_priority(nice))
            // A panic in image code fails that job (its result channel is dropped); without a
            // handler rayon would abort the process.
            .panic_handler(|_| tracing::error!("an image task panicked"))
            .build()
            .context("while starting the image threads")?;
        Ok(ImagePool {
            pool: Arc::new(pool),
        })
    }

    /// Runs `work` on the pool, in the current tracing span, and waits for its result. Work
    /// beyond the pool's threads waits in its queue, so at most `threads` images are decoded
    /// at once. `Err` if `work` panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (done, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        self.pool.spawn(move || {
            let _ = done.send(span.in_scope(work));
        });
        result
            .await
            .map_err(|_| "the image task panicked".to_string())
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: setpriority only reads its plain integer arguments; `who = 0` with PRIO_PROCESS
    // means the calling thread on Linux, where each thread has its own niceness.
    let status = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if status != 0 {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(),
            "could not lower the image thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::ImagePool;

    #[tokio::test]
    async fn work_runs_on_a_pool_thread_and_its_result_comes_back() {
        let pool = ImagePool::new(1, 10).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("image-0"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn pool_threads_run_at_the_configured_niceness() {
        let pool = ImagePool::new(1, 7).unwrap();
        let nice = pool
            .run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })
            .await
            .unwrap();
        // The process's own niceness plus 7 (it is 0 unless the tests were started niced).
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice, (own + 7).min(19));
    }

    #[tokio::test]
    async fn a_panicking_task_is_an_error_not_a_crash() {
        let pool = ImagePool::new(1, 0).unwrap();
        let result: Result<(), String> = pool.run(|| panic!("corrupt image")).await;
        assert!(result.is_err());
        // The pool still works.
        assert_eq!(pool.run(|| 2 + 2).await, Ok(4));
    }
}
