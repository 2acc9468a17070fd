//! What relying parties fetch: the CA certificates (`/pki/ca.crt`, `/pki/root.crt`, DER),
//! the current CRL (`/pki/crl`, DER) and the OCSP responder (`/pki/ocsp`, POST or GET per
//! RFC 6960 appendix A), at the URLs written into every certificate.

use crate::WebState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use tower_http::timeout::RequestBodyTimeoutLayer;
use yiqian_app::ocsp::OcspAnswer;

/// PKI routes.
pub fn routes() -> Router<WebState> {
    // The one body these routes take: an OCSP POST, small, with an idle deadline.
    let post_ocsp = Router::new()
        .route("/pki/ocsp", post(ocsp_post))
        .layer(DefaultBodyLimit::max(OCSP_BODY_LIMIT))
        .layer(RequestBodyTimeoutLayer::new(crate::limits::BODY_IDLE_TIMEOUT));
    Router::new()
        .route("/pki/ca.crt", get(ca_cert))
        .route("/pki/root.crt", get(root_cert))
        .route("/pki/crl", get(crl))
        .route("/pki/ocsp/{*request}", get(ocsp_get))
        .merge(post_ocsp)
}

/// Largest OCSP request body read (the parser accepts far less).
const OCSP_BODY_LIMIT: usize = 64 * 1024;

/// The longest an HTTP cache (a CDN, a proxy, a client) may keep a GET answer: after a
/// revocation, a cache may go on serving the superseded answer for at most this long.
const OCSP_MAX_AGE_SECONDS: i64 = 300;

/// A POST answer: never cached (RFC 5019 §5: caches key on the URL, which a POST lacks).
fn ocsp_answer(answer: OcspAnswer) -> Response {
    let der = Bytes::from_owner(SharedDer(answer.der));
    ([(header::CONTENT_TYPE, "application/ocsp-response"), (header::CACHE_CONTROL, "no-cache")], der).into_response()
}

async fn ocsp_post(State(s): State<WebState>, body: Bytes) -> Response {
    ocsp_answer(s.app.ocsp(&body).await)
}

/// GET carries the DER request base64-encoded (and URL-encoded) in the path. A response signed
/// for any requester carries the caching headers of RFC 5019 §6.2, and a request repeating its
/// `ETag` in `If-None-Match` is answered 304.
async fn ocsp_get(State(s): State<WebState>, Path(request): Path<String>, headers: HeaderMap) -> Response {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let der = STANDARD.decode(request.trim()).or_else(|_| URL_SAFE.decode(request.trim())).unwrap_or_default();
    // Undecodable input reaches the parser as empty bytes and is answered malformedRequest.
    let answer = s.app.ocsp(&der).await;
    let (Some(this_update), Some(next_update), Some(tag)) = (answer.this_update, answer.next_update(), answer.tag)
    else {
        return ocsp_answer(answer);
    };
    let now = s.app.now();
    let max_age = (next_update - now).num_seconds().clamp(0, OCSP_MAX_AGE_SECONDS);
    let etag = format!("\"{}\"", hex::encode(tag));
    let cache = [
        (header::CACHE_CONTROL, format!("public, max-age={max_age}, no-transform, must-revalidate")),
        (header::LAST_MODIFIED, http_date(this_update)),
        (header::EXPIRES, http_date(next_update)),
        (header::ETAG, etag.clone()),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let der = Bytes::from_owner(SharedDer(answer.der));
    (cache, [(header::CONTENT_TYPE, "application/ocsp-response")], der).into_response()
}

/// A pre-signed response handed to the HTTP body without copying it.
struct SharedDer(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedDer {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// An HTTP date (RFC 9110 §5.6.7), e.g. `Mon, 07 Dec 2026 10:00:00 GMT`.
fn http_date(t: DateTime<Utc>) -> String {
    httpdate::fmt_http_date(t.into())
}

fn der(content_type: &'static str, bytes: Vec<u8>, max_age: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, max_age)], bytes).into_response()
}

async fn ca_cert(State(s): State<WebState>) -> Result<Response, ApiError> {
    let ca = s.app.issuing_ca().await?;
    Ok(der("application/pkix-cert", ca.certificate_der.clone(), "public, max-age=86400"))
}

async fn root_cert(State(s): State<WebState>) -> Result<Response, ApiError> {
    let ca = s.app.issuing_ca().await?;
    Ok(der("application/pkix-cert", ca.root_der.clone(), "public, max-age=86400"))
}

async fn crl(State(s): State<WebState>) -> Result<Response, ApiError> {
    Ok(der("application/pkix-crl", s.app.current_crl().await?, "public, max-age=300"))
}
