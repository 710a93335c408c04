//! Snack-bar orders and payment through the queue (work in progress: see the issue).

pub mod vendor;
