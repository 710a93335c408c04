//! Notices a second `ballpark serve` on the same SQLite file: each `serve` holds an advisory
//! lock on `<database>-serve.lock` next to the database for as long as it runs, and one that
//! finds it taken logs a warning.
//!
//! A warning, not a refusal: nothing gets corrupted (SQLite serialises the writers), but
//! chat messages reach only the sockets of the server they were posted to, the login limits
//! are counted per process, and the two compete for the one write lock. Only `serve` takes
//! the lock: `ballpark worker`, `migrate`, `queue stats` and `user set-role` share the file
//! with a running `serve` by design.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

/// Takes the serve lock of `database_url` if it names a SQLite file. Returns the locked file,
/// which holds the lock until dropped; `None` for PostgreSQL, an in-memory database, or when
/// the lock is taken or cannot be taken (both logged: neither stops the server).
pub fn take(database_url: &str) -> Option<File> {
    if !database_url.starts_with("sqlite:") {
        return None;
    }
    let database = SqliteConnectOptions::from_str(database_url)
        .ok()?
        .get_filename()
        .to_path_buf();
    if database == Path::new(":memory:") {
        return None;
    }
    let path = PathBuf::from(format!("{}-serve.lock", database.display()));
    let opened = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path);
    let file = match opened {
        Ok(file) => file,
        Err(err) => {
            tracing::warn!(lock = %path.display(), error = %err, "cannot open the SQLite serve lock; not checking for a second server");
            return None;
        }
    };
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(TryLockError::WouldBlock) => {
            tracing::warn!(
                database = %database.display(),
                lock = %path.display(),
                "another `ballpark serve` is already serving this SQLite database: chat messages \
                 reach only the sockets of the server they were posted to and both compete for \
                 its one writer; run one server per SQLite file, or use PostgreSQL for several"
            );
            None
        }
        Err(TryLockError::Error(err)) => {
            tracing::warn!(lock = %path.display(), error = %err, "cannot lock the SQLite serve lock; not checking for a second server");
            None
        }
    }
}
