//! What one client may make the server hold: a small body limit for every route, larger ones
//! only on the upload routes, a deadline on a body that stops sending, and a cap on uploads in
//! progress at once, beyond which an applicant is told to try again shortly; an answer given
//! before its body was read closes the connection.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The body limit of every route that does not take an upload: JSON, forms, webhooks, the
/// station's requests (a CSR is a few KB).
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// What a multipart form adds around its files (boundaries, headers, small text fields).
pub const FORM_OVERHEAD: usize = 64 * 1024;

/// A request body that sends nothing for this long is cut off (a phone that lost its signal,
/// or a client holding the connection open on purpose). A slow but moving upload goes on.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Uploads in progress at once when the configuration does not say.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 32;

/// Seconds an applicant is asked to wait when every upload slot is taken.
const BUSY_RETRY_AFTER_SECONDS: i64 = 10;

/// The body limit of an upload route: `limit` bytes (the route's files and their form).
pub fn upload(limit: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(limit)
}

/// The slots for uploads in progress, shared by every request of one server.
#[derive(Clone)]
pub struct UploadSlots(Arc<Semaphore>);

impl UploadSlots {
    /// `slots` uploads at once (at least one).
    pub fn new(slots: usize) -> UploadSlots {
        UploadSlots(Arc::new(Semaphore::new(slots.max(1))))
    }
}

/// Middleware: a multipart request (an upload) holds a slot while it is handled; with none
/// free it is answered at once — 503, `Retry-After`, and in Chinese what to do — before its
/// body is read.
pub async fn gate_uploads(State(slots): State<UploadSlots>, request: Request, next: Next) -> Response {
    let is_upload = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    if !is_upload {
        return next.run(request).await;
    }
    let Ok(_slot) = slots.0.clone().try_acquire_owned() else {
        return busy();
    };
    next.run(request).await
}

/// The answer when every upload slot is taken: the API's error shape (`uploads_busy`), 503 and
/// `Retry-After`.
fn busy() -> Response {
    let body = json!({"error": {
        "code": "uploads_busy",
        "message": "当前上传人数较多,请稍等片刻后重试",
        "retry_after_seconds": BUSY_RETRY_AFTER_SECONDS,
    }});
    let headers = [
        (header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_SECONDS)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (StatusCode::SERVICE_UNAVAILABLE, headers, Json(body)).into_response()
}

/// Middleware: an answer given before its request's body was read to the end (a refused
/// upload, every upload slot taken) says `Connection: close`. The server cannot take another
/// request on that connection until the rest of the body has gone by, so it closes it; saying
/// so keeps the client from sending its next request on a connection about to close (which it
/// would see as a broken answer, and a POST is not retried).
pub async fn close_when_body_unread(request: Request, next: Next) -> Response {
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| axum::body::Body::new(WatchedBody { inner: body, finished: finished.clone() }));
    let mut response = next.run(request).await;
    if !finished.load(Ordering::Acquire) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it has been read to its end.
struct WatchedBody {
    inner: axum::body::Body,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for WatchedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
