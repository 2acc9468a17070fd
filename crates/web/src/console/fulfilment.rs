//! 制证发货 (`/console/fulfilment`, fulfilment staff): three tabs — 待制证 (approved orders,
//! started in batches), 待发货 (keys made: print the parcel papers, i.e. two copies of the
//! business confirmation form and the user guide per applicant; hand over to the courier) and
//! 已发货 (courier, waybill, and the return of the signed form) — and the page of a batch, which
//! refreshes itself until the outbox worker has personalised every key.

use super::{
    ConsoleStaff, CsrfForm, beijing_time, console_error, console_layout, console_layout_with_head, csrf_field,
};
use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::FixedOffset;
use maud::{Markup, html};
use serde::Deserialize;
use yiqian_app::AppError;
use yiqian_app::issuance::{BatchItemState, BatchProgress, MAX_BATCH};
use yiqian_app::shipping::{COURIERS, DeskList, DeskOrder};
use yiqian_domain::{OrderId, OrderState};
use yiqian_store::fulfilment::PersonalisedAt;

const NAV: &str = "/console/fulfilment";
/// Orders per list (a batch can take them all).
const LIST_LIMIT: i64 = MAX_BATCH as i64;
/// Seconds between refreshes of a running batch's page.
const REFRESH_SECONDS: u32 = 2;

/// Routes of the fulfilment desk.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/console/fulfilment", get(desk))
        .route("/console/fulfilment/batches", post(start_batch))
        .route("/console/fulfilment/batches/{id}", get(batch))
        .route("/console/fulfilment/forms", get(print_one).post(print_selected))
        .route("/console/fulfilment/orders/{order}/ship", post(ship))
        .route("/console/fulfilment/orders/{order}/book", post(book))
        .route("/console/fulfilment/orders/{order}/form-returned", post(form_returned))
}

/// The desk's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Approved,
    Issued,
    Shipped,
}

impl Tab {
    const ALL: [Tab; 3] = [Tab::Approved, Tab::Issued, Tab::Shipped];

    fn from_code(code: Option<&str>) -> Tab {
        match code {
            Some("issued") => Tab::Issued,
            Some("shipped") => Tab::Shipped,
            _ => Tab::Approved,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Tab::Approved => "approved",
            Tab::Issued => "issued",
            Tab::Shipped => "shipped",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Tab::Approved => "待制证",
            Tab::Issued => "待发货",
            Tab::Shipped => "已发货",
        }
    }

    fn list(self) -> DeskList {
        match self {
            Tab::Approved => DeskList::ToIssue,
            Tab::Issued => DeskList::ToShip,
            Tab::Shipped => DeskList::Shipped,
        }
    }

    fn path(self) -> String {
        format!("{NAV}?tab={}", self.code())
    }
}

#[derive(Deserialize)]
struct DeskQuery {
    tab: Option<String>,
    /// Tick every box (全选 without script).
    all: Option<String>,
    /// What was just done, and to which order.
    ok: Option<String>,
    order: Option<String>,
}

/// A refusal shown on the page: the order it concerns (if one) and what was typed.
#[derive(Default)]
struct Problem {
    order: Option<String>,
    message: String,
    courier: String,
    tracking_no: String,
}

fn notice(q: &DeskQuery) -> Option<String> {
    // Only an order number (by its shape) is repeated back: the query can be made up by anyone.
    let order = OrderId::parse(q.order.as_deref().unwrap_or(""));
    Some(match (q.ok.as_deref()?, order) {
        ("shipped", Some(o)) => format!("订单 {o} 已发货,已短信通知申请人运单号。"),
        ("returned", Some(o)) => format!("已登记订单 {o} 的业务确认单回寄。"),
        _ => return None,
    })
}

/// Errors a member of staff can act on are shown on the page; the rest get the error page.
fn on_page(e: &AppError) -> bool {
    matches!(e, AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::NotFound(_))
}

async fn desk(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<DeskQuery>) -> Response {
    let tab = Tab::from_code(q.tab.as_deref());
    render_desk(&s, &staff, tab, q.all.is_some(), notice(&q), None).await
}

