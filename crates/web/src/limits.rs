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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    let route = crate::metrics::Route::of(&request);
    let route = route.as_str();
    let Ok(_slot) = slots.0.clone().try_acquire_owned() else {
        yiqian_app::metrics::upload_rejected(route, "busy");
        return busy();
    };
    // The body is watched already ([`close_when_body_unread`] runs first and leaves its count).
    let progress = request.extensions().get::<Arc<BodyProgress>>().cloned();
    let response = next.run(request).await;
    let status = response.status();
    if status.is_success() {
        let bytes = progress.map_or(0, |p| p.bytes.load(Ordering::Acquire));
        yiqian_app::metrics::upload_stored(route, bytes);
    } else {
        let reason = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            s if s.is_server_error() => "failed",
            _ => "refused",
        };
        yiqian_app::metrics::upload_rejected(route, reason);
    }
    response
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
    let (request, progress) = watch_body(request);
    let mut response = next.run(request).await;
    if !progress.finished.load(Ordering::Acquire) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// How far a request's body has been read.
#[derive(Default)]
struct BodyProgress {
    /// Bytes read so far.
    bytes: AtomicU64,
    /// Whether it was read to its end.
    finished: AtomicBool,
}

/// `request` with its body watched as it is read; the progress is also left in the request's
/// extensions for the layers inside.
fn watch_body(request: Request) -> (Request, Arc<BodyProgress>) {
    let progress = Arc::new(BodyProgress::default());
    let watched = progress.clone();
    let mut request = request.map(|inner| axum::body::Body::new(WatchedBody { inner, progress: watched }));
    request.extensions_mut().insert(progress.clone());
    (request, progress)
}

/// A request body that notes what of it has been read.
struct WatchedBody {
    inner: axum::body::Body,
    progress: Arc<BodyProgress>,
}

impl http_body::Body for WatchedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &frame
            && let Some(data) = f.data_ref()
        {
            self.progress.bytes.fetch_add(data.len() as u64, Ordering::AcqRel);
        }
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.progress.finished.store(true, Ordering::Release);
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
