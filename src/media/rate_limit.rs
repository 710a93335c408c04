//! How many uploads each user may start: `upload_rate_per_minute`, a burst of that many and
//! then one every `60 / n` seconds (GCRA through governor, keyed by user id, in memory).
//!
//! An upload costs far more than the request that brings it: up to `upload_limit_bytes` of
//! storage and an image job of up to `image_job_timeout_secs` on an image thread. The limit
//! is checked before the body is read, so a refused upload costs neither. Like the login and
//! chat limits, the state belongs to one process: behind several instances the effective
//! limit multiplies.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct UploadLimiter(DefaultKeyedRateLimiter<i64>);

impl UploadLimiter {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        UploadLimiter(RateLimiter::keyed(Quota::per_minute(per_minute)))
    }

    /// Takes one upload from `user_id`'s quota; `Err` with how long until the next one is
    /// allowed.
    pub fn check(&self, user_id: i64) -> Result<(), Duration> {
        self.0
            .check_key(&user_id)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets users back at a full quota, so memory stays bounded.
    pub fn prune(&self) {
        self.0.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::UploadLimiter;

    #[test]
    fn the_upload_after_the_burst_waits_about_one_interval() {
        let limiter = UploadLimiter::new(6);
        for _ in 0..6 {
            limiter.check(1).unwrap();
        }

        let wait = limiter.check(1).unwrap_err();

        // 6 a minute: the next one in up to 10 s.
        assert!(
            wait.as_secs_f64() > 9.0 && wait.as_secs_f64() <= 10.0,
            "{wait:?}"
        );
        limiter
            .check(2)
            .expect("another user has a quota of their own");
    }
}
