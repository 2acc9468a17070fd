//! The contract every blob store keeps, run against each of
//! [`yiqian_store::testing::blob_stores`]: the local directory always, and a bucket on an
//! S3-protocol server when `YIQIAN_TEST_S3_URL` names one (CI sets `YIQIAN_REQUIRE_S3=1`, so it
//! cannot be skipped there). Bytes come back as they went in, at every size up to a face
//! video's; a missing blob is `NotFound`; ids that could escape the store's namespace are
//! refused; concurrent writers do not mix; and what the [`Store`] writes through a blob store
//! is sealed.

use std::sync::Arc;
use yiqian_store::blobs::{BlobInfo, BlobStore};
use yiqian_store::testing::blob_stores;
use yiqian_store::{MasterKey, Store, StoreError, Vault};

/// Bytes that differ at every position, so a shifted or truncated read shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed).collect()
}

fn each_store() -> (tempfile::TempDir, Vec<(&'static str, Arc<dyn BlobStore>)>) {
    let dir = tempfile::tempdir().unwrap();
    let stores = blob_stores(dir.path());
    (dir, stores)
}

#[tokio::test]
async fn bytes_come_back_as_stored_at_every_size() {
    let (_dir, stores) = each_store();
    for (name, store) in stores {
        // Empty, one byte, around S3's 5 MiB multipart boundary, a 30 MB face video.
        for (i, len) in [0usize, 1, 4096, 5 * 1024 * 1024 - 1, 5 * 1024 * 1024 + 1, 30_000_000].into_iter().enumerate()
        {
            let id = format!("blob{i:04}size{len}");
            let bytes = pattern(len, i as u8);
            store.put(&id, bytes.clone()).await.unwrap_or_else(|e| panic!("[{name}] put {len} bytes: {e}"));
            let back = store.get(&id).await.unwrap_or_else(|e| panic!("[{name}] get {len} bytes: {e}"));
            assert!(back == bytes, "[{name}] {len} bytes came back as {} different bytes", back.len());
        }
    }
}

#[tokio::test]
async fn a_missing_blob_is_not_found_and_foreign_ids_are_refused() {
    let (_dir, stores) = each_store();
    for (name, store) in stores {
        assert!(matches!(store.get("blob-never-stored").await, Err(StoreError::NotFound(_))), "[{name}] missing");
        for id in ["", "abc", "../../etc/passwd", "ab/cd/ef", "blob.part", "blob id", "блоб1234"] {
            assert!(
                matches!(store.put(id, b"x".to_vec()).await, Err(StoreError::NotFound(_))),
                "[{name}] put under {id:?} refused"
            );
            assert!(matches!(store.get(id).await, Err(StoreError::NotFound(_))), "[{name}] get {id:?} refused");
        }
        assert!(!store.describe().is_empty());
    }
}

#[tokio::test]
async fn concurrent_writers_each_read_their_own_bytes() {
    let (_dir, stores) = each_store();
    for (name, store) in stores {
        let writers = (0..16u8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("concurrent-{i:02}");
                let bytes = pattern(300_000 + i as usize * 1000, i);
                store.put(&id, bytes.clone()).await.unwrap();
                (id, bytes)
            })
        });
        let written: Vec<(String, Vec<u8>)> =
            futures_join(writers.collect()).await.into_iter().map(|r| r.unwrap()).collect();
        for (id, bytes) in written {
            assert!(store.get(&id).await.unwrap() == bytes, "[{name}] {id} came back changed");
        }
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await);
    }
    out
}

#[tokio::test]
async fn the_store_seals_what_it_writes_and_detects_tampering_on_every_blob_store() {
    let (dir, stores) = each_store();
    for (name, blobs) in stores {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join(format!("{name}.db")).display());
        let store = Store::open(&url, Vault::new(&MasterKey::generate()), blobs.clone()).await.unwrap();
        let mut bytes = b"\x1A\x45\xDF\xA3 webm PLAINTEXT-MARKER ".to_vec();
        bytes.extend(pattern(2_000_000, 7));
        let info = BlobInfo {
            id: format!("blob{name}0001"),
            order_id: "YQ-1".into(),
            kind: "liveness_video".into(),
            content_type: "video/webm".into(),
            size: bytes.len() as i64,
        };
        store.put_blob(&info, &bytes).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.insert_blob(&info, chrono::Utc::now()).await.unwrap();
        tx.commit().await.unwrap();
        let (got, back) = store.get_blob(&info.id).await.unwrap();
        assert_eq!(got, info);
        assert!(back == bytes, "[{name}] the blob opens to what was stored");

        let mut raw = blobs.get(&info.id).await.unwrap();
        assert!(raw.len() > bytes.len(), "[{name}] sealed bytes carry a header and tag");
        assert!(!raw.windows(17).any(|w| w == b"PLAINTEXT-MARKER "), "[{name}] the backend holds plaintext");
        let middle = raw.len() / 2;
        raw[middle] ^= 0x01;
        blobs.put(&info.id, raw).await.unwrap();
        assert!(matches!(store.get_blob(&info.id).await, Err(StoreError::Corrupt(_))), "[{name}] tampering shows");
    }
}

