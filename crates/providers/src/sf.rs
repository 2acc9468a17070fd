//! SF Express Open Platform (顺丰开放平台 / 丰桥) and the [`Courier`] on it.
//!
//! Every call is a form POST to the service URL (`…/std/service`) with `partnerID`,
//! `requestID`, `serviceCode`, `timestamp` (ms), `msgDigest` ([`digest::msg_digest`]) and
//! `msgData` (the business JSON). The answer is an envelope (`apiResultCode` `A1000` when the
//! gateway accepted the call) whose `apiResultData` is a JSON *string* holding the business
//! result (`success`, `errorCode`, `errorMsg`, `msgData`).
//!
//! Booking uses `EXP_RECE_CREATE_ORDER` with our order id as SF's `orderId`; SF refuses a
//! repeated `orderId` with business error `8016` (重复下单), and the adapter then reads the
//! existing waybill with `EXP_RECE_SEARCH_ORDER_RESP`, so booking twice yields one parcel.
//! Routes come from `EXP_RECE_SEARCH_ROUTES` by waybill number with the recipient phone's last
//! four digits.
//!
//! Nothing personal is logged: only service codes, SF's result codes and our order ids.

pub mod digest;

use crate::courier::{Courier, RouteEvent, Shipment, ShipmentRequest};
use crate::{ConfigError, ProviderError, check_base_url, http_client};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

/// The provider name used in errors and configuration.
pub const PROVIDER: &str = "sf";
/// The production service URL.
pub const DEFAULT_BASE_URL: &str = "https://sfapi.sf-express.com/std/service";
/// The sandbox service URL.
pub const SANDBOX_BASE_URL: &str = "https://sfapi-sbox.sf-express.com/std/service";
/// Order creation (下订单).
pub const SERVICE_CREATE_ORDER: &str = "EXP_RECE_CREATE_ORDER";
/// Order result query (订单结果查询), used to read the waybill of an already booked order.
pub const SERVICE_SEARCH_ORDER: &str = "EXP_RECE_SEARCH_ORDER_RESP";
/// Route query (路由查询).
pub const SERVICE_SEARCH_ROUTES: &str = "EXP_RECE_SEARCH_ROUTES";
/// The gateway's "accepted" result code.
pub const API_OK: &str = "A1000";
/// The business error of a repeated `orderId` (重复下单).
pub const ERROR_DUPLICATE_ORDER: &str = "8016";
/// `expressTypeId` 2: 顺丰标快.
pub const EXPRESS_STANDARD: u32 = 2;

/// The sender printed on the waybill (our fulfilment desk).
#[derive(Clone, PartialEq, Eq)]
pub struct SfContact {
    /// Company name.
    pub company: String,
    /// Contact person.
    pub contact: String,
    /// Mobile number, or a landline such as `0591-87654321` (sent as SF's `tel`).
    pub mobile: String,
    /// Province, e.g. `福建省`.
    pub province: String,
    /// City, e.g. `福州市`.
    pub city: String,
    /// District or county, e.g. `鼓楼区`.
    pub county: String,
    /// Street address.
    pub address: String,
}

impl std::fmt::Debug for SfContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfContact")
            .field("company", &self.company)
            .field("province", &self.province)
            .field("city", &self.city)
            .finish_non_exhaustive()
    }
}

/// How to reach SF Express and what to book.
#[derive(Clone, PartialEq, Eq)]
pub struct SfConfig {
    /// The full service URL (default [`DEFAULT_BASE_URL`]).
    pub base_url: String,
    /// 顾客编码 (`partnerID`).
    pub partner_id: String,
    /// 校验码 (check word) of the digest; secret.
    pub checkword: String,
    /// 月结卡号; shipments are booked sender-pays on this card.
    pub monthly_card: String,
    /// The sender on every waybill.
    pub sender: SfContact,
    /// `expressTypeId` (default [`EXPRESS_STANDARD`], 顺丰标快).
    pub express_type_id: u32,
    /// The cargo name used when a request names none (default `数字证书UKEY`).
    pub cargo_name: String,
}

impl std::fmt::Debug for SfConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfConfig")
            .field("base_url", &self.base_url)
            .field("partner_id", &self.partner_id)
            .field("checkword", &"<hidden>")
            .field("monthly_card", &self.monthly_card)
            .field("sender", &self.sender)
            .field("express_type_id", &self.express_type_id)
            .field("cargo_name", &self.cargo_name)
            .finish()
    }
}