/// The desk with `tab` open; a refusal comes with its status.
async fn render_desk(
    s: &WebState,
    staff: &ConsoleStaff,
    tab: Tab,
    all: bool,
    notice: Option<String>,
    problem: Option<(AppError, Problem)>,
) -> Response {
    let orders = match s.app.fulfilment_desk(&staff.member, tab.list(), LIST_LIMIT).await {
        Ok(o) => o,
        Err(e) => return console_error(s, Some(&staff.member), e),
    };
    let status = problem.as_ref().map(|(e, _)| status_of(e)).unwrap_or_default();
    let problem = problem.map(|(_, p)| p);
    let body = html! {
        nav.c-tabs {
            @for t in Tab::ALL {
                a.c-tab.active[t == tab] href=(t.path()) { (t.title()) }
            }
        }
        @if let Some(n) = notice { p.c-ok role="status" { (n) } }
        @if let Some(p) = &problem {
            p.c-error role="alert" id="desk-error" {
                @if let Some(o) = &p.order { "订单 " (o) ":" }
                (p.message)
            }
        }
        @match tab {
            Tab::Approved => { (approved_tab(staff, &orders, all)) }
            Tab::Issued => { (issued_tab(staff, &orders, all, problem.as_ref(), s.app.courier_name())) }
            Tab::Shipped => { (shipped_tab(staff, &orders)) }
        }
    };
    (status, console_layout(s, &staff.member, "制证发货", NAV, body)).into_response()
}

/// 全选 / 取消全选 as links: the page is rendered again with every box ticked or none.
fn select_all(tab: Tab, all: bool) -> Markup {
    html! {
        @if all { a.c-link href=(tab.path()) { "取消全选" } }
        @else { a.c-link href={ (tab.path()) "&all=1" } id="select-all" { "全选" } }
    }
}

fn empty_row(columns: u32, text: &str) -> Markup {
    html! { tr { td.c-empty colspan=(columns) { (text) } } }
}

fn approved_tab(staff: &ConsoleStaff, orders: &[DeskOrder], all: bool) -> Markup {
    html! {
        form.c-card method="post" action="/console/fulfilment/batches" id="issue-batch" {
            (csrf_field(&staff.csrf))
            div.c-toolbar {
                button.c-btn.c-primary type="submit" disabled[orders.is_empty()] { "批量制证" }
                button.c-btn type="submit" name="at" value="station" disabled[orders.is_empty()] { "交工作站制证" }
                (select_all(Tab::Approved, all))
                span.c-muted {
                    "共 " (orders.len()) " 个订单待制证。每批最多" (MAX_BATCH) "个;"
                    "“批量制证”由服务器逐个制证,“交工作站制证”由插着UKEY的制证工作站领取。进度在批次页面查看。"
                }
            }
            table.c-table.c-rows id="approved-list" {
                thead { tr { th.c-check { "选择" } th { "订单号" } th { "申请人" } th { "审核通过时间" } } }
                tbody {
                    @for o in orders {
                        @let id = o.record.order.id.as_str();
                        tr data-order=(id) {
                            td.c-check { input type="checkbox" name="orders" value=(id) checked[all] aria-label={ "选择订单 " (id) }; }
                            td { code { (id) } }
                            td { (o.applicant_name) }
                            td.c-nowrap { (beijing_time(o.record.updated_at)) }
                        }
                    }
                    @if orders.is_empty() { (empty_row(4, "没有待制证的订单")) }
                }
            }
        }
    }
}

