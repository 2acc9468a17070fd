//! The materials pages, in the guide's order: bind the phone, prepare (开始), photograph and
//! confirm the ID card (确认上传), face verification (进入身份验证), signature (签名) and the
//! address (填写地址 → 确定 → 受理成功).

use super::{layout, liveness_section, load_order};
use crate::WebState;
use crate::auth::PageApplicant;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use yiqian_app::orders::OrderView;
use yiqian_domain::Step;
use yiqian_domain::identity::MobileNumber;

/// Routes of the step pages.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/orders/{id}/phone", get(phone))
        .route("/orders/{id}/prepare", get(prepare))
        .route("/orders/{id}/id-card", get(id_card))
        .route("/orders/{id}/liveness", get(liveness))
        .route("/orders/{id}/signature", get(signature))
        .route("/orders/{id}/address", get(address))
}

/// Loads the order for a step page: only while materials are open and the step is done or
/// next; otherwise the applicant is sent to the order page.
async fn step_view(s: &WebState, a: &yiqian_domain::ApplicantId, id: &str, step: Step) -> Result<OrderView, Response> {
    let v = load_order(s, a, id).await?;
    let c = v.record.order.checklist;
    let open = v.record.order.state.accepts_materials() && (c.is_done(step) || v.next_step == Some(step));
    if !open {
        return Err(Redirect::to(&format!("/orders/{}", v.record.order.id)).into_response());
    }
    Ok(v)
}

/// The materials steps as the compact bar the activation pages use, `current` highlighted.
fn progress(v: &OrderView, current: Step) -> Markup {
    html! {
        ol.steps.steps-bar {
            @for st in Step::ALL {
                @let class = if st == current { "current" } else if v.record.order.checklist.is_done(st) { "done" } else { "todo" };
                li class=(class) { (st.title()) }
            }
        }
    }
}

fn api(v: &OrderView, tail: &str) -> String {
    format!("/api/v1/orders/{}/{tail}", v.record.order.id)
}

fn back(v: &OrderView) -> String {
    format!("/orders/{}", v.record.order.id)
}