fn required(field: &'static str, value: &str, max_chars: usize) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::new(PROVIDER, field, "must not be empty"));
    }
    if value.chars().count() > max_chars || value.chars().any(char::is_control) {
        return Err(ConfigError::new(PROVIDER, field, format!("must be at most {max_chars} printable characters")));
    }
    Ok(())
}

impl SfConfig {
    /// A configuration for the production URL, 顺丰标快 and the cargo `数字证书UKEY`; checks
    /// every field.
    pub fn new(
        partner_id: impl Into<String>,
        checkword: impl Into<String>,
        monthly_card: impl Into<String>,
        sender: SfContact,
    ) -> Result<SfConfig, ConfigError> {
        let config = SfConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            partner_id: partner_id.into(),
            checkword: checkword.into(),
            monthly_card: monthly_card.into(),
            sender,
            express_type_id: EXPRESS_STANDARD,
            cargo_name: "数字证书UKEY".to_owned(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The same configuration at another service URL (e.g. [`SANDBOX_BASE_URL`] or a local
    /// stand-in).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Result<SfConfig, ConfigError> {
        self.base_url = base_url.into();
        self.validate()?;
        Ok(self)
    }

    /// Checks every field (for configurations built field by field).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_base_url(PROVIDER, "base_url", &self.base_url)?;
        required("partner_id", &self.partner_id, 64)?;
        if !self.partner_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(ConfigError::new(PROVIDER, "partner_id", "must be ASCII letters, digits, '-' or '_'"));
        }
        required("checkword", &self.checkword, 128)?;
        if !(1..=20).contains(&self.monthly_card.len()) || !self.monthly_card.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(PROVIDER, "monthly_card", "must be 1 to 20 digits"));
        }
        let s = &self.sender;
        required("sender.company", &s.company, 100)?;
        required("sender.contact", &s.contact, 100)?;
        required("sender.mobile", &s.mobile, 20)?;
        if !s.mobile.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') {
            return Err(ConfigError::new(PROVIDER, "sender.mobile", "must be digits (with '-' or '+')"));
        }
        required("sender.province", &s.province, 30)?;
        required("sender.city", &s.city, 30)?;
        required("sender.county", &s.county, 30)?;
        required("sender.address", &s.address, 200)?;
        if self.express_type_id == 0 {
            return Err(ConfigError::new(PROVIDER, "express_type_id", "must be an SF product code such as 2"));
        }
        required("cargo_name", &self.cargo_name, 60)?;
        Ok(())
    }
}

/// The SF Express adapter.
pub struct SfCourier {
    config: SfConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for SfCourier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfCourier").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The business part of an answer (`apiResultData`, parsed).
#[derive(Debug, Deserialize)]
struct ResultData {
    #[serde(default)]
    success: bool,
    #[serde(default, rename = "errorCode")]
    error_code: Option<Value>,
    #[serde(default, rename = "errorMsg")]
    error_msg: Option<String>,
    #[serde(default, rename = "msgData")]
    msg_data: Option<Value>,
}

impl ResultData {
    fn code(&self) -> String {
        match &self.error_code {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "apiResultCode")]
    api_result_code: String,
    #[serde(default, rename = "apiErrorMsg")]
    api_error_msg: Option<String>,
    #[serde(default, rename = "apiResultData")]
    api_result_data: Option<Value>,
}

/// Masks every run of ASCII letters and digits of six or more characters that contains a
/// digit (phone, tax, ID and card numbers a vendor message might echo) before the message
/// goes into an error. Shared with the Nuonuo adapter.
pub(crate) fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 6 && run.bytes().any(|b| b.is_ascii_digit()) {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out.chars().take(200).collect()
}

/// The gateway codes worth retrying: expired timestamp, flow control, back end unreachable,
/// system error, duplicate request id.
fn api_code_is_transient(code: &str) -> bool {
    matches!(code, "A1002" | "A1005" | "A1007" | "A1009" | "A1099")
}

fn rejected(detail: impl Into<String>) -> ProviderError {
    ProviderError::Rejected { provider: PROVIDER, detail: detail.into() }
}

fn transient(detail: impl Into<String>) -> ProviderError {
    ProviderError::Transient { provider: PROVIDER, detail: detail.into() }
}

/// A request id: 32 random hex digits in the 8-4-4-4-12 layout of a UUID (36 characters).
fn request_id() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn business_error(service: &str, data: &ResultData) -> ProviderError {
    let code = data.code();
    let message = redact(data.error_msg.as_deref().unwrap_or(""));
    tracing::warn!(service, code = %code, "SF refused the business request");
    let detail = format!("{service}: business error {code} {message}");
    if message.contains("系统繁忙") || message.contains("系统异常") || message.contains("超时") {
        transient(detail)
    } else {
        rejected(detail)
    }
}

impl SfCourier {
    /// An adapter for `config` (checked again here).
    pub fn new(config: SfConfig) -> Result<SfCourier, ConfigError> {
        config.validate()?;
        Ok(SfCourier { config, http: http_client() })
    }

