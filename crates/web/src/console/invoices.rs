//! 发票 (`/console/invoices`, finance): the invoices applicants asked for, oldest request
//! first (待开票), each with a form to upload the e-invoice made in the tax system — its number
//! and PDF — and the invoices already issued (已开票) with their PDFs to download.

use super::{ConsoleStaff, beijing_time, check_csrf, console_error, console_layout, csrf_field, csrf_refused};
use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;
use yiqian_app::AppError;
use yiqian_domain::OrderId;
use yiqian_domain::invoice::{InvoiceBuyer, InvoiceState};
use yiqian_domain::money::Fen;
use yiqian_store::fulfilment::InvoiceRecord;

const NAV: &str = "/console/invoices";
/// Invoices per list.
const LIST_LIMIT: i64 = 200;

/// Routes of the invoice desk.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/console/invoices", get(list))
        .route(
            "/console/invoices/{order}/issue",
            post(issue)
                .layer(crate::limits::upload(yiqian_app::invoices::MAX_INVOICE_PDF + crate::limits::FORM_OVERHEAD)),
        )
        .route("/console/invoices/{file}", get(download))
}

/// The two tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Requested,
    Issued,
}

impl Tab {
    const ALL: [Tab; 2] = [Tab::Requested, Tab::Issued];

    fn from_code(code: Option<&str>) -> Tab {
        if code == Some("issued") { Tab::Issued } else { Tab::Requested }
    }

    fn state(self) -> InvoiceState {
        match self {
            Tab::Requested => InvoiceState::Requested,
            Tab::Issued => InvoiceState::Issued,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Tab::Requested => "待开票",
            Tab::Issued => "已开票",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Tab::Requested => "/console/invoices?tab=requested",
            Tab::Issued => "/console/invoices?tab=issued",
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    tab: Option<String>,
    ok: Option<String>,
    order: Option<String>,
}

/// A refused upload: the order, why, and the number typed (shown again).
struct Problem {
    order: Option<String>,
    message: String,
    invoice_no: String,
}

async fn list(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<ListQuery>) -> Response {
    // Only an order number (by its shape) is repeated back: the query can be made up by anyone.
    let notice = match (q.ok.as_deref(), q.order.as_deref().and_then(OrderId::parse)) {
        (Some("issued"), Some(o)) => Some(format!("订单 {o} 的电子发票已开具,已短信通知申请人下载。")),
        _ => None,
    };
    render(&s, &staff, Tab::from_code(q.tab.as_deref()), notice, None).await
}

async fn render(
    s: &WebState,
    staff: &ConsoleStaff,
    tab: Tab,
    notice: Option<String>,
    problem: Option<(StatusCode, Problem)>,
) -> Response {
    let invoices = match s.app.invoice_queue(&staff.member, tab.state(), LIST_LIMIT).await {
        Ok(i) => i,
        Err(e) => return console_error(s, Some(&staff.member), e),
    };
    let status = problem.as_ref().map(|(status, _)| *status).unwrap_or_default();
    let problem = problem.map(|(_, p)| p);
    let body = html! {
        nav.c-tabs {
            @for t in Tab::ALL { a.c-tab.active[t == tab] href=(t.path()) { (t.title()) } }
        }
        @if let Some(n) = notice { p.c-ok role="status" { (n) } }
        @if let Some(p) = &problem {
            p.c-error role="alert" id="invoice-error" {
                @if let Some(o) = &p.order { "订单 " (o) ":" }
                (p.message)
            }
        }
        section.c-card {
            @match tab {
                Tab::Requested => { (requested_table(staff, &invoices, problem.as_ref())) }
                Tab::Issued => { (issued_table(&invoices)) }
            }
        }
    };
    (status, console_layout(s, &staff.member, "发票", NAV, body)).into_response()
}

fn buyer_cells(i: &InvoiceRecord) -> Markup {
    html! {
        td { (i.request.buyer.kind_word()) }
        td.c-buyer {
            (i.request.buyer.name())
            @if let Some(email) = &i.request.email { div.c-muted { "邮箱:" (email) } }
        }
        td {
            @match &i.request.buyer {
                InvoiceBuyer::Company { tax_id, .. } => { code { (tax_id.as_str()) } }
                InvoiceBuyer::Personal { .. } => { span.c-muted { "-" } }
            }
        }
    }
}

/// An e-invoicing service's name as finance knows it.
fn provider_name(provider: &str) -> &str {
    match provider {
        "nuonuo" => "诺诺",
        other => other,
    }
}

fn amount(i: &InvoiceRecord) -> String {
    Fen(i.amount_fen.max(0) as u64).yuan()
}

fn requested_table(staff: &ConsoleStaff, invoices: &[InvoiceRecord], problem: Option<&Problem>) -> Markup {
    html! {
        p.c-muted { "申请时间最早的在前。已接入电子发票服务时,发票自动开具;开具失败或未接入时,请在税务系统开具后填写发票号码并上传发票PDF(不超过5MB)。" }
        table.c-table.c-rows id="requested-invoices" {
            thead {
                tr {
                    th { "订单号" } th { "抬头类型" } th { "抬头" } th { "纳税人识别号" } th.c-num { "金额(元)" } th { "申请时间" } th { "开具" }
                }
            }
            tbody {
                @for i in invoices {
                    @let id = i.order.as_str();
                    @let mine = problem.filter(|p| p.order.as_deref() == Some(id));
                    tr.c-row-error[mine.is_some()] data-order=(id) {
                        td { code { (id) } }
                        (buyer_cells(i))
                        td.c-num { (amount(i)) }
                        td.c-nowrap { (beijing_time(i.requested_at)) }
                        td {
                            @if let Some(reason) = &i.failure {
                                p.c-error.c-invoice-failure { "自动开具失败:" (reason) }
                            } @else if let Some((provider, _)) = &i.submitted {
                                p.c-muted.c-invoice-pending { "已提交" (provider_name(provider)) ",开具中" }
                            }
                            form.c-upload method="post" action={ "/console/invoices/" (id) "/issue" } enctype="multipart/form-data" {
                                (csrf_field(&staff.csrf))
                                input type="text" name="invoice_no" value=(mine.map(|p| p.invoice_no.as_str()).unwrap_or(""))
                                    placeholder="发票号码" aria-label="发票号码" required minlength="8" maxlength="30"
                                    pattern="[A-Za-z0-9]{8,30}" autocomplete="off" spellcheck="false";
                                div {
                                    input type="file" name="pdf" accept="application/pdf,.pdf" aria-label="发票PDF文件" required;
                                    button.c-btn.c-small.c-primary type="submit" { "上传并开具" }
                                }
                            }
                        }
                    }
                }
                @if invoices.is_empty() { tr { td.c-empty colspan="7" { "没有待开具的发票" } } }
            }
        }
    }
}

fn issued_table(invoices: &[InvoiceRecord]) -> Markup {
    html! {
        table.c-table.c-rows id="issued-invoices" {
            thead {
                tr {
                    th { "订单号" } th { "抬头类型" } th { "抬头" } th { "纳税人识别号" } th.c-num { "金额(元)" }
                    th { "发票号码" } th { "开具时间" } th { "开具人" } th { "发票文件" }
                }
            }
            tbody {
                @for i in invoices {
                    @let id = i.order.as_str();
                    tr data-order=(id) {
                        td { code { (id) } }
                        (buyer_cells(i))
                        td.c-num { (amount(i)) }
                        td { code { (i.invoice_no.as_deref().unwrap_or("-")) } }
                        td.c-nowrap { @if let Some((t, _)) = &i.issued { (beijing_time(*t)) } }
                        td { @if let Some((_, by)) = &i.issued { (by.trim_start_matches("staff:")) } }
                        td { a.c-link href={ "/console/invoices/" (id) ".pdf" } { "下载" } }
                    }
                }
                @if invoices.is_empty() { tr { td.c-empty colspan="9" { "还没有已开具的发票" } } }
            }
        }
    }
}

/// Reads a multipart form into its fields; `None` when the upload broke off or was too large.
async fn read_fields(mut multipart: Multipart) -> Result<HashMap<String, Vec<u8>>, &'static str> {
    let mut fields = HashMap::new();
    let too_large = |status: StatusCode| status == StatusCode::PAYLOAD_TOO_LARGE;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(fields),
            Err(e) if too_large(e.status()) => return Err("发票文件过大,不能超过5MB"),
            Err(_) => return Err("上传中断,请重试"),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|e| match too_large(e.status()) {
            true => "发票文件过大,不能超过5MB",
            false => "上传中断,请重试",
        })?;
        fields.insert(name, bytes.to_vec());
    }
}