/// 绑定手机: the number the applicant logged in with is offered first (使用此号码, bound with
/// the login's proof, no second SMS); another number is bound with a code sent to it.
async fn phone(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = step_view(&s, &a, &id, Step::Phone).await?;
    let saved = s.app.saved_material(&a, &id, Step::Phone.code()).await.ok().flatten();
    let saved = saved.as_ref().and_then(|m| m["phone"].as_str()).and_then(|p| MobileNumber::parse(p).ok());
    let login = s.app.login_phone(&a).await.ok();
    // A redo that bound another number offers that number in the form, not the login's.
    let offer_login = login.as_ref().filter(|l| saved.as_ref().is_none_or(|p| p == *l));
    // The form under 绑定其他手机号 is for another number: nothing to prefill there.
    let prefill = if offer_login.is_some() { None } else { saved.as_ref().or(login.as_ref()) };
    let form = html! {
        form data-api-form data-action=(api(&v, "phone")) {
            div.field { label for="phone" { "手机号" } input id="phone" name="phone" type="tel" inputmode="numeric" maxlength="13" required value=[prefill.map(|p| p.as_str())]; }
            div.field.field-row {
                label for="code" { "验证码" }
                input id="code" name="code" inputmode="numeric" maxlength="6" autocomplete="one-time-code" required;
                button.btn.btn-secondary type="button" data-sms-send data-action=(api(&v, "phone/code")) data-phone-input="#phone" id="send-code" { "获取验证码" }
            }
            p.form-error {}
            button.btn.btn-primary type="submit" id="bind-submit" { "确定" }
        }
    };
    let body = html! {
        (progress(&v, Step::Phone))
        div.card {
            p.muted { "绑定接收审核、发货通知和证书PIN码短信的手机号。" }
            @if let Some(l) = offer_login {
                p.login-phone { "登录手机号 " strong #login-phone { (l.masked()) } }
                p.form-error {}
                button.btn.btn-primary type="button" data-post data-action=(api(&v, "phone/login")) id="use-login-phone" { "使用此号码" }
                details.other-phone {
                    summary { "绑定其他手机号" }
                    (form)
                }
            } @else {
                (form)
            }
        }
    };
    Ok(layout(&s, "绑定手机", Some(&back(&v)), body).into_response())
}

async fn prepare(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = step_view(&s, &a, &id, Step::IdCard).await?;
    let body = html! {
        (progress(&v, Step::IdCard))
        div.card {
            h2 { "办理前准备" }
            ul {
                li { "请确认手机网络连接正常(建议使用Wi-Fi或4G/5G网络)。" }
                li { "请准备好本人有效的第二代居民身份证原件。" }
                li { "请在光线充足的环境下拍摄,避免反光和遮挡。" }
                li { "人脸验证时需要开启摄像头和麦克风。" }
            }
        }
        (network_check())
        // The check only advises: 开始 is always there, whatever it found, and stays in sight
        // at the bottom of the screen while the check makes the page longer than the screen.
        div.sticky-action {
            a.btn.btn-primary href={ "/orders/" (v.record.order.id) "/id-card" } id="start" { "开始" }
        }
    };
    Ok(layout(&s, "准备", Some(&back(&v)), body).into_response())
}

/// The network and device check of the preparation page (`initNetworkCheck` in app.js): one
/// row per check, each with its state and what to do. Rendered hidden; the script shows it.
/// The battery row stays hidden where the browser does not tell the battery level.
fn network_check() -> Markup {
    let row = |key: &str, name: &str, detail: &str| {
        html! {
            li.check-row data-check=(key) data-state="idle" id={ "check-" (key) } {
                span.check-name { (name) }
                span.check-state { "待检测" }
                p.check-detail { (detail) }
            }
        }
    };
    html! {
        section.card.net-check.hidden data-network-check data-probe-url="/api/v1/network-probe" id="network-check" {
            div.check-head {
                h2 { "网络与设备检测" }
                button.btn.btn-secondary.btn-inline type="button" data-network-check-run id="network-check-run" { "开始检测" }
            }
            ul.check-list aria-live="polite" {
                (row("server", "服务器连接", ""))
                (row("upload", "上传速度", ""))
                (row("camera", "摄像头和麦克风", "点击“开始检测”后,请允许使用摄像头和麦克风"))
                (row("light", "环境光线", "检测摄像头时一并检测"))
                li.check-row.hidden data-check="battery" data-state="idle" id="check-battery" {
                    span.check-name { "手机电量" }
                    span.check-state { "待检测" }
                    p.check-detail {}
                }
            }
            p.check-summary {}
        }
    }
}

async fn id_card(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = step_view(&s, &a, &id, Step::IdCard).await?;
    let field = |name: &str, label: &str, hint: &str| {
        html! { div.field { label for=(name) { (label) } input id=(name) name=(name) placeholder=(hint) required; } }
    };
    let body = html! {
        (progress(&v, Step::IdCard))
        section.card data-idcard data-photos-action=(api(&v, "id-card/photos")) {
            p.muted { "请拍摄身份证正反面,确保四角完整、字迹清晰。" }
            label.photo-slot { input type="file" accept="image/*" capture="environment" data-photo="front" id="photo-front"; img.preview.hidden alt="人像面"; span { "拍摄人像面" } }
            label.photo-slot { input type="file" accept="image/*" capture="environment" data-photo="back" id="photo-back"; img.preview.hidden alt="国徽面"; span { "拍摄国徽面" } }
            div.progress.hidden { progress max="100" value="0" {} span.progress-text {} }
            p.form-error {}
            button.btn.btn-primary type="button" data-photos-upload disabled id="photos-upload" { "识别证件" }
            button.btn.btn-secondary type="button" data-photos-retake { "重拍" }
        }
        form.card.hidden data-idcard-fields data-api-form data-action=(api(&v, "id-card")) id="idcard-fields" {
            p.muted data-idcard-check { "请核对身份信息,如有误请修改或重拍。" }
            p.notice.hidden data-idcard-manual { "未能自动识别证件信息,请对照身份证原件逐项填写以下信息。" }
            (field("name", "姓名", ""))
            div.field { label for="sex" { "性别" } select id="sex" name="sex" required { option value="" { "请选择" } option value="男" { "男" } option value="女" { "女" } } }
            (field("ethnicity", "民族", "如:汉"))
            (field("birth_date", "出生日期", "如:1990-03-07"))
            (field("address", "住址", ""))
            (field("id_number", "公民身份号码", "18位"))
            (field("authority", "签发机关", ""))
            div.field {
                label for="validity" { "有效期限" }
                input id="validity" name="validity" placeholder="如:2020.01.01-2040.01.01" required;
                small { "长期有效的证件请填写“起始日期-长期”,如:2020.01.01-长期" }
            }
            p.form-error {}
            button.btn.btn-primary type="submit" id="idcard-confirm" { "确认上传" }
        }
    };
    Ok(layout(&s, "身份证拍照", Some(&back(&v)), body).into_response())
}

async fn liveness(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = step_view(&s, &a, &id, Step::Liveness).await?;
    let body = html! {
        (progress(&v, Step::Liveness))
        div.notice {
            p { "请使用普通话大声读出屏幕上的数字。" }
            p { "保持脸部正对屏幕,不要戴眼镜、帽子等配饰;光线充足,不要逆光。" }
        }
        (liveness_section(&api(&v, "liveness/challenge"), &api(&v, "liveness")))
    };
    Ok(layout(&s, "人脸验证", Some(&back(&v)), body).into_response())
}

async fn signature(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = step_view(&s, &a, &id, Step::Signature).await?;
    let body = html! {
        (progress(&v, Step::Signature))
        section.card data-signature data-action=(api(&v, "signature")) {
            p.muted { "请申请人本人在框内手写签名(正楷)。横屏可获得更大的签名区域。" }
            div.signature-pad { canvas #signature-canvas {} }
            div.progress.hidden { progress max="100" value="0" {} span.progress-text {} }
            p.form-error {}
            button.btn.btn-secondary type="button" data-signature-clear { "重写" }
            button.btn.btn-primary type="button" data-signature-submit id="signature-submit" { "确认签名" }
        }
    };
    Ok(layout(&s, "签名", Some(&back(&v)), body).into_response())
}

async fn address(
    State(s): State<WebState>,
    PageApplicant(a): PageApplicant,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let v = step_view(&s, &a, &id, Step::Address).await?;
    let (recipient, phone) = s.app.address_prefill(&a, &id).await.unwrap_or_default();
    let body = html! {
        (progress(&v, Step::Address))
        form.card data-address data-regions=(crate::assets::url("regions.json")) data-api-form data-action=(api(&v, "address")) data-then=(api(&v, "submit")) {
            div.field { label for="recipient" { "收件人" } input id="recipient" name="recipient" value=(recipient) required maxlength="30"; }
            div.field { label for="addr-phone" { "联系电话" } input id="addr-phone" name="phone" value=(phone) type="tel" inputmode="numeric" required maxlength="13"; }
            div.field { label for="province" { "省份" } select id="province" name="province_code" required { option value="" { "请选择省份" } } }
            div.field { label for="city" { "城市" } select id="city" name="city_code" required { option value="" { "请选择城市" } } }
            div.field { label for="district" { "区县" } select id="district" name="district_code" required { option value="" { "请选择区县" } } }
            div.field { label for="street" { "详细地址" } input id="street" name="street" required maxlength="100" placeholder="街道、门牌号"; }
            p.form-error {}
            button.btn.btn-primary type="submit" id="address-submit" { "确定" }
        }
    };
    Ok(layout(&s, "填写地址", Some(&back(&v)), body).into_response())
}
