//! Activation (PRODUCT.md §3), reached from the QR code on the business confirmation form:
//! the risk notice with 本人已阅读并同意申请 and 下一步 (`/activate/{code}`), face
//! verification with new digits (`/activate/{code}/verify`), and the result
//! (`/activate/{code}/done`): 激活成功 with the PIN on its way by SMS, 已激活 with the PIN
//! waiting for review, the counter when the tries are used up, or why there is nothing to
//! activate yet. Only the applicant, logged in with the phone they applied with, sees them.

use super::order::{beijing, status_pill};
use super::{error_page, layout, liveness_section};
use crate::WebState;
use crate::auth::{PageApplicant, urlencode};
use crate::views::{ActivationPage, activation_next, activation_page};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use yiqian_app::AppError;
use yiqian_app::activation::ActivationView;
use yiqian_domain::{ApplicantId, OrderState};

/// Routes of the activation pages.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/activate/{code}", get(notice))
        .route("/activate/{code}/verify", get(verify))
        .route("/activate/{code}/done", get(done))
}

const TITLE: &str = "激活证书";

/// Loads the activation for a page. An unknown code, and another applicant's, is one clear
/// page: the applicant may simply be logged in with another phone.
async fn load(s: &WebState, a: &ApplicantId, code: &str) -> Result<ActivationView, Response> {
    match s.app.activation_view(a, code).await {
        Ok(v) => Ok(v),
        Err(AppError::NotFound(_)) => Err(not_found(s, code)),
        Err(e) => Err(error_page(s, e)),
    }
}

fn not_found(s: &WebState, code: &str) -> Response {
    let login = format!("/login?next={}", urlencode(&format!("/activate/{code}")));
    let body = html! {
        div.card {
            p.form-error #activation-error { "激活码无效,或请使用申请时的手机号登录" }
            p.muted { "激活须由申请人本人操作:请使用申请证书时绑定的手机号登录后,再扫描业务确认单上的二维码。" }
            a.btn.btn-primary href=(login) id="relogin" { "使用申请时的手机号登录" }
            a.btn.btn-secondary href="/orders" { "已购记录" }
        }
    };
    (StatusCode::NOT_FOUND, layout(s, TITLE, Some("/"), body)).into_response()
}

/// The redirect to the page the activation is at, when that is not `here`.
fn elsewhere(v: &ActivationView, here: ActivationPage) -> Option<Response> {
    let at = activation_next(v);
    (at != here).then(|| Redirect::to(&activation_page(&v.fulfilment.activation_code, at)).into_response())
}

/// The three steps of activation, `current` (0-based) highlighted.
fn progress(current: usize) -> Markup {
    html! {
        ol.steps.steps-bar {
            @for (i, title) in ["阅读风险提示", "人脸验证", "获取PIN码"].into_iter().enumerate() {
                @let class = if i < current { "done" } else if i == current { "current" } else { "todo" };
                li class=(class) { (title) }
            }
        }
    }
}

fn order_card(s: &WebState, v: &ActivationView) -> Markup {
    let rec = &v.record;
    html! {
        div.card {
            p { (status_pill(rec.order.state)) }
            dl.kv {
                dt { "订单号" } dd #order-id { (rec.order.id) }
                dt { "产品" } dd { (s.app.config().product.name) }
                @if let Some(sh) = &v.fulfilment.shipment {
                    dt { "快递公司" } dd { (sh.courier) }
                    dt { "运单号" } dd { (sh.tracking_no) }
                    dt { "发货时间" } dd { (beijing(sh.shipped_at)) }
                }
            }
        }
    }
}

