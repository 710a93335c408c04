//! Where upload bytes live, addressed by keys like `<upload id>/display.jpg`: a directory on
//! local disk (the default, `media_dir`) or a bucket on an S3-compatible service
//! (`storage_url = "s3://bucket[/prefix]"`). Keys are made by the server, never taken from a
//! client, and are checked anyway so that no key can leave the root.
//!
//! Both backends go through the `object_store` crate: `LocalFileSystem` for the directory,
//! `AmazonS3` for the bucket. One code path means the local backend, which every test uses,
//! exercises the same calls and error mapping as S3, and `LocalFileSystem` already writes to
//! a staging file that is renamed into place, so a reader never sees half a file and a crash
//! mid-write leaves no corrupt variant (S3 objects appear whole by design). The cost is a
//! dependency and a blocking-pool hop per local file operation, which is what `tokio::fs`
//! did anyway.

use std::fmt;
use std::path::{Component, Path};
use std::sync::Arc;

use anyhow::Context;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::Config;

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Where the bytes go, for logs; never carries credentials.
    description: String,
}

impl fmt::Debug for Storage {
    // Not derived: the S3 store's own Debug output includes its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Storage({})", self.description)
    }
}

/// How to reach an S3-compatible bucket (see [`Config`] for each setting).
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// `http(s)://host:port` of a non-AWS service (MinIO, moto, R2); `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Storage {
    /// The storage the configuration names: the S3 bucket of `storage_url` if set, else the
    /// directory `media_dir` (created if missing).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match &config.storage_url {
            Some(url) => Self::s3(&S3Settings {
                url: url.clone(),
                endpoint: config.s3_endpoint.clone(),
                region: config.s3_region.clone(),
                access_key_id: config.s3_access_key_id.as_ref().map(|s| s.expose().into()),
                secret_access_key: config
                    .s3_secret_access_key
                    .as_ref()
                    .map(|s| s.expose().into()),
            }),
            None => Self::local(&config.media_dir),
        }
    }

    /// A directory on local disk, created if missing.
    pub fn local(root: impl AsRef<Path>) -> anyhow::Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root)
            .with_context(|| format!("while creating the media directory {}", root.display()))?;
        let store = LocalFileSystem::new_with_prefix(root)
            .with_context(|| format!("while opening the media directory {}", root.display()))?;
        Ok(Self {
            store: Arc::new(store),
            description: format!("directory {}", root.display()),
        })
    }

    /// A bucket on an S3-compatible service. Credentials not given here come from the usual
    /// `AWS_*` environment variables. Nothing is contacted until the first operation.
    pub fn s3(settings: &S3Settings) -> anyhow::Result<Self> {
        let (bucket, prefix) = parse_s3_url(&settings.url)?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&settings.region);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let s3 = builder
            .build()
            .context("while configuring the S3 storage")?;
        let store: Arc<dyn ObjectStore> = match prefix {
            Some(prefix) => Arc::new(PrefixStore::new(s3, prefix)),
            None => Arc::new(s3),
        };
        Ok(Self {
            store,
            description: format!(
                "{} at {}",
                settings.url,
                settings.endpoint.as_deref().unwrap_or("AWS")
            ),
        })
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let location = location(key)?;
        self.store
            .put(&location, PutPayload::from(bytes.to_vec()))
            .await
            .with_context(|| format!("while writing {key} to {}", self.description))?;
        Ok(())
    }

    /// The bytes of `key`; `Ok(None)` if there is no such object.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let location = location(key)?;
        let read = async { self.store.get(&location).await?.bytes().await };
        match read.await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => {
                Err(err).with_context(|| format!("while reading {key} from {}", self.description))
            }
        }
    }

    /// Removes `key`; removing what is not there is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let location = location(key)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => {
                Err(err).with_context(|| format!("while removing {key} from {}", self.description))
            }
        }
    }
}

/// The object path of `key`, if the key is well-formed (relative, no `.` or `..`).
fn location(key: &str) -> anyhow::Result<ObjectPath> {
    let safe = !key.is_empty()
        && Path::new(key)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    anyhow::ensure!(safe, "invalid storage key {key:?}");
    ObjectPath::parse(key).with_context(|| format!("invalid storage key {key:?}"))
}

/// `s3://bucket[/prefix]` → (bucket, prefix).
fn parse_s3_url(url: &str) -> anyhow::Result<(&str, Option<ObjectPath>)> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("storage_url {url:?} is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "storage_url {url:?} names no bucket");
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        None
    } else {
        Some(
            ObjectPath::parse(prefix)
                .with_context(|| format!("bad prefix in storage_url {url:?}"))?,
        )
    };
    Ok((bucket, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_root() {
        assert!(location("../etc/passwd").is_err());
        assert!(location("/etc/passwd").is_err());
        assert!(location("a/./b").is_err());
        assert!(location("").is_err());
        assert_eq!(
            location("abc/display.jpg").unwrap().as_ref(),
            "abc/display.jpg"
        );
    }

    #[test]
    fn s3_urls_name_a_bucket_and_an_optional_prefix() {
        let (bucket, prefix) = parse_s3_url("s3://media").unwrap();
        assert_eq!((bucket, prefix), ("media", None));
        let (bucket, prefix) = parse_s3_url("s3://media/ballpark/prod/").unwrap();
        assert_eq!(bucket, "media");
        assert_eq!(prefix.unwrap().as_ref(), "ballpark/prod");
        assert!(parse_s3_url("s3://").is_err());
        assert!(parse_s3_url("https://media").is_err());
    }

    #[test]
    fn debug_output_never_shows_s3_credentials() {
        let storage = Storage::s3(&S3Settings {
            url: "s3://media".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("very-secret-key".into()),
        })
        .unwrap();
        let debug = format!("{storage:?}");
        assert!(!debug.contains("very-secret-key"), "{debug}");
        assert!(!debug.contains("AKIDEXAMPLE"), "{debug}");
    }

    #[tokio::test]
    async fn what_is_put_can_be_read_back_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path()).unwrap();
        storage.put("a/b.jpg", b"bytes").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/b.jpg")).unwrap(), b"bytes");
        assert_eq!(storage.get("a/b.jpg").await.unwrap().unwrap(), b"bytes");
        storage.delete("a/b.jpg").await.unwrap();
        assert!(storage.get("a/b.jpg").await.unwrap().is_none());
        storage.delete("a/b.jpg").await.unwrap();
    }
}
