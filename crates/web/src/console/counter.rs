//! 柜台业务 (`/console/counter`, counter staff): finding the applicant's order by order number,
//! phone or ID number, and on the order's page its keys and certificates, the services done so
//! far, and one form per service that fits the order — 证书注销, 补办(新UKEY), 续期, PIN码解锁,
//! 柜台激活. Every form starts with the identity check: the document seen, the ID number typed
//! from the original card (the service compares it with the order's) and the staff member's
//! confirmation that the card is the person's. New PINs go to the applicant by SMS; staff never
//! see them.

use super::review::{history_card, state_tag, state_title};
use super::{ConsoleStaff, CsrfForm, beijing_time, console_error, console_layout, csrf_field};
use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use yiqian_app::AppError;
use yiqian_app::counter::{CounterOrder, CounterService, IdentityCheck};
use yiqian_app::staff::Permission;
use yiqian_domain::{OrderId, OrderState};
use yiqian_store::certificates::{CertificateStatus, StatusStamp};
use yiqian_store::fulfilment::{TokenRecord, TokenState};
use yiqian_store::orders::OrderRecord;

const NAV: &str = "/console/counter";
/// The documents a counter accepts as the original card.
const DOCUMENTS: [&str; 2] = ["居民身份证原件", "临时居民身份证原件"];
/// Reasons for 证书注销: RFC 5280 reason code and the words at the counter.
const REVOCATION_REASONS: [(&str, &str); 4] = [
    ("key_compromise", "密钥泄露"),
    ("cessation_of_operation", "停止使用"),
    ("affiliation_changed", "信息变更"),
    ("superseded", "已被替代"),
];
/// Longest note kept with a service.
const NOTE_MAX_CHARS: usize = 200;

/// Routes of the counter.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/console/counter", get(search))
        .route("/console/counter/{order}", get(order_page))
        .route("/console/counter/{order}/{service}", post(serve))
}

const SERVICES: [CounterService; 5] = [
    CounterService::Activate,
    CounterService::UnlockPin,
    CounterService::Renew,
    CounterService::Reissue,
    CounterService::Revoke,
];

fn service_of(code: &str) -> Option<CounterService> {
    SERVICES.into_iter().find(|s| s.code() == code)
}

/// What the service does, for the form.
fn service_hint(service: CounterService) -> &'static str {
    match service {
        CounterService::Activate => {
            "申请人无法在线完成激活时,核验本人及证件原件后在柜台激活;证书启用,PIN码以短信发送。"
        }
        CounterService::UnlockPin => "PIN码输错锁定或遗忘时使用:为UKEY设置新的PIN码,以短信发送给申请人。",
        CounterService::Renew => "在原UKEY上生成新密钥并签发新证书(有效期重新计算),原证书作废,新PIN码以短信发送。",
        CounterService::Reissue => "UKEY遗失或损坏时使用:制作新UKEY并签发新证书,原证书注销,新PIN码以短信发送。",
        CounterService::Revoke => "永久注销证书,UKEY停止使用,不可恢复。",
    }
}

/// The message after a service was done.
fn service_done(service: CounterService) -> &'static str {
    match service {
        CounterService::Activate => "已完成柜台激活,证书已启用,PIN码已通过短信发送给申请人。",
        CounterService::UnlockPin => "UKEY已解锁,PIN码已通过短信发送给申请人。",
        CounterService::Renew => "证书已续期,新PIN码已通过短信发送给申请人。",
        CounterService::Reissue => "已补办新UKEY并写入新证书,原证书已注销,新PIN码已通过短信发送给申请人。",
        CounterService::Revoke => "证书已注销,已短信通知申请人。",
    }
}

fn certificate_word(s: CertificateStatus) -> Markup {
    html! {
        @match s {
            CertificateStatus::Hold => span.c-tag.c-warn { "未启用(待激活)" },
            CertificateStatus::Active => span.c-tag.c-on { "有效" },
            CertificateStatus::Revoked => span.c-tag.c-bad { "已注销" },
        }
    }
}

fn token_word(s: TokenState) -> &'static str {
    match s {
        TokenState::Personalised => "已制作(锁定)",
        TokenState::Active => "使用中",
        TokenState::Retired => "已停用",
    }
}

