//! Chat's figures in the process's [`Metrics`] recorder:
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `ballpark_chat_sockets_open` | gauge | chat WebSockets open in this process |
//! | `ballpark_chat_messages_posted_total` | counter | messages stored (socket or `POST`) |
//! | `ballpark_chat_rate_limited_total` | counter | posts refused by the per-user rate limit |

use ::metrics::Gauge;

use crate::metrics::Metrics;

const SOCKETS: &str = "ballpark_chat_sockets_open";
const POSTED: &str = "ballpark_chat_messages_posted_total";
const RATE_LIMITED: &str = "ballpark_chat_rate_limited_total";

pub struct ChatMetrics {
    metrics: Metrics,
}

impl ChatMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        metrics.describe_gauge(SOCKETS, None, "Chat WebSockets open in this process.");
        metrics.describe_counter(POSTED, None, "Chat messages stored.");
        metrics.describe_counter(
            RATE_LIMITED,
            None,
            "Chat posts refused by the per-user rate limit.",
        );
        ChatMetrics {
            metrics: metrics.clone(),
        }
    }

    pub fn posted(&self) {
        self.metrics.counter(POSTED, &[]).increment(1);
    }

    pub fn rate_limited(&self) {
        self.metrics.counter(RATE_LIMITED, &[]).increment(1);
    }

    /// Counts a socket as open until the returned guard is dropped (however the socket ends).
    pub fn socket_open(&self) -> OpenSocket {
        let gauge = self.metrics.gauge(SOCKETS, &[]);
        gauge.increment(1.0);
        OpenSocket(gauge)
    }
}

/// Holds one socket's place in `ballpark_chat_sockets_open`.
pub struct OpenSocket(Gauge);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
