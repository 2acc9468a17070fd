//! 申请开票 (PRODUCT.md §1.12): the e-invoice form of an activated order — 发票抬头类型
//! 单位 or 个人, 抬头名称, 纳税人识别号 (单位 only), optional e-mail, 提交 — and, once asked
//! for, the invoice's state (开票中 / 已开票) with 下载发票. The rules are the domain's; the
//! page only offers what the order allows.

use super::order::{beijing, invoice_class};
use super::{layout, load_order};
use crate::WebState;
use crate::auth::PageApplicant;
use crate::views::invoice_pdf_path;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use yiqian_app::orders::OrderView;
use yiqian_domain::invoice::{InvoiceBuyer, InvoiceState};
use yiqian_store::fulfilment::InvoiceRecord;

/// Routes of the invoice page.
pub fn routes() -> Router<WebState> {
    Router::new().route("/orders/{id}/invoice", get(invoice))
}

async fn invoice(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = load_order(&s, &a, &id).await?;
    let back = format!("/orders/{}", v.record.order.id);
    let body = match &v.invoice {
        Some(inv) => status(inv),
        None if v.can_request_invoice() => form(&v),
        None => html! {
            div.card {
                div.notice.notice-warn #invoice-unavailable { "证书激活后才能申请开票" }
                a.btn.btn-secondary href=(back) { "返回订单详情" }
            }
        },
    };
    Ok(layout(&s, "申请开票", Some(&back), body).into_response())
}

fn form(v: &OrderView) -> Markup {
    let rec = &v.record;
    html! {
        form.card data-api-form data-action={ "/api/v1/orders/" (rec.order.id) "/invoice" } id="invoice-form" {
            p.muted { "电子普通发票 · 金额 ¥" (rec.order.price.yuan()) " · 订单号 " (rec.order.id) }
            div.choice {
                span.label { "发票抬头类型" }
                div.choice-options {
                    label.check { input type="radio" name="kind" value="company" id="kind-company" checked; span { "单位" } }
                    label.check { input type="radio" name="kind" value="personal" id="kind-personal"; span { "个人" } }
                }
            }
            div.field {
                label for="name" { "抬头名称" }
                input id="name" name="name" required maxlength="100" placeholder="单位全称或个人姓名";
            }
            div.field data-show-if="kind=company" {
                label for="tax_id" { "纳税人识别号" }
                input id="tax_id" name="tax_id" required maxlength="18" autocapitalize="characters" autocomplete="off"
                    placeholder="18位统一社会信用代码";
                small { "即单位的统一社会信用代码,见营业执照。" }
            }
            div.field {
                label for="email" { "邮箱(选填)" }
                input id="email" name="email" type="email" inputmode="email" maxlength="254" placeholder="同时将发票发送到此邮箱";
            }
            p.form-error {}
            button.btn.btn-primary type="submit" id="invoice-submit" { "提交" }
        }
    }
}

fn status(inv: &InvoiceRecord) -> Markup {
    html! {
        div.card {
            p { span #invoice-status class={ "status-word " (invoice_class(inv.state)) } { (inv.state.applicant_word()) } }
            dl.kv {
                dt { "抬头类型" } dd { (inv.request.buyer.kind_word()) }
                dt { "抬头名称" } dd { (inv.request.buyer.name()) }
                @if let InvoiceBuyer::Company { tax_id, .. } = &inv.request.buyer {
                    dt { "纳税人识别号" } dd { (tax_id.as_str()) }
                }
                @if let Some(email) = &inv.request.email { dt { "邮箱" } dd { (email) } }
                dt { "申请时间" } dd { (beijing(inv.requested_at)) }
                @if let Some(no) = &inv.invoice_no { dt { "发票号码" } dd { (no) } }
            }
            @if inv.state == InvoiceState::Issued {
                a.btn.btn-primary href=(invoice_pdf_path(inv.order.as_str())) id="invoice-download" download { "下载发票" }
            } @else {
                p.muted { "发票开具后将以短信通知您,届时可在订单详情下载。" }
            }
        }
    }
}
