//! The applicant pages: mobile-first, Simplified Chinese, at home in WeChat's browser. Pages
//! are rendered on the server; `/static/app.js` adds the behaviour (uploads with progress,
//! camera, signature pad, pickers) and calls the same JSON API as any other client.

mod activation;
mod entry;
mod invoice;
mod order;
mod steps;

use crate::WebState;
use crate::assets::url as asset_url;
use crate::error::status_of;
use crate::views::next_path;
use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use yiqian_app::AppError;
use yiqian_app::orders::OrderView;
use yiqian_domain::{ApplicantId, OrderState};

/// Page routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .merge(entry::routes())
        .merge(order::routes())
        .merge(steps::routes())
        .merge(activation::routes())
        .merge(invoice::routes())
}

/// The frame of every page: title bar (with a back link), content, customer-service footer.
pub fn layout(state: &WebState, title: &str, back: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover";
                meta name="format-detection" content="telephone=no";
                title { (title) " - 宜签" }
                link rel="icon" type="image/svg+xml" href=(asset_url("favicon.svg"));
                link rel="stylesheet" href=(asset_url("app.css"));
            }
            body {
                div.page {
                    header.topbar {
                        @if let Some(b) = back { a.back href=(b) { "返回" } }
                        h1 { (title) }
                    }
                    main { (body) }
                    footer.footer {
                        p { "客服热线:" a href={ "tel:" (state.customer_service) } { (state.customer_service) } }
                        p { a href="/faq" { "常见问题" } " · " a href="/orders" { "已购记录" } }
                    }
                }
                script src=(asset_url("app.js")) {}
            }
        }
    }
}

/// The face-video widget (`section[data-liveness]` of app.js): new digits from `challenge`,
/// the recording uploaded to `video`. Used at application and at activation.
pub fn liveness_section(challenge: &str, video: &str) -> Markup {
    html! {
        section.card data-liveness data-challenge-action=(challenge) data-video-action=(video) {
            div.digits #digits {}
            // Shown by app.js once the camera is open: before that a black box would only push
            // 进入身份验证 off a small phone's screen.
            div.video-box.hidden { video muted playsinline autoplay {} }
            div.progress.hidden { progress max="100" value="0" {} span.progress-text {} }
            p.form-error {}
            button.btn.btn-primary type="button" data-liveness-start id="liveness-start" { "进入身份验证" }
            button.btn.btn-primary.hidden type="button" data-liveness-record disabled id="liveness-record" { "开始录制" }
            div.hidden data-liveness-fallback {
                p.muted { "无法使用摄像头录制时,可用相机录制一段读数视频后上传:" }
                input type="file" accept="video/*" capture="user" id="liveness-file";
                button.btn.btn-secondary type="button" data-liveness-fallback-upload { "上传视频" }
            }
        }
    }
}

/// Loads the applicant's order for a page, or the page saying why it cannot be shown.
pub async fn load_order(state: &WebState, applicant: &ApplicantId, id: &str) -> Result<OrderView, Response> {
    state.app.order_view(applicant, id).await.map_err(|e| error_page(state, e))
}

/// Loads an order for a page that only applies in `wanted` (pay, 受理成功 …); in any other
/// state the applicant is sent where the order goes next.
pub async fn order_in_state(
    state: &WebState,
    applicant: &ApplicantId,
    id: &str,
    wanted: OrderState,
) -> Result<OrderView, Response> {
    let v = load_order(state, applicant, id).await?;
    if v.record.order.state != wanted {
        return Err(Redirect::to(&next_path(&v.record)).into_response());
    }
    Ok(v)
}

/// A page telling the applicant why something cannot be shown or done.
pub fn error_page(state: &WebState, e: AppError) -> Response {
    let status = status_of(&e);
    if status.is_server_error() {
        tracing::error!(code = e.code(), error = ?e, "page failed");
    }
    let body = html! {
        div.card {
            p.form-error { (e) }
            a.btn.btn-secondary href="/orders" { "返回已购记录" }
        }
    };
    (status, layout(state, "提示", Some("/"), body)).into_response()
}
