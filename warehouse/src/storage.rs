//! Object storage for raw payloads, exports and model artifacts: one interface over the
//! `object_store` crate with a local-directory backend and a GCS backend.
//!
//! Keys are built by [`ObjectKey`] helpers so that the same input always lands at the same key
//! (a rerun overwrites, never duplicates). Writes are whole-object puts, which both backends
//! make atomic (local: temp file + rename; GCS: single upload).

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use jiff::civil::Date;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Result, WarehouseError};

/// Environment variable with a GCS emulator base URL (e.g. `http://127.0.0.1:4443`).
pub const GCS_URL_ENV: &str = "TIPOFF_GCS_URL";

fn store_err(e: object_store::Error) -> WarehouseError {
    WarehouseError::Backend {
        backend: "object_store",
        detail: e.to_string(),
    }
}

/// A bucket (or a local directory standing in for one).
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    location: String,
}

impl ObjectStorage {
    /// A local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| WarehouseError::io(dir, e))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(store_err)?;
        Ok(Self {
            store: Arc::new(store),
            location: format!("file://{}", dir.display()),
        })
    }

    /// A real GCS bucket, authenticated by Application Default Credentials.
    pub fn gcs(bucket: &str) -> Result<Self> {
        let store = GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(store_err)?;
        Ok(Self {
            store: Arc::new(store),
            location: format!("gs://{bucket}"),
        })
    }

    /// A bucket on a GCS emulator (fake-gcs-server) at `base_url`, without credentials.
    pub fn gcs_emulator(base_url: &str, bucket: &str) -> Result<Self> {
        // object_store's documented way to reach an emulator: a service-account key with a
        // base URL and OAuth disabled.
        let key = serde_json::json!({
            "private_key": "",
            "private_key_id": "",
            "client_email": "",
            "gcs_base_url": base_url.trim_end_matches('/'),
            "disable_oauth": true,
        });
        let store = GoogleCloudStorageBuilder::new()
            .with_bucket_name(bucket)
            .with_service_account_key(key.to_string())
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .build()
            .map_err(store_err)?;
        Ok(Self {
            store: Arc::new(store),
            location: format!("{base_url}/{bucket}"),
        })
    }

    /// Opens a URL: `file:///dir`, or `gs://bucket` (through the emulator when
    /// `TIPOFF_GCS_URL` is set).
    pub fn from_url(url: &str) -> Result<Self> {
        if let Some(dir) = url.strip_prefix("file://") {
            Self::local(std::path::Path::new(dir))
        } else if let Some(bucket) = url.strip_prefix("gs://") {
            let bucket = bucket.trim_end_matches('/');
            match std::env::var(GCS_URL_ENV) {
                Ok(base) if !base.is_empty() => Self::gcs_emulator(&base, bucket),
                _ => Self::gcs(bucket),
            }
        } else {
            Err(WarehouseError::InvalidRequest(format!(
                "object store URL {url:?} is neither file:// nor gs://"
            )))
        }
    }

    /// Where this storage points (for logs).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes (or overwrites) an object in one atomic put.
    pub async fn put(&self, key: &ObjectKey, data: impl Into<Bytes>) -> Result<()> {
        self.store
            .put(&key.0, PutPayload::from_bytes(data.into()))
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Reads an object; `Ok(None)` if it does not exist.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>> {
        match self.store.get(&key.0).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(store_err)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Keys under `prefix` (all keys if `None`), sorted.
    pub async fn list(&self, prefix: Option<&ObjectKey>) -> Result<Vec<ObjectKey>> {
        let mut keys: Vec<ObjectKey> = self
            .store
            .list(prefix.map(|p| &p.0))
            .map_ok(|meta| ObjectKey(meta.location))
            .try_collect()
            .await
            .map_err(store_err)?;
        keys.sort();
        Ok(keys)
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match self.store.delete(&key.0).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
}

/// An object key: `/`-separated, validated segments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(ObjectPath);

impl ObjectKey {
    /// Builds a key from segments; a segment must be non-empty and contain no `/`.
    pub fn from_segments<'a>(segments: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut parts = Vec::new();
        for s in segments {
            if s.is_empty() || s.contains('/') || s == "." || s == ".." {
                return Err(WarehouseError::InvalidRequest(format!(
                    "invalid key segment {s:?}"
                )));
            }
            parts.push(s);
        }
        ObjectPath::parse(parts.join("/"))
            .map(Self)
            .map_err(|e| WarehouseError::InvalidRequest(e.to_string()))
    }

    /// The raw payload a scraper fetched: `raw/<source>/<date>/<name>`.
    pub fn raw_payload(source: &str, date: Date, name: &str) -> Result<Self> {
        Self::from_segments(["raw", source, &date.to_string(), name])
    }

    /// An exported file: `exports/<kind>/<date>/<name>`.
    pub fn export(kind: &str, date: Date, name: &str) -> Result<Self> {
        Self::from_segments(["exports", kind, &date.to_string(), name])
    }

    /// A model artifact: `models/<model>/<version>/<name>`.
    pub fn model_artifact(model: &str, version: &str, name: &str) -> Result<Self> {
        Self::from_segments(["models", model, version, name])
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_reject_bad_segments() {
        let d = Date::constant(2025, 12, 25);
        let a = ObjectKey::raw_payload("bdl_boxscores", d, "page-1.json").unwrap();
        let b = ObjectKey::raw_payload("bdl_boxscores", d, "page-1.json").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "raw/bdl_boxscores/2025-12-25/page-1.json");
        assert!(ObjectKey::raw_payload("a/b", d, "x").is_err());
        assert!(ObjectKey::from_segments(["", "x"]).is_err());
        assert!(ObjectKey::from_segments(["..", "x"]).is_err());
    }
}