    /// Calls `service` with `msg_data` and returns the parsed business result (whatever its
    /// `success`); gateway refusals and transport failures are errors.
    async fn call(&self, service: &'static str, msg_data: &Value) -> Result<ResultData, ProviderError> {
        let msg_data = msg_data.to_string();
        let timestamp = chrono::Utc::now().timestamp_millis().to_string();
        let digest = digest::msg_digest(&msg_data, &timestamp, &self.config.checkword);
        let form = [
            ("partnerID", self.config.partner_id.as_str()),
            ("requestID", &request_id()),
            ("serviceCode", service),
            ("timestamp", &timestamp),
            ("msgDigest", &digest),
            ("msgData", &msg_data),
        ];
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = self
            .http
            .post(&self.config.base_url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::transport(PROVIDER, e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(service, status = status.as_u16(), "SF answered with an HTTP error");
            let detail = format!("{service}: HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                transient(detail)
            } else {
                rejected(detail)
            });
        }
        let text = response.text().await.map_err(|e| ProviderError::transport(PROVIDER, e.without_url()))?;
        let envelope: Envelope =
            serde_json::from_str(&text).map_err(|e| transient(format!("{service}: unreadable answer: {e}")))?;
        if envelope.api_result_code != API_OK {
            let code = envelope.api_result_code;
            tracing::warn!(service, code = %code, "SF gateway refused the call");
            let detail = format!("{service}: {code} {}", redact(envelope.api_error_msg.as_deref().unwrap_or("")));
            return Err(if api_code_is_transient(&code) { transient(detail) } else { rejected(detail) });
        }
        let data = match envelope.api_result_data {
            Some(Value::String(s)) => serde_json::from_str::<ResultData>(&s),
            Some(v @ Value::Object(_)) => serde_json::from_value::<ResultData>(v),
            _ => return Err(transient(format!("{service}: answer without apiResultData"))),
        }
        .map_err(|e| transient(format!("{service}: unreadable apiResultData: {e}")))?;
        Ok(data)
    }

    fn create_order_msg(&self, request: &ShipmentRequest) -> Value {
        let c = &self.config;
        let s = &c.sender;
        let to = &request.to;
        let cargo = if request.cargo.trim().is_empty() { c.cargo_name.as_str() } else { request.cargo.trim() };
        let mut sender = json!({
            "contactType": 1,
            "company": s.company,
            "contact": s.contact,
            "country": "CN",
            "province": s.province,
            "city": s.city,
            "county": s.county,
            "address": s.address,
        });
        // A mainland mobile number goes into `mobile`, a landline (e.g. 0591-…) into `tel`.
        let is_mobile =
            s.mobile.len() == 11 && s.mobile.starts_with('1') && s.mobile.bytes().all(|b| b.is_ascii_digit());
        sender[if is_mobile { "mobile" } else { "tel" }] = Value::from(s.mobile.as_str());
        json!({
            "language": "zh-CN",
            "orderId": request.order.as_str(),
            "contactInfoList": [
                sender,
                {
                    "contactType": 2,
                    "contact": to.recipient,
                    "mobile": to.phone.as_str(),
                    "country": "CN",
                    "province": to.province,
                    "city": to.city,
                    "county": to.district,
                    "address": to.street,
                },
            ],
            "cargoDetails": [{ "name": cargo, "count": 1, "unit": "个" }],
            "payMethod": 1,
            "monthlyCard": c.monthly_card,
            "expressTypeId": c.express_type_id,
            "parcelQty": 1,
        })
    }

