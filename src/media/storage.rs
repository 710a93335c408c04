//! Where upload bytes live: a directory on local disk, addressed by keys like
//! `<upload id>/display.jpg`. Keys are made by the server, never taken from a client, and are
//! checked anyway so that no key can leave the root.
//!
//! Writes go to a temporary file that is renamed into place, so a reader never sees half a
//! file and a crash mid-write leaves no corrupt variant. An S3-compatible store (the
//! `object_store` crate) would slot in behind the same three calls; it is not built yet.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file of `key`, if the key is well-formed (relative, no `..`).
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        let relative = Path::new(key);
        let safe = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        safe.then(|| self.root.join(relative))
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.path(key).context("invalid storage key")?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("while creating {}", dir.display()))?;
        }
        let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&temporary, bytes)
            .await
            .with_context(|| format!("while writing {}", temporary.display()))?;
        tokio::fs::rename(&temporary, &path)
            .await
            .with_context(|| format!("while moving {} into place", path.display()))
    }

    /// The bytes of `key`; `Ok(None)` if there is no such object.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.path(key).context("invalid storage key")?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("while reading {}", path.display())),
        }
    }

    /// Removes `key`; removing what is not there is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = self.path(key).context("invalid storage key")?;
        match tokio::fs::remove_file(&path).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("while removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_root() {
        let storage = Storage::new("/srv/media");
        assert!(storage.path("../etc/passwd").is_none());
        assert!(storage.path("/etc/passwd").is_none());
        assert!(storage.path("").is_none());
        assert_eq!(
            storage.path("abc/display.jpg").unwrap(),
            PathBuf::from("/srv/media/abc/display.jpg")
        );
    }

    #[tokio::test]
    async fn what_is_put_can_be_read_back_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path());
        storage.put("a/b.jpg", b"bytes").await.unwrap();
        assert_eq!(storage.get("a/b.jpg").await.unwrap().unwrap(), b"bytes");
        storage.delete("a/b.jpg").await.unwrap();
        assert!(storage.get("a/b.jpg").await.unwrap().is_none());
        storage.delete("a/b.jpg").await.unwrap();
    }
}
