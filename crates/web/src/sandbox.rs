//! Development stand-ins served by the service itself: the sandbox cashier (where the tester
//! pays with 微信支付 or 支付宝) and, in development mode, the sandbox SMS inbox.

use crate::WebState;
use crate::pages::layout;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;
use yiqian_domain::payment::Channel;
use yiqian_providers::sandbox::gateway::CASHIER_PATH;

/// Sandbox routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route(CASHIER_PATH, get(cashier))
        .route("/sandbox/cashier/confirm", post(confirm))
        .route("/dev/sms", get(sms_inbox))
}

#[derive(Deserialize)]
struct CashierQuery {
    t: String,
}

fn not_here(s: &WebState) -> Response {
    (StatusCode::NOT_FOUND, layout(s, "页面不存在", None, html! { div.card { p { "页面不存在。" } } })).into_response()
}

async fn cashier(State(s): State<WebState>, Query(q): Query<CashierQuery>) -> Response {
    let Some(gateway) = &s.sandbox_gateway else { return not_here(&s) };
    let trade = match gateway.open_cashier(&q.t, s.app.now()) {
        Ok(t) => t,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, layout(&s, "收银台", None, html! { div.card { p.form-error { (e) } } }))
                .into_response();
        }
    };
    let body = html! {
        div.notice.notice-warn { "沙箱收银台:仅用于测试,不会产生真实扣款。" }
        div.card {
            p.muted { (trade.request.description) }
            p.price { "¥" (trade.request.amount.yuan()) }
            p.muted { "订单号 " (trade.request.order) }
        }
        form.card method="post" action="/sandbox/cashier/confirm" {
            input type="hidden" name="t" value=(q.t);
            @for ch in [Channel::Wechat, Channel::Alipay] {
                label.check {
                    input type="radio" name="channel" value=(ch.code()) checked[ch == trade.request.channel];
                    span { (ch.title()) }
                }
            }
            button.btn.btn-primary type="submit" id="cashier-confirm" { "确认支付" }
        }
    };
    layout(&s, "收银台", None, body).into_response()
}

#[derive(Deserialize)]
struct ConfirmForm {
    t: String,
}

async fn confirm(State(s): State<WebState>, Form(f): Form<ConfirmForm>) -> Response {
    let Some(gateway) = s.sandbox_gateway.clone() else { return not_here(&s) };
    match gateway.confirm_cashier(&f.t, s.app.now()) {
        Ok((trade, signed)) => {
            // The gateway reports the payment asynchronously to our webhook, as real ones do.
            tokio::spawn(async move {
                if let Err(e) = gateway.deliver(signed).await {
                    tracing::error!(error = %e, "sandbox gateway: payment notification never acknowledged");
                }
            });
            Redirect::to(&trade.request.return_url).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, layout(&s, "收银台", None, html! { div.card { p.form-error { (e) } } }))
            .into_response(),
    }
}

#[derive(Deserialize)]
struct InboxQuery {
    phone: Option<String>,
}

async fn sms_inbox(State(s): State<WebState>, Query(q): Query<InboxQuery>) -> Response {
    if !s.dev_mode {
        return not_here(&s);
    }
    let phone = q.phone.as_deref().filter(|p| !p.is_empty());
    let messages = match s.app.store().sandbox_sms(phone, 100).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "reading the sandbox SMS inbox");
            Vec::new()
        }
    };
    let body = html! {
        div.notice { "开发模式:沙箱短信收件箱(最新在前)。生产环境不提供此页面。" }
        form.card method="get" {
            div.field { label for="phone" { "手机号" } input id="phone" name="phone" value=[phone]; }
            button.btn.btn-secondary type="submit" { "筛选" }
        }
        @for m in &messages {
            div.card.sms {
                p.muted { (m.phone) " · " (m.at.format("%Y-%m-%d %H:%M:%S")) }
                p.sms-text { (m.text) }
            }
        }
        @if messages.is_empty() { div.card { p.muted { "暂无短信" } } }
    };
    layout(&s, "沙箱短信", None, body).into_response()
}
