//! Stand-in for the Nuonuo open API (`POST /open/v1/services`) issuing 数电票.
//!
//! Like Nuonuo it takes `senid`, `nonce`, `timestamp` and `appkey` in the query and
//! `X-Nuonuo-Sign`, `accessToken`, `userTax` and `method` as headers, checks the HMAC-SHA1
//! signature over `a=services&l=v1&p=open&k=…&i=…&n=…&t=…&f={body}`, and answers
//! `{"code", "describe", "result"}` with `E0000` on success.
//!
//! `nuonuo.OpeMplatform.requestBillingNew` checks the order (buyer name, `orderNo` of at most
//! 20 characters and unique per seller, the seller's tax number, a 19-digit goods code, a
//! rate, and amounts that add up: excluded + tax = included, the tax within 0.06 yuan of
//! excluded × rate) and returns a 20-digit serial. `nuonuo.OpeMplatform.queryInvoiceResult`
//! (by `serialNos` or `orderNos`) answers status 20 (开票中) the first time an invoice is
//! asked about; the invoice is then issued (status 2, a 20-digit 数电票 number, a PDF at
//! `{base_url}/sim/nuonuo/pdf/{serial}`) or, after [`NuonuoSim::fail_next`], fails (status 22
//! with the scripted `failCause`). When the order named a `callBackUrl`, the stand-in then
//! POSTs Nuonuo's callback form (`operater=callback`, `orderno`, `content`) to it once.
//!
//! Codes: `E9106` 订单编号不能重复 follows Nuonuo; the credential codes (`070101` appkey,
//! `070102` public parameters, `070301` signature, `070302` token, `070303` userTax, `070304`
//! method) and the format codes (`E9101` unreadable body, `E9102` invalid field) are the
//! stand-in's own choices within Nuonuo's ranges.
//!
//! Pages: `GET /sim/nuonuo` lists the invoices; `POST /sim/nuonuo/fail-next` (`reason`)
//! scripts a failure, `POST /sim/nuonuo/settle` (`serial`) ends an issuance without waiting
//! for a query; `GET /sim/nuonuo/pdf/{serial}` serves an issued invoice's PDF.

use crate::Sim;
use crate::accounts::NuonuoAccount;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use yiqian_domain::Fen;
use yiqian_providers::nuonuo::tax::TaxRate;
use yiqian_providers::nuonuo::{METHOD_QUERY_RESULT, METHOD_REQUEST_BILLING, sign};

/// Status 20: issuing.
pub const STATUS_IN_PROGRESS: u16 = 20;
/// Status 2: issued.
pub const STATUS_ISSUED: u16 = 2;
/// Status 22: failed.
pub const STATUS_FAILED: u16 = 22;

/// An invoice the stand-in was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct NuonuoInvoice {
    /// The serial number handed out (`invoiceSerialNum`).
    pub serial: String,
    /// The request's `orderNo`.
    pub order_no: String,
    /// `buyerName`.
    pub buyer_name: String,
    /// `buyerTaxNum`, when sent.
    pub buyer_tax_num: Option<String>,
    /// `naturalPersonFlag`, when sent.
    pub natural_person_flag: Option<String>,
    /// The first line's tax-inclusive amount.
    pub tax_included: Fen,
    /// The first line's tax-exclusive amount.
    pub tax_excluded: Fen,
    /// The first line's tax.
    pub tax: Fen,
    /// The first line's `taxRate` as sent.
    pub tax_rate: String,
    /// `callBackUrl`, when sent.
    pub callback_url: Option<String>,
    /// 20, 2 or 22.
    pub status: u16,
    /// Why it failed (status 22).
    pub fail_cause: Option<String>,
    /// The 20-digit 数电票 number (status 2).
    pub invoice_no: Option<String>,
    /// When it was issued (epoch milliseconds).
    pub invoice_time_ms: Option<i64>,
    /// How many status queries named it.
    pub queries: u32,
    /// How many callbacks were delivered (answered 2xx).
    pub callbacks_delivered: u32,
    /// The whole `order` object as received.
    pub order: Value,
    scripted_failure: Option<String>,
}

struct State_ {
    invoices: Vec<NuonuoInvoice>,
    fail_next: Option<String>,
    sequence: u64,
}

