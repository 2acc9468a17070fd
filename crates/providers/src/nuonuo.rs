//! Nuonuo (诺诺 / 诺税通 SaaS) e-invoicing: the signed open API and the [`InvoiceIssuer`] on it.
//!
//! Every call is a JSON POST to `…/open/v1/services?senid=…&nonce=…&timestamp=…&appkey=…`
//! with the headers `X-Nuonuo-Sign` ([`sign`]), `accessToken`, `userTax` and `method`. The
//! answer is `{"code", "describe", "result"}`, `code` `E0000` on success.
//!
//! Issuance is asynchronous: `nuonuo.OpeMplatform.requestBillingNew` returns a serial number,
//! `nuonuo.OpeMplatform.queryInvoiceResult` tells where it stands, and Nuonuo may also push a
//! callback ([`callback::parse_callback`]) that is only a hint to query. Asking twice with
//! the same order number issues nothing new: Nuonuo refuses the repeated `orderNo`, and the
//! adapter looks the first request up by order number.
//!
//! Amounts are integer fen; the tax split is [`tax::TaxRate::split`]. Nothing personal is
//! logged: only API method names, Nuonuo's codes and our order numbers.

pub mod callback;
pub mod sign;
pub mod tax;

use crate::invoice::{InvoiceIssuer, InvoiceRequest, InvoiceStatus};
use crate::sf::redact;
use crate::{ConfigError, ProviderError, check_base_url, http_client};
use async_trait::async_trait;
use rand::Rng;
use serde_json::{Map, Value, json};
use tax::TaxRate;
use yiqian_domain::invoice::InvoiceBuyer;

/// The provider name used in errors and configuration.
pub const PROVIDER: &str = "nuonuo";
/// The production service URL.
pub const DEFAULT_BASE_URL: &str = "https://sdk.nuonuo.com/open/v1/services";
/// The sandbox service URL.
pub const SANDBOX_BASE_URL: &str = "https://sandbox.nuonuocs.cn/open/v1/services";
/// Issue an invoice (开票接口 2.0).
pub const METHOD_REQUEST_BILLING: &str = "nuonuo.OpeMplatform.requestBillingNew";
/// Query issuance results by serial or order numbers.
pub const METHOD_QUERY_RESULT: &str = "nuonuo.OpeMplatform.queryInvoiceResult";
/// The success code.
pub const CODE_OK: &str = "E0000";
/// The refusal of an order number used before (订单编号不能重复).
pub const CODE_DUPLICATE_ORDER: &str = "E9106";
/// The largest PDF accepted (bytes).
pub const MAX_PDF_BYTES: usize = 20 * 1024 * 1024;

/// How to reach Nuonuo and what to put on the invoice.
#[derive(Clone, PartialEq, Eq)]
pub struct NuonuoConfig {
    /// The full service URL (default [`DEFAULT_BASE_URL`]); its last three path segments
    /// enter the signature.
    pub base_url: String,
    /// appKey.
    pub app_key: String,
    /// appSecret; secret.
    pub app_secret: String,
    /// The seller's access token (授权码); secret.
    pub access_token: String,
    /// The seller's tax number (also the `userTax` header).
    pub saler_tax_num: String,
    /// The seller's phone on the invoice (optional, may be empty).
    pub saler_tel: String,
    /// The seller's address on the invoice (optional, may be empty).
    pub saler_address: String,
    /// 开票员: for 数电票 the name bound to the e-tax login.
    pub clerk: String,
    /// The 19-digit tax classification code (税收分类编码) of the goods line.
    pub goods_code: String,
    /// The goods name used when a request names none (default `数字证书`).
    pub goods_name: String,
    /// The VAT rate, e.g. `0.06`.
    pub tax_rate: TaxRate,
    /// `invoiceLine` (default `pc`, 数电普票).
    pub invoice_line: String,
    /// Where Nuonuo pushes results (`callBackUrl`), if anywhere.
    pub callback_url: Option<String>,
}

impl std::fmt::Debug for NuonuoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NuonuoConfig")
            .field("base_url", &self.base_url)
            .field("app_key", &self.app_key)
            .field("app_secret", &"<hidden>")
            .field("access_token", &"<hidden>")
            .field("saler_tax_num", &self.saler_tax_num)
            .field("goods_code", &self.goods_code)
            .field("goods_name", &self.goods_name)
            .field("tax_rate", &self.tax_rate.as_str())
            .field("invoice_line", &self.invoice_line)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

