//! Pages about one order or all of them: purchase records (已购记录), order details with the
//! status timeline, the refund button, the waybill, 已激活 / PIN码待审核 and the e-invoice
//! (申请开票, 开票中 / 已开票, 下载发票) (查看详情), payment, and 受理成功.

use super::{error_page, layout, load_order, order_in_state};
use crate::WebState;
use crate::auth::PageApplicant;
use crate::views::{invoice_pdf_path, next_path, step_path};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use yiqian_app::orders::OrderView;
use yiqian_domain::invoice::InvoiceState;
use yiqian_domain::payment::Channel;
use yiqian_domain::{OrderState, Step};

/// Routes of the order pages.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(detail))
        .route("/orders/{id}/pay", get(pay))
        .route("/orders/{id}/paying", get(paying))
        .route("/orders/{id}/accepted", get(accepted))
}

/// The CSS modifier of a state's status pill.
pub fn status_class(s: OrderState) -> &'static str {
    match s {
        OrderState::Created => "status-unpaid",
        OrderState::Collecting | OrderState::Submitted => "status-paid",
        OrderState::Returned => "status-returned",
        OrderState::Approved | OrderState::Issued => "status-awaiting",
        OrderState::Shipped => "status-shipped",
        OrderState::ActivationReview | OrderState::Activated => "status-activated",
        OrderState::Refunding | OrderState::Refunded => "status-refund",
        OrderState::Cancelled => "status-cancelled",
    }
}

/// The CSS modifier of an invoice's status pill.
pub(super) fn invoice_class(s: InvoiceState) -> &'static str {
    match s {
        InvoiceState::Requested => "status-awaiting",
        InvoiceState::Issued => "status-activated",
    }
}

/// The guide's button word that leads into a step.
fn step_button(step: Step) -> &'static str {
    match step {
        Step::Phone => "绑定手机",
        Step::IdCard => "开始",
        Step::Liveness => "进入身份验证",
        Step::Signature => "签名",
        Step::Address => "填写地址",
    }
}

/// The applicant's status word of a state as a coloured pill.
pub(super) fn status_pill(s: OrderState) -> Markup {
    html! { span class={ "status-word " (status_class(s)) } data-state=(s.code()) { (s.applicant_word()) } }
}

async fn list(State(s): State<WebState>, PageApplicant(a): PageApplicant) -> Response {
    let orders = match s.app.list_orders(&a).await {
        Ok(o) => o,
        Err(e) => return error_page(&s, e),
    };
    let body = html! {
        @if orders.is_empty() {
            div.card { p.muted { "暂无订单" } a.btn.btn-primary href="/apply" { "办理" } }
        }
        @for o in &orders {
            @let r = &o.record;
            a.card.order-link href={ "/orders/" (r.order.id) } {
                p.order-title { span { (s.app.config().product.name) } (status_pill(r.order.state)) }
                @if let Some(word) = invoice_word(o) { p.invoice-word data-invoice=(r.order.id) { "发票:" (word) } }
                p.muted { "订单号 " (r.order.id) " · " (r.created_at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).format("%Y-%m-%d %H:%M")) }
            }
        }
        @if !orders.is_empty() {
            a.btn.btn-secondary href="/api/v1/me/export" download id="export-personal-data" { "导出我的个人资料" }
            p.muted { "下载本系统保存的您的个人资料副本(JSON 文件)" }
        }
    };
    layout(&s, "已购记录", Some("/"), body).into_response()
}

/// What 已购记录 says of an order's e-invoice: its state, or that one can be requested once the
/// order is activated; nothing before.
fn invoice_word(o: &yiqian_app::orders::PurchasedOrder) -> Option<&'static str> {
    match o.invoice {
        Some(state) => Some(state.applicant_word()),
        None if yiqian_domain::invoice::invoice_allowed(o.record.order.state) => Some("未申请(可在订单详情中申请开票)"),
        None => None,
    }
}

/// A time as Beijing time, month to minute.
pub(super) fn beijing(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).format("%m-%d %H:%M").to_string()
}

fn checklist(v: &OrderView) -> Markup {
    let rec = &v.record;
    let next = v.next_step;
    html! {
        ol.steps {
            @for st in Step::ALL {
                @let class = if rec.order.checklist.is_done(st) { "done" } else if Some(st) == next { "current" } else { "todo" };
                li class=(class) {
                    @if rec.order.state.accepts_materials() && (rec.order.checklist.is_done(st) || Some(st) == next) {
                        a href=(step_path(rec.order.id.as_str(), st)) { (st.title()) }
                    } @else { (st.title()) }
                }
            }
        }
    }
}

