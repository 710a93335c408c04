//! The queued image jobs, both on the images queue:
//!
//! 1. `image.optimize` (enqueued with the upload): the original → `display.jpg` and
//!    `thumb.jpg`; marks the upload ready, enqueueing `image.webp` in that same transaction,
//!    then deletes the original.
//! 2. `image.webp`: `display.jpg` → `display.webp` and `thumb.webp`; records their sizes.
//!
//! **The WebP job encodes from `display.jpg`, not from the original.** The original is
//! deleted as soon as the upload is ready, so that storage holds only what is served and a
//! pending upload's original is the only copy that ever needs cleaning up. Keeping it until
//! the WebP job ends would mean a second deletion step whose failure leaks the largest file.
//! The price: the WebP variants are a second generation of lossy compression (mozjpeg q82,
//! then libwebp q80), and a PNG's transparency, flattened onto white in the JPEG, is not in
//! the WebP either. Decoding a 1600 px JPEG is a
//! few milliseconds against libwebp's hundreds, so it costs nothing in time. The display JPEG
//! carries no EXIF, so it is already upright and its size is the display size: the WebP
//! variants come out with the same dimensions as the JPEG ones.
//!
//! Both handlers are idempotent (delivery is at-least-once): each checks the upload's state
//! first (`pending` for the first, `ready` without WebP sizes for the second), writes its
//! variants under fixed keys (a rerun overwrites them), and records its outcome with an
//! update that only applies once. Bad input is final: the upload is marked `failed` with a
//! reason, and the job is not retried. Both share one semaphore of `image_workers` permits,
//! since each holds a decoded picture in memory.
//!
//! The WebP job is not prioritised below the JPEG one: both wait in the same queue, first in
//! first out. It is enqueued only once its upload's JPEG variants exist, so a single upload's
//! JPEGs never wait for WebP; under a backlog, WebP jobs take their turn in the line.

use super::files::{key, DISPLAY_JPEG, DISPLAY_WEBP, ORIGINAL, THUMB_JPEG, THUMB_WEBP};
use super::storage::Storage;
use super::store::{self, Ready};
use super::Limits;
use crate::db::Db;
use crate::queue::{Job, JobError, JobHandler, NewJob, Wakeup};

/// Job kind that makes the JPEG variants.
pub const OPTIMIZE: &str = "image.optimize";
/// Job kind that makes the WebP variants.
pub const WEBP: &str = "image.webp";

/// What both image jobs need.
#[derive(Clone)]
pub struct ImageJobs {
    pub db: Db,
    pub storage: Storage,
    pub limits: Limits,
    /// The queue the WebP job goes to (the `images_queue` setting).
    pub queue: String,
    /// Where decoding and encoding run: `image_workers` threads, so it also caps the images
    /// decoded at once (each holds a decoded picture in memory). See [`super::pool`].
    pub pool: super::pool::ImagePool,
    /// Wakes this process's database workers after the WebP job is enqueued, so it starts
    /// at once rather than at the next poll (none on RabbitMQ, where the relay publishes it).
    pub wakeup: Option<Wakeup>,
}

/// The job that makes an upload's JPEG variants, for `queue` (the `images_queue` setting).
pub fn optimize_job(queue: &str, upload_id: &str) -> NewJob {
    NewJob::new(queue, OPTIMIZE, upload_payload(upload_id))
}

impl ImageJobs {
    /// Runs `work` on the image threads, in the current span.
    async fn decode<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, JobError> {
        self.pool.run(work).await.map_err(JobError::retry)
    }
}

fn upload_payload(upload_id: &str) -> serde_json::Value {
    serde_json::json!({ "upload": upload_id })
}

fn upload_id(job: &Job) -> Result<&str, JobError> {
    job.payload["upload"]
        .as_str()
        .ok_or_else(|| JobError::permanent("the job names no upload"))
}

