//! Blob storage for ID photos, face videos, signatures and invoice PDFs. Blobs are sealed by
//! the [`Vault`](crate::Vault) before they reach a [`BlobStore`], so every backend (the local
//! directory, an S3-compatible bucket: [`s3`]) only ever holds ciphertext.

use crate::segments::{self, Opener, Sealer};
use crate::{Store, StoreError, Tx, millis};
use async_trait::async_trait;
use sqlx::Row;
use std::ops::Range;
use std::path::PathBuf;

pub mod s3;
pub use s3::{S3BlobStore, S3Settings};

/// Where sealed blob bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `id`, replacing nothing (ids are fresh).
    async fn put(&self, id: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// Starts storing a blob under `id` in pieces; nothing is visible under `id` until
    /// [`BlobSink::finish`].
    async fn writer(&self, id: &str) -> Result<Box<dyn BlobSink>, StoreError>;
    /// Reads the bytes stored under `id`; `NotFound` when there are none.
    async fn get(&self, id: &str) -> Result<Vec<u8>, StoreError>;
    /// Reads `range` of the bytes stored under `id` (it must lie within them).
    async fn get_range(&self, id: &str, range: Range<u64>) -> Result<Vec<u8>, StoreError>;
    /// How many bytes are stored under `id`.
    async fn size(&self, id: &str) -> Result<u64, StoreError>;
    /// Removes what is stored under `id`; nothing happens when there is nothing.
    async fn delete(&self, id: &str) -> Result<(), StoreError>;
    /// Where the blobs are, for the operator (a directory, a bucket).
    fn describe(&self) -> String;
    /// Whether the store answers: a blob that is not there is looked up, and "not found" is the
    /// healthy answer.
    async fn ping(&self) -> Result<(), StoreError> {
        match self.size(READINESS_PROBE).await {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The id looked up by [`BlobStore::ping`]; never a real blob's (those are generated ids).
const READINESS_PROBE: &str = "readiness-probe";

/// A blob being stored in pieces.
#[async_trait]
pub trait BlobSink: Send {
    /// Appends `bytes`.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Makes the blob visible under its id, whole.
    async fn finish(self: Box<Self>) -> Result<(), StoreError>;
    /// Gives up: nothing stays behind.
    async fn abort(self: Box<Self>);
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
        let mut sink = self.writer(id).await?;
        sink.write(&bytes).await?;
        sink.finish().await
    }

    async fn writer(&self, id: &str) -> Result<Box<dyn BlobSink>, StoreError> {
        let path = self.path(id)?;
        let dir = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        let mut suffix = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut suffix);
        let part = path.with_extension(format!("{}.part", hex::encode(suffix)));
        let file = tokio::fs::File::create(&part).await?;
        Ok(Box::new(LocalSink { file, part, path }))
    }

    async fn get(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        tokio::fs::read(self.path(id)?).await.map_err(not_found_or_io)
    }

    async fn get_range(&self, id: &str, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = tokio::fs::File::open(self.path(id)?).await.map_err(not_found_or_io)?;
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        let mut out = vec![0u8; (range.end - range.start) as usize];
        file.read_exact(&mut out).await?;
        Ok(out)
    }

    async fn size(&self, id: &str) -> Result<u64, StoreError> {
        Ok(tokio::fs::metadata(self.path(id)?).await.map_err(not_found_or_io)?.len())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(id)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("the directory {}", self.root.display())
    }

    /// The directory exists (it is made when missing) and is a directory.
    async fn ping(&self) -> Result<(), StoreError> {
        tokio::fs::create_dir_all(&self.root).await?;
        if tokio::fs::metadata(&self.root).await?.is_dir() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("{} is not a directory", self.root.display())))
        }
    }
}

fn not_found_or_io(e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound { StoreError::NotFound("blob") } else { e.into() }
}