/// The `invoiceLine` values Nuonuo knows (数电 `pc`/`bs`/`es`/`ec` and the legacy ones).
const INVOICE_LINES: [&str; 11] = ["pc", "bs", "es", "ec", "p", "c", "s", "e", "f", "r", "b"];

fn text_field(field: &'static str, value: &str, max_chars: usize, required: bool) -> Result<(), ConfigError> {
    if required && value.trim().is_empty() {
        return Err(ConfigError::new(PROVIDER, field, "must not be empty"));
    }
    if value.chars().count() > max_chars || value.chars().any(char::is_control) {
        return Err(ConfigError::new(PROVIDER, field, format!("must be at most {max_chars} printable characters")));
    }
    Ok(())
}

impl NuonuoConfig {
    /// A configuration for the production URL, goods name `数字证书`, invoice line `pc`, no
    /// seller phone or address and no callback; checks every field.
    pub fn new(
        app_key: impl Into<String>,
        app_secret: impl Into<String>,
        access_token: impl Into<String>,
        saler_tax_num: impl Into<String>,
        clerk: impl Into<String>,
        goods_code: impl Into<String>,
        tax_rate: &str,
    ) -> Result<NuonuoConfig, ConfigError> {
        let config = NuonuoConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            access_token: access_token.into(),
            saler_tax_num: saler_tax_num.into(),
            saler_tel: String::new(),
            saler_address: String::new(),
            clerk: clerk.into(),
            goods_code: goods_code.into(),
            goods_name: "数字证书".to_owned(),
            tax_rate: TaxRate::parse(tax_rate).map_err(|e| ConfigError::new(PROVIDER, "tax_rate", e.to_string()))?,
            invoice_line: "pc".to_owned(),
            callback_url: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// The same configuration at another service URL (the sandbox or a local stand-in).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Result<NuonuoConfig, ConfigError> {
        self.base_url = base_url.into();
        self.validate()?;
        Ok(self)
    }

    /// The same configuration with Nuonuo pushing results to `url`.
    pub fn with_callback_url(mut self, url: impl Into<String>) -> Result<NuonuoConfig, ConfigError> {
        self.callback_url = Some(url.into());
        self.validate()?;
        Ok(self)
    }

    /// Checks every field (for configurations built field by field).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_base_url(PROVIDER, "base_url", &self.base_url)?;
        let url = reqwest::Url::parse(&self.base_url).expect("checked above");
        if sign::sign_input(url.path(), "", "", "", "", "").is_none() {
            return Err(ConfigError::new(PROVIDER, "base_url", "the path must end like /open/v1/services"));
        }
        text_field("app_key", &self.app_key, 64, true)?;
        if !self.app_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(PROVIDER, "app_key", "must be ASCII letters and digits"));
        }
        text_field("app_secret", &self.app_secret, 128, true)?;
        text_field("access_token", &self.access_token, 256, true)?;
        if !(15..=20).contains(&self.saler_tax_num.len())
            || !self.saler_tax_num.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(ConfigError::new(PROVIDER, "saler_tax_num", "must be 15 to 20 digits or capital letters"));
        }
        text_field("saler_tel", &self.saler_tel, 20, false)?;
        text_field("saler_address", &self.saler_address, 80, false)?;
        text_field("clerk", &self.clerk, 20, true)?;
        if self.goods_code.len() != 19 || !self.goods_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(PROVIDER, "goods_code", "must be the 19-digit tax classification code"));
        }
        text_field("goods_name", &self.goods_name, 90, true)?;
        if !INVOICE_LINES.contains(&self.invoice_line.as_str()) {
            return Err(ConfigError::new(
                PROVIDER,
                "invoice_line",
                format!("must be one of {}", INVOICE_LINES.join(", ")),
            ));
        }
        if let Some(url) = &self.callback_url {
            check_base_url(PROVIDER, "callback_url", url)?;
        }
        Ok(())
    }
}