fn reason_word(code: &str) -> String {
    let squash = |s: &str| s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    REVOCATION_REASONS
        .iter()
        .find(|(c, _)| squash(c) == squash(code))
        .map(|(_, w)| (*w).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

fn search_box(query: &str) -> Markup {
    html! {
        form.c-search method="get" action=(NAV) id="counter-search" {
            input type="search" name="q" id="q" value=(query) placeholder="订单号 / 手机号 / 身份证号" aria-label="订单号、手机号或身份证号"
                autocomplete="off" spellcheck="false" autofocus required maxlength="32";
            button.c-btn.c-primary type="submit" { "查询" }
        }
    }
}

async fn search(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<SearchQuery>) -> Response {
    // The page is the counter's even before anything is searched.
    if let Err(e) = staff.member.require(Permission::CounterService) {
        return console_error(&s, Some(&staff.member), e);
    }
    let query = q.q.as_deref().map(str::trim).unwrap_or("");
    let (found, error) = match query.is_empty() {
        true => (None, None),
        false => match s.app.counter_search(&staff.member, query).await {
            Ok(orders) => (Some(orders), None),
            Err(e @ AppError::Invalid { .. }) => (None, Some(e)),
            Err(e) => return console_error(&s, Some(&staff.member), e),
        },
    };
    let status = error.as_ref().map(status_of).unwrap_or_default();
    let body = html! {
        section.c-card {
            h2 { "查询订单" }
            (search_box(query))
            p.c-muted { "请申请人出示身份证原件。可按订单号、申请人手机号或身份证号查询。" }
        }
        @if let Some(e) = &error { p.c-error role="alert" id="search-error" { (e) } }
        @if let Some(orders) = &found { (results(orders)) }
    };
    (status, console_layout(&s, &staff.member, "柜台业务", NAV, body)).into_response()
}

fn results(orders: &[OrderRecord]) -> Markup {
    html! {
        section.c-card {
            h2 { "查询结果" }
            table.c-table.c-rows id="results" {
                thead { tr { th { "订单号" } th { "订单状态" } th { "下单时间" } th { "最近更新" } th { "操作" } } }
                tbody {
                    @for o in orders {
                        @let id = o.order.id.as_str();
                        tr data-order=(id) {
                            td { a href={ (NAV) "/" (id) } { code { (id) } } }
                            td { (state_title(o.order.state)) }
                            td.c-nowrap { (beijing_time(o.created_at)) }
                            td.c-nowrap { (beijing_time(o.updated_at)) }
                            td { a.c-btn.c-small.c-primary href={ (NAV) "/" (id) } { "办理" } }
                        }
                    }
                    @if orders.is_empty() { tr { td.c-empty colspan="5" { "没有找到订单" } } }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An order at the counter
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Done {
    ok: Option<String>,
}

/// A refused service, shown in its form with what may be shown again (never the ID number).
struct Problem {
    service: CounterService,
    message: String,
    document: String,
    note: String,
    reason: String,
}

/// The order's current key and its certificate's status.
fn current(o: &CounterOrder) -> Option<(&TokenRecord, Option<&StatusStamp>)> {
    let serial = o.dossier.fulfilment.as_ref()?.token_serial.as_deref()?;
    let token = o.dossier.tokens.iter().find(|t| t.serial == serial)?;
    let stamp = o.certificates.iter().find(|(c, _)| *c == token.certificate_serial).and_then(|(_, s)| s.as_ref());
    Some((token, stamp))
}

/// The services the order allows now.
fn services_for(o: &CounterOrder) -> Vec<CounterService> {
    let live = current(o).is_some_and(|(_, s)| s.is_some_and(|s| s.status != CertificateStatus::Revoked));
    let mut out = Vec::new();
    match o.dossier.record.order.state {
        OrderState::Shipped | OrderState::ActivationReview => out.push(CounterService::Activate),
        OrderState::Activated => {
            if live {
                out.extend([CounterService::UnlockPin, CounterService::Renew]);
            }
            out.push(CounterService::Reissue);
        }
        _ => {}
    }
    if live
        && matches!(
            o.dossier.record.order.state,
            OrderState::Shipped | OrderState::ActivationReview | OrderState::Activated
        )
    {
        out.push(CounterService::Revoke);
    }
    out
}

fn summary(o: &CounterOrder) -> Markup {
    let d = &o.dossier;
    let shipment = d.fulfilment.as_ref().and_then(|f| f.shipment.as_ref());
    html! {
        section.c-card id="summary" {
            h2 { "订单概况" }
            dl.c-kv {
                dt { "订单号" } dd { code { (d.record.order.id) } }
                dt { "订单状态" } dd { (state_tag(d.record.order.state)) " " span.c-muted { "申请人看到:" (d.record.order.state.applicant_word()) } }
                dt { "申请人" } dd id="applicant-name" { (d.applicant_name().unwrap_or("-")) }
                dt { "身份证号" } dd id="masked-id" { @match &d.id_card { Some(c) => { code { (c.card.id_number.masked()) } } None => { "-" } } }
                dt { "绑定手机" } dd { @match &d.phone { Some(p) => { (p.masked()) } None => { "-" } } }
                dt { "快递" } dd { @match shipment { Some(s) => { (s.courier) " " code { (s.tracking_no) } } None => { span.c-muted { "未发货" } } } }
            }
        }
    }
}

fn keys(o: &CounterOrder) -> Markup {
    let current_serial = current(o).map(|(t, _)| t.serial.as_str());
    html! {
        section.c-card id="keys" {
            h2 { "UKEY与证书" }
            table.c-table {
                thead { tr { th { "UKEY序列号" } th { "UKEY状态" } th { "证书序列号" } th { "证书状态" } th { "制作时间" } } }
                tbody {
                    @for t in &o.dossier.tokens {
                        @let stamp = o.certificates.iter().find(|(c, _)| *c == t.certificate_serial).and_then(|(_, s)| s.as_ref());
                        tr data-token=(t.serial) {
                            td { code { (t.serial) } @if Some(t.serial.as_str()) == current_serial { " " span.c-tag.c-on { "当前" } } }
                            td { (token_word(t.state)) }
                            td { code.c-serial { (t.certificate_serial) } }
                            td.c-nowrap data-certificate=(t.certificate_serial) {
                                @match stamp {
                                    Some(st) => {
                                        (certificate_word(st.status))
                                        @if st.status == CertificateStatus::Revoked {
                                            @if let Some(r) = &st.reason { " " span.c-muted { (reason_word(r)) } }
                                        }
                                    }
                                    None => { span.c-muted { "未知" } }
                                }
                            }
                            td.c-nowrap { (beijing_time(t.created_at)) }
                        }
                    }
                    @if o.dossier.tokens.is_empty() { tr { td.c-empty colspan="5" { "尚未制作UKEY" } } }
                }
            }
        }
    }
}

fn services_done(o: &CounterOrder) -> Markup {
    html! {
        section.c-card.c-span id="services-done" {
            h2 { "柜台业务记录" }
            table.c-table {
                thead { tr { th { "时间(北京时间)" } th { "业务" } th { "经办人" } th { "核验证件" } th { "说明" } } }
                tbody {
                    @for r in &o.dossier.counter_services {
                        @let text = |k: &str| r.record[k].as_str().unwrap_or("").to_owned();
                        tr data-kind=(r.kind) {
                            td.c-nowrap { (beijing_time(r.created_at)) }
                            td { (service_of(&r.kind).map(CounterService::title).unwrap_or(r.kind.as_str())) }
                            td { (r.staff.strip_prefix("staff:").unwrap_or(&r.staff)) }
                            td { (text("document")) " " code { (text("id_number")) } }
                            td {
                                @if !text("reason").is_empty() { "原因:" (reason_word(&text("reason"))) " " }
                                @if !text("new_key").is_empty() { "新UKEY " code { (text("new_key")) } " " }
                                @if !text("note").is_empty() { span.c-muted { "备注:" (text("note")) } }
                            }
                        }
                    }
                    @if o.dossier.counter_services.is_empty() { tr { td.c-empty colspan="5" { "尚未办理过柜台业务" } } }
                }
            }
        }
    }
}

fn service_form(staff: &ConsoleStaff, order: &OrderId, service: CounterService, problem: Option<&Problem>) -> Markup {
    let code = service.code();
    let mine = problem.filter(|p| p.service == service);
    let document = mine.map(|p| p.document.as_str()).filter(|d| DOCUMENTS.contains(d)).unwrap_or(DOCUMENTS[0]);
    let field = |name: &str| format!("{code}-{name}");
    html! {
        form.c-card.c-form.c-service method="post" action={ (NAV) "/" (order) "/" (code) } id={ "service-" (code) } {
            h2 { (service.title()) }
            p.c-muted { (service_hint(service)) }
            @if let Some(p) = mine { p.c-error role="alert" id="service-error" { (p.message) } }
            (csrf_field(&staff.csrf))
            @if service == CounterService::Revoke {
                label for=(field("reason")) {
                    span { "注销原因" }
                    select name="reason" id=(field("reason")) required {
                        @for (value, word) in REVOCATION_REASONS {
                            option value=(value) selected[mine.is_some_and(|p| p.reason == value)] { (word) }
                        }
                    }
                }
            }
            label for=(field("document")) {
                span { "证件类型" }
                select name="document" id=(field("document")) {
                    @for d in DOCUMENTS { option value=(d) selected[d == document] { (d) } }
                }
            }
            label for=(field("id_number")) {
                span { "证件号码" }
                input type="text" name="id_number" id=(field("id_number")) required minlength="18" maxlength="18"
                    autocomplete="off" spellcheck="false" placeholder="按证件原件输入18位号码";
            }
            label for=(field("note")) {
                span { "备注(可选)" }
                input type="text" name="note" id=(field("note")) maxlength=(NOTE_MAX_CHARS) value=(mine.map(|p| p.note.as_str()).unwrap_or(""));
            }
            label.c-confirm {
                input type="checkbox" name="verified" value="1" id=(field("verified")) required;
                span { "已核验证件原件与本人一致" }
            }
            @if service == CounterService::Revoke {
                button.c-btn.c-danger type="submit" id=(field("submit")) { "办理" (service.title()) }
            } @else {
                button.c-btn.c-primary type="submit" id=(field("submit")) { "办理" (service.title()) }
            }
        }
    }
}

fn order_view(
    s: &WebState,
    staff: &ConsoleStaff,
    o: &CounterOrder,
    notice: Option<&str>,
    problem: Option<&Problem>,
) -> Markup {
    let d = &o.dossier;
    let order = &d.record.order.id;
    let services = services_for(o);
    let body = html! {
        div.c-order-head {
            div {
                (state_tag(d.record.order.state))
                @if let Some(name) = d.applicant_name() { span.c-applicant { (name) } }
            }
            div.c-muted { a href=(NAV) { "返回查询" } }
        }
        @if let Some(n) = notice { p.c-ok role="status" id="notice" { (n) } }
        // A refusal of a service the order no longer offers (e.g. done meanwhile) shows here.
        @if let Some(p) = problem.filter(|p| !services.contains(&p.service)) {
            p.c-error role="alert" id="service-error" { (p.service.title()) ":" (p.message) }
        }
        div.c-dossier.c-counter {
            (summary(o))
            (keys(o))
            (services_done(o))
            section.c-span id="services" {
                h2.c-section { "办理业务" }
                @if services.is_empty() {
                    p.c-card.c-muted { "订单当前状态为“" (state_title(d.record.order.state)) "”,暂无可办理的柜台业务。" }
                } @else {
                    p.c-muted { "办理前请核验申请人本人及身份证原件,并按原件输入证件号码;系统将与订单申请人的身份证号码比对。" }
                    div.c-services {
                        @for service in &services { (service_form(staff, order, *service, problem)) }
                    }
                }
            }
            (history_card(d))
        }
    };
    console_layout(s, &staff.member, &format!("柜台业务 {order}"), NAV, body)
}

async fn order_page(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let notice = q.ok.as_deref().and_then(service_of).map(service_done);
    match s.app.counter_order(&staff.member, &order).await {
        Ok(o) => order_view(&s, &staff, &o, notice, None).into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

#[derive(Deserialize)]
struct ServiceForm {
    #[serde(default)]
    document: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    note: String,
    verified: Option<String>,
    /// 证书注销 only.
    #[serde(default)]
    reason: String,
}

fn refusal(code: &'static str, message: &str) -> AppError {
    AppError::invalid(code, message)
}

async fn serve(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path((order, code)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<ServiceForm>,
) -> Response {
    let Some(service) = service_of(&code) else {
        return console_error(&s, Some(&staff.member), AppError::NotFound("业务"));
    };
    let check = IdentityCheck { id_number: f.id_number.clone(), document: f.document.clone(), note: f.note.clone() };
    let result = if f.verified.as_deref() != Some("1") {
        Err(refusal("identity_not_confirmed", "请核验证件原件与本人一致,并勾选“已核验证件原件与本人一致”"))
    } else if !DOCUMENTS.contains(&f.document.trim()) {
        Err(refusal("invalid_document", "请选择证件类型"))
    } else if f.note.trim().chars().count() > NOTE_MAX_CHARS {
        Err(refusal("note_too_long", "备注不能超过200字"))
    } else {
        let (app, who) = (&s.app, &staff.member);
        match service {
            CounterService::Revoke => app.counter_revoke(who, &order, &check, &f.reason).await,
            CounterService::Reissue => app.counter_reissue(who, &order, &check).await.map(|_| ()),
            CounterService::Renew => app.counter_renew(who, &order, &check).await,
            CounterService::UnlockPin => app.counter_unlock_pin(who, &order, &check).await,
            CounterService::Activate => app.counter_activate(who, &order, &check).await.map(|_| ()),
        }
    };
    let e = match result {
        Ok(()) => {
            let to = format!("{NAV}/{}?ok={}", urlencode(order.trim()), service.code());
            return Redirect::to(&to).into_response();
        }
        Err(e) if matches!(e, AppError::Invalid { .. } | AppError::Conflict { .. }) => e,
        Err(e) => return console_error(&s, Some(&staff.member), e),
    };
    match s.app.counter_order(&staff.member, &order).await {
        Ok(o) => {
            let problem =
                Problem { service, message: e.to_string(), document: f.document, note: f.note, reason: f.reason };
            (status_of(&e), order_view(&s, &staff, &o, None, Some(&problem))).into_response()
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}
