//! What relying parties fetch: the CA certificates (`/pki/ca.crt`, `/pki/root.crt`, DER),
//! the current CRL (`/pki/crl`, DER) and the OCSP responder (`/pki/ocsp`, POST or GET per
//! RFC 6960 appendix A), at the URLs written into every certificate.

use crate::WebState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// PKI routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/pki/ca.crt", get(ca_cert))
        .route("/pki/root.crt", get(root_cert))
        .route("/pki/crl", get(crl))
        .route("/pki/ocsp", post(ocsp_post).layer(DefaultBodyLimit::max(OCSP_BODY_LIMIT)))
        .route("/pki/ocsp/{*request}", get(ocsp_get))
}

/// Largest OCSP request body read (the parser accepts far less).
const OCSP_BODY_LIMIT: usize = 64 * 1024;

fn ocsp_answer(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/ocsp-response"), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
}

async fn ocsp_post(State(s): State<WebState>, body: Bytes) -> Response {
    ocsp_answer(s.app.ocsp(&body).await)
}

/// GET carries the DER request base64-encoded (and URL-encoded) in the path.
async fn ocsp_get(State(s): State<WebState>, Path(request): Path<String>) -> Response {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let der = STANDARD.decode(request.trim()).or_else(|_| URL_SAFE.decode(request.trim())).unwrap_or_default();
    // Undecodable input reaches the parser as empty bytes and is answered malformedRequest.
    ocsp_answer(s.app.ocsp(&der).await)
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