/// The `image.optimize` job.
pub struct OptimizeImage(pub ImageJobs);

#[async_trait::async_trait]
impl JobHandler for OptimizeImage {
    async fn handle(&self, job: &Job) -> Result<(), JobError> {
        let jobs = &self.0;
        let id = upload_id(job)?;
        let Some(row) = store::get(&jobs.db, id).await.map_err(JobError::retry)? else {
            return Ok(()); // deleted meanwhile: nothing to do
        };
        if row.status != "pending" {
            return Ok(()); // done by an earlier delivery
        }
        let Some(original) = jobs.storage.get(&key(id, ORIGINAL)).await? else {
            store::mark_failed(&jobs.db, id, "the uploaded file is missing")
                .await
                .map_err(JobError::retry)?;
            return Ok(());
        };
        let limits = jobs.limits.clone();
        let out = match jobs
            .decode(move || super::optimize(&original, &limits))
            .await?
        {
            Ok(out) => out,
            Err(err) => {
                // Bad input is final: say why on the upload, and do not retry.
                store::mark_failed(&jobs.db, id, &err.to_string())
                    .await
                    .map_err(JobError::retry)?;
                return Ok(());
            }
        };
        jobs.storage
            .put(&key(id, DISPLAY_JPEG), &out.display_jpeg)
            .await?;
        jobs.storage
            .put(&key(id, THUMB_JPEG), &out.thumb_jpeg)
            .await?;
        let ready = Ready {
            width: out.width.into(),
            height: out.height.into(),
            thumb_width: out.thumb_width.into(),
            thumb_height: out.thumb_height.into(),
            display_bytes: out.display_jpeg.len() as i64,
            thumb_bytes: out.thumb_jpeg.len() as i64,
        };
        let webp = NewJob::new(&jobs.queue, WEBP, upload_payload(id));
        let marked = store::mark_ready(&jobs.db, id, &ready, &webp)
            .await
            .map_err(JobError::retry)?;
        if marked {
            if let Some(wakeup) = &jobs.wakeup {
                wakeup.wake();
            }
        }
        // The optimised display image replaces the original.
        jobs.storage.delete(&key(id, ORIGINAL)).await?;
        Ok(())
    }
}

/// The `image.webp` job.
pub struct MakeWebp(pub ImageJobs);

#[async_trait::async_trait]
impl JobHandler for MakeWebp {
    async fn handle(&self, job: &Job) -> Result<(), JobError> {
        let jobs = &self.0;
        let id = upload_id(job)?;
        let Some(row) = store::get(&jobs.db, id).await.map_err(JobError::retry)? else {
            return Ok(()); // deleted meanwhile: nothing to do
        };
        if row.status != "ready" || row.display_webp_bytes.is_some() {
            return Ok(()); // not ours to do, or done by an earlier delivery
        }
        let Some(display) = jobs.storage.get(&key(id, DISPLAY_JPEG)).await? else {
            // The upload says ready, so this is lost data, not a race: retrying cannot help.
            return Err(JobError::permanent(format!(
                "upload {id} is ready but its {DISPLAY_JPEG} is missing"
            )));
        };
        let limits = jobs.limits.clone();
        let out = jobs
            .decode(move || super::webp_variants(&display, &limits))
            .await?
            // Our own JPEG failing is a bug, not the uploader's input: keep the job as evidence.
            .map_err(|e| JobError::permanent(format!("WebP from {DISPLAY_JPEG}: {e}")))?;
        jobs.storage
            .put(&key(id, DISPLAY_WEBP), &out.display_webp)
            .await?;
        jobs.storage
            .put(&key(id, THUMB_WEBP), &out.thumb_webp)
            .await?;
        store::mark_webp_done(
            &jobs.db,
            id,
            out.display_webp.len() as i64,
            out.thumb_webp.len() as i64,
        )
        .await
        .map_err(JobError::retry)?;
        Ok(())
    }
}