fn issued_tab(
    staff: &ConsoleStaff,
    orders: &[DeskOrder],
    all: bool,
    problem: Option<&Problem>,
    courier: Option<&str>,
) -> Markup {
    html! {
        section.c-card {
            div.c-toolbar {
                // The boxes in the table belong to this form (`form` attribute): each row also
                // has a form of its own, and forms cannot nest.
                form method="post" action="/console/fulfilment/forms" target="_blank" id="print-forms" {
                    (csrf_field(&staff.csrf))
                    button.c-btn.c-primary type="submit" disabled[orders.is_empty()] { "打印业务确认单" }
                }
                (select_all(Tab::Issued, all))
                span.c-muted {
                    "每个订单打印三页:业务确认单×2(申请人留存一份、签字寄回一份)和《个人数字证书使用说明》×1。"
                    "请单面打印,按顺序与UKEY一同装入快递。"
                }
            }
            table.c-table.c-rows id="issued-list" {
                thead {
                    tr {
                        th.c-check { "选择" } th { "订单号" } th { "申请人" } th { "UKEY序列号" } th { "制证时间" }
                        th { "业务确认单" } th { "发货" }
                    }
                }
                tbody {
                    @for o in orders {
                        @let id = o.record.order.id.as_str();
                        @let f = o.fulfilment.as_ref();
                        @let mine = problem.filter(|p| p.order.as_deref() == Some(id));
                        tr.c-row-error[mine.is_some()] data-order=(id) {
                            td.c-check {
                                input type="checkbox" name="orders" value=(id) form="print-forms" checked[all] aria-label={ "选择订单 " (id) };
                            }
                            td { code { (id) } }
                            td { (o.applicant_name) }
                            td { code { (f.and_then(|f| f.token_serial.as_deref()).unwrap_or("-")) } }
                            td.c-nowrap { (beijing_time(o.record.updated_at)) }
                            td.c-nowrap {
                                @match f.and_then(|f| f.form_printed_at) {
                                    Some(t) => { span.c-tag.c-on title={ "打印于 " (beijing_time(t)) } { "已打印" } }
                                    None => { span.c-tag.c-warn { "未打印" } }
                                }
                                " "
                                a.c-link href={ "/console/fulfilment/forms?order=" (id) } target="_blank" { "打印" }
                            }
                            td {
                                @if let Some(courier) = courier {
                                    form.c-inline method="post" action={ "/console/fulfilment/orders/" (id) "/book" } {
                                        (csrf_field(&staff.csrf))
                                        button.c-btn.c-small.c-primary type="submit" { (courier) "下单并发货" }
                                    }
                                }
                                (ship_form(staff, id, mine))
                            }
                        }
                    }
                    @if orders.is_empty() { (empty_row(7, "没有待发货的订单")) }
                }
            }
        }
    }
}

fn ship_form(staff: &ConsoleStaff, id: &str, problem: Option<&Problem>) -> Markup {
    let courier = problem.map(|p| p.courier.as_str()).unwrap_or(COURIERS[0]);
    let tracking_no = problem.map(|p| p.tracking_no.as_str()).unwrap_or("");
    html! {
        form.c-inline method="post" action={ "/console/fulfilment/orders/" (id) "/ship" } {
            (csrf_field(&staff.csrf))
            select name="courier" aria-label="快递公司" {
                @for c in COURIERS { option value=(c) selected[c == courier] { (c) } }
            }
            input type="text" name="tracking_no" value=(tracking_no) placeholder="运单号" aria-label="运单号"
                required minlength="8" maxlength="30" pattern="[A-Za-z0-9]{8,30}" autocomplete="off" spellcheck="false";
            button.c-btn.c-small.c-primary type="submit" { "确认发货" }
        }
    }
}

