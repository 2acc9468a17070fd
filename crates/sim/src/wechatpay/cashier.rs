//! The H5 cashier page (what WeChat Pay's `h5_url` shows a payer: the order and a 确认支付
//! button), and the test controls: pay an order by number, list notification deliveries.

use super::{CASHIER_PATH, PayError, TradeState};
use crate::Sim;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::json;
use std::collections::HashMap;

fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style {
                    "body{font-family:sans-serif;background:#f2f2f2;margin:0;padding:24px;text-align:center}"
                    ".card{background:#fff;border-radius:8px;padding:24px;max-width:420px;margin:0 auto}"
                    ".amount{font-size:36px;margin:16px 0}"
                    "button{background:#07c160;color:#fff;border:0;border-radius:6px;padding:12px 48px;font-size:18px}"
                    ".note{color:#888;font-size:13px;margin-top:16px}"
                }
            }
            body { div.card { (body) } }
        }
    }
}

fn message_page(status: StatusCode, title: &str, text: &str, back: Option<&str>) -> Response {
    let page = layout(
        title,
        html! {
            h2 { (title) }
            p { (text) }
            @if let Some(back) = back { p { a href=(back) { "返回商户页面" } } }
        },
    );
    (status, page).into_response()
}

/// `GET /sim/wechatpay/checkmweb?prepay_id=…&package=…[&redirect_url=…]`: the cashier.
pub(super) async fn page(State(sim): State<Sim>, Query(q): Query<HashMap<String, String>>) -> Response {
    let prepay_id = q.get("prepay_id").cloned().unwrap_or_default();
    let redirect_url = q.get("redirect_url").cloned();
    let order = sim.wechatpay.state().orders.values().find(|o| o.prepay_id == prepay_id).cloned();
    let Some(order) = order else {
        return message_page(StatusCode::NOT_FOUND, "订单不存在", "支付链接无效或已失效。", None);
    };
    match order.trade_state {
        TradeState::Success | TradeState::Refund => {
            return message_page(StatusCode::OK, "该订单已支付", "请勿重复支付。", redirect_url.as_deref());
        }
        TradeState::Closed => {
            return message_page(StatusCode::OK, "订单已关闭", "该订单已关闭，无法支付。", redirect_url.as_deref());
        }
        TradeState::NotPay => {}
    }
    let page = layout(
        "微信支付",
        html! {
            h2 { "微信支付" }
            p { (order.description) }
            div.amount { "¥" (yuan(order.total)) }
            p { "商户号 " (sim.wechatpay.account.mchid) " · 订单号 " (order.out_trade_no) }
            form method="post" action=(format!("{CASHIER_PATH}/pay")) {
                input type="hidden" name="prepay_id" value=(prepay_id);
                @if let Some(r) = &redirect_url { input type="hidden" name="redirect_url" value=(r); }
                button type="submit" { "确认支付" }
            }
            p.note { "这是微信支付的本地模拟收银台，不会产生真实扣款。" }
        },
    );
    page.into_response()
}

/// `POST /sim/wechatpay/checkmweb/pay` (form `prepay_id`, `redirect_url`): the payer confirms.
pub(super) async fn confirm(State(sim): State<Sim>, Form(form): Form<HashMap<String, String>>) -> Response {
    let prepay_id = form.get("prepay_id").cloned().unwrap_or_default();
    let redirect_url = form.get("redirect_url").filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let out_trade_no =
        sim.wechatpay.state().orders.values().find(|o| o.prepay_id == prepay_id).map(|o| o.out_trade_no.clone());
    let result = match out_trade_no {
        Some(no) => sim.wechatpay.pay(&no),
        None => Err(PayError::NotFound),
    };
    match (result, redirect_url) {
        (Ok(_), Some(url)) => Redirect::to(url).into_response(),
        (Ok(_), None) => message_page(StatusCode::OK, "支付成功", "请返回商户页面查看订单。", None),
        (Err(e), back) => message_page(StatusCode::BAD_REQUEST, "支付失败", &e.to_string(), back.map(String::as_str)),
    }
}

/// `POST /sim/wechatpay/pay/{out_trade_no}`: pays an order (JSAPI has no page outside WeChat).
pub(super) async fn control_pay(State(sim): State<Sim>, Path(out_trade_no): Path<String>) -> Response {
    match sim.wechatpay.pay(&out_trade_no) {
        Ok(transaction_id) => Json(json!({ "transaction_id": transaction_id })).into_response(),
        Err(e) => {
            let status = if e == PayError::NotFound { StatusCode::NOT_FOUND } else { StatusCode::CONFLICT };
            (status, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}

/// `GET /sim/wechatpay/deliveries`: the notifications sent and their tries, as JSON.
pub(super) async fn control_deliveries(State(sim): State<Sim>) -> Response {
    let list: Vec<_> = sim
        .wechatpay
        .deliveries()
        .into_iter()
        .map(|d| {
            json!({
                "notification_id": d.notification_id,
                "event_type": d.event_type,
                "subject": d.subject,
                "url": d.url,
                "acknowledged": d.acknowledged,
                "attempts": d.attempts.iter().map(|a| json!({
                    "at": a.at.to_rfc3339(),
                    "status": a.outcome.as_ref().ok(),
                    "error": a.outcome.as_ref().err(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(list).into_response()
}