/// The Nuonuo stand-in's state.
pub struct NuonuoSim {
    account: NuonuoAccount,
    base_url: String,
    state: Mutex<State_>,
    http: reqwest::Client,
}

/// A callback to deliver once an issuance ended.
struct Callback {
    serial: String,
    url: String,
    form: String,
}

/// A JSON value as text (numbers too).
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `150.00`, `150.5`, `150` → fen; `None` for anything else (more than two decimals included).
fn parse_yuan(s: &str) -> Option<Fen> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 15 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let cents = format!("{frac:0<2}").parse::<u64>().ok()?;
    Some(Fen(int.parse::<u64>().ok()? * 100 + cents))
}

fn answer(code: &str, describe: &str, result: Value) -> Response {
    let body = json!({ "code": code, "describe": describe, "result": result });
    ([(header::CONTENT_TYPE, "application/json;charset=UTF-8")], body.to_string()).into_response()
}

fn refuse(code: &str, describe: &str) -> Response {
    answer(code, describe, Value::Null)
}

/// A one-page PDF (Helvetica, ASCII) showing `lines`, written by hand: header, catalog,
/// pages, page, font, content stream, cross-reference table with exact offsets, trailer.
pub fn invoice_pdf(lines: &[String]) -> Vec<u8> {
    let escape = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .flat_map(|c| match c {
                '(' | ')' | '\\' => vec!['\\', c],
                _ => vec![c],
            })
            .collect()
    };
    let mut content = String::from("BT\n/F1 16 Tf\n72 770 Td\n20 TL\n");
    for line in lines {
        content.push_str(&format!("({}) Tj T*\n", escape(line)));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        table.push_str(&format!("{offset:010} 00000 n \n"));
    }
    table.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    pdf.extend_from_slice(table.as_bytes());
    pdf
}

