//! Stored files sent to a browser as they are read: a blob goes out piece by piece, each piece
//! read and opened from the blob store only when the client is ready for it, so a download
//! holds one piece in memory however large the file.

use axum::body::{Body, Bytes};
use yiqian_store::blobs::BlobReader;

/// Bytes of a blob read and sent at a time when it is sent whole.
const PIECE: u64 = 1024 * 1024;

/// The whole blob as a body read [`PIECE`] bytes at a time; a failure half-way ends the
/// response early (the browser sees a short body, never wrong bytes).
pub fn whole_body(reader: BlobReader) -> Body {
    let pieces = futures::stream::unfold((reader, 0u64), |(reader, at)| async move {
        if at >= reader.size() {
            return None;
        }
        let end = (at + PIECE).min(reader.size());
        match reader.read(at..end).await {
            Ok(bytes) => Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), (reader, end))),
            Err(e) => {
                tracing::error!(error = %e, "a stored blob could not be read to its end");
                Some((Err(std::io::Error::other(e)), (reader, u64::MAX)))
            }
        }
    });
    Body::from_stream(pieces)
}
