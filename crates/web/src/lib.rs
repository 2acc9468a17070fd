//! The HTTP front end of yiqian: applicant pages (mobile, Simplified Chinese), the JSON API
//! `/api/v1` (the contract a WeChat mini-program would use), payment webhooks, the sandbox
//! cashier and development pages. Handlers are thin: parse, authenticate, call one
//! application service, render.

mod api;
mod api_activation;
mod api_station;
mod auth;
mod console;
mod error;
mod notify;
mod pages;
mod pki;
mod sandbox;
mod views;
mod wechat;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use yiqian_app::App;
use yiqian_providers::sandbox::SandboxGateway;

/// Everything the handlers need.
#[derive(Clone)]
pub struct WebState {
    /// The application.
    pub app: App,
    /// The sandbox gateway, when payments run in the sandbox (serves the cashier page).
    pub sandbox_gateway: Option<SandboxGateway>,
    /// Development mode: shows the sandbox SMS inbox at `/dev/sms`.
    pub dev_mode: bool,
    /// The customer-service line shown on every page.
    pub customer_service: String,
    /// Whether a reverse proxy in front sets `X-Real-IP` to the client's address. Only then is
    /// the header believed; otherwise anyone could dodge the per-client limits with it.
    pub trust_x_real_ip: bool,
}

/// Largest request body for uploads (a face video plus form overhead).
const UPLOAD_LIMIT: usize = yiqian_domain::media::MAX_VIDEO_BYTES + 1024 * 1024;

/// The whole HTTP surface.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/static/app.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), CACHE], include_str!("../static/app.css"))
            }),
        )
        .route(
            "/static/app.js",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), CACHE], include_str!("../static/app.js"))
            }),
        )
        // The icon browsers ask for on their own (`/favicon.ico`) and the one the pages name.
        .route("/favicon.ico", get(favicon))
        .route("/static/favicon.svg", get(favicon))
        .route(
            "/static/regions.json",
            get(|| async {
                ([(header::CONTENT_TYPE, "application/json"), CACHE], yiqian_domain::regions::REGIONS_JSON)
            }),
        )
        .merge(api::routes())
        .merge(pages::routes())
        .merge(notify::routes())
        .merge(sandbox::routes())
        .merge(pki::routes())
        .merge(console::routes())
        .merge(wechat::routes())
        .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
        .with_state(state)
}

const CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "public, max-age=300");

/// The site's icon (SVG, which browsers take at any path).
async fn favicon() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), CACHE], include_str!("../static/favicon.svg"))
}

async fn healthz(axum::extract::State(state): axum::extract::State<WebState>) -> impl IntoResponse {
    match state.app.store().ping().await {
        Ok(()) => (axum::http::StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "database unavailable"})),
            )
        }
    }
}

/// The OpenAPI 3 document of `/api/v1`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");