/// The Nuonuo adapter.
pub struct NuonuoIssuer {
    config: NuonuoConfig,
    path: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for NuonuoIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NuonuoIssuer").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why a call did not return a result.
enum CallError {
    /// Nuonuo answered with a code other than `E0000`.
    Vendor { method: &'static str, code: String, describe: String },
    /// Transport, HTTP or format failure.
    Provider(ProviderError),
}

impl From<ProviderError> for CallError {
    fn from(e: ProviderError) -> CallError {
        CallError::Provider(e)
    }
}

impl From<CallError> for ProviderError {
    fn from(e: CallError) -> ProviderError {
        match e {
            CallError::Provider(e) => e,
            CallError::Vendor { method, code, describe } => {
                let detail = format!("{method}: {code} {}", redact(&describe));
                if code.starts_with("0701") || code.starts_with("0703") {
                    rejected(format!("{detail} (credentials or signature refused)"))
                } else if describe.contains("繁忙") || describe.contains("超时") || describe.contains("系统异常")
                {
                    transient(detail)
                } else {
                    rejected(detail)
                }
            }
        }
    }
}

fn rejected(detail: impl Into<String>) -> ProviderError {
    ProviderError::Rejected { provider: PROVIDER, detail: detail.into() }
}

fn transient(detail: impl Into<String>) -> ProviderError {
    ProviderError::Transient { provider: PROVIDER, detail: detail.into() }
}

/// A JSON value as text (Nuonuo sends some numbers as strings and some as numbers).
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `invoiceTime` as `YYYY-MM-DD HH:MM:SS` Beijing time: Nuonuo sends epoch milliseconds
/// (number or digit string); any other text is kept as it is.
fn invoice_time(value: Option<&Value>) -> String {
    let raw = text(value);
    let Ok(ms) = raw.parse::<i64>() else {
        return raw;
    };
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.with_timezone(&beijing).format("%Y-%m-%d %H:%M:%S").to_string(),
        None => raw,
    }
}

/// One entry of a `queryInvoiceResult` answer as an [`InvoiceStatus`].
fn status_of(entry: &Value) -> Result<InvoiceStatus, ProviderError> {
    let status = text(entry.get("status"));
    match status.as_str() {
        "2" => {
            let full = text(entry.get("allElectronicInvoiceNumber"));
            let number = if full.is_empty() { text(entry.get("invoiceNo")) } else { full };
            let pdf_url = text(entry.get("pdfUrl"));
            if number.is_empty() || pdf_url.is_empty() {
                return Err(transient("issued, but the number or the PDF address is not there yet"));
            }
            Ok(InvoiceStatus::Issued { number, issued_at: invoice_time(entry.get("invoiceTime")), pdf_url })
        }
        "20" | "21" => Ok(InvoiceStatus::InProgress),
        "22" | "24" => {
            let cause = [text(entry.get("failCause")), text(entry.get("statusMsg"))]
                .into_iter()
                .find(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "开票失败".to_owned());
            Ok(InvoiceStatus::Failed { reason: redact(&cause) })
        }
        "3" | "31" => Ok(InvoiceStatus::Failed { reason: "作废".to_owned() }),
        other => {
            tracing::warn!(status = other, "Nuonuo reported an unknown invoice status");
            Err(transient(format!("unknown invoice status {other:?}")))
        }
    }
}

fn check_request(request: &InvoiceRequest) -> Result<(), ProviderError> {
    let no = &request.order_no;
    if no.is_empty() || no.len() > 20 || !no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(rejected("the order number must be 1 to 20 ASCII letters, digits, '-' or '_'"));
    }
    if request.amount.0 == 0 {
        return Err(rejected("the amount must be positive"));
    }
    if chrono::NaiveDateTime::parse_from_str(&request.invoice_date, "%Y-%m-%d %H:%M:%S").is_err() {
        return Err(rejected("the invoice date must be YYYY-MM-DD HH:MM:SS"));
    }
    if request.buyer.name().trim().is_empty() {
        return Err(rejected("the buyer has no name"));
    }
    Ok(())
}

impl NuonuoIssuer {
    /// An adapter for `config` (checked again here).
    pub fn new(config: NuonuoConfig) -> Result<NuonuoIssuer, ConfigError> {
        config.validate()?;
        let path = reqwest::Url::parse(&config.base_url).expect("validated").path().to_owned();
        Ok(NuonuoIssuer { config, path, http: http_client() })
    }

