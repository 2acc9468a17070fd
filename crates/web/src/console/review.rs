//! 审核 (`/console/review`) and 激活复核 (`/console/activations`), for reviewers.
//!
//! - The review queue: submitted applications, longest waiting first. An application's page
//!   puts the dossier side by side — ID photos, the confirmed ID fields next to what OCR read
//!   (differences marked), the face video with its digits and the provider's verdict, the
//!   signature, the phone and the address, the order's history — with the three decisions:
//!   审核通过, 退回补正 (one step, with a reason) and 审核不通过 (with a reason and a second
//!   confirmation, since the refund starts at once).
//! - The activation queue: activations the face check left open. An activation's page shows
//!   the activation video next to the ID card photo and the application's face video, with
//!   通过激活 (the PIN is sent) and 退回重新验证.
//! - `/console/orders/{order}/blobs/{blob}`: the photos, videos and signatures those pages
//!   show, for any role that works on orders; every opening is audited by the service.

use super::{ConsoleStaff, CsrfForm, beijing_time, console_error, console_layout, csrf_field};
use crate::WebState;
use crate::error::status_of;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use yiqian_app::AppError;
use yiqian_app::review::{Dossier, LivenessEvidence};
use yiqian_app::staff::Permission;
use yiqian_domain::applicant::ConfirmedIdCard;
use yiqian_domain::{OrderId, OrderState, Step};
use yiqian_providers::identity::{IdCardReading, LivenessVerdict};
use yiqian_store::blobs::BlobReader;
use yiqian_store::orders::OrderRecord;

const NAV: &str = "/console/review";
const ACTIVATIONS: &str = "/console/activations";
/// Orders per queue page.
const QUEUE_LIMIT: i64 = 200;
/// Orders waiting longer than this (minutes) are marked in the queue.
const LONG_WAIT_MINUTES: i64 = 24 * 60;

/// Routes of application review, activation review and the order media they show.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/console/review", get(review_queue))
        .route("/console/review/{order}", get(application))
        .route("/console/review/{order}/approve", post(approve))
        .route("/console/review/{order}/send-back", post(send_back))
        .route("/console/review/{order}/reject", post(reject))
        .route("/console/activations", get(activation_queue))
        .route("/console/activations/{order}", get(activation))
        .route("/console/activations/{order}/approve", post(approve_activation))
        .route("/console/activations/{order}/reject", post(reject_activation))
        .route("/console/orders/{order}/blobs/{blob}", get(blob))
}

// ---------------------------------------------------------------------------------------------
// Shared pieces (also used by 柜台业务)
// ---------------------------------------------------------------------------------------------

/// The state of an order as staff name it (more precise than the applicant's four words).
pub(super) fn state_title(state: OrderState) -> &'static str {
    match state {
        OrderState::Created => "待支付",
        OrderState::Collecting => "资料提交中",
        OrderState::Submitted => "待审核",
        OrderState::Returned => "已退回补正",
        OrderState::Approved => "审核通过,待制证",
        OrderState::Issued => "已制证,待发货",
        OrderState::Shipped => "已发货,待激活",
        OrderState::ActivationReview => "已激活,待复核",
        OrderState::Activated => "已激活",
        OrderState::Refunding => "退款中",
        OrderState::Refunded => "已退款",
        OrderState::Cancelled => "已取消",
    }
}

/// The state as a coloured tag.
pub(super) fn state_tag(state: OrderState) -> Markup {
    let class = match state {
        OrderState::Activated | OrderState::Approved | OrderState::Issued | OrderState::Shipped => "c-tag c-on",
        OrderState::Submitted | OrderState::ActivationReview | OrderState::Returned => "c-tag c-warn",
        OrderState::Refunding | OrderState::Refunded => "c-tag c-bad",
        _ => "c-tag c-off",
    };
    html! { span class=(class) data-state=(state.code()) { (state_title(state)) } }
}

/// Who did something in an order's history, in words.
pub(super) fn actor_label(actor: &str) -> String {
    match actor.split_once(':') {
        None if actor == "applicant" => "申请人".into(),
        None if actor == "system" => "系统".into(),
        Some(("applicant", _)) => "申请人".into(),
        Some(("staff", name)) => format!("工作人员 {name}"),
        Some(("gateway", name)) => format!("支付渠道 {name}"),
        _ => actor.to_owned(),
    }
}

/// The URL of an order's photo, video or signature.
pub(super) fn blob_url(order: &OrderId, blob: &str) -> String {
    format!("/console/orders/{order}/blobs/{blob}")
}

