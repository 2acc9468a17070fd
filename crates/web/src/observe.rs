//! Every request observed: an id (the caller's `X-Request-Id` when it is a plain token, else a
//! new one) returned in the answer's header, a `request` span carrying it, the method and the
//! route template around every log line written while the request is handled, and the HTTP
//! metrics. Neither the path nor the query is logged: they may carry an order id or an
//! activation code.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

/// The header that carries a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a caller.
const MAX_REQUEST_ID: usize = 64;

/// Middleware: gives the request its id and span, records its metrics, returns the id.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_plain_token(v))
        .map_or_else(new_request_id, str::to_owned);
    let method = request.method().clone();
    let route = crate::metrics::Route::of(&request);
    let route = route.as_str();
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    yiqian_app::metrics::http_request(method.as_str(), route, status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::debug!(status = status.as_u16(), ms = elapsed.as_secs_f64() * 1000.0, "answered");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// Whether a caller's request id can be taken as it is: 1–64 letters, digits, `-`, `_`, `.`.
fn is_plain_token(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A new request id: this process's random prefix and a counter, unique across the nodes of a
/// deployment and cheap enough for every OCSP request.
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_ids_are_taken_only_when_plain() {
        assert!(is_plain_token("3f2a-9c.b_1"));
        for bad in ["", "a b", "x\u{7f}", "订单", &"a".repeat(65), "id\r\nset-cookie: x"] {
            assert!(!is_plain_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn new_ids_differ_and_share_the_process_prefix() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert!(is_plain_token(&a));
    }
}
