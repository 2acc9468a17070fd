//! The HTTP front end of yiqian: applicant pages (mobile, Simplified Chinese), the JSON API
//! `/api/v1` (the contract a WeChat mini-program would use), payment webhooks, the sandbox
//! cashier and development pages. Handlers are thin: parse, authenticate, call one
//! application service, render.

mod api;
mod api_activation;
mod api_station;
mod assets;
mod auth;
mod console;
mod download;
mod error;
mod health;
mod limits;
pub mod metrics;
mod notify;
mod observe;
mod pages;
mod pki;
mod sandbox;
mod views;
mod wechat;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::timeout::RequestBodyTimeoutLayer;
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
    /// Uploads (photos, videos, invoice PDFs) handled at once; more are told to try again.
    pub concurrent_uploads: usize,
    /// Whether `/metrics` is served here; otherwise only on the operators' listener
    /// ([`operations_router`]).
    pub metrics_here: bool,
}

pub use limits::DEFAULT_CONCURRENT_UPLOADS;

/// The whole HTTP surface.
pub fn router(state: WebState) -> Router {
    // Text answers (pages, scripts, styles, JSON) are compressed for clients that accept it:
    // applicants are on phone networks. Not the PKI answers (small, binary, cached as they
    // are by proxies) nor the payment webhooks' answers.
    let compressed = Router::new()
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .merge(assets::routes())
        .merge(api::routes())
        .merge(pages::routes())
        .merge(sandbox::routes())
        .merge(console::routes())
        .merge(wechat::routes())
        .layer(CompressionLayer::new().gzip(true).br(true).compress_when(compressible()));
    let slots = limits::UploadSlots::new(state.concurrent_uploads);
    compressed
        .merge(notify::routes())
        // Every body small unless its route says otherwise (the upload routes), none left idle.
        .layer(DefaultBodyLimit::max(limits::SMALL_BODY_LIMIT))
        .layer(RequestBodyTimeoutLayer::new(limits::BODY_IDLE_TIMEOUT))
        .layer(axum::middleware::from_fn_with_state(slots, limits::gate_uploads))
        .layer(axum::middleware::from_fn(limits::close_when_body_unread))
        // The relying parties' routes, the busiest of all, carry only what they need: they take
        // no uploads, and their one body (an OCSP POST) has its own limit and idle deadline.
        .merge(pki::routes())
        .merge(if state.metrics_here {
            Router::new().route("/metrics", get(metrics::exposition))
        } else {
            Router::new()
        })
        // Outermost: every request gets its id, span and metrics.
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}

/// The operators' listener, when `/metrics` is kept off the public one: `/metrics`,
/// `/healthz` and `/readyz`.
pub fn operations_router(state: WebState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::exposition))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}

/// What the compression layer compresses: its defaults (not images, not tiny bodies), and
/// not videos or PDFs either (already compressed; and the face video is served by ranges).
fn compressible() -> impl Predicate {
    DefaultPredicate::new()
        .and(NotForContentType::const_new("video/"))
        .and(NotForContentType::const_new("application/pdf"))
}

/// The OpenAPI 3 document of `/api/v1`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");