/// `POST /console/invoices/{order}/issue` (multipart: `csrf`, `invoice_no`, `pdf`).
async fn issue(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(order): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    // Not a multipart form: not one of ours.
    let Ok(multipart) = multipart else { return csrf_refused() };
    let fields = read_fields(multipart).await;
    let text = |fields: &HashMap<String, Vec<u8>>, name: &str| {
        fields.get(name).map(|v| String::from_utf8_lossy(v).trim().to_owned()).unwrap_or_default()
    };
    let result = match &fields {
        Ok(f) => {
            if let Err(refused) = check_csrf(&staff, &text(f, "csrf")) {
                return refused;
            }
            match f.get("pdf").filter(|b| !b.is_empty()) {
                None => Err(AppError::invalid("invalid_upload", "请选择电子发票PDF文件")),
                Some(pdf) => s.app.issue_invoice(&staff.member, &order, &text(f, "invoice_no"), pdf).await,
            }
        }
        // A broken upload may have lost the token too; nothing was done either way.
        Err(message) => Err(AppError::invalid("invalid_upload", *message)),
    };
    match result {
        Ok(invoice) => {
            let to = format!("{}&ok=issued&order={}", Tab::Requested.path(), urlencode(invoice.order.as_str()));
            Redirect::to(&to).into_response()
        }
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::NotFound(_))) => {
            let problem = Problem {
                order: OrderId::parse(&order).map(|o| o.to_string()),
                message: e.to_string(),
                invoice_no: fields.as_ref().map(|f| text(f, "invoice_no")).unwrap_or_default(),
            };
            render(&s, &staff, Tab::Requested, None, Some((status_of(&e), problem))).await
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

/// `GET /console/invoices/{order}.pdf`: an issued invoice.
async fn download(State(s): State<WebState>, staff: ConsoleStaff, Path(file): Path<String>) -> Response {
    let Some(order) = file.strip_suffix(".pdf").and_then(OrderId::parse) else {
        return console_error(&s, Some(&staff.member), AppError::NotFound("发票"));
    };
    match s.app.staff_invoice_pdf(&staff.member, order.as_str()).await {
        Ok(pdf) => {
            // A parsed order number: letters and digits only, nothing to escape.
            let disposition = format!("attachment; filename=\"invoice-{order}.pdf\"");
            let headers = [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CONTENT_LENGTH, pdf.size().to_string()),
            ];
            (headers, crate::download::whole_body(pdf)).into_response()
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}