async fn detail(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = load_order(&s, &a, &id).await?;
    let rec = &v.record;
    let state = rec.order.state;
    let route = if v.shipment.is_some() {
        s.app.parcel_route(&a, &id).await.map_err(|e| error_page(&s, e))?
    } else {
        Vec::new()
    };
    let body = html! {
        div.card {
            p { (status_pill(state)) }
            p.muted #hint { (state.applicant_hint()) }
            @if let Some(reason) = &v.returned_reason { div.notice.notice-warn { "需补正:" (reason) } }
            @if state == OrderState::ActivationReview {
                div.notice.notice-warn #pin-pending { "PIN码待审核:审核通过后将以短信发送" }
            }
            dl.kv {
                dt { "订单号" } dd #order-id { (rec.order.id) }
                dt { "产品" } dd { (s.app.config().product.name) }
                dt { "金额" } dd { "¥" (rec.order.price.yuan()) }
                @if let Some(sh) = &v.shipment {
                    dt { "快递公司" } dd #courier { (sh.courier) }
                    dt { "运单号" } dd #tracking-no { (sh.tracking_no) }
                }
            }
            @if !route.is_empty() {
                h3 { "物流信息" }
                ol.timeline #parcel-route {
                    @for e in route.iter().rev() {
                        li { span.muted { (e.at) } " " (e.place) " " (e.remark) }
                    }
                }
            }
            @if state == OrderState::Created {
                a.btn.btn-primary href=(next_path(rec)) { "去支付" }
                button.btn.btn-secondary data-post data-action={ "/api/v1/orders/" (rec.order.id) "/cancel" } data-confirm="确定取消该订单吗?" { "取消订单" }
            }
            @if state.accepts_materials() { a.btn.btn-primary href=(next_path(rec)) id="continue" { (v.next_step.map(step_button).unwrap_or("确定")) } }
            @if v.can_refund() {
                button.btn.btn-danger #refund data-post data-action={ "/api/v1/orders/" (rec.order.id) "/refund" }
                    data-confirm="确定申请退款吗?退款后订单将关闭,款项原路退回。" { "申请退款" }
                p.form-error {}
            }
        }
        @if let Some(inv) = &v.invoice {
            div.card {
                h2 { "电子发票" }
                p { span #invoice-status class={ "status-word " (invoice_class(inv.state)) } { (inv.state.applicant_word()) } }
                dl.kv {
                    dt { "发票抬头" } dd { (inv.request.buyer.kind_word()) " · " (inv.request.buyer.name()) }
                    @if let Some(no) = &inv.invoice_no { dt { "发票号码" } dd { (no) } }
                }
                @if inv.state == InvoiceState::Issued {
                    a.btn.btn-secondary href=(invoice_pdf_path(rec.order.id.as_str())) id="invoice-download" download { "下载发票" }
                } @else {
                    p.muted { "发票开具后将以短信通知您,届时可在此下载。" }
                }
            }
        } @else if v.can_request_invoice() {
            div.card {
                h2 { "电子发票" }
                a.btn.btn-primary href={ "/orders/" (rec.order.id) "/invoice" } id="invoice-request" { "申请开票" }
            }
        }
        @if state.is_paid() || state == OrderState::Refunded {
            div.card { h2 { "申请资料" } (checklist(&v)) }
        }
        div.card {
            h2 { "办理进度" }
            ol.timeline {
                @for h in v.history.iter().rev() {
                    li { span.timeline-time { (beijing(h.at)) } " " span.timeline-word { (h.event.applicant_text()) } }
                }
            }
        }
    };
    Ok(layout(&s, "订单详情", Some("/orders"), body).into_response())
}

async fn pay(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = order_in_state(&s, &a, &id, OrderState::Created).await?;
    let rec = &v.record;
    let body = html! {
        div.card {
            p.muted { (s.app.config().product.name) }
            p.price { "¥" (rec.order.price.yuan()) }
            p.muted { "请在 " (beijing(rec.order.pay_deadline)) " 前完成支付,超时订单将自动取消。" }
        }
        form.card data-pay data-action={ "/api/v1/orders/" (rec.order.id) "/payments" } {
            p { "选择支付方式(仅支持在线支付)" }
            @for (i, ch) in [Channel::Wechat, Channel::Alipay].into_iter().enumerate() {
                label.check { input type="radio" name="channel" value=(ch.code()) checked[i == 0]; span { (ch.title()) } }
            }
            p.form-error {}
            button.btn.btn-primary type="submit" id="pay-submit" { "确认支付 ¥" (rec.order.price.yuan()) }
        }
    };
    Ok(layout(&s, "支付", Some(&format!("/orders/{}", rec.order.id)), body).into_response())
}

async fn paying(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = order_in_state(&s, &a, &id, OrderState::Created).await?;
    let rec = &v.record;
    let body = html! {
        div.card.center data-poll data-url={ "/api/v1/orders/" (rec.order.id) "/payment-status" } data-until="collecting,submitted,returned,refunding,refunded,cancelled" {
            p { "正在确认支付结果,请稍候……" }
            p.muted { "支付完成后将自动进入下一步。" }
        }
    };
    Ok(layout(&s, "支付结果", Some(&format!("/orders/{}", rec.order.id)), body).into_response())
}

async fn accepted(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = order_in_state(&s, &a, &id, OrderState::Submitted).await?;
    let rec = &v.record;
    let body = html! {
        div.card.center {
            div.success-mark { "✓" }
            h2 #accepted { "受理成功" }
            p.muted { "您的申请已提交,CA受理员将尽快审核。审核通过后证书将快递寄出,请留意短信通知。" }
            a.btn.btn-primary href={ "/orders/" (rec.order.id) } id="view-detail" { "查看详情" }
        }
    };
    Ok(layout(&s, "受理成功", None, body).into_response())
}
