//! What the admin dashboard (`GET /admin`) shows of the queue: per queue and kind, the depth
//! now, what finished over the last 5 and 60 minutes, how long runs took over the last 60,
//! and the newest dead jobs with their last error. Read from the `jobs` table (both backends,
//! and the job rows follow the RabbitMQ backend too), like [`mod@super::report`], which gives the
//! same figures per queue only.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{now, store, Job};
use crate::db::Db;

/// The short and the long window.
pub const SHORT_WINDOW: Duration = Duration::from_secs(5 * 60);
pub const LONG_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Dead jobs listed (the newest).
pub const DEAD_SHOWN: i64 = 50;

/// One queue and kind's line.
#[derive(Debug, Clone, PartialEq)]
pub struct KindLine {
    pub counts: store::KindCounts,
    /// Last runs of the jobs done in the long window: median, 95th percentile, longest.
    pub run_p50: Option<Duration>,
    pub run_p95: Option<Duration>,
    pub run_max: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub at: DateTime<Utc>,
    /// Ordered by queue, then kind.
    pub lines: Vec<KindLine>,
    /// Newest first, at most [`DEAD_SHOWN`].
    pub dead: Vec<Job>,
}

/// Reads the dashboard as of now.
pub async fn dashboard(db: &Db) -> Result<Dashboard, sqlx::Error> {
    let at = now();
    let short = at - SHORT_WINDOW;
    let long = at - LONG_WINDOW;
    let durations = store::run_durations_by_kind_since(db, long).await?;
    let secs = |s: f64| Some(Duration::from_secs_f64(s.max(0.0)));
    let lines = store::kind_counts(db, at, short, long)
        .await?
        .into_iter()
        .map(|counts| {
            let runs = durations
                .iter()
                .find(|d| d.queue == counts.queue && d.kind == counts.kind);
            KindLine {
                run_p50: runs.and_then(|r| secs(r.p50)),
                run_p95: runs.and_then(|r| secs(r.p95)),
                run_max: runs.and_then(|r| secs(r.max)),
                counts,
            }
        })
        .collect();
    let dead = store::recent_dead(db, DEAD_SHOWN).await?;
    Ok(Dashboard { at, lines, dead })
}
