//! How errors leave the service: a typed JSON error for the API
//! (`{"error":{"code","message"}}`, with `field` naming the input at fault where one is) with
//! the fitting status, and never a bare 500 text.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use yiqian_app::AppError;

/// An error answered by the JSON API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    /// A bad-input error raised by the web layer itself (e.g. a missing multipart field).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError(AppError::invalid(code, message))
    }
}

/// The HTTP status for an application error.
pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Invalid { .. } => StatusCode::BAD_REQUEST,
        AppError::Unauthorized => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Erased(_) => StatusCode::GONE,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Busy | AppError::Retry | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(&e);
        match &e {
            AppError::Internal(detail) | AppError::Unavailable(detail) => {
                tracing::error!(code = e.code(), detail = %detail, "request failed")
            }
            _ => tracing::debug!(code = e.code(), "request refused"),
        }
        let mut body = serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
        if let Some(field) = e.field() {
            body["error"]["field"] = field.into();
        }
        let mut response = if let AppError::RateLimited { retry_after_seconds, .. } = &e {
            body["error"]["retry_after_seconds"] = (*retry_after_seconds).into();
            let mut r = (status, Json(body)).into_response();
            r.headers_mut().insert(header::RETRY_AFTER, (*retry_after_seconds).into());
            r
        } else {
            (status, Json(body)).into_response()
        };
        response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        response
    }
}

/// A body over its route's limit: 413 with the API's error shape, `code` and what to do.
pub fn too_large(code: &'static str, message: impl Into<String>) -> Response {
    let mut r = ApiError::invalid(code, message).into_response();
    *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    r
}