fn shipped_tab(staff: &ConsoleStaff, orders: &[DeskOrder]) -> Markup {
    html! {
        section.c-card {
            p.c-muted { "最近发货的订单在前。申请人签字寄回的业务确认单收到后,请点击“登记回寄”。" }
            table.c-table.c-rows id="shipped-list" {
                thead {
                    tr {
                        th { "订单号" } th { "申请人" } th { "订单状态" } th { "快递公司" } th { "运单号" }
                        th { "发货时间" } th { "确认单回寄" }
                    }
                }
                tbody {
                    @for o in orders {
                        @let id = o.record.order.id.as_str();
                        @let shipment = o.fulfilment.as_ref().and_then(|f| f.shipment.as_ref());
                        tr data-order=(id) {
                            td { code { (id) } }
                            td { (o.applicant_name) }
                            td { (o.record.order.state.applicant_word()) }
                            td { (shipment.map(|s| s.courier.as_str()).unwrap_or("-")) }
                            td { code { (shipment.map(|s| s.tracking_no.as_str()).unwrap_or("-")) } }
                            td.c-nowrap { @if let Some(s) = shipment { (beijing_time(s.shipped_at)) } }
                            td.c-nowrap {
                                @match o.fulfilment.as_ref().and_then(|f| f.form_returned.as_ref()) {
                                    Some((t, _)) => { span.c-tag.c-on { "已回寄" } " " span.c-muted { (beijing_time(*t)) } }
                                    None => {
                                        div.c-actions {
                                            span.c-tag.c-warn { "未回寄" }
                                            form method="post" action={ "/console/fulfilment/orders/" (id) "/form-returned" } {
                                                (csrf_field(&staff.csrf))
                                                button.c-btn.c-small type="submit" { "登记回寄" }
                                            }
                                            @if o.record.order.state == OrderState::Shipped {
                                                a.c-link href={ "/console/fulfilment/forms?order=" (id) } target="_blank" { "重印" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if orders.is_empty() { (empty_row(7, "还没有发货的订单")) }
                }
            }
        }
    }
}

/// The values of every `orders` field of a form (checkboxes repeat the name).
fn selected(fields: &[(String, String)]) -> Vec<String> {
    fields.iter().filter(|(k, _)| k == "orders").map(|(_, v)| v.clone()).collect()
}

async fn start_batch(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    // 交工作站制证 names its button `at=station`; 批量制证 personalises on the server.
    let at = if fields.iter().any(|(k, v)| k == "at" && v == "station") {
        PersonalisedAt::Station
    } else {
        PersonalisedAt::Server
    };
    match s.app.start_issuance_batch(&staff.member, &selected(&fields), at).await {
        Ok(batch) => Redirect::to(&format!("/console/fulfilment/batches/{}", urlencode(&batch))).into_response(),
        Err(e) if on_page(&e) => {
            let problem = Problem { message: e.to_string(), ..Problem::default() };
            render_desk(&s, &staff, Tab::Approved, false, None, Some((e, problem))).await
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

fn item_state(state: &BatchItemState) -> Markup {
    html! {
        @match state {
            BatchItemState::Queued => { span.c-tag.c-off { "排队中" } }
            BatchItemState::Done => { span.c-tag.c-on { "已制证" } }
            BatchItemState::Failed(why) => { span.c-tag.c-bad { "失败:" (why) } }
            BatchItemState::Skipped => { span.c-tag.c-warn { "已跳过" } }
            BatchItemState::AtStation(name) => { span.c-tag.c-warn { "制证中(" (name) ")" } }
        }
    }
}

fn batch_page(staff: &ConsoleStaff, p: &BatchProgress) -> Markup {
    let (done, total) = (p.finished(), p.items.len());
    let count = |f: fn(&BatchItemState) -> bool| p.items.iter().filter(|(_, s)| f(s)).count();
    let made = count(|s| *s == BatchItemState::Done);
    let failed = count(|s| matches!(s, BatchItemState::Failed(_)));
    let skipped = count(|s| *s == BatchItemState::Skipped);
    let at_station = count(|s| matches!(s, BatchItemState::AtStation(_)));
    html! {
        p { a.c-link href=(Tab::Approved.path()) { "← 返回制证发货" } }
        section.c-card {
            div.c-batch-head {
                div {
                    div.c-muted { "批次号" }
                    code id="batch-id" { (p.id) }
                }
                div {
                    div.c-muted { "发起人" }
                    (p.created_by.trim_start_matches("staff:"))
                }
                div {
                    div.c-muted { "发起时间" }
                    (beijing_time(p.created_at))
                }
            }
            div.c-progress {
                div.c-progress-label {
                    strong id="batch-progress" { "已完成 " (done) " / " (total) }
                    span.c-muted {
                        "已制证 " (made) " · 失败 " (failed) " · 已跳过 " (skipped)
                        @if p.personalised_at == PersonalisedAt::Station { " · 工作站制证中 " (at_station) }
                    }
                }
                progress value=(done) max=(total) aria-label="制证进度" { (done) " / " (total) }
                @if p.is_complete() {
                    p.c-ok role="status" { "本批次已全部处理完毕。" }
                } @else if p.personalised_at == PersonalisedAt::Station {
                    p.c-muted {
                        "此批次由制证工作站领取:插好UKEY后,在工作站运行 "
                        code id="station-command" { "yiqian station run --batch " (p.id) }
                        "。本页每" (REFRESH_SECONDS) "秒自动刷新。"
                    }
                } @else {
                    p.c-muted { "制证在后台逐个进行,本页每" (REFRESH_SECONDS) "秒自动刷新。" }
                }
            }
        }
        section.c-card {
            table.c-table.c-rows id="batch-items" {
                thead { tr { th { "订单号" } th { "状态" } } }
                tbody {
                    @for (order, state) in &p.items {
                        tr data-order=(order.as_str()) {
                            td { code { (order.as_str()) } }
                            td { (item_state(state)) }
                        }
                    }
                }
            }
            @if p.is_complete() {
                div.c-toolbar.c-after {
                    @if made > 0 {
                        form method="post" action="/console/fulfilment/forms" target="_blank" {
                            (csrf_field(&staff.csrf))
                            @for (order, state) in &p.items {
                                @if *state == BatchItemState::Done { input type="hidden" name="orders" value=(order.as_str()); }
                            }
                            button.c-btn.c-primary type="submit" { "打印本批业务确认单" }
                        }
                    }
                    a.c-btn href=(Tab::Issued.path()) { "前往待发货" }
                    @if failed > 0 { span.c-muted { "失败的订单仍在“待制证”中,可重新发起制证。" } }
                }
            }
        }
    }
}

async fn batch(State(s): State<WebState>, staff: ConsoleStaff, Path(id): Path<String>) -> Response {
    let progress = match s.app.batch_progress(&staff.member, &id).await {
        Ok(p) => p,
        Err(e) => return console_error(&s, Some(&staff.member), e),
    };
    let body = batch_page(&staff, &progress);
    console_layout_with_head(&s, &staff.member, "制证批次", NAV, refresh(&progress), body).into_response()
}

/// A running batch's page reloads itself (no script needed); a finished one stays put.
fn refresh(p: &BatchProgress) -> Markup {
    html! { @if !p.is_complete() { meta http-equiv="refresh" content=(REFRESH_SECONDS); } }
}

/// The parcel papers (each order's two confirmation-form copies, then its user guide) as a PDF
/// shown in the browser, named with today's date.
async fn forms_pdf(s: &WebState, staff: &ConsoleStaff, orders: &[String]) -> Result<Response, AppError> {
    let pdf = s.app.confirmation_forms(&staff.member, orders).await?;
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    let date = s.app.now().with_timezone(&beijing).format("%Y%m%d");
    let disposition = format!(
        "inline; filename=\"confirmation-forms-and-guides-{date}.pdf\"; filename*=UTF-8''{}",
        urlencode(&format!("业务确认单及使用说明-{date}.pdf"))
    );
    let headers = [(header::CONTENT_TYPE, "application/pdf".to_owned()), (header::CONTENT_DISPOSITION, disposition)];
    Ok((headers, pdf).into_response())
}

#[derive(Deserialize)]
struct OneOrder {
    #[serde(default)]
    order: String,
}

/// `GET /console/fulfilment/forms?order=…`: one order's papers (the 打印 link of a row). Safe
/// as a link: the session cookie is SameSite=Strict and printing only records the time.
async fn print_one(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<OneOrder>) -> Response {
    match forms_pdf(&s, &staff, &[q.order]).await {
        Ok(r) => r,
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

/// `POST /console/fulfilment/forms`: the papers of every ticked order in one PDF.
async fn print_selected(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    match forms_pdf(&s, &staff, &selected(&fields)).await {
        Ok(r) => r,
        Err(e) if on_page(&e) => {
            let problem = Problem { message: e.to_string(), ..Problem::default() };
            render_desk(&s, &staff, Tab::Issued, false, None, Some((e, problem))).await
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

#[derive(Deserialize)]
struct ShipForm {
    #[serde(default)]
    courier: String,
    #[serde(default)]
    tracking_no: String,
}

async fn ship(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    CsrfForm(f): CsrfForm<ShipForm>,
) -> Response {
    match s.app.ship_order(&staff.member, &order, &f.courier, &f.tracking_no).await {
        Ok(rec) => done(Tab::Issued, "shipped", rec.order.id.as_str()),
        Err(e) if on_page(&e) => {
            let problem = Problem {
                order: OrderId::parse(&order).map(|o| o.to_string()),
                message: e.to_string(),
                courier: f.courier,
                tracking_no: f.tracking_no.trim().to_owned(),
            };
            render_desk(&s, &staff, Tab::Issued, false, None, Some((e, problem))).await
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

/// Books the parcel with the connected courier, which returns the waybill, and ships.
async fn book(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.book_and_ship(&staff.member, &order).await {
        Ok(rec) => done(Tab::Issued, "shipped", rec.order.id.as_str()),
        Err(e) if on_page(&e) => {
            let problem = Problem {
                order: OrderId::parse(&order).map(|o| o.to_string()),
                message: e.to_string(),
                courier: COURIERS[0].to_owned(),
                tracking_no: String::new(),
            };
            render_desk(&s, &staff, Tab::Issued, false, None, Some((e, problem))).await
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

async fn form_returned(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.record_form_returned(&staff.member, &order).await {
        Ok(()) => done(Tab::Shipped, "returned", &order),
        Err(e) if on_page(&e) => {
            let problem = Problem {
                order: OrderId::parse(&order).map(|o| o.to_string()),
                message: e.to_string(),
                ..Problem::default()
            };
            render_desk(&s, &staff, Tab::Shipped, false, None, Some((e, problem))).await
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

fn done(tab: Tab, what: &str, order: &str) -> Response {
    Redirect::to(&format!("{}&ok={what}&order={}", tab.path(), urlencode(order))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_round_trip_and_default_to_approved() {
        for t in Tab::ALL {
            assert_eq!(Tab::from_code(Some(t.code())), t);
        }
        assert_eq!(Tab::from_code(None), Tab::Approved);
        assert_eq!(Tab::from_code(Some("<script>")), Tab::Approved);
    }

    #[test]
    fn a_running_batch_refreshes_every_two_seconds_until_complete() {
        let order = OrderId::parse("YQ20260101000001").expect("an order number");
        let mut p = BatchProgress {
            id: "BT1".into(),
            created_by: "staff:zhang.fa".into(),
            created_at: chrono::Utc::now(),
            items: vec![(order.clone(), BatchItemState::Queued), (order, BatchItemState::Done)],
            personalised_at: PersonalisedAt::Server,
        };
        assert_eq!(refresh(&p).into_string(), r#"<meta http-equiv="refresh" content="2">"#);
        p.items[0].1 = BatchItemState::AtStation("制证室-1".into());
        assert_eq!(refresh(&p).into_string(), r#"<meta http-equiv="refresh" content="2">"#, "a station is at it");
        p.items[0].1 = BatchItemState::Failed("读卡器不可用".into());
        assert_eq!(refresh(&p).into_string(), "");
    }

    #[test]
    fn only_the_orders_fields_are_selected() {
        let fields = vec![
            ("csrf".to_owned(), "t".to_owned()),
            ("orders".to_owned(), "A".to_owned()),
            ("orders".to_owned(), "B".to_owned()),
        ];
        assert_eq!(selected(&fields), ["A", "B"]);
    }
}