async fn notice(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(code): Path<String>,
) -> Result<Response, Response> {
    let v = load(&s, &a, &code).await?;
    // Coming back from the video step shows the notice again, ticked.
    if activation_next(&v) == ActivationPage::Done {
        return Err(Redirect::to(&activation_page(&v.fulfilment.activation_code, ActivationPage::Done)).into_response());
    }
    let consented = v.fulfilment.activation_consent_at.is_some();
    // The notice and 下一步 first, on the first screen; which order it is, below.
    let body = html! {
        (progress(0))
        form.card data-api-form data-action={ "/api/v1/activation/" (v.fulfilment.activation_code) "/consent" } {
            h2 { "风险提示" }
            div.agreement #risk-notice {
                p { "一、数字证书具有与手写签名同等的法律效力。使用本证书签署的电子文件视为本人签署,由本人承担相应的法律责任。" }
                p { "二、请确认UKEY为本人收到且包装完好。如包装有拆封、破损痕迹,或并非本人签收,请勿激活,并立即致电客服。" }
                p { "三、PIN码仅通过短信发送给本人,工作人员不会以任何理由索要PIN码或短信验证码,请勿告知他人。" }
                p { "四、激活需本人完成人脸验证。请妥善保管UKEY和PIN码;如遗失或怀疑泄露,请及时到服务网点办理挂失或注销。" }
            }
            label.check { input type="checkbox" name="agreed" id="agreed" required checked[consented]; span { "本人已阅读并同意申请" } }
            p.form-error {}
            button.btn.btn-primary type="submit" id="consent-submit" { "下一步" }
        }
        (order_card(&s, &v))
    };
    Ok(layout(&s, TITLE, Some(&format!("/orders/{}", v.record.order.id)), body).into_response())
}

async fn verify(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(code): Path<String>,
) -> Result<Response, Response> {
    let v = load(&s, &a, &code).await?;
    if let Some(r) = elsewhere(&v, ActivationPage::Verify) {
        return Err(r);
    }
    let api = |tail: &str| format!("/api/v1/activation/{}/{tail}", v.fulfilment.activation_code);
    let body = html! {
        (progress(1))
        div.notice {
            p { "请申请人本人使用普通话大声读出屏幕上的数字。" }
            p { "保持脸部正对屏幕,不要戴眼镜、帽子等配饰;光线充足,不要逆光。" }
            p #tries-left { "还可尝试" (v.tries_left) "次;次数用完后需到服务网点办理激活。" }
        }
        (liveness_section(&api("challenge"), &api("video")))
    };
    let back = activation_page(&v.fulfilment.activation_code, ActivationPage::Notice);
    Ok(layout(&s, "人脸验证", Some(&back), body).into_response())
}

async fn done(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(code): Path<String>,
) -> Result<Response, Response> {
    let v = load(&s, &a, &code).await?;
    if let Some(r) = elsewhere(&v, ActivationPage::Done) {
        return Err(r);
    }
    let state = v.record.order.state;
    let order = format!("/orders/{}", v.record.order.id);
    let result = html! {
        @match state {
            OrderState::Activated => {
                div.card.center {
                    div.success-mark { "✓" }
                    h2 #result { "激活成功" }
                    p #pin-note { "PIN码已通过短信发送至您的手机,请注意查收" }
                    p.muted { "请妥善保管PIN码,不要告知他人;工作人员不会向您索要PIN码。" }
                    a.btn.btn-primary href=(order) id="view-order" { "查看订单" }
                }
            }
            OrderState::ActivationReview => {
                div.card.center {
                    div.success-mark { "✓" }
                    h2 #result { "已激活" }
                    p #pin-note { "PIN码待审核:审核通过后将以短信发送" }
                    p.muted { "CA受理员将尽快核对您的人脸验证视频,请留意短信通知。" }
                    a.btn.btn-primary href=(order) id="view-order" { "查看订单" }
                }
            }
            OrderState::Shipped => {
                div.card {
                    div.notice.notice-error #result {
                        p { "人脸验证失败次数已达上限,无法在线激活。" }
                        p { "请携带身份证和UKEY到服务网点办理" }
                    }
                    p.muted { "如有疑问,请致电客服" (s.customer_service) "。" }
                    a.btn.btn-secondary href=(order) id="view-order" { "查看订单" }
                }
            }
            OrderState::Approved | OrderState::Issued => {
                div.card {
                    div.notice #result {
                        p { "证书尚未寄出,暂时无需激活。" }
                        p { "收到UKEY后,请扫描业务确认单上的二维码完成激活。" }
                    }
                    a.btn.btn-secondary href=(order) id="view-order" { "查看订单" }
                }
            }
            _ => {
                div.card {
                    div.notice.notice-warn #result {
                        p { "该订单当前状态为“" (state.applicant_word()) "”,无法激活。" }
                        p { (state.applicant_hint()) }
                    }
                    a.btn.btn-secondary href=(order) id="view-order" { "查看订单" }
                }
            }
        }
    };
    // The result first; the order it is about below.
    let body = html! { (result) (order_card(&s, &v)) };
    Ok(layout(&s, "激活结果", Some(&order), body).into_response())
}