/// A blob file being written: a `.part` file beside its final name, renamed when finished.
struct LocalSink {
    file: tokio::fs::File,
    part: PathBuf,
    path: PathBuf,
}

#[async_trait]
impl BlobSink for LocalSink {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(bytes).await?;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.sync_data().await?;
        tokio::fs::rename(&self.part, &self.path).await?;
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.part).await;
    }
}

fn blob_info_from_row(row: &sqlx::any::AnyRow) -> Result<BlobInfo, StoreError> {
    Ok(BlobInfo {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        kind: row.try_get("kind")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
    })
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
        let mut writer = self.blob_writer(&info.id, &info.order_id, &info.kind).await?;
        if let Err(e) = writer.write(bytes).await {
            writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map(|_| ())
    }

    /// Starts sealing and storing the blob `id` of `order_id`'s `kind` as its bytes arrive
    /// (in segments of [`segments::SEGMENT`](crate::segments::SEGMENT) bytes), never holding
    /// it whole. Record it with [`Tx::insert_blob`] once finished; [`Store::discard_blob`] one
    /// that will not be.
    pub async fn blob_writer(&self, id: &str, order_id: &str, kind: &str) -> Result<BlobWriter, StoreError> {
        let context = context(id, order_id, kind);
        let mut sink = self.blob_store().writer(id).await?;
        let (header, sealer) = Sealer::new(self.vault(), &context);
        if let Err(e) = sink.write(&header).await {
            sink.abort().await;
            return Err(e);
        }
        Ok(BlobWriter { sink, sealer })
    }

    /// Whether the blob store answers (for the readiness check).
    pub async fn ping_blobs(&self) -> Result<(), StoreError> {
        self.blob_store().ping().await
    }

    /// Removes a stored blob that was never recorded (its upload was refused).
    pub async fn discard_blob(&self, id: &str) -> Result<(), StoreError> {
        self.blob_store().delete(id).await
    }

    /// What is recorded about the blob `id`.
    pub async fn blob_info(&self, id: &str) -> Result<BlobInfo, StoreError> {
        let row = sqlx::query("SELECT id, order_id, kind, content_type, size, erased_at FROM blobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound("blob"))?;
        if row.try_get::<Option<i64>, _>("erased_at")?.is_some() {
            return Err(StoreError::Erased("blob"));
        }
        blob_info_from_row(&row)
    }

    /// The blobs of `order` on file (not erased), oldest first; invoice PDFs included.
    pub async fn blobs_of(&self, order: &yiqian_domain::OrderId) -> Result<Vec<BlobInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, order_id, kind, content_type, size FROM blobs WHERE order_id = $1 AND erased_at IS NULL ORDER BY created_at, id",
        )
        .bind(order.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(blob_info_from_row).collect()
    }

    /// Opens a blob recorded with [`Tx::insert_blob`] for reading in ranges: only the header
    /// is read now.
    pub async fn blob_reader(&self, id: &str) -> Result<BlobReader, StoreError> {
        self.blob_reader_for(self.blob_info(id).await?).await
    }

    /// [`Store::blob_reader`] for a blob described by `info`, recorded or not yet (an upload
    /// being checked before it is recorded).
    pub async fn blob_reader_for(&self, info: BlobInfo) -> Result<BlobReader, StoreError> {
        let id = info.id.clone();
        let id = id.as_str();
        let context = blob_context(&info);
        let corrupt = || StoreError::Corrupt(format!("sealed blob {context} does not open"));
        let sealed_len = self.blob_store().size(id).await?;
        let head = self.blob_store().get_range(id, 0..sealed_len.min(segments::HEADER as u64)).await?;
        let layout = match head.first() {
            Some(&segments::VERSION) => Layout::Segments(Opener::new(self.vault(), &head, sealed_len, &context)?),
            // Blobs sealed whole, before segments.
            Some(1) => Layout::Whole(self.vault().open(&self.blob_store().get(id).await?, &context)?),
            _ => return Err(corrupt()),
        };
        let reader = BlobReader { store: self.clone(), info, layout };
        if reader.size() != reader.info.size as u64 {
            return Err(corrupt());
        }
        Ok(reader)
    }

    /// Reads and opens a whole blob recorded with [`Tx::insert_blob`] (photos, signatures,
    /// PDFs; read videos with [`Store::blob_reader`]).
    pub async fn get_blob(&self, id: &str) -> Result<(BlobInfo, Vec<u8>), StoreError> {
        let reader = self.blob_reader(id).await?;
        let bytes = reader.read_all().await?;
        Ok((reader.info, bytes))
    }
}

