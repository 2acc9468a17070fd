//! Payment gateway webhooks. The body is passed on untouched with its headers: the
//! gateway's signature covers the exact bytes.

use crate::WebState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use yiqian_providers::payment::SignedNotification;
use yiqian_providers::sandbox::gateway::NOTIFY_PATH;

/// Webhook routes.
pub fn routes() -> Router<WebState> {
    Router::new().route(NOTIFY_PATH, post(notification))
}

async fn notification(State(s): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let signed = SignedNotification {
        headers: headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    match s.app.handle_notification(&signed).await {
        Ok(_) => {
            let (status, ack) = s.app.providers().gateway.acknowledgement();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, [(header::CONTENT_TYPE, "application/json")], ack).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}