    /// Calls `method` with the JSON `body` and returns its `result`.
    async fn call(&self, method: &'static str, body: &str) -> Result<Value, CallError> {
        let c = &self.config;
        let senid = hex::encode(rand::random::<[u8; 16]>());
        let nonce = rand::thread_rng().gen_range(10_000_000u32..=99_999_999).to_string();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let input = sign::sign_input(&self.path, &c.app_key, &senid, &nonce, &timestamp, body)
            .expect("the path was checked at construction");
        let signature = sign::sign(&c.app_secret, &input);
        let response = self
            .http
            .post(&c.base_url)
            .query(&[("senid", &senid), ("nonce", &nonce), ("timestamp", &timestamp), ("appkey", &c.app_key)])
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Nuonuo-Sign", signature)
            .header("accessToken", &c.access_token)
            .header("userTax", &c.saler_tax_num)
            .header("method", method)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| ProviderError::transport(PROVIDER, e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(method, status = status.as_u16(), "Nuonuo answered with an HTTP error");
            let detail = format!("{method}: HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                transient(detail)
            } else {
                rejected(detail)
            }
            .into());
        }
        let text_body = response.text().await.map_err(|e| ProviderError::transport(PROVIDER, e.without_url()))?;
        let answer: Value =
            serde_json::from_str(&text_body).map_err(|e| transient(format!("{method}: unreadable answer: {e}")))?;
        let code = text(answer.get("code"));
        if code != CODE_OK {
            tracing::warn!(method, code = %code, "Nuonuo refused the call");
            return Err(CallError::Vendor { method, code, describe: text(answer.get("describe")) });
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    /// The `queryInvoiceResult` entries for serial or order numbers.
    async fn query(&self, key: &str, value: &str) -> Result<Vec<Value>, ProviderError> {
        let body = json!({ key: [value], "isOfferInvoiceDetail": "0" }).to_string();
        match self.call(METHOD_QUERY_RESULT, &body).await? {
            Value::Array(entries) => Ok(entries),
            Value::Null => Ok(Vec::new()),
            _ => Err(transient(format!("{METHOD_QUERY_RESULT}: the result is not a list"))),
        }
    }

    /// The `requestBillingNew` body for `request`.
    fn billing_body(&self, request: &InvoiceRequest) -> String {
        let c = &self.config;
        let split = c.tax_rate.split(request.amount);
        let goods_name =
            if request.goods_name.trim().is_empty() { c.goods_name.as_str() } else { request.goods_name.trim() };
        let mut order = Map::new();
        order.insert("buyerName".into(), request.buyer.name().trim().into());
        match &request.buyer {
            InvoiceBuyer::Company { tax_id, .. } => {
                order.insert("buyerTaxNum".into(), tax_id.as_str().into());
            }
            InvoiceBuyer::Personal { .. } => {
                order.insert("naturalPersonFlag".into(), "0".into());
            }
        }
        order.insert("salerTaxNum".into(), c.saler_tax_num.as_str().into());
        order.insert("salerTel".into(), c.saler_tel.as_str().into());
        order.insert("salerAddress".into(), c.saler_address.as_str().into());
        order.insert("orderNo".into(), request.order_no.as_str().into());
        order.insert("invoiceDate".into(), request.invoice_date.as_str().into());
        order.insert("clerk".into(), c.clerk.as_str().into());
        order.insert("invoiceType".into(), "1".into());
        order.insert("invoiceLine".into(), c.invoice_line.as_str().into());
        // Nuonuo delivers nothing itself (pushMode -1), so the buyer's phone is not sent.
        order.insert("pushMode".into(), "-1".into());
        if let Some(url) = &c.callback_url {
            order.insert("callBackUrl".into(), url.as_str().into());
        }
        order.insert(
            "invoiceDetail".into(),
            json!([{
                "goodsName": goods_name,
                "goodsCode": c.goods_code,
                "withTaxFlag": "1",
                "price": request.amount.yuan(),
                "num": "1",
                "taxRate": c.tax_rate.as_str(),
                "taxExcludedAmount": split.excluded.yuan(),
                "tax": split.tax.yuan(),
                "taxIncludedAmount": request.amount.yuan(),
                "invoiceLineProperty": "0",
            }]),
        );
        json!({ "order": order }).to_string()
    }
}

#[async_trait]
impl InvoiceIssuer for NuonuoIssuer {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn request_invoice(&self, request: &InvoiceRequest) -> Result<String, ProviderError> {
        check_request(request)?;
        let order_no = request.order_no.as_str();
        match self.call(METHOD_REQUEST_BILLING, &self.billing_body(request)).await {
            Ok(result) => {
                let serial = text(result.get("invoiceSerialNum"));
                if serial.is_empty() {
                    return Err(transient(format!("{METHOD_REQUEST_BILLING}: the answer has no invoiceSerialNum")));
                }
                tracing::info!(order = order_no, "Nuonuo accepted the invoice request");
                Ok(serial)
            }
            Err(CallError::Vendor { code, describe, .. })
                if code == CODE_DUPLICATE_ORDER || (describe.contains("订单") && describe.contains("重复")) =>
            {
                tracing::info!(order = order_no, code = %code, "Nuonuo knows the order number; looking its invoice up");
                let entries = self.query("orderNos", order_no).await?;
                entries
                    .iter()
                    .find(|e| text(e.get("orderNo")) == order_no || entries.len() == 1)
                    .map(|e| text(e.get("serialNo")))
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| rejected("the order number was used, but no invoice is found for it"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn invoice_status(&self, serial: &str) -> Result<InvoiceStatus, ProviderError> {
        if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(rejected("malformed invoice serial number"));
        }
        let entries = self.query("serialNos", serial).await?;
        let entry = entries
            .iter()
            .find(|e| text(e.get("serialNo")) == serial)
            .ok_or_else(|| rejected("Nuonuo does not know the invoice serial number"))?;
        status_of(entry)
    }

    async fn fetch_pdf(&self, pdf_url: &str) -> Result<Vec<u8>, ProviderError> {
        let url = reqwest::Url::parse(pdf_url).map_err(|_| rejected("the PDF address is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(rejected("the PDF address is not an http(s) URL"));
        }
        let response =
            self.http.get(url).send().await.map_err(|e| ProviderError::transport(PROVIDER, e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            let detail = format!("PDF download: HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                transient(detail)
            } else {
                rejected(detail)
            });
        }
        if response.content_length().is_some_and(|n| n > MAX_PDF_BYTES as u64) {
            return Err(rejected("the PDF is too large"));
        }
        let bytes = response.bytes().await.map_err(|e| ProviderError::transport(PROVIDER, e.without_url()))?;
        if bytes.len() > MAX_PDF_BYTES {
            return Err(rejected("the PDF is too large"));
        }
        if !bytes.starts_with(b"%PDF-") {
            return Err(rejected("the download is not a PDF"));
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yiqian_domain::Fen;
    use yiqian_domain::identity::SocialCreditCode;

    fn config() -> NuonuoConfig {
        NuonuoConfig::new(
            "SD63236305",
            "SDDED2523BED4643",
            "token-secret-value",
            "339902999999789113",
            "开票员",
            "3040201990000000000",
            "0.06",
        )
        .unwrap()
    }

    fn request(buyer: InvoiceBuyer) -> InvoiceRequest {
        InvoiceRequest {
            order_no: "YQ20260101ABC".into(),
            buyer,
            buyer_phone: None,
            amount: Fen(15000),
            goods_name: "个人数字证书".into(),
            invoice_date: "2026-01-01 10:00:00".into(),
        }
    }

    #[test]
    fn config_is_checked_and_hides_secrets() {
        let c = config();
        let debug = format!("{c:?}");
        assert!(!debug.contains("SDDED2523BED4643") && !debug.contains("token-secret-value"), "{debug}");
        let err = |r: Result<NuonuoConfig, ConfigError>| r.unwrap_err().field;
        assert_eq!(err(NuonuoConfig::new("K", "s", "t", "339902999999789113", "c", "304020199", "0.06")), "goods_code");
        assert_eq!(
            err(NuonuoConfig::new("K", "s", "t", "339902999999789113", "c", "3040201990000000000", "6%")),
            "tax_rate"
        );
        assert_eq!(
            err(NuonuoConfig::new("K", "", "t", "339902999999789113", "c", "3040201990000000000", "0")),
            "app_secret"
        );
        assert_eq!(err(NuonuoConfig::new("K", "s", "t", "x", "c", "3040201990000000000", "0")), "saler_tax_num");
        assert_eq!(
            err(NuonuoConfig::new("K", "s", "t", "339902999999789113", "", "3040201990000000000", "0")),
            "clerk"
        );
        assert_eq!(err(config().with_base_url("http://127.0.0.1:1/services")), "base_url");
        assert_eq!(err(config().with_callback_url("not a url")), "callback_url");
        let mut bad = config();
        bad.invoice_line = "zz".into();
        assert_eq!(bad.validate().unwrap_err().field, "invoice_line");
        assert!(config().with_base_url("http://127.0.0.1:1/open/v1/services").is_ok());
    }

    #[test]
    fn company_and_personal_bodies() {
        let issuer = NuonuoIssuer::new(config().with_callback_url("https://example.cn/nn").unwrap()).unwrap();
        let company = InvoiceBuyer::Company {
            name: "宜签科技有限公司".into(),
            tax_id: SocialCreditCode::parse("91350100M000100Y43").unwrap(),
        };
        let body: Value = serde_json::from_str(&issuer.billing_body(&request(company))).unwrap();
        let order = &body["order"];
        assert_eq!(order["buyerTaxNum"], "91350100M000100Y43");
        assert!(order.get("naturalPersonFlag").is_none());
        assert_eq!(order["pushMode"], "-1");
        assert_eq!(order["invoiceType"], "1");
        assert_eq!(order["invoiceLine"], "pc");
        assert_eq!(order["callBackUrl"], "https://example.cn/nn");
        let line = &order["invoiceDetail"][0];
        assert_eq!(line["withTaxFlag"], "1");
        assert_eq!(line["price"], "150.00");
        assert_eq!(line["taxIncludedAmount"], "150.00");
        assert_eq!(line["taxExcludedAmount"], "141.51");
        assert_eq!(line["tax"], "8.49");
        assert_eq!(line["taxRate"], "0.06");
        assert_eq!(line["goodsName"], "个人数字证书");

        let body: Value =
            serde_json::from_str(&issuer.billing_body(&request(InvoiceBuyer::Personal { name: "张三".into() })))
                .unwrap();
        assert!(body["order"].get("buyerTaxNum").is_none());
        assert_eq!(body["order"]["naturalPersonFlag"], "0");
        assert_eq!(body["order"]["buyerName"], "张三");
    }

    #[test]
    fn requests_are_checked_before_sending() {
        let mut r = request(InvoiceBuyer::Personal { name: "张三".into() });
        assert!(check_request(&r).is_ok());
        r.order_no = "X".repeat(21);
        assert!(check_request(&r).is_err());
        r.order_no = "YQ1".into();
        r.amount = Fen(0);
        assert!(check_request(&r).is_err());
        r.amount = Fen(1);
        r.invoice_date = "2026-01-01".into();
        assert!(check_request(&r).is_err());
    }

    #[test]
    fn statuses_map() {
        let issued = json!({"serialNo": "S", "status": "2", "invoiceNo": "26332000000000000001",
            "invoiceTime": 1767232800000i64, "pdfUrl": "https://x/p.pdf"});
        assert_eq!(
            status_of(&issued).unwrap(),
            InvoiceStatus::Issued {
                number: "26332000000000000001".into(),
                issued_at: "2026-01-01 10:00:00".into(),
                pdf_url: "https://x/p.pdf".into()
            }
        );
        let full = json!({"status": 2, "invoiceNo": "00000001", "allElectronicInvoiceNumber": "26332000000000000002",
            "invoiceTime": "2026-01-01 10:00:00", "pdfUrl": "https://x/p.pdf"});
        assert!(matches!(status_of(&full).unwrap(),
            InvoiceStatus::Issued { number, issued_at, .. } if number == "26332000000000000002" && issued_at == "2026-01-01 10:00:00"));
        assert!(status_of(&json!({"status": "2", "invoiceNo": "1"})).unwrap_err().is_transient());
        assert_eq!(status_of(&json!({"status": "20"})).unwrap(), InvoiceStatus::InProgress);
        assert_eq!(status_of(&json!({"status": "21"})).unwrap(), InvoiceStatus::InProgress);
        assert_eq!(
            status_of(&json!({"status": "22", "failCause": "购方税号91350100M000100Y43有误"})).unwrap(),
            InvoiceStatus::Failed { reason: "购方税号***有误".into() }
        );
        assert_eq!(
            status_of(&json!({"status": "24", "statusMsg": "签章失败"})).unwrap(),
            InvoiceStatus::Failed { reason: "签章失败".into() }
        );
        assert_eq!(status_of(&json!({"status": "3"})).unwrap(), InvoiceStatus::Failed { reason: "作废".into() });
        assert_eq!(status_of(&json!({"status": "31"})).unwrap(), InvoiceStatus::Failed { reason: "作废".into() });
        assert!(status_of(&json!({"status": "99"})).unwrap_err().is_transient());
    }

    #[test]
    fn vendor_codes_map_to_errors() {
        let e = |code: &str, describe: &str| {
            ProviderError::from(CallError::Vendor { method: "m", code: code.into(), describe: describe.into() })
        };
        assert!(!e("070301", "签名错误").is_transient());
        assert!(!e("E9102", "参数错误").is_transient());
        assert!(e("E9999", "系统繁忙,请稍后重试").is_transient());
    }
}