/// The order's history, oldest first.
pub(super) fn history_card(d: &Dossier) -> Markup {
    html! {
        section.c-card.c-span id="history" {
            h2 { "订单记录" }
            table.c-table {
                thead { tr { th { "时间(北京时间)" } th { "操作者" } th { "事项" } th { "之后状态" } } }
                tbody {
                    @for h in &d.history {
                        tr {
                            td.c-nowrap { (beijing_time(h.at)) }
                            td.c-nowrap { (actor_label(&h.actor)) }
                            td { (h.event.applicant_text()) }
                            td.c-nowrap { (state_title(h.state_after)) }
                        }
                    }
                }
            }
        }
    }
}

/// How long something has waited, in words.
fn waited(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match (now - since).num_minutes().max(0) {
        0 => "不到1分钟".into(),
        m if m < 60 => format!("{m}分钟"),
        m if m < 24 * 60 => format!("{}小时{}分钟", m / 60, m % 60),
        m => format!("{}天{}小时", m / (24 * 60), m % (24 * 60) / 60),
    }
}

/// Refusals a reviewer can act on are shown on the page; the rest get the error page.
fn on_page(e: &AppError) -> bool {
    matches!(e, AppError::Invalid { .. } | AppError::Conflict { .. })
}

#[derive(Deserialize)]
struct Done {
    ok: Option<String>,
    order: Option<String>,
}

fn notice(done: &Done) -> Option<String> {
    // Only an order number (by its shape) is repeated back: the query can be made up by anyone.
    let order = OrderId::parse(done.order.as_deref().unwrap_or(""))?;
    Some(match done.ok.as_deref()? {
        "approved" => format!("订单 {order} 已审核通过,已通知申请人,转入制证发货。"),
        "sent_back" => format!("订单 {order} 已退回补正,已通知申请人按原因重新提交。"),
        "rejected" => format!("订单 {order} 审核不通过,已开始原路退款。"),
        "activation_approved" => format!("订单 {order} 已通过激活复核,证书已启用,PIN码将通过短信发送给申请人。"),
        "activation_rejected" => format!("订单 {order} 已退回重新验证,申请人需重新完成激活人脸验证。"),
        _ => return None,
    })
}

fn done(to: &str, what: &str, order: &OrderRecord) -> Response {
    Redirect::to(&format!("{to}?ok={what}&order={}", order.order.id)).into_response()
}

/// A refused decision shown above the forms, with what was typed.
#[derive(Default)]
struct Problem {
    /// Which form: `approve`, `send_back`, `reject`.
    form: &'static str,
    message: String,
    step: String,
    reason: String,
}

// ---------------------------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------------------------

fn queue_page(
    s: &WebState,
    staff: &ConsoleStaff,
    nav: &str,
    title: &str,
    orders: &[OrderRecord],
    notice: Option<String>,
) -> Markup {
    let now = s.app.now();
    let (since, empty) = match nav {
        NAV => ("提交时间", "没有待审核的申请"),
        _ => ("提交激活时间", "没有待复核的激活"),
    };
    let body = html! {
        @if let Some(n) = notice { p.c-ok role="status" id="notice" { (n) } }
        section.c-card {
            p.c-muted { "共 " (orders.len()) " 个订单,等待最久的在前。" }
            table.c-table.c-rows id="queue" {
                thead { tr { th { "订单号" } th { (since) } th { "已等待" } th { "操作" } } }
                tbody {
                    @for o in orders {
                        @let id = o.order.id.as_str();
                        @let minutes = (now - o.updated_at).num_minutes();
                        tr data-order=(id) {
                            td { a href={ (nav) "/" (id) } { code { (id) } } }
                            td.c-nowrap { (beijing_time(o.updated_at)) }
                            td.c-nowrap {
                                @if minutes >= LONG_WAIT_MINUTES { span.c-tag.c-warn { (waited(o.updated_at, now)) } }
                                @else { (waited(o.updated_at, now)) }
                            }
                            td { a.c-btn.c-small.c-primary href={ (nav) "/" (id) } { "审核" } }
                        }
                    }
                    @if orders.is_empty() { tr { td.c-empty colspan="4" { (empty) } } }
                }
            }
        }
    };
    console_layout(s, &staff.member, title, nav, body)
}

