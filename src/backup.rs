//! `ballpark backup` and `ballpark restore`: the one-machine deployment's backups (a SQLite
//! database and the local media directory), taken while the server runs.
//!
//! Decisions a newcomer must know:
//! - The database is copied with `VACUUM INTO`: one read transaction, so the copy is a
//!   consistent snapshot and, in WAL mode, writers carry on while it is taken. Copying the
//!   file with `cp` is not a backup: it can catch a page half-written or miss the WAL.
//! - The database is copied before the media, so every file a copied row names is in the
//!   copied media; files uploaded in between are orphans, which are harmless.
//! - PostgreSQL is backed up with `pg_dump`, and media in S3 with the bucket's own tools
//!   (versioning, `aws s3 sync`): both are documented in docs/deployment.md, and refused here
//!   with that pointer rather than half done.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::config::Config;

/// The database's file name inside a backup folder.
pub const DATABASE_FILE: &str = "ballpark.db";
/// The media directory's name inside a backup folder.
pub const MEDIA_DIR: &str = "media";

/// What a backup or a restore copied.
#[derive(Debug)]
pub struct Report {
    pub database: PathBuf,
    /// Media files copied; `None` when the media live in S3 (not copied).
    pub media_files: Option<u64>,
}

/// Writes `<dir>/ballpark.db` and `<dir>/media/` from the running deployment `config`
/// describes. `dir` is created; an existing backup in it is not overwritten.
pub async fn backup(config: &Config, dir: &Path) -> anyhow::Result<Report> {
    let source = sqlite_path(config)?;
    if !source.exists() {
        bail!("no database at {}", source.display());
    }
    let database = dir.join(DATABASE_FILE);
    if database.exists() {
        bail!(
            "{} already exists: back up into a new folder",
            database.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;

    let mut conn = SqliteConnectOptions::from_str(config.database_url.expose())?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .context("while opening the database to back up")?;
    let target = database
        .to_str()
        .context("the backup folder's path must be valid UTF-8")?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .with_context(|| format!("while writing {}", database.display()))?;
    conn.close().await?;

    let media_files = match &config.storage_url {
        Some(_) => None,
        None => Some(copy_tree(Path::new(&config.media_dir), &dir.join(MEDIA_DIR)).await?),
    };
    Ok(Report {
        database,
        media_files,
    })
}

/// Puts a backup made by [`backup`] in place of the database and media `config` names. The
/// server must be stopped. An existing database is replaced only with `force`.
pub async fn restore(config: &Config, dir: &Path, force: bool) -> anyhow::Result<Report> {
    let target = sqlite_path(config)?;
    let backup = dir.join(DATABASE_FILE);
    if !backup.is_file() {
        bail!(
            "{} is not a backup: no {DATABASE_FILE} in it",
            dir.display()
        );
    }
    check_integrity(&backup).await?;
    if target.exists() && !force {
        bail!(
            "{} exists: stop the server and pass --force to replace it",
            target.display()
        );
    }
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Copied beside the target, then renamed over it: a crash halfway leaves the old database,
    // never half of the new one. The old WAL belongs to the old file: replaying it into the
    // restored one would corrupt it, so it goes.
    let staging = target.with_extension("db.restoring");
    std::fs::copy(&backup, &staging)
        .with_context(|| format!("while copying {}", backup.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = target.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).context("while removing the old database's WAL")
            }
            _ => {}
        }
    }
    std::fs::rename(&staging, &target)
        .with_context(|| format!("while moving the restored database to {}", target.display()))?;

    let media = dir.join(MEDIA_DIR);
    let media_files = match (&config.storage_url, media.is_dir()) {
        (None, true) => Some(copy_tree(&media, Path::new(&config.media_dir)).await?),
        _ => None,
    };
    Ok(Report {
        database: target,
        media_files,
    })
}

/// The SQLite file `config` names, or why there is none to back up here.
fn sqlite_path(config: &Config) -> anyhow::Result<PathBuf> {
    let url = config.database_url.expose();
    if !url.starts_with("sqlite:") {
        bail!(
            "ballpark backup and restore handle SQLite; back up PostgreSQL with pg_dump \
             (pg_dump --format=custom) and restore with pg_restore, see docs/deployment.md"
        );
    }
    Ok(SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_path_buf())
}

async fn check_integrity(path: &Path) -> anyhow::Result<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("while opening {}", path.display()))?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    conn.close().await?;
    if verdict != "ok" {
        bail!(
            "{} fails SQLite's integrity check: {verdict}",
            path.display()
        );
    }
    Ok(())
}

/// Copies the files under `from` into `to` (merging into what is there); returns how many.
/// A missing `from` is an empty tree: a deployment without uploads yet.
async fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut copied = 0;
        let mut pending = vec![(from, to)];
        while let Some((from, to)) = pending.pop() {
            let entries = match std::fs::read_dir(&from) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                entries => entries.with_context(|| format!("while reading {}", from.display()))?,
            };
            std::fs::create_dir_all(&to)
                .with_context(|| format!("while creating {}", to.display()))?;
            for entry in entries {
                let entry = entry?;
                let (source, target) = (entry.path(), to.join(entry.file_name()));
                if entry.file_type()?.is_dir() {
                    pending.push((source, target));
                } else {
                    std::fs::copy(&source, &target)
                        .with_context(|| format!("while copying {}", source.display()))?;
                    copied += 1;
                }
            }
        }
        Ok(copied)
    })
    .await?
}