#[tokio::test]
async fn a_video_is_sealed_as_it_arrives_and_read_back_in_ranges_on_every_blob_store() {
    let (dir, stores) = each_store();
    for (name, blobs) in stores {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join(format!("ranges-{name}.db")).display());
        let vault = Vault::new(&MasterKey::generate());
        let store = Store::open(&url, vault, blobs.clone()).await.unwrap();
        let video = pattern(30_000_000, 3);
        let id = format!("video{name}0001");
        let mut writer = store.blob_writer(&id, "YQ-2", "liveness_video").await.unwrap();
        // Pieces of the odd sizes a request body arrives in.
        for piece in video.chunks(12_345) {
            writer.write(piece).await.unwrap();
        }
        assert_eq!(writer.size(), 30_000_000);
        assert_eq!(writer.finish().await.unwrap(), 30_000_000);
        let info = BlobInfo {
            id: id.clone(),
            order_id: "YQ-2".into(),
            kind: "liveness_video".into(),
            content_type: "video/mp4".into(),
            size: 30_000_000,
        };
        let mut tx = store.begin().await.unwrap();
        tx.insert_blob(&info, chrono::Utc::now()).await.unwrap();
        tx.commit().await.unwrap();

        let reader = store.blob_reader(&id).await.unwrap();
        assert_eq!(reader.size(), 30_000_000);
        for r in [0..100u64, 65_000..70_000, 29_999_000..30_000_000, 12_345_678..12_345_679, 0..30_000_000] {
            let got = reader.read(r.clone()).await.unwrap_or_else(|e| panic!("[{name}] {r:?}: {e}"));
            assert!(got == video[r.start as usize..r.end as usize], "[{name}] range {r:?}");
        }
        assert!(reader.read(29_999_999..30_000_001).await.is_err(), "[{name}] past the end");
        let sealed = blobs.size(&id).await.unwrap();
        assert!(sealed > 30_000_000 && sealed < 30_000_000 + 16 * 500 + 100, "[{name}] {sealed} sealed bytes");

        // A writer given up leaves nothing; a blob discarded is gone.
        let mut abandoned = store.blob_writer("video-abandoned", "YQ-2", "liveness_video").await.unwrap();
        abandoned.write(&video[..1_000_000]).await.unwrap();
        abandoned.abort().await;
        assert!(matches!(blobs.get("video-abandoned").await, Err(StoreError::NotFound(_))), "[{name}] aborted");
        store.discard_blob(&id).await.unwrap();
        assert!(matches!(blobs.get(&id).await, Err(StoreError::NotFound(_))), "[{name}] discarded");
        store.discard_blob(&id).await.unwrap();
    }
}

#[tokio::test]
async fn blobs_sealed_whole_before_segments_still_open() {
    let (dir, stores) = each_store();
    for (name, blobs) in stores {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join(format!("v1-{name}.db")).display());
        let key = MasterKey::generate();
        let store = Store::open(&url, Vault::new(&key), blobs.clone()).await.unwrap();
        let photo = pattern(200_000, 9);
        let info = BlobInfo {
            id: format!("photo{name}v1"),
            order_id: "YQ-3".into(),
            kind: "id_front".into(),
            content_type: "image/jpeg".into(),
            size: photo.len() as i64,
        };
        // What earlier releases wrote: one AES-GCM message under the same context.
        let context = format!("blob:{}:{}:{}", info.id, info.order_id, info.kind);
        blobs.put(&info.id, Vault::new(&key).seal(&photo, &context)).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.insert_blob(&info, chrono::Utc::now()).await.unwrap();
        tx.commit().await.unwrap();
        let (got, bytes) = store.get_blob(&info.id).await.unwrap();
        assert_eq!(got, info);
        assert!(bytes == photo, "[{name}] a version 1 blob opens");
        let reader = store.blob_reader(&info.id).await.unwrap();
        assert!(reader.read(10..20).await.unwrap() == photo[10..20], "[{name}] and reads in ranges");
    }
}
