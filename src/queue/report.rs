//! What `ballpark queue stats` shows: per queue, the depth now and what happened over a recent
//! window (jobs done and dead, failed runs, how long runs took), all read from the `jobs`
//! table, so it works without a metrics server and on both backends.
//!
//! `queued` counts the jobs a worker may take now; jobs queued for later (retries waiting out
//! their backoff, order deadlines) are `scheduled`, so a deep `queued` always means work
//! waiting for a worker.
//!
//! Durations are those of each finished job's last run (`finished_at - started_at`);
//! percentiles are nearest-rank (the smallest duration at or above that share of the runs),
//! computed by the database. Failed runs are counted from the jobs that finished in the
//! window: all runs of a dead job, all but the last of a done one (the process-level counters
//! in [`metrics`](super::metrics) count each failure as it happens).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{now, store};
use crate::db::Db;

/// One queue's line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueReport {
    pub queue: String,
    /// Queued jobs that are due: a worker may take them now.
    pub queued: i64,
    /// Queued jobs not due yet (`run_at` in the future).
    pub scheduled: i64,
    pub running: i64,
    pub dead: i64,
    /// Queued jobs that have failed before and wait for another attempt.
    pub retrying: i64,
    /// Jobs that finished done within the window.
    pub done_recent: i64,
    /// Jobs that went dead within the window.
    pub dead_recent: i64,
    /// Failed runs of the jobs that finished within the window.
    pub failed_runs_recent: i64,
    /// Duration of the last run of jobs done within the window: median, 95th percentile, max.
    pub run_p50: Option<Duration>,
    pub run_p95: Option<Duration>,
    pub run_max: Option<Duration>,
}

/// Every queue's line, over the window ending at `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub window: Duration,
    pub until: DateTime<Utc>,
    pub queues: Vec<QueueReport>,
}

/// Reads the report for the last `window`.
pub async fn report(db: &Db, window: Duration) -> Result<Report, sqlx::Error> {
    let until = now();
    let since = until - window;
    let mut queues: Vec<QueueReport> = store::stats(db)
        .await?
        .into_iter()
        .map(|s| QueueReport {
            queue: s.queue,
            queued: s.queued,
            running: s.running,
            dead: s.dead,
            ..QueueReport::default()
        })
        .collect();
    fn line<'a>(queues: &'a mut Vec<QueueReport>, queue: &str) -> &'a mut QueueReport {
        match queues.iter().position(|q| q.queue == queue) {
            Some(i) => &mut queues[i],
            None => {
                queues.push(QueueReport {
                    queue: queue.to_string(),
                    ..QueueReport::default()
                });
                queues.last_mut().expect("pushed above")
            }
        }
    }
    for (queue, scheduled) in store::scheduled(db, until).await? {
        let entry = line(&mut queues, &queue);
        entry.scheduled = scheduled;
        entry.queued -= scheduled;
    }
    for (queue, retrying) in store::retrying(db).await? {
        line(&mut queues, &queue).retrying = retrying;
    }
    for finished in store::finished_since(db, since).await? {
        let entry = line(&mut queues, &finished.queue);
        entry.done_recent = finished.done;
        entry.dead_recent = finished.dead;
        entry.failed_runs_recent = finished.failed_runs;
    }
    for runs in store::run_durations_since(db, since).await? {
        let entry = line(&mut queues, &runs.queue);
        let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
        entry.run_p50 = Some(secs(runs.p50));
        entry.run_p95 = Some(secs(runs.p95));
        entry.run_max = Some(secs(runs.max));
    }
    queues.sort_by(|a, b| a.queue.cmp(&b.queue));
    Ok(Report {
        window,
        until,
        queues,
    })
}

fn millis(duration: Option<Duration>) -> String {
    match duration {
        Some(d) => format!("{:.1}", d.as_secs_f64() * 1000.0),
        None => "-".to_string(),
    }
}

/// The table `ballpark queue stats` prints.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Jobs now, and jobs finished in the last {:.0} min (run times: the last run of each job done):",
            self.window.as_secs_f64() / 60.0
        )?;
        writeln!(
            f,
            "{:<16} {:>8} {:>9} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
            "queue",
            "queued",
            "scheduled",
            "running",
            "retrying",
            "dead",
            "done",
            "dead",
            "failures",
            "p50 ms",
            "p95 ms",
            "max ms",
        )?;
        if self.queues.is_empty() {
            return writeln!(f, "(no jobs)");
        }
        for q in &self.queues {
            writeln!(
                f,
                "{:<16} {:>8} {:>9} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
                q.queue,
                q.queued,
                q.scheduled,
                q.running,
                q.retrying,
                q.dead,
                q.done_recent,
                q.dead_recent,
                q.failed_runs_recent,
                millis(q.run_p50),
                millis(q.run_p95),
                millis(q.run_max),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_depth_window_figures_and_durations_in_milliseconds() {
        let report = Report {
            window: Duration::from_secs(15 * 60),
            until: now(),
            queues: vec![QueueReport {
                queue: "images".into(),
                queued: 3,
                scheduled: 4,
                running: 1,
                dead: 2,
                retrying: 1,
                done_recent: 40,
                dead_recent: 2,
                failed_runs_recent: 5,
                run_p50: Some(Duration::from_micros(71_240)),
                run_p95: Some(Duration::from_millis(180)),
                run_max: Some(Duration::from_millis(950)),
            }],
        };

        let text = report.to_string();

        let mut lines = text.lines();
        assert!(lines.next().unwrap().contains("last 15 min"));
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "queue",
                "queued",
                "scheduled",
                "running",
                "retrying",
                "dead",
                "|",
                "done",
                "dead",
                "failures",
                "p50",
                "ms",
                "p95",
                "ms",
                "max",
                "ms"
            ]
        );
        assert_eq!(
            row,
            ["images", "3", "4", "1", "1", "2", "|", "40", "2", "5", "71.2", "180.0", "950.0"]
        );
    }

    #[test]
    fn an_empty_queue_table_says_so() {
        let report = Report {
            window: Duration::from_secs(60),
            until: now(),
            queues: Vec::new(),
        };
        assert!(report.to_string().ends_with("(no jobs)\n"));
    }
}
