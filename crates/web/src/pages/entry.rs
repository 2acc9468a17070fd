//! The entry page, the agreement (办理), login, and the FAQ from the guide.

use super::layout;
use crate::WebState;
use crate::auth::{local_path, session_token};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use serde_json::json;
use yiqian_domain::OrderState;

/// Routes of the entry pages.
pub fn routes() -> Router<WebState> {
    Router::new().route("/", get(home)).route("/apply", get(apply)).route("/login", get(login)).route("/faq", get(faq))
}

async fn home(State(s): State<WebState>) -> Response {
    let p = &s.app.config().product;
    let body = html! {
        div.card {
            h2 { (p.name) }
            p.price { "¥" (p.price.yuan()) }
            p.muted { "有效期" (p.validity_years) "年 · 全程在线办理 · UKEY快递到家" }
            ol.steps {
                li { "同意协议并支付" }
                li { "绑定手机、拍摄身份证" }
                li { "人脸验证、手写签名" }
                li { "填写地址,等待审核发货" }
                li { "收到UKEY后扫码激活,短信获取PIN码" }
            }
            a.btn.btn-primary href="/apply" id="apply" { "办理" }
        }
        div.card {
            a.btn.btn-secondary href="/orders" { "已购记录" }
            a.btn.btn-secondary href="/faq" { "常见问题" }
        }
    };
    layout(&s, "个人数字证书在线申请", None, body).into_response()
}

#[derive(Deserialize)]
struct ApplyQuery {
    agreed: Option<String>,
}

async fn apply(State(s): State<WebState>, Query(q): Query<ApplyQuery>, req: Request) -> Response {
    let p = &s.app.config().product;
    let (parts, _) = req.into_parts();
    let logged_in = match session_token(&parts) {
        Some(t) => s.app.authenticate(&t).await.is_ok(),
        None => false,
    };
    let agreed = q.agreed.is_some();
    // Back from a login that started here with this very version ticked (the WeChat
    // authorisation comes back to this page): the order is made at once, as after an SMS login.
    let make_order = logged_in && q.agreed.as_deref() == Some(p.agreement_version.as_str());
    let body = html! {
        div.card {
            h2 { "数字证书申请协议" }
            p.muted { "版本 " (p.agreement_version) }
            div.agreement { (agreement_text()) }
            @if logged_in {
                form data-api-form data-action="/api/v1/orders" data-auto-submit[make_order] {
                    input type="hidden" name="agreement_version" value=(p.agreement_version);
                    label.check { input type="checkbox" name="accepted" id="accepted" required checked[agreed]; span { "我已阅读并同意《数字证书申请协议》" } }
                    p.form-error {}
                    button.btn.btn-primary type="submit" id="apply-submit" { "办理" }
                }
            } @else {
                form method="get" action="/login" {
                    input type="hidden" name="next" value="/apply?agreed=1";
                    // The version agreed to: after the login the order is made at once.
                    input type="hidden" name="agreed" value=(p.agreement_version);
                    label.check { input type="checkbox" name="accepted" id="accepted" required; span { "我已阅读并同意《数字证书申请协议》" } }
                    button.btn.btn-primary type="submit" id="apply-submit" { "办理" }
                    p.muted { "下一步将通过手机号和短信验证码登录。" }
                }
            }
        }
    };
    layout(&s, "办理申请", Some("/"), body).into_response()
}

