//! Payment gateway webhooks, one per gateway at `/notify/{gateway}` (`wechatpay`, `alipay`,
//! `sandbox`). The body is passed on untouched with its headers: the gateway's signature
//! covers the exact bytes. A notification taken (or recognised as a duplicate) is answered
//! with the gateway's own acknowledgement (WeChat Pay: 200 + `SUCCESS`; Alipay: `success`);
//! anything else is answered with our error (4xx, or 5xx for our own trouble), which every
//! gateway reads as "not taken" and retries.

use crate::WebState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use yiqian_providers::payment::SignedNotification;

/// Webhook routes.
pub fn routes() -> Router<WebState> {
    Router::new().route("/notify/{gateway}", post(notification)).route("/notify/invoice/nuonuo", post(nuonuo_callback))
}

/// Nuonuo's push of an invoice result. It is not signed, so it is only a hint: the
/// application asks Nuonuo for the invoice's status, exactly as its own polling would.
async fn nuonuo_callback(State(s): State<WebState>, body: Bytes) -> Response {
    match yiqian_providers::nuonuo::callback::parse_callback(&body) {
        Ok(hint) => match s.app.invoice_hint(&hint.order_no).await {
            Ok(()) => (StatusCode::OK, "success").into_response(),
            Err(e) => ApiError(e).into_response(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "Nuonuo callback not understood");
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

async fn notification(
    State(s): State<WebState>,
    Path(gateway_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gateway = match s.app.gateway_named(&gateway_name) {
        Ok(g) => g,
        Err(e) => return ApiError(e).into_response(),
    };
    let signed = SignedNotification {
        headers: headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let answer = |(status, content_type, body): (u16, &'static str, &'static str)| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    match s.app.handle_notification(&gateway_name, &signed).await {
        Ok(_) => answer(gateway.acknowledgement()),
        Err(e) => ApiError(e).into_response(),
    }
}