/// A blob being sealed and stored as its bytes arrive ([`Store::blob_writer`]).
pub struct BlobWriter {
    sink: Box<dyn BlobSink>,
    sealer: Sealer,
}

impl BlobWriter {
    /// Seals and stores the next bytes of the blob.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let sealed = self.sealer.push(bytes);
        if sealed.is_empty() { Ok(()) } else { self.sink.write(&sealed).await }
    }

    /// Plaintext bytes written so far.
    pub fn size(&self) -> u64 {
        self.sealer.size
    }

    /// Seals the rest and makes the blob whole in the store; returns its plaintext size.
    pub async fn finish(self) -> Result<u64, StoreError> {
        let BlobWriter { mut sink, sealer } = self;
        let size = sealer.size;
        if let Err(e) = sink.write(&sealer.finish()).await {
            sink.abort().await;
            return Err(e);
        }
        sink.finish().await?;
        Ok(size)
    }

    /// Gives up: nothing stays in the store.
    pub async fn abort(self) {
        self.sink.abort().await;
    }
}

/// How a blob's bytes are laid out.
enum Layout {
    /// Sealed whole (version 1): opened when the reader was.
    Whole(Vec<u8>),
    /// Sealed in segments (version 2): opened range by range.
    Segments(Opener),
}

/// A recorded blob opened for reading in ranges ([`Store::blob_reader`]).
pub struct BlobReader {
    store: Store,
    /// What is recorded about it.
    pub info: BlobInfo,
    layout: Layout,
}

impl BlobReader {
    /// Its plaintext size.
    pub fn size(&self) -> u64 {
        match &self.layout {
            Layout::Whole(bytes) => bytes.len() as u64,
            Layout::Segments(opener) => opener.size,
        }
    }

    /// The whole plaintext, read and opened a piece at a time into one buffer (so a blob read
    /// whole takes its own size in memory, not twice that).
    pub async fn read_all(&self) -> Result<Vec<u8>, StoreError> {
        const PIECE: u64 = 1024 * 1024;
        let size = self.size();
        let mut out = Vec::with_capacity(size as usize);
        let mut at = 0;
        while at < size {
            let end = (at + PIECE).min(size);
            out.extend_from_slice(&self.read(at..end).await?);
            at = end;
        }
        Ok(out)
    }

    /// The plaintext bytes of `range`, reading and opening only the segments that hold them.
    pub async fn read(&self, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
        if range.start > range.end || range.end > self.size() {
            return Err(StoreError::NotFound("blob range"));
        }
        match &self.layout {
            Layout::Whole(bytes) => Ok(bytes[range.start as usize..range.end as usize].to_vec()),
            Layout::Segments(_) if range.start == range.end => Ok(Vec::new()),
            Layout::Segments(opener) => {
                let (sealed_range, _) = opener.sealed_range(&range);
                let sealed = self.store.blob_store().get_range(&self.info.id, sealed_range).await?;
                opener.open_range(&range, &sealed)
            }
        }
    }
}

fn context(id: &str, order_id: &str, kind: &str) -> String {
    format!("blob:{id}:{order_id}:{kind}")
}

fn blob_context(info: &BlobInfo) -> String {
    context(&info.id, &info.order_id, &info.kind)
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