    /// The existing waybill of an order booked earlier.
    async fn search_order(&self, order_id: &str) -> Result<String, ProviderError> {
        let msg = json!({ "language": "zh-CN", "orderId": order_id, "searchType": 1 });
        let data = self.call(SERVICE_SEARCH_ORDER, &msg).await?;
        if !data.success {
            return Err(business_error(SERVICE_SEARCH_ORDER, &data));
        }
        waybill_of(data.msg_data.as_ref())
            .ok_or_else(|| rejected(format!("{SERVICE_SEARCH_ORDER}: the answer names no waybill")))
    }
}

/// The master waybill (`waybillType` 1, or the first) of a `msgData` carrying
/// `waybillNoInfoList`.
fn waybill_of(msg_data: Option<&Value>) -> Option<String> {
    let list = msg_data?.get("waybillNoInfoList")?.as_array()?;
    let number = |v: &Value| v.get("waybillNo").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    list.iter()
        .find(|w| w.get("waybillType").and_then(Value::as_i64) == Some(1))
        .and_then(number)
        .or_else(|| list.iter().find_map(number))
}

/// The events of `tracking_no` in a route answer's `msgData`, oldest first.
fn routes_of(msg_data: Option<&Value>, tracking_no: &str) -> Vec<RouteEvent> {
    let Some(resps) = msg_data.and_then(|m| m.get("routeResps")).and_then(Value::as_array) else {
        return Vec::new();
    };
    let text = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let mut events: Vec<RouteEvent> = resps
        .iter()
        .filter(|r| r.get("mailNo").and_then(Value::as_str) == Some(tracking_no))
        .filter_map(|r| r.get("routes").and_then(Value::as_array))
        .flatten()
        .map(|e| RouteEvent {
            at: text(e, "acceptTime"),
            place: text(e, "acceptAddress"),
            remark: text(e, "remark"),
            op_code: text(e, "opCode"),
        })
        .collect();
    // `acceptTime` is `YYYY-MM-DD HH:MM:SS`: text order is time order; the sort is stable.
    events.sort_by(|a, b| a.at.cmp(&b.at));
    events
}

#[async_trait]
impl Courier for SfCourier {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn display_name(&self) -> &'static str {
        "顺丰速运"
    }

    async fn create_shipment(&self, request: &ShipmentRequest) -> Result<Shipment, ProviderError> {
        let order_id = request.order.as_str();
        let data = self.call(SERVICE_CREATE_ORDER, &self.create_order_msg(request)).await?;
        let tracking_no = if data.success {
            waybill_of(data.msg_data.as_ref())
                .ok_or_else(|| rejected(format!("{SERVICE_CREATE_ORDER}: the answer names no waybill")))?
        } else if data.code() == ERROR_DUPLICATE_ORDER {
            tracing::info!(order = order_id, "SF order exists already; reading its waybill");
            self.search_order(order_id).await?
        } else {
            return Err(business_error(SERVICE_CREATE_ORDER, &data));
        };
        tracing::info!(order = order_id, "SF shipment booked");
        Ok(Shipment { courier: self.display_name().to_owned(), tracking_no })
    }

    async fn route(&self, tracking_no: &str, phone_last4: &str) -> Result<Vec<RouteEvent>, ProviderError> {
        if tracking_no.is_empty()
            || tracking_no.len() > 40
            || !tracking_no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(rejected("route: malformed waybill number"));
        }
        let mut msg = json!({
            "language": "zh-CN",
            "trackingType": 1,
            "trackingNumber": [tracking_no],
            "methodType": 1,
        });
        if !phone_last4.is_empty() {
            if phone_last4.len() != 4 || !phone_last4.bytes().all(|b| b.is_ascii_digit()) {
                return Err(rejected("route: the phone check must be four digits"));
            }
            msg["checkPhoneNo"] = Value::from(phone_last4);
        }
        let data = self.call(SERVICE_SEARCH_ROUTES, &msg).await?;
        if !data.success {
            return Err(business_error(SERVICE_SEARCH_ROUTES, &data));
        }
        Ok(routes_of(data.msg_data.as_ref(), tracking_no))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> SfContact {
        SfContact {
            company: "宜签".into(),
            contact: "发货组".into(),
            mobile: "0591-88888888".into(),
            province: "福建省".into(),
            city: "福州市".into(),
            county: "鼓楼区".into(),
            address: "五四路1号".into(),
        }
    }

