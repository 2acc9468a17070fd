//! 个人资料删除 (`/console/erasure`, administrators only): recording an applicant's request to
//! delete the personal data of an order — done where the law allows it, refused with the
//! reason and the date otherwise — and the latest deletions, by the retention job or on request.

use super::{ConsoleStaff, CsrfForm, beijing_time, console_error, console_layout, csrf_field};
use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use yiqian_app::AppError;
use yiqian_app::retention::{ErasureReason, kind_title};
use yiqian_domain::OrderId;

const NAV: &str = "/console/erasure";

/// Routes of the deletion page.
pub(super) fn routes() -> Router<WebState> {
    Router::new().route(NAV, get(page).post(erase))
}

#[derive(Deserialize)]
struct Done {
    erased: Option<String>,
}

#[derive(Deserialize)]
struct EraseForm {
    #[serde(default)]
    order: String,
    #[serde(default)]
    request: String,
}

/// What the form had, shown again after a refusal.
#[derive(Default)]
struct Draft {
    order: String,
    request: String,
    error: Option<String>,
}

fn kinds(text: &str) -> String {
    text.split(',').filter(|k| !k.is_empty()).map(kind_title).collect::<Vec<_>>().join("、")
}

fn render(
    s: &WebState,
    staff: &ConsoleStaff,
    recent: &[(OrderId, yiqian_store::erasure::Erasure)],
    notice: Option<String>,
    draft: Draft,
) -> Markup {
    let body = html! {
        @if let Some(n) = notice { p.c-ok role="status" { (n) } }
        section.c-card {
            h2 { "登记删除请求" }
            form.c-form.c-wide method="post" action=(NAV) id="erase-order" {
                (csrf_field(&staff.csrf))
                @if let Some(e) = &draft.error { p.c-error role="alert" { (e) } }
                label {
                    span { "订单号" }
                    input type="text" name="order" value=(draft.order) autocomplete="off" spellcheck="false" required;
                }
                label {
                    span { "请求方式和日期" }
                    input type="text" name="request" value=(draft.request) maxlength="200" required placeholder="例如:2026年12月8日 客服电话";
                }
                button.c-btn.c-danger type="submit" { "删除该订单的个人资料" }
                p.c-muted {
                    "删除后身份证信息、照片、人脸视频、签名、收货地址和绑定手机号将无法恢复;发票和证书记录保留。"
                    "已签发证书的订单,依《电子签名法》第二十四条须保存至证书失效后五年,届时自动删除;办理中的订单须先取消或退款。"
                }
            }
        }
        section.c-card {
            h2 { "最近的删除" }
            table.c-table id="erasures" {
                thead { tr { th { "订单号" } th { "原因" } th { "删除的资料" } th { "时间" } th { "执行" } } }
                tbody {
                    @for (order, e) in recent {
                        tr {
                            td { code { (order) } }
                            td { (ErasureReason::from_code(&e.reason).map_or(e.reason.as_str(), |r| r.title())) }
                            td { (kinds(&e.kinds)) }
                            td { (beijing_time(e.erased_at)) }
                            td { @if e.erased_by == "system" { "保存期限任务" } @else { (e.erased_by.trim_start_matches("staff:")) } }
                        }
                    }
                    @if recent.is_empty() { tr { td.c-empty colspan="5" { "尚无删除记录" } } }
                }
            }
        }
    };
    console_layout(s, &staff.member, "个人资料删除", NAV, body)
}

async fn page(State(s): State<WebState>, staff: ConsoleStaff, Query(done): Query<Done>) -> Response {
    let recent = match s.app.recent_erasures(&staff.member, 50).await {
        Ok(r) => r,
        Err(e) => return console_error(&s, Some(&staff.member), e),
    };
    // Only a valid order number is repeated back (the query can be made up by anyone).
    let notice =
        done.erased.as_deref().and_then(OrderId::parse).map(|o| format!("已删除订单 {o} 的个人资料,并记入审计日志。"));
    render(&s, &staff, &recent, notice, Draft::default()).into_response()
}

async fn erase(State(s): State<WebState>, staff: ConsoleStaff, CsrfForm(f): CsrfForm<EraseForm>) -> Response {
    let order = f.order.trim().to_owned();
    match s.app.erase_on_request(&staff.member, &order, &f.request).await {
        Ok(_) => Redirect::to(&format!("{NAV}?erased={}", urlencode(&order))).into_response(),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::NotFound(_))) => {
            let recent = match s.app.recent_erasures(&staff.member, 50).await {
                Ok(r) => r,
                Err(e) => return console_error(&s, Some(&staff.member), e),
            };
            let draft = Draft { order, request: f.request, error: Some(e.to_string()) };
            (status_of(&e), render(&s, &staff, &recent, None, draft)).into_response()
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}