impl NuonuoSim {
    /// A stand-in for `account`, reachable at `base_url` (used in the PDF addresses).
    pub fn new(account: &NuonuoAccount, base_url: &str) -> NuonuoSim {
        NuonuoSim {
            account: account.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            state: Mutex::new(State_ {
                invoices: Vec::new(),
                fail_next: None,
                sequence: rand::thread_rng().gen_range(1..1_000_000_000_000),
            }),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// Every invoice requested so far, in request order.
    pub fn invoices(&self) -> Vec<NuonuoInvoice> {
        self.state.lock().expect("nuonuo state").invoices.clone()
    }

    /// Makes the next accepted request end in status 22 with `reason` as `failCause`.
    pub fn fail_next(&self, reason: &str) {
        self.state.lock().expect("nuonuo state").fail_next = Some(reason.to_owned());
    }

    /// Ends the issuance of `serial` now (issued, or failed when scripted) and sends its
    /// callback; false when there is no such invoice in progress.
    pub fn settle(self: &Arc<Self>, serial: &str) -> bool {
        let callback = {
            let mut state = self.state.lock().expect("nuonuo state");
            let State_ { invoices, sequence, .. } = &mut *state;
            match invoices.iter_mut().find(|i| i.serial == serial && i.status == STATUS_IN_PROGRESS) {
                Some(invoice) => self.finish(invoice, sequence),
                None => return false,
            }
        };
        self.deliver(callback);
        true
    }

    /// The PDF address of `serial`.
    fn pdf_url(&self, serial: &str) -> String {
        format!("{}/sim/nuonuo/pdf/{serial}", self.base_url)
    }

    /// Moves an in-progress invoice to its end state; returns the callback to send, if any.
    fn finish(&self, invoice: &mut NuonuoInvoice, sequence: &mut u64) -> Option<Callback> {
        let now = chrono::Utc::now();
        let content = if let Some(cause) = invoice.scripted_failure.take() {
            invoice.status = STATUS_FAILED;
            invoice.fail_cause = Some(cause.clone());
            json!({
                "c_orderno": invoice.order_no,
                "c_fpqqlsh": invoice.serial,
                "c_status": "2",
                "c_resultmsg": cause,
            })
        } else {
            *sequence += 1;
            // 数电票 number: two year digits, two province digits (33), channel 2, 15-digit sequence.
            let number = format!("{}332{:015}", now.format("%y"), *sequence % 1_000_000_000_000_000);
            invoice.status = STATUS_ISSUED;
            invoice.invoice_no = Some(number.clone());
            invoice.invoice_time_ms = Some(now.timestamp_millis());
            json!({
                "c_orderno": invoice.order_no,
                "c_fpqqlsh": invoice.serial,
                "c_status": "1",
                "c_fpdm": "",
                "c_fphm": number,
                "c_kprq": now.timestamp_millis(),
                "c_url": self.pdf_url(&invoice.serial),
                "c_resultmsg": "开票成功",
            })
        };
        let url = invoice.callback_url.clone()?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("operater", "callback")
            .append_pair("orderno", &invoice.order_no)
            .append_pair("content", &content.to_string())
            .finish();
        Some(Callback { serial: invoice.serial.clone(), url, form })
    }

    /// Posts `callback` in the background (once; the outcome is counted on the invoice).
    fn deliver(self: &Arc<Self>, callback: Option<Callback>) {
        let Some(callback) = callback else { return };
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let sent = me
                .http
                .post(&callback.url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
                .body(callback.form)
                .send()
                .await;
            let delivered = sent.is_ok_and(|r| r.status().is_success());
            tracing::debug!(delivered, "nuonuo stand-in sent a callback");
            if delivered {
                let mut state = me.state.lock().expect("nuonuo state");
                if let Some(invoice) = state.invoices.iter_mut().find(|i| i.serial == callback.serial) {
                    invoice.callbacks_delivered += 1;
                }
            }
        });
    }

    /// Checks the public parameters, signature and headers of a call; the method on success,
    /// Nuonuo's code and description otherwise.
    fn authenticate(
        &self,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &str,
    ) -> Result<String, (&'static str, &'static str)> {
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        if param("appkey") != self.account.app_key {
            return Err(("070101", "appKey无效"));
        }
        let (senid, nonce, timestamp) = (param("senid"), param("nonce"), param("timestamp"));
        if senid.len() != 32
            || nonce.len() != 8
            || !nonce.bytes().all(|b| b.is_ascii_digit())
            || timestamp.is_empty()
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(("070102", "公共参数senid、nonce或timestamp有误"));
        }
        let input = sign::sign_input(path, &self.account.app_key, senid, nonce, timestamp, body);
        if !input.is_some_and(|input| sign::verify(&self.account.app_secret, &input, header("X-Nuonuo-Sign"))) {
            return Err(("070301", "签名验证失败"));
        }
        if header("accessToken") != self.account.access_token {
            return Err(("070302", "accessToken无效或已过期"));
        }
        let user_tax = header("userTax");
        if !user_tax.is_empty() && user_tax != self.account.saler_tax_num {
            return Err(("070303", "userTax与授权企业税号不一致"));
        }
        let method = header("method");
        if method != METHOD_REQUEST_BILLING && method != METHOD_QUERY_RESULT {
            return Err(("070304", "method不存在"));
        }
        Ok(method.to_owned())
    }