    #[test]
    fn config_is_checked_and_hides_the_checkword() {
        let config = SfConfig::new("YQ12345678", "secret-check-word", "0591000000", sender()).unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.express_type_id, 2);
        assert!(!format!("{config:?}").contains("secret-check-word"));
        assert!(!format!("{config:?}").contains("发货组"));
        assert_eq!(SfConfig::new("", "c", "1", sender()).unwrap_err().field, "partner_id");
        assert_eq!(SfConfig::new("P", "", "1", sender()).unwrap_err().field, "checkword");
        assert_eq!(SfConfig::new("P", "c", "12ab", sender()).unwrap_err().field, "monthly_card");
        let mut bad = sender();
        bad.address = " ".into();
        assert_eq!(SfConfig::new("P", "c", "1", bad).unwrap_err().field, "sender.address");
        assert_eq!(config.clone().with_base_url("ftp://x/std/service").unwrap_err().field, "base_url");
        assert!(config.with_base_url("http://127.0.0.1:1/std/service").is_ok());
    }

    #[test]
    fn landline_senders_go_into_tel() {
        let request = ShipmentRequest {
            order: yiqian_domain::OrderId::parse("YQ1").unwrap(),
            to: yiqian_domain::applicant::ShippingAddress {
                recipient: "张三".into(),
                phone: yiqian_domain::identity::MobileNumber::parse("13800138000").unwrap(),
                province: "北京市".into(),
                city: "北京市".into(),
                district: "海淀区".into(),
                region_code: "110108".into(),
                street: "中关村大街1号".into(),
            },
            cargo: String::new(),
        };
        let courier = |mobile: &str| {
            let mut s = sender();
            s.mobile = mobile.into();
            SfCourier::new(SfConfig::new("P", "c", "1", s).unwrap()).unwrap()
        };
        let msg = courier("0591-88888888").create_order_msg(&request);
        assert_eq!(msg["contactInfoList"][0]["tel"], "0591-88888888");
        assert!(msg["contactInfoList"][0].get("mobile").is_none());
        assert_eq!(msg["contactInfoList"][1]["mobile"], "13800138000");
        assert_eq!(msg["cargoDetails"][0]["name"], "数字证书UKEY", "an empty cargo falls back to the configured one");
        assert_eq!((msg["payMethod"].as_i64(), msg["parcelQty"].as_i64()), (Some(1), Some(1)));
        let msg = courier("13900139000").create_order_msg(&request);
        assert_eq!(msg["contactInfoList"][0]["mobile"], "13900139000");
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, request_id());
    }

    #[test]
    fn waybill_prefers_the_master_number() {
        let msg = json!({"waybillNoInfoList": [
            {"waybillType": 2, "waybillNo": "SF0000000000002"},
            {"waybillType": 1, "waybillNo": "SF0000000000001"}
        ]});
        assert_eq!(waybill_of(Some(&msg)).as_deref(), Some("SF0000000000001"));
        let only = json!({"waybillNoInfoList": [{"waybillNo": "SF0000000000003"}]});
        assert_eq!(waybill_of(Some(&only)).as_deref(), Some("SF0000000000003"));
        assert_eq!(waybill_of(Some(&json!({"waybillNoInfoList": []}))), None);
        assert_eq!(waybill_of(None), None);
    }

    #[test]
    fn routes_are_read_for_the_waybill_oldest_first() {
        let msg = json!({"routeResps": [
            {"mailNo": "SF1", "routes": [
                {"acceptTime": "2026-01-02 10:00:00", "acceptAddress": "福州市", "remark": "已签收", "opCode": "80"},
                {"acceptTime": "2026-01-01 09:00:00", "acceptAddress": "福州市", "remark": "已收取快件", "opCode": 50}
            ]},
            {"mailNo": "SF2", "routes": [
                {"acceptTime": "2026-01-01 08:00:00", "acceptAddress": "x", "remark": "y", "opCode": "50"}
            ]}
        ]});
        let events = routes_of(Some(&msg), "SF1");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].op_code, "50");
        assert_eq!(events[1].remark, "已签收");
        assert!(routes_of(Some(&json!({"routeResps": []})), "SF1").is_empty());
    }

    #[test]
    fn vendor_messages_lose_long_numbers() {
        assert_eq!(redact("收件人电话13800138000格式错误"), "收件人电话***格式错误");
        assert_eq!(redact("税号91350100M000100Y43无效, code 8016"), "税号***无效, code 8016");
        assert_eq!(redact("数字签名无效"), "数字签名无效");
    }

    #[test]
    fn gateway_codes_split_into_retry_and_refuse() {
        for code in ["A1002", "A1005", "A1099"] {
            assert!(api_code_is_transient(code), "{code}");
        }
        for code in ["A1001", "A1003", "A1004", "A1006", "A1008"] {
            assert!(!api_code_is_transient(code), "{code}");
        }
    }
}