fn agreement_text() -> maud::Markup {
    html! {
        p { "一、本协议由申请人与电子认证服务机构(以下简称“CA”)就个人数字证书的申请、签发和使用订立。" }
        p { "二、申请人应提供真实、完整、准确的身份信息,包括有效的第二代居民身份证、本人人脸视频、手写签名和收件地址,并对其真实性负责。" }
        p { "三、CA依据《中华人民共和国电子签名法》和电子认证业务规则对申请资料进行审核;审核通过后签发数字证书并写入UKEY,以快递方式寄送。" }
        p { "四、UKEY寄出时处于未激活状态,PIN码不随件发放。申请人收到后须本人完成身份验证激活,PIN码以短信发送至绑定手机。" }
        p { "五、未发货前申请人可随时申请退款,款项原路退回;已发货后不予退款。" }
        p { "六、申请人应妥善保管UKEY和PIN码;如遗失或怀疑泄露,应及时到线下网点办理挂失或注销。" }
        p { "七、CA对申请人的个人信息加密存储,仅用于证书服务,并在法定保存期限届满后删除。" }
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    /// The agreement version ticked on 办理 before logging in: the login goes on to make the
    /// order, so the applicant is not asked to tap 办理 again.
    agreed: Option<String>,
}

async fn login(State(s): State<WebState>, headers: axum::http::HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let next = local_path(q.next.as_deref());
    let in_wechat = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("MicroMessenger"));
    let wechat_pending = crate::auth::cookie(&headers, crate::wechat::PENDING_COOKIE).is_some();
    let body = html! {
        @if in_wechat && s.app.wechat_login_enabled() && !wechat_pending {
            div.card {
                @let after = match &q.agreed {
                    Some(version) => format!("/apply?agreed={}", crate::auth::urlencode(version)),
                    None => next.clone(),
                };
                a.btn.btn-primary #wechat-login href={ "/wechat/login?next=" (crate::auth::urlencode(&after)) } { "微信授权登录" }
                p.muted { "已绑定微信的用户可直接登录;首次使用请先用手机号登录,登录后自动绑定微信。" }
            }
        }
        div.card {
            @if wechat_pending { p.notice #wechat-bind { "该微信尚未绑定账户,请用手机号登录,登录后将自动绑定。" } }
            p.muted { "请使用本人手机号登录,未注册的手机号将自动创建账户。" }
            @let then_order = q.agreed.as_ref().map(|v| json!({"agreement_version": v, "accepted": true}).to_string());
            form data-api-form data-action="/api/v1/session" data-next=(next)
                data-then=[then_order.as_ref().map(|_| "/api/v1/orders")] data-then-body=[then_order.as_ref()]
                data-then-else=[then_order.as_ref().map(|_| &next)] {
                input type="hidden" name="next" value=(next);
                div.field { label for="phone" { "手机号" } input id="phone" name="phone" type="tel" inputmode="numeric" maxlength="13" autocomplete="tel" required; }
                div.field.field-row {
                    label for="code" { "验证码" }
                    input id="code" name="code" inputmode="numeric" maxlength="6" autocomplete="one-time-code" required;
                    button.btn.btn-secondary type="button" data-sms-send data-action="/api/v1/session/code" data-phone-input="#phone" id="send-code" { "获取验证码" }
                }
                p.form-error {}
                button.btn.btn-primary type="submit" id="login-submit" { "登录" }
            }
        }
    };
    layout(&s, "手机号登录", Some("/"), body).into_response()
}

async fn faq(State(s): State<WebState>) -> Response {
    let qa: [(&str, &str); 8] = [
        ("找不到申请个人数字证书的按钮?", "在首页点击“办理”即可进入申请;首页底部也有“已购记录”和“常见问题”入口。"),
        (
            "我没有二代居民身份证(或者是港澳台、外国居民),可以在线申请吗?",
            "目前在线申请只受理持有效第二代居民身份证的大陆居民。使用其他证件申请的,请到线下网点办理。",
        ),
        ("我不在本地,可以在线申请吗?", "可以,在线申请面向全国各地,证书将快递到您填写的地址。"),
        (
            "人脸验证总是通不过怎么办?",
            "请使用普通话大声跟读数字,保持脸部正对手机屏幕,不要戴眼镜、帽子等配饰,确保周围光线充足,尽量不要逆光,不要遮挡面部。",
        ),
        (
            "收不到短信验证码怎么办?",
            "请确认手机号填写准确无误、手机信号和网络正常,并检查是否被拦截;60秒后可重新获取,每个手机号每天最多获取10次。",
        ),
        ("能不能银行汇款或者货到付款?", "目前只接受在线微信支付或支付宝支付。"),
        ("可以退款吗?", "在订单显示“已发货”之前,可随时在订单详情中申请退款,款项原路退回;已发货后不接受退款。"),
        ("需要解锁、补发、更新、注销等售后业务怎么办?", "售后业务需到线下网点办理,请携带本人有效身份证件。"),
    ];
    // Every status word an applicant can see, in the order's life, once each: the guide's own
    // explanation where it has one, the domain's otherwise.
    let guide: [(&str, &str); 4] = [
        ("已支付", "已完成资料提交、验证和支付,等待CA受理员审核。"),
        ("待发货", "审核已通过,正在签发证书并安排快递。"),
        ("已发货", "证书UKEY已通过快递寄出。"),
        ("已激活", "已完成证书激活;如需人工审核,审核通过后即收到PIN码短信。"),
    ];
    let mut words: Vec<(&str, &str)> = Vec::new();
    for state in OrderState::ALL {
        let word = state.applicant_word();
        if words.iter().all(|(w, _)| *w != word) {
            let text = guide.iter().find(|(w, _)| *w == word).map(|(_, t)| *t).unwrap_or(state.applicant_hint());
            words.push((word, text));
        }
    }
    let body = html! {
        dl.card.faq {
            @for (q, a) in qa { dt { (q) } dd { (a) } }
        }
        div.card {
            h2 { "订单状态说明" }
            dl.kv { @for (w, m) in words { dt { (w) } dd { (m) } } }
        }
    };
    layout(&s, "常见问题", Some("/"), body).into_response()
}