async fn review_queue(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<Done>) -> Response {
    match s.app.review_queue(&staff.member, QUEUE_LIMIT).await {
        Ok(orders) => queue_page(&s, &staff, NAV, "审核", &orders, notice(&q)).into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

async fn activation_queue(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<Done>) -> Response {
    match s.app.activation_queue(&staff.member, QUEUE_LIMIT).await {
        Ok(orders) => queue_page(&s, &staff, ACTIVATIONS, "激活复核", &orders, notice(&q)).into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

// ---------------------------------------------------------------------------------------------
// The dossier
// ---------------------------------------------------------------------------------------------

/// The line above a dossier: the order, its state, the applicant, how long it has waited.
fn order_head(s: &WebState, d: &Dossier, back: &str, back_label: &str) -> Markup {
    let rec = &d.record;
    html! {
        div.c-order-head {
            div {
                (state_tag(rec.order.state))
                @if let Some(name) = d.applicant_name() { span.c-applicant id="applicant-name" { (name) } }
            }
            div.c-muted {
                "最近更新 " (beijing_time(rec.updated_at)) " · 已等待 " (waited(rec.updated_at, s.app.now()))
                " · " a href=(back) { (back_label) }
            }
        }
        @if let Some(e) = &d.erasure {
            p.c-notice id="erased" {
                "该订单的个人资料已于 " (beijing_time(e.erased_at)) " 删除("
                (yiqian_app::retention::ErasureReason::from_code(&e.reason).map_or(e.reason.as_str(), |r| r.title()))
                "),照片、视频和签名不再可查看。"
            }
        }
    }
}

/// Compares for "the same text" ignoring spaces, case and the punctuation of dates.
fn normalised(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '/' | '—' | '–' | '至' | '年' | '月' | '日'))
        .flat_map(char::to_uppercase)
        .collect()
}

fn id_photos(d: &Dossier) -> Markup {
    html! {
        section.c-card id="id-photos" {
            h2 { "身份证照片" }
            @match &d.id_card {
                Some(c) => {
                    div.c-photos {
                        @for (blob, caption, id) in [(&c.front_blob, "人像面", "id-front"), (&c.back_blob, "国徽面", "id-back")] {
                            figure {
                                a href=(blob_url(&d.record.order.id, blob)) target="_blank" rel="noopener" title="在新窗口查看原图" {
                                    img id=(id) src=(blob_url(&d.record.order.id, blob)) alt={ "身份证" (caption) };
                                }
                                figcaption { (caption) }
                            }
                        }
                    }
                }
                None => { p.c-muted { "申请人尚未上传身份证照片" } }
            }
        }
    }
}

/// One line of the ID card check: what the applicant confirmed and what OCR read.
struct FieldRow {
    label: &'static str,
    confirmed: String,
    /// `None` when OCR read nothing there.
    read: Option<String>,
    differs: bool,
}

fn field_rows(card: &ConfirmedIdCard, ocr: &IdCardReading) -> Vec<FieldRow> {
    let validity = format!(
        "{}-{}",
        card.validity.from.format("%Y.%m.%d"),
        card.validity.until.map(|u| u.format("%Y.%m.%d").to_string()).unwrap_or_else(|| "长期".into())
    );
    [
        ("姓名", card.name.clone(), &ocr.name),
        ("性别", card.sex.to_string(), &ocr.sex),
        ("民族", card.ethnicity.clone(), &ocr.ethnicity),
        ("出生", card.birth_date.format("%Y-%m-%d").to_string(), &ocr.birth_date),
        ("住址", card.address.clone(), &ocr.address),
        ("公民身份号码", card.id_number.as_str().to_owned(), &ocr.id_number),
        ("签发机关", card.authority.clone(), &ocr.authority),
        ("有效期限", validity, &ocr.validity),
    ]
    .into_iter()
    .map(|(label, confirmed, read)| {
        let read = read.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let differs = read.as_deref().is_some_and(|v| normalised(v) != normalised(&confirmed));
        FieldRow { label, confirmed, read, differs }
    })
    .collect()
}

fn id_fields(d: &Dossier) -> Markup {
    match &d.id_card {
        Some(c) => id_fields_card(&field_rows(&c.card, &c.ocr), &c.ocr_provider),
        None => {
            html! { section.c-card id="id-fields" { h2 { "证件信息核对" } p.c-muted { "申请人尚未确认证件信息" } } }
        }
    }
}

fn id_fields_card(rows: &[FieldRow], provider: &str) -> Markup {
    let read_nothing = rows.iter().all(|r| r.read.is_none());
    let differences = rows.iter().filter(|r| r.differs).count();
    let provider = if provider.is_empty() { "未记录" } else { provider };
    html! {
        section.c-card id="id-fields" {
            h2 { "证件信息核对" }
            p.c-muted {
                "申请人确认的信息与OCR识别结果(识别服务:" (provider) ")对照,请与左侧照片逐项核对。"
                @if read_nothing { " OCR未识别出任何内容。" }
                @else if differences > 0 { " " span.c-tag.c-bad id="ocr-differences" { (differences) " 项不一致" } }
                @else { " " span.c-tag.c-on { "全部一致" } }
            }
            table.c-table.c-compare {
                thead { tr { th { "项目" } th { "申请人确认" } th { "OCR识别" } } }
                tbody {
                    @for r in rows {
                        tr.c-diff[r.differs] {
                            th scope="row" { (r.label) }
                            td { (r.confirmed) }
                            td {
                                @match &r.read {
                                    Some(v) => { (v) @if r.differs { " " span.c-tag.c-bad { "不一致" } } }
                                    None => { span.c-muted { "未识别" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn verdict(v: &LivenessVerdict) -> Markup {
    html! {
        @match v {
            LivenessVerdict::Pass { similarity } => {
                span.c-tag.c-on.c-verdict data-verdict="pass" { "通过" }
                " " span { "与证件照相似度 " (format!("{similarity:.1}")) }
            }
            LivenessVerdict::Fail { reason, similarity } => {
                span.c-tag.c-bad.c-verdict data-verdict="fail" { "未通过" }
                " " span { (reason) }
                @if let Some(s) = similarity { " " span { "与证件照相似度 " (format!("{s:.1}")) } }
            }
            LivenessVerdict::NeedsReview { reason, similarity } => {
                span.c-tag.c-warn.c-verdict data-verdict="needs_review" { "需人工审核" }
                " " span { (reason) }
                @if let Some(s) = similarity { " " span { "与证件照相似度 " (format!("{s:.1}")) } }
            }
        }
    }
}

/// A face video with the digits it should show being read and the provider's verdict.
fn face_video(order: &OrderId, title: &str, id: &str, evidence: Option<&LivenessEvidence>, extra: Markup) -> Markup {
    html! {
        section.c-card id=(id) {
            h2 { (title) }
            @match evidence {
                Some(e) => {
                    div.c-media {
                        video id={ (id) "-video" } controls preload="metadata" playsinline src=(blob_url(order, &e.video_blob)) {
                            "浏览器无法播放此视频:" a href=(blob_url(order, &e.video_blob)) { "下载" }
                        }
                        dl.c-kv {
                            dt { "朗读数字" } dd.c-digits { (e.digits) }
                            dt { "核验结果" } dd { (verdict(&e.verdict)) }
                            dt { "核验服务" } dd { (if e.provider.is_empty() { "未记录" } else { e.provider.as_str() }) }
                            (extra)
                        }
                    }
                    p.c-muted { "请确认视频中为本人、正在朗读上面的数字,且与身份证人像一致。" }
                }
                None => { p.c-muted { "没有视频" } }
            }
        }
    }
}

fn signature_and_contact(d: &Dossier) -> Markup {
    html! {
        div.c-stack {
            section.c-card id="signature" {
                h2 { "手写签名" }
                @match &d.signature_blob {
                    Some(b) => { div.c-signature { img id="signature-image" src=(blob_url(&d.record.order.id, b)) alt="手写签名"; } }
                    None => { p.c-muted { "申请人尚未签名" } }
                }
            }
            section.c-card id="contact" {
                h2 { "手机与收件地址" }
                dl.c-kv {
                    dt { "绑定手机" } dd id="bound-phone" { @match &d.phone { Some(p) => { (p.as_str()) } None => { span.c-muted { "未绑定" } } } }
                    @match &d.address {
                        Some(a) => {
                            dt { "收件人" } dd { (a.recipient) }
                            dt { "联系电话" } dd { (a.phone.as_str()) }
                            dt { "收件地址" } dd id="shipping-address" { (a.province) " " (a.city) " " (a.district) " " (a.street) }
                        }
                        None => { dt { "收件地址" } dd { span.c-muted { "未填写" } } }
                    }
                }
            }
        }
    }
}

fn decision_forms(staff: &ConsoleStaff, d: &Dossier, problem: Option<&Problem>) -> Markup {
    let id = &d.record.order.id;
    let draft = |form: &str| problem.filter(|p| p.form == form);
    let error = |form: &str| {
        html! { @if let Some(p) = draft(form) { p.c-error role="alert" id="decision-error" { (p.message) } } }
    };
    let send_back = draft("send_back");
    let reject = draft("reject");
    html! {
        section.c-card.c-span id="decision" {
            h2 { "审核操作" }
            @if d.record.order.state != OrderState::Submitted {
                p.c-muted { "该订单当前状态为“" (state_title(d.record.order.state)) "”,不在待审核状态,无需操作。" }
            } @else {
                div.c-decide {
                    form.c-form method="post" action={ "/console/review/" (id) "/approve" } id="approve-form" {
                        h3 { "审核通过" }
                        (error("approve"))
                        (csrf_field(&staff.csrf))
                        p.c-muted { "证件照片、证件信息、人脸视频、签名与地址均核对无误。通过后转入制证发货,并短信通知申请人。" }
                        button.c-btn.c-primary type="submit" id="approve" { "审核通过" }
                    }
                    form.c-form method="post" action={ "/console/review/" (id) "/send-back" } id="send-back-form" {
                        h3 { "退回补正" }
                        (error("send_back"))
                        (csrf_field(&staff.csrf))
                        label {
                            span { "需要补正的步骤" }
                            select name="step" id="send-back-step" required {
                                option value="" { "请选择" }
                                @for step in Step::ALL {
                                    option value=(step.code()) selected[send_back.is_some_and(|p| p.step == step.code())] { (step.title()) }
                                }
                            }
                        }
                        label {
                            span { "原因(申请人可见)" }
                            textarea name="reason" id="send-back-reason" rows="3" maxlength="200" required placeholder="例如:身份证照片反光,无法看清号码,请重新拍摄" {
                                (send_back.map(|p| p.reason.as_str()).unwrap_or(""))
                            }
                        }
                        button.c-btn type="submit" id="send-back" { "退回补正" }
                    }
                    form.c-form method="post" action={ "/console/review/" (id) "/reject" } id="reject-form" {
                        h3 { "审核不通过" }
                        (error("reject"))
                        (csrf_field(&staff.csrf))
                        label {
                            span { "原因(申请人可见)" }
                            textarea name="reason" id="reject-reason" rows="3" maxlength="200" required placeholder="例如:非本人申请" {
                                (reject.map(|p| p.reason.as_str()).unwrap_or(""))
                            }
                        }
                        label.c-confirm {
                            input type="checkbox" name="confirm" value="1" id="reject-confirm" required;
                            span { "确认拒绝并退款" }
                        }
                        p.c-muted { "申请将被关闭,款项原路退回,不可撤销。" }
                        button.c-btn.c-danger type="submit" id="reject" { "审核不通过" }
                    }
                }
            }
        }
    }
}

fn application_page(s: &WebState, staff: &ConsoleStaff, d: &Dossier, problem: Option<&Problem>) -> Markup {
    let order = &d.record.order.id;
    let body = html! {
        (order_head(s, d, NAV, "返回审核队列"))
        div.c-dossier {
            div.c-stack {
                (id_photos(d))
                (face_video(order, "人脸验证", "liveness", d.liveness.as_ref(), html! {}))
            }
            div.c-stack {
                (id_fields(d))
                (signature_and_contact(d))
            }
            (decision_forms(staff, d, problem))
            (history_card(d))
        }
    };
    console_layout(s, &staff.member, &format!("审核 {order}"), NAV, body)
}

/// The dossier for the page of `permission`'s section (the dossier itself is open to every
/// role that works on orders; this page is the reviewers').
async fn dossier_for(
    s: &WebState,
    staff: &ConsoleStaff,
    permission: Permission,
    order: &str,
) -> Result<Dossier, AppError> {
    staff.member.require(permission)?;
    s.app.dossier(&staff.member, order).await
}

async fn application(State(s): State<WebState>, staff: ConsoleStaff, Path(order): Path<String>) -> Response {
    match dossier_for(&s, &staff, Permission::ReviewApplications, &order).await {
        Ok(d) => application_page(&s, &staff, &d, None).into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

/// The application's page again with the refusal above the form that caused it.
async fn refused(s: &WebState, staff: &ConsoleStaff, order: &str, e: AppError, problem: Problem) -> Response {
    if !on_page(&e) {
        return console_error(s, Some(&staff.member), e);
    }
    match s.app.dossier(&staff.member, order).await {
        Ok(d) => {
            let problem = Problem { message: e.to_string(), ..problem };
            (status_of(&e), application_page(s, staff, &d, Some(&problem))).into_response()
        }
        Err(e) => console_error(s, Some(&staff.member), e),
    }
}

#[derive(Deserialize)]
struct SendBackForm {
    #[serde(default)]
    step: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct RejectForm {
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn approve(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.approve_application(&staff.member, &order).await {
        Ok(rec) => done(NAV, "approved", &rec),
        Err(e) => refused(&s, &staff, &order, e, Problem { form: "approve", ..Problem::default() }).await,
    }
}

async fn send_back(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    CsrfForm(f): CsrfForm<SendBackForm>,
) -> Response {
    match s.app.send_back_application(&staff.member, &order, &f.step, &f.reason).await {
        Ok(rec) => done(NAV, "sent_back", &rec),
        Err(e) => {
            let problem = Problem { form: "send_back", step: f.step, reason: f.reason, ..Problem::default() };
            refused(&s, &staff, &order, e, problem).await
        }
    }
}

async fn reject(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    CsrfForm(f): CsrfForm<RejectForm>,
) -> Response {
    let result = match f.confirm.as_deref() {
        Some("1") => s.app.reject_application(&staff.member, &order, &f.reason).await,
        _ => Err(AppError::invalid("confirmation_required", "请勾选“确认拒绝并退款”后再提交")),
    };
    match result {
        Ok(rec) => done(NAV, "rejected", &rec),
        Err(e) => {
            let problem = Problem { form: "reject", reason: f.reason, ..Problem::default() };
            refused(&s, &staff, &order, e, problem).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Activation review
// ---------------------------------------------------------------------------------------------

fn id_front_card(d: &Dossier) -> Markup {
    let order = &d.record.order.id;
    html! {
        section.c-card id="id-photos" {
            h2 { "身份证人像面" }
            @match &d.id_card {
                Some(c) => {
                    div.c-photo-one {
                        a href=(blob_url(order, &c.front_blob)) target="_blank" rel="noopener" title="在新窗口查看原图" {
                            img id="id-front" src=(blob_url(order, &c.front_blob)) alt="身份证人像面";
                        }
                    }
                    dl.c-kv {
                        dt { "姓名" } dd { (c.card.name) }
                        dt { "公民身份号码" } dd { (c.card.id_number.as_str()) }
                    }
                }
                None => { p.c-muted { "没有身份证照片" } }
            }
        }
    }
}

/// 通过激活 and 退回重新验证, with a refusal above the form that caused it.
fn activation_decision(staff: &ConsoleStaff, d: &Dossier, problem: Option<&Problem>) -> Markup {
    let order = &d.record.order.id;
    let draft = |form: &str| problem.filter(|p| p.form == form);
    let error = |form: &str| {
        html! { @if let Some(p) = draft(form) { p.c-error role="alert" id="decision-error" { (p.message) } } }
    };
    let reason = draft("reject").map(|p| p.reason.as_str()).unwrap_or("");
    html! {
        section.c-card id="decision" {
            h2 { "激活复核操作" }
            @if d.record.order.state != OrderState::ActivationReview {
                p.c-muted { "该订单当前状态为“" (state_title(d.record.order.state)) "”,不在待复核状态,无需操作。" }
            } @else {
                div.c-decide.c-two {
                    form.c-form method="post" action={ "/console/activations/" (order) "/approve" } id="approve-form" {
                        h3 { "通过激活" }
                        (error("approve"))
                        (csrf_field(&staff.csrf))
                        p.c-muted { "激活视频中为申请人本人。通过后证书启用,PIN码以短信发送给申请人。" }
                        button.c-btn.c-primary type="submit" id="approve" { "通过激活(发送PIN)" }
                    }
                    form.c-form method="post" action={ "/console/activations/" (order) "/reject" } id="reject-form" {
                        h3 { "退回重新验证" }
                        (error("reject"))
                        (csrf_field(&staff.csrf))
                        label {
                            span { "原因(申请人可见)" }
                            textarea name="reason" id="reject-reason" rows="3" maxlength="200" required placeholder="例如:视频过暗,无法看清面部" { (reason) }
                        }
                        button.c-btn.c-danger type="submit" id="reject" { "退回重新验证" }
                    }
                }
            }
        }
    }
}

fn activation_page(s: &WebState, staff: &ConsoleStaff, d: &Dossier, problem: Option<&Problem>) -> Markup {
    let order = &d.record.order.id;
    let failures = d.fulfilment.as_ref().map(|f| f.activation_failures).unwrap_or(0);
    // When the applicant accepted the activation notice: the day, the second on hovering.
    let consent = d.fulfilment.as_ref().and_then(|f| f.activation_consent_at).map(beijing_time);
    let extra = html! {
        dt { "此前未通过" } dd { (failures) " 次" }
        @if let Some(t) = &consent {
            dt { "同意须知" } dd title=(t) { (t.split(' ').next().unwrap_or_default()) }
        }
    };
    let body = html! {
        (order_head(s, d, ACTIVATIONS, "返回激活复核队列"))
        div.c-dossier {
            div.c-stack {
                (face_video(order, "激活人脸视频", "activation", d.activation.as_ref(), extra))
                (face_video(order, "申请时的人脸视频", "liveness", d.liveness.as_ref(), html! {}))
            }
            div.c-stack {
                (id_front_card(d))
                (activation_decision(staff, d, problem))
            }
            (history_card(d))
        }
    };
    console_layout(s, &staff.member, &format!("激活复核 {order}"), ACTIVATIONS, body)
}

async fn activation(State(s): State<WebState>, staff: ConsoleStaff, Path(order): Path<String>) -> Response {
    match dossier_for(&s, &staff, Permission::ReviewActivations, &order).await {
        Ok(d) => activation_page(&s, &staff, &d, None).into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

async fn activation_refused(
    s: &WebState,
    staff: &ConsoleStaff,
    order: &str,
    e: AppError,
    problem: Problem,
) -> Response {
    if !on_page(&e) {
        return console_error(s, Some(&staff.member), e);
    }
    match s.app.dossier(&staff.member, order).await {
        Ok(d) => {
            let problem = Problem { message: e.to_string(), ..problem };
            (status_of(&e), activation_page(s, staff, &d, Some(&problem))).into_response()
        }
        Err(e) => console_error(s, Some(&staff.member), e),
    }
}

async fn approve_activation(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.approve_activation(&staff.member, &order).await {
        Ok(rec) => done(ACTIVATIONS, "activation_approved", &rec),
        Err(e) => activation_refused(&s, &staff, &order, e, Problem { form: "approve", ..Problem::default() }).await,
    }
}

async fn reject_activation(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    CsrfForm(f): CsrfForm<ReasonForm>,
) -> Response {
    match s.app.reject_activation(&staff.member, &order, &f.reason).await {
        Ok(rec) => done(ACTIVATIONS, "activation_rejected", &rec),
        Err(e) => {
            let problem = Problem { form: "reject", reason: f.reason, ..Problem::default() };
            activation_refused(&s, &staff, &order, e, problem).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

async fn blob(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path((order, blob)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match s.app.staff_blob(&staff.member, &order, &blob).await {
        Ok(reader) => media(reader, headers.get(header::RANGE)).await,
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

/// A stored photo, video or signature, shown in the page (never cached), with one byte range
/// when asked for one (browsers seek in videos that way). Only the asked bytes are read and
/// opened; a whole blob is sent piece by piece as it is read.
async fn media(reader: BlobReader, range: Option<&HeaderValue>) -> Response {
    let content_type = reader.info.content_type.clone();
    // Types are sniffed from the bytes at upload; anything else is only offered as a download.
    let known = ["image/", "video/"].iter().any(|p| content_type.starts_with(p)) || content_type == "application/pdf";
    let (content_type, disposition) =
        if known { (content_type.as_str(), "inline") } else { ("application/octet-stream", "attachment") };
    let len = reader.size();
    let asked = range.and_then(|r| r.to_str().ok()).map(|r| byte_range(r, len as usize));
    let (status, body, content_range) = match asked {
        None | Some(RangeAsked::Whole) => (StatusCode::OK, crate::download::whole_body(reader), None),
        Some(RangeAsked::Part(start, end)) => match reader.read(start as u64..end as u64 + 1).await {
            Ok(bytes) => (StatusCode::PARTIAL_CONTENT, Body::from(bytes), Some(format!("bytes {start}-{end}/{len}"))),
            Err(e) => {
                tracing::error!(error = %e, "a stored blob could not be read");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        },
        Some(RangeAsked::Unsatisfiable) => {
            (StatusCode::RANGE_NOT_SATISFIABLE, Body::empty(), Some(format!("bytes */{len}")))
        }
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    let content_type =
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    if status == StatusCode::OK {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Some(v) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    response
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    /// Everything: no usable single range (several ranges are answered whole).
    Whole,
    /// Bytes `start..=end`.
    Part(usize, usize),
    /// A range beyond the end.
    Unsatisfiable,
}

fn byte_range(header: &str, len: usize) -> RangeAsked {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeAsked::Whole };
    if spec.contains(',') {
        return RangeAsked::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAsked::Whole };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<usize>().ok();
    match (first.is_empty(), last.is_empty()) {
        // The last `n` bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeAsked::Unsatisfiable,
            Some(n) if len > 0 => RangeAsked::Part(len.saturating_sub(n), len - 1),
            Some(_) => RangeAsked::Unsatisfiable,
            None => RangeAsked::Whole,
        },
        (false, _) => match (parse(first), if last.is_empty() { Some(usize::MAX) } else { parse(last) }) {
            (Some(start), Some(end)) if start <= end => {
                if start >= len {
                    RangeAsked::Unsatisfiable
                } else {
                    RangeAsked::Part(start, end.min(len - 1))
                }
            }
            _ => RangeAsked::Whole,
        },
        (true, true) => RangeAsked::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range("bytes=0-", 100), RangeAsked::Part(0, 99));
        assert_eq!(byte_range("bytes=10-19", 100), RangeAsked::Part(10, 19));
        assert_eq!(byte_range("bytes=90-200", 100), RangeAsked::Part(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), RangeAsked::Part(90, 99));
        assert_eq!(byte_range("bytes=-500", 100), RangeAsked::Part(0, 99));
        assert_eq!(byte_range("bytes=100-", 100), RangeAsked::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), RangeAsked::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-", 0), RangeAsked::Unsatisfiable);
        for whole in ["items=0-1", "bytes=0-1,5-6", "bytes=5-1", "bytes=x-", "bytes=-", "bytes=1"] {
            assert_eq!(byte_range(whole, 100), RangeAsked::Whole, "{whole}");
        }
    }

    #[test]
    fn waiting_times_read_naturally() {
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let later = |m: i64| t + chrono::Duration::minutes(m);
        assert_eq!(waited(t, t), "不到1分钟");
        assert_eq!(waited(t, later(5)), "5分钟");
        assert_eq!(waited(t, later(135)), "2小时15分钟");
        assert_eq!(waited(t, later(3 * 1440 + 125)), "3天2小时");
        assert_eq!(waited(later(5), t), "不到1分钟");
    }

    #[test]
    fn what_ocr_read_differently_is_marked() {
        let form = yiqian_domain::applicant::IdCardForm {
            name: "张三".into(),
            sex: "男".into(),
            ethnicity: "汉".into(),
            birth_date: "1990-03-07".into(),
            address: "北京市东城区景山前街4号".into(),
            id_number: "110101199003074477".into(),
            authority: "北京市公安局东城分局".into(),
            validity: "2020.01.01-2040.01.01".into(),
        };
        let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let card = yiqian_domain::applicant::confirm_id_card(&form, today).unwrap();
        let ocr = IdCardReading {
            name: Some("张山".into()),
            birth_date: Some("1990.03.07".into()),
            validity: Some("2020-01-01至2040-01-01".into()),
            address: Some("  ".into()),
            ..IdCardReading::default()
        };
        let rows = field_rows(&card, &ocr);
        let differing: Vec<&str> = rows.iter().filter(|r| r.differs).map(|r| r.label).collect();
        assert_eq!(differing, ["姓名"]);
        assert!(rows.iter().find(|r| r.label == "住址").unwrap().read.is_none(), "blank is not read");
        let html = id_fields_card(&rows, "ocr-x").into_string();
        assert!(html.contains("<tr class=\"c-diff\"><th scope=\"row\">姓名</th><td>张三</td><td>张山"), "{html}");
        assert!(html.contains("1 项不一致") && html.contains("识别服务:ocr-x"), "{html}");
        let nothing = id_fields_card(&field_rows(&card, &IdCardReading::default()), "sandbox").into_string();
        assert!(nothing.contains("OCR未识别出任何内容") && !nothing.contains("c-diff"), "{nothing}");
    }

    #[test]
    fn ocr_comparison_ignores_date_punctuation_and_case() {
        assert_eq!(normalised("2020.01.01-2040.01.01"), normalised("2020-01-01至2040-01-01"));
        assert_eq!(normalised("11010119900307447x"), normalised("11010119900307447X"));
        assert_ne!(normalised("张三"), normalised("张山"));
    }
}
