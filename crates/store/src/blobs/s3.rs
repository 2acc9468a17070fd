//! Blobs in an S3-compatible bucket (Tencent COS, Aliyun OSS, MinIO, Ceph RGW, AWS S3), through
//! the `object_store` crate. Objects are named `PREFIX/ab/ID` like the files of the local
//! store and hold the same sealed bytes.

use super::{BlobSink, BlobStore, is_blob_id};
use crate::StoreError;
use async_trait::async_trait;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use std::ops::Range;
use std::sync::Arc;

/// Bytes a blob being written keeps before it goes to the bucket as one part of a multipart
/// upload (S3's smallest part but the last is 5 MiB); a blob smaller than this is one PUT.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Where the bucket is and how to reach it.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// The service's base URL, e.g. `https://cos.ap-guangzhou.myqcloud.com` or
    /// `http://127.0.0.1:9000`; with virtual-hosted requests it includes the bucket
    /// (`https://BUCKET.cos.ap-guangzhou.myqcloud.com`).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region the bucket is in (e.g. `ap-guangzhou`; MinIO and Ceph take `us-east-1`).
    pub region: String,
    /// Path-style requests (`ENDPOINT/BUCKET/KEY`: MinIO, Ceph) rather than virtual-hosted
    /// ones (`BUCKET.HOST/KEY`: COS, OSS).
    pub path_style: bool,
    /// A prefix for every object key (e.g. `yiqian/`), to share a bucket.
    pub prefix: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Blobs as objects in an S3-compatible bucket.
pub struct S3BlobStore {
    bucket: Arc<AmazonS3>,
    prefix: String,
    describe: String,
}

impl S3BlobStore {
    /// A store on the bucket `settings` names. Nothing is sent until the first blob.
    pub fn new(settings: &S3Settings) -> Result<S3BlobStore, StoreError> {
        let config = |m: &str| StoreError::Config(format!("object storage: {m}"));
        if settings.endpoint.is_empty() || settings.bucket.is_empty() {
            return Err(config("an endpoint and a bucket are needed"));
        }
        let bucket = AmazonS3Builder::new()
            .with_endpoint(settings.endpoint.trim_end_matches('/'))
            .with_bucket_name(&settings.bucket)
            .with_region(if settings.region.is_empty() { "us-east-1" } else { &settings.region })
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_allow_http(settings.endpoint.starts_with("http://"))
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .build()
            .map_err(|e| config(&e.to_string()))?;
        let prefix = settings.prefix.trim_matches('/').to_owned();
        let describe = format!(
            "the bucket {} at {}{}",
            settings.bucket,
            settings.endpoint,
            if prefix.is_empty() { String::new() } else { format!(" under {prefix}/") }
        );
        Ok(S3BlobStore { bucket: Arc::new(bucket), prefix, describe })
    }

    fn key(&self, id: &str) -> Result<Path, StoreError> {
        if !is_blob_id(id) {
            return Err(StoreError::NotFound("blob"));
        }
        let key = format!("{}/{id}", &id[..2]);
        Ok(Path::from(if self.prefix.is_empty() { key } else { format!("{}/{key}", self.prefix) }))
    }
}

fn unavailable(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound("blob"),
        other => StoreError::Io(std::io::Error::other(other)),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, id: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.bucket.put(&self.key(id)?, PutPayload::from(bytes)).await.map_err(unavailable)?;
        Ok(())
    }

    async fn writer(&self, id: &str) -> Result<Box<dyn BlobSink>, StoreError> {
        let bucket: Arc<dyn ObjectStore> = self.bucket.clone();
        let writer = BufWriter::with_capacity(bucket, self.key(id)?, PART_SIZE).with_max_concurrency(2);
        Ok(Box::new(S3Sink { writer }))
    }

    async fn get(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let object = self.bucket.get(&self.key(id)?).await.map_err(unavailable)?;
        Ok(object.bytes().await.map_err(unavailable)?.to_vec())
    }

    async fn get_range(&self, id: &str, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
        Ok(self.bucket.get_range(&self.key(id)?, range).await.map_err(unavailable)?.to_vec())
    }

    async fn size(&self, id: &str) -> Result<u64, StoreError> {
        Ok(self.bucket.head(&self.key(id)?).await.map_err(unavailable)?.size)
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        match self.bucket.delete(&self.key(id)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// An object being written: buffered up to [`PART_SIZE`], then a multipart upload with at
/// most two parts in flight.
struct S3Sink {
    writer: BufWriter,
}

#[async_trait]
impl BlobSink for S3Sink {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.writer.put(bytes::Bytes::copy_from_slice(bytes)).await.map_err(unavailable)
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        self.writer.shutdown().await.map_err(StoreError::Io)
    }

    async fn abort(mut self: Box<Self>) {
        let _ = self.writer.abort().await;
    }
}