    fn service(self: &Arc<Self>, path: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Response {
        let Ok(body) = std::str::from_utf8(body) else {
            return refuse("E9101", "报文须为UTF-8编码");
        };
        let method = match self.authenticate(path, query, headers, body) {
            Ok(m) => m,
            Err((code, describe)) => return refuse(code, describe),
        };
        let Ok(request) = serde_json::from_str::<Value>(body) else {
            return refuse("E9101", "报文格式错误");
        };
        if method == METHOD_REQUEST_BILLING { self.request_billing(&request) } else { self.query(&request) }
    }

    fn request_billing(&self, request: &Value) -> Response {
        let Some(order) = request.get("order").filter(|o| o.is_object()) else {
            return refuse("E9102", "order不能为空");
        };
        let line = match Self::check_order(order, &self.account.saler_tax_num) {
            Ok(line) => line,
            Err(describe) => return refuse("E9102", &describe),
        };
        let order_no = text(order.get("orderNo"));
        let mut state = self.state.lock().expect("nuonuo state");
        if state.invoices.iter().any(|i| i.order_no == order_no) {
            return refuse("E9106", "订单编号不能重复");
        }
        let serial = loop {
            let candidate = format!(
                "{}{:08}",
                chrono::Utc::now().format("%y%m%d%H%M%S"),
                rand::thread_rng().gen_range(0..100_000_000u32)
            );
            if !state.invoices.iter().any(|i| i.serial == candidate) {
                break candidate;
            }
        };
        let scripted_failure = state.fail_next.take();
        let nonempty = |k: &str| Some(text(order.get(k))).filter(|v| !v.is_empty());
        state.invoices.push(NuonuoInvoice {
            serial: serial.clone(),
            order_no,
            buyer_name: text(order.get("buyerName")),
            buyer_tax_num: nonempty("buyerTaxNum"),
            natural_person_flag: nonempty("naturalPersonFlag"),
            tax_included: line.included,
            tax_excluded: line.excluded,
            tax: line.tax,
            tax_rate: line.rate,
            callback_url: nonempty("callBackUrl"),
            status: STATUS_IN_PROGRESS,
            fail_cause: None,
            invoice_no: None,
            invoice_time_ms: None,
            queries: 0,
            callbacks_delivered: 0,
            order: order.clone(),
            scripted_failure,
        });
        answer("E0000", "开票提交成功", json!({ "invoiceSerialNum": serial }))
    }

    /// Checks an `order`; the first goods line's amounts on success, Nuonuo-style text otherwise.
    fn check_order(order: &Value, saler_tax_num: &str) -> Result<Line, String> {
        let field = |k: &str| text(order.get(k));
        if field("buyerName").is_empty() {
            return Err("购方名称buyerName不能为空".into());
        }
        let order_no = field("orderNo");
        if order_no.is_empty() || order_no.chars().count() > 20 {
            return Err("订单号orderNo不能为空且长度不能超过20".into());
        }
        if field("salerTaxNum") != saler_tax_num {
            return Err("销方税号salerTaxNum与授权企业不一致".into());
        }
        if chrono::NaiveDateTime::parse_from_str(&field("invoiceDate"), "%Y-%m-%d %H:%M:%S").is_err() {
            return Err("订单时间invoiceDate格式须为yyyy-MM-dd HH:mm:ss".into());
        }
        if field("clerk").is_empty() {
            return Err("开票员clerk不能为空".into());
        }
        if field("invoiceType") != "1" {
            return Err("仅支持蓝票invoiceType=1;数电红票请使用快捷冲红接口".into());
        }
        let line = field("invoiceLine");
        if !["pc", "bs", "es", "ec", "p", "c", "s", "e", "f", "r", "b"].contains(&line.as_str()) {
            return Err("发票种类invoiceLine有误".into());
        }
        let buyer_tax = field("buyerTaxNum");
        if (line == "bs" || field("naturalPersonFlag") == "1") && buyer_tax.is_empty() {
            return Err("购方税号buyerTaxNum不能为空".into());
        }
        if !buyer_tax.is_empty()
            && (!(15..=20).contains(&buyer_tax.len()) || !buyer_tax.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err("购方税号buyerTaxNum格式有误".into());
        }
        match field("pushMode").as_str() {
            "" | "-1" => {}
            "0" if !field("email").is_empty() => {}
            "1" if !field("buyerPhone").is_empty() => {}
            "2" if !field("email").is_empty() && !field("buyerPhone").is_empty() => {}
            _ => return Err("推送方式pushMode与buyerPhone/email不匹配".into()),
        }
        let url = field("callBackUrl");
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err("回调地址callBackUrl有误".into());
        }
        let details = order.get("invoiceDetail").and_then(Value::as_array).filter(|d| !d.is_empty());
        let Some(details) = details else {
            return Err("发票明细invoiceDetail不能为空".into());
        };
        let mut first = None;
        for (i, d) in details.iter().enumerate() {
            let n = i + 1;
            let f = |k: &str| text(d.get(k));
            if f("goodsName").is_empty() {
                return Err(format!("第{n}行商品名称goodsName不能为空"));
            }
            let code = f("goodsCode");
            if code.len() != 19 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("第{n}行税收分类编码goodsCode须为19位数字"));
            }
            let rate = TaxRate::parse(&f("taxRate")).map_err(|_| format!("第{n}行税率taxRate有误"))?;
            if !["0", "1"].contains(&f("withTaxFlag").as_str()) {
                return Err(format!("第{n}行含税标志withTaxFlag有误"));
            }
            let amounts =
                (parse_yuan(&f("taxIncludedAmount")), parse_yuan(&f("taxExcludedAmount")), parse_yuan(&f("tax")));
            let (Some(included), Some(excluded), Some(tax)) = amounts else {
                return Err(format!("第{n}行金额须为两位小数"));
            };
            if excluded.0 + tax.0 != included.0 {
                return Err(format!("第{n}行不含税金额与税额之和不等于含税金额"));
            }
            if rate.tax_on_excluded(excluded).0.abs_diff(tax.0) > 6 {
                return Err(format!("第{n}行税额误差超过0.06元"));
            }
            if f("num") == "1" && f("withTaxFlag") == "1" && parse_yuan(&f("price")) != Some(included) {
                return Err(format!("第{n}行单价与数量之积不等于金额"));
            }
            first.get_or_insert(Line { included, excluded, tax, rate: rate.as_str().to_owned() });
        }
        Ok(first.expect("at least one line"))
    }

    fn entry(&self, i: &NuonuoInvoice) -> Value {
        let issued = i.status == STATUS_ISSUED;
        json!({
            "serialNo": i.serial,
            "orderNo": i.order_no,
            "status": i.status.to_string(),
            "statusMsg": match i.status { STATUS_ISSUED => "开票完成(最终状态)", STATUS_FAILED => "开票失败", _ => "开票中" },
            "failCause": i.fail_cause.clone().unwrap_or_default(),
            "invoiceCode": "",
            "invoiceNo": i.invoice_no.clone().unwrap_or_default(),
            "allElectronicInvoiceNumber": i.invoice_no.clone().unwrap_or_default(),
            "invoiceTime": i.invoice_time_ms,
            "pdfUrl": if issued { self.pdf_url(&i.serial) } else { String::new() },
            "buyerName": i.buyer_name,
            "buyerTaxNum": i.buyer_tax_num.clone().unwrap_or_default(),
            "salerTaxNum": self.account.saler_tax_num,
            "taxIncludedAmount": i.tax_included.yuan(),
            "taxExcludedAmount": i.tax_excluded.yuan(),
        })
    }

    fn query(self: &Arc<Self>, request: &Value) -> Response {
        let list = |k: &str| -> Vec<String> {
            request
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| text(Some(v))).collect())
                .unwrap_or_default()
        };
        let (serials, order_nos) = (list("serialNos"), list("orderNos"));
        if serials.is_empty() == order_nos.is_empty() || serials.len() + order_nos.len() > 50 {
            return refuse("E9102", "serialNos与orderNos须且仅须填写一项,最多50个");
        }
        let mut callbacks = Vec::new();
        let entries: Vec<Value> = {
            let mut state = self.state.lock().expect("nuonuo state");
            let State_ { invoices, sequence, .. } = &mut *state;
            let mut entries = Vec::new();
            for invoice in
                invoices.iter_mut().filter(|i| serials.contains(&i.serial) || order_nos.contains(&i.order_no))
            {
                invoice.queries += 1;
                entries.push(self.entry(invoice));
                // The first query sees 开票中; the issuance ends right after it.
                if invoice.status == STATUS_IN_PROGRESS {
                    callbacks.push(self.finish(invoice, sequence));
                }
            }
            entries
        };
        for callback in callbacks {
            self.deliver(callback);
        }
        answer("E0000", "查询成功", Value::Array(entries))
    }

    fn pdf(&self, serial: &str) -> Option<Vec<u8>> {
        let state = self.state.lock().expect("nuonuo state");
        let i = state.invoices.iter().find(|i| i.serial == serial && i.status == STATUS_ISSUED)?;
        Some(invoice_pdf(&[
            "Electronic invoice (stand-in, not valid for tax)".to_owned(),
            format!("Invoice number: {}", i.invoice_no.as_deref().unwrap_or("")),
            format!("Serial: {}", i.serial),
            format!("Order: {}", i.order_no),
            format!("Amount incl. tax: {}  tax: {}  rate: {}", i.tax_included.yuan(), i.tax.yuan(), i.tax_rate),
        ]))
    }

    fn page(&self) -> Markup {
        let invoices = self.invoices();
        html! {
            (DOCTYPE)
            html lang="zh-CN" {
                head { meta charset="utf-8"; title { "诺诺 stand-in" } }
                body {
                    h1 { "诺诺 stand-in" }
                    p { "销方税号 " code { (self.account.saler_tax_num) } ", " (invoices.len()) " 张" }
                    table {
                        tr { th { "流水号" } th { "订单号" } th { "购方" } th { "价税合计" } th { "状态" } th { "发票号码" } th {} }
                        @for i in &invoices {
                            tr {
                                td { (i.serial) } td { (i.order_no) } td { (i.buyer_name) } td { (i.tax_included.yuan()) }
                                td { (i.status) @if let Some(c) = &i.fail_cause { " " (c) } }
                                td {
                                    @if let Some(n) = &i.invoice_no { a href=(self.pdf_url(&i.serial)) { (n) } }
                                }
                                td {
                                    @if i.status == STATUS_IN_PROGRESS {
                                        form method="post" action="/sim/nuonuo/settle" {
                                            input type="hidden" name="serial" value=(i.serial);
                                            button type="submit" { "完成开票" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action="/sim/nuonuo/fail-next" {
                        input name="reason" value="购方名称与税号不匹配";
                        button type="submit" { "下一张开票失败" }
                    }
                }
            }
        }
    }
}

/// The first goods line's amounts.
struct Line {
    included: Fen,
    excluded: Fen,
    tax: Fen,
    rate: String,
}

async fn service(
    State(sim): State<Sim>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.nuonuo.service(uri.path(), query.as_deref().unwrap_or(""), &headers, &body)
}

async fn pdf(State(sim): State<Sim>, Path(serial): Path<String>) -> Response {
    match sim.nuonuo.pdf(&serial) {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/pdf")], bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "no issued invoice with this serial").into_response(),
    }
}

async fn page(State(sim): State<Sim>) -> Markup {
    sim.nuonuo.page()
}

fn form_field(body: &[u8], name: &str) -> String {
    form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

async fn fail_next(State(sim): State<Sim>, body: Bytes) -> Response {
    let reason = form_field(&body, "reason");
    if reason.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, "reason is required").into_response();
    }
    sim.nuonuo.fail_next(reason.trim());
    Redirect::to("/sim/nuonuo").into_response()
}

async fn settle(State(sim): State<Sim>, body: Bytes) -> Response {
    if sim.nuonuo.settle(&form_field(&body, "serial")) {
        Redirect::to("/sim/nuonuo").into_response()
    } else {
        (StatusCode::NOT_FOUND, "no invoice in progress with this serial").into_response()
    }
}

/// The Nuonuo routes: the API, the PDFs and the stand-in's page and controls.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/open/v1/services", post(service))
        .route("/sim/nuonuo", get(page))
        .route("/sim/nuonuo/pdf/{serial}", get(pdf))
        .route("/sim/nuonuo/fail-next", post(fail_next))
        .route("/sim/nuonuo/settle", post(settle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_strings() {
        assert_eq!(parse_yuan("150.00"), Some(Fen(15000)));
        assert_eq!(parse_yuan("0.01"), Some(Fen(1)));
        assert_eq!(parse_yuan("8.5"), Some(Fen(850)));
        assert_eq!(parse_yuan("12"), Some(Fen(1200)));
        for bad in ["", ".5", "1.", "1.234", "-1.00", "1,00", "abc"] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
    }

    #[test]
    fn pdf_cross_reference_offsets_point_at_objects() {
        let pdf = invoice_pdf(&["Invoice number: 26332000000000000001".to_owned(), "a (b) \\ c".to_owned()]);
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        let at = |needle: &[u8]| pdf.windows(needle.len()).rposition(|w| w == needle).unwrap();
        let tail = std::str::from_utf8(&pdf[at(b"startxref\n")..]).unwrap();
        let startxref: usize = tail.lines().nth(1).unwrap().parse().unwrap();
        let xref = std::str::from_utf8(&pdf[startxref..]).unwrap();
        assert!(xref.starts_with("xref\n0 6\n0000000000 65535 f \n"));
        for (n, line) in xref.lines().skip(3).take(5).enumerate() {
            assert_eq!(line.len(), 19, "entries are 20 bytes with the line end");
            let offset: usize = line[..10].parse().unwrap();
            assert!(pdf[offset..].starts_with(format!("{} 0 obj\n", n + 1).as_bytes()));
        }
        let text = String::from_utf8_lossy(&pdf).into_owned();
        assert!(text.contains("(Invoice number: 26332000000000000001) Tj"));
        assert!(text.contains("(a \\(b\\) \\\\ c) Tj"));
    }
}
