//! What relying parties fetch: the CA certificates (`/pki/ca.crt`, `/pki/root.crt`, DER)
//! and the current CRL (`/pki/crl`, DER), at the URLs written into every certificate.

use crate::WebState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// PKI routes.
pub fn routes() -> Router<WebState> {
    Router::new().route("/pki/ca.crt", get(ca_cert)).route("/pki/root.crt", get(root_cert)).route("/pki/crl", get(crl))
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
