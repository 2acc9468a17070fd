//! Blob storage for ID photos, face videos, signatures and invoice PDFs. Blobs are sealed by
//! the [`Vault`](crate::Vault) before they reach a [`BlobStore`], so every backend (the local
//! directory, an S3-compatible bucket: [`s3`]) only ever holds ciphertext.

use crate::{Store, StoreError, Tx, millis};
use async_trait::async_trait;
use sqlx::Row;
use std::path::PathBuf;

pub mod s3;
pub use s3::{S3BlobStore, S3Settings};

/// Where sealed blob bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `id`, replacing nothing (ids are fresh).
    async fn put(&self, id: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// Reads the bytes stored under `id`; `NotFound` when there are none.
    async fn get(&self, id: &str) -> Result<Vec<u8>, StoreError>;
    /// Where the blobs are, for the operator (a directory, a bucket).
    fn describe(&self) -> String;
}

/// Whether `id` can name a blob: at least 4 ASCII letters, digits or dashes. Anything else
/// (a path separator, a dot) is refused before it reaches a file name or an object key.
fn is_blob_id(id: &str) -> bool {
    id.len() >= 4 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Blobs as files in a local directory, fanned out by the first characters of the id.
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Blobs under `root` (created when needed).
    pub fn new(root: impl Into<PathBuf>) -> LocalBlobStore {
        LocalBlobStore { root: root.into() }
    }

    fn path(&self, id: &str) -> Result<PathBuf, StoreError> {
        if !is_blob_id(id) {
            return Err(StoreError::NotFound("blob"));
        }
        Ok(self.root.join(&id[..2]).join(id))
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, id: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(id)?;
        let dir = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        match tokio::fs::read(self.path(id)?).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound("blob")),
            Err(e) => Err(e.into()),
        }
    }

    fn describe(&self) -> String {
        format!("the directory {}", self.root.display())
    }
}

/// What is known about a stored blob without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's id.
    pub id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// What it is (`id_front`, `id_back`, `liveness_video`, `signature`).
    pub kind: String,
    /// Its media type, as sniffed from its bytes.
    pub content_type: String,
    /// Its plaintext size in bytes.
    pub size: i64,
}

impl Store {
    /// Seals and stores `bytes` under `info.id`. Call before the transaction that records it
    /// with [`Tx::insert_blob`]; a blob whose transaction fails is never referenced.
    pub async fn put_blob(&self, info: &BlobInfo, bytes: &[u8]) -> Result<(), StoreError> {
        let sealed = self.vault().seal(bytes, &blob_context(info));
        self.blob_store().put(&info.id, sealed).await
    }

    /// Reads and opens a blob recorded with [`Tx::insert_blob`].
    pub async fn get_blob(&self, id: &str) -> Result<(BlobInfo, Vec<u8>), StoreError> {
        let row = sqlx::query("SELECT id, order_id, kind, content_type, size FROM blobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound("blob"))?;
        let info = BlobInfo {
            id: row.try_get("id")?,
            order_id: row.try_get("order_id")?,
            kind: row.try_get("kind")?,
            content_type: row.try_get("content_type")?,
            size: row.try_get("size")?,
        };
        let sealed = self.blob_store().get(id).await?;
        let bytes = self.vault().open(&sealed, &blob_context(&info))?;
        Ok((info, bytes))
    }
}

fn blob_context(info: &BlobInfo) -> String {
    format!("blob:{}:{}:{}", info.id, info.order_id, info.kind)
}

impl Tx {
    /// Records a blob stored with [`Store::put_blob`].
    pub async fn insert_blob(&mut self, info: &BlobInfo, now: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blobs (id, order_id, kind, content_type, size, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.id)
        .bind(&info.order_id)
        .bind(&info.kind)
        .bind(&info.content_type)
        .bind(info.size)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
