//! Stand-in for Alipay's OpenAPI gateway (`/gateway.do`), faithful on the wire:
//!
//! - Every request's RSA2 signature is checked by Alipay's rule (all parameters but `sign`,
//!   empty ones dropped, sorted, raw values) with the application's public key, or — when the
//!   request carries `app_cert_sn` — after checking `app_cert_sn` and `alipay_root_cert_sn`
//!   against the account's certificates, with the application certificate's key. Both modes
//!   are served at once. `app_id`, `charset`, `sign_type`, `format`, `version` and the
//!   `timestamp` (within 15 minutes of our clock, a stand-in choice) are checked too.
//! - `alipay.trade.wap.pay` (GET, or the SDKs' auto-submitted POST form) shows a mobile cashier
//!   page; a request that does not check out gets Alipay's error page. The trade exists from
//!   the moment the payer reaches the cashier (`WAIT_BUYER_PAY`); before that it is
//!   `ACQ.TRADE_NOT_EXIST`, as at Alipay.
//! - Paying (the "确认付款" button, or [`AlipaySim::pay`]) records `TRADE_SUCCESS`, posts the
//!   signed trade notification to the `notify_url` until it is answered `success`, and sends
//!   the browser to the `return_url` with signed return parameters.
//! - `alipay.trade.query`, `alipay.trade.refund` (idempotent per `out_request_no`),
//!   `alipay.trade.fastpay.refund.query` and `alipay.trade.close` answer
//!   `{"<method>_response":{…},"sign":"…"}`, signed over the exact response text with Alipay's
//!   key (`alipay_cert_sn` added in certificate mode); a refund or a close also triggers the
//!   trade callback Alipay sends for it.

pub mod notify;
pub mod pages;

use crate::Sim;
use crate::accounts::AlipayAccount;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use notify::{NotifyDelivery, form_body, new_notify_id, sign_notification};
use rand::Rng;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use yiqian_domain::Fen;
use yiqian_providers::alipay::amount::{MAX_AMOUNT, format_yuan, parse_yuan};
use yiqian_providers::alipay::cert_sn::{certificate_info, root_cert_sn};
use yiqian_providers::alipay::response::{ERROR_RESPONSE, response_key};
use yiqian_providers::alipay::sign::{REQUEST_EXCLUDES, sign_content};
use yiqian_providers::alipay::{beijing_time, parse_beijing_time};
use yiqian_providers::rsa::{RsaSigner, RsaVerifier};

/// How far a request's `timestamp` may be from the stand-in's clock, in seconds.
pub const TIMESTAMP_WINDOW_SECONDS: i64 = 15 * 60;

/// A trade's state, as `trade_status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    /// The payer reached the cashier and has not paid.
    WaitBuyerPay,
    /// Paid.
    TradeSuccess,
    /// Closed: unpaid and closed or expired, or refunded in full.
    TradeClosed,
}

impl TradeStatus {
    /// The `trade_status` value.
    pub fn code(self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::TradeSuccess => "TRADE_SUCCESS",
            TradeStatus::TradeClosed => "TRADE_CLOSED",
        }
    }
}

/// A trade as the stand-in records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTrade {
    /// The merchant's `out_trade_no`.
    pub out_trade_no: String,
    /// Alipay's `trade_no` (`2026…`).
    pub trade_no: String,
    /// `subject`.
    pub subject: String,
    /// `total_amount`.
    pub total_amount: Fen,
    /// `trade_status`.
    pub status: TradeStatus,
    /// Refunded so far.
    pub refunded: Fen,
    /// Where notifications go.
    pub notify_url: Option<String>,
    /// Where the browser returns after paying.
    pub return_url: Option<String>,
    /// Where the payer goes on giving up.
    pub quit_url: Option<String>,
    /// `time_expire`, if given.
    pub time_expire: Option<DateTime<Utc>>,
    /// Created (the payer reached the cashier).
    pub gmt_create: DateTime<Utc>,
    /// Paid.
    pub gmt_payment: Option<DateTime<Utc>>,
    /// Closed.
    pub gmt_close: Option<DateTime<Utc>>,
    /// The payer's Alipay user id.
    pub buyer_id: String,
    /// The payer's masked login.
    pub buyer_logon_id: String,
    /// Whether the creating request used certificate mode.
    pub certificate_mode: bool,
}

/// A refund the stand-in made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRefund {
    /// The trade refunded.
    pub out_trade_no: String,
    /// The merchant's `out_request_no`.
    pub out_request_no: String,
    /// Amount returned.
    pub amount: Fen,
    /// `refund_reason`.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A deliberate fault in the stand-in's signed answers, to test that the adapter refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerTamper {
    /// The signature is of other content.
    BadSignature,
    /// The response text is altered after signing.
    AlteredContent,
    /// No `sign` at all.
    Unsigned,
    /// Certificate mode: `alipay_cert_sn` names another certificate.
    OtherCertSn,
}

/// Why [`AlipaySim::pay`] could not pay a trade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    /// The payer never reached the cashier for this `out_trade_no`.
    #[error("no trade {0} at the stand-in (open the pay URL first)")]
    NoSuchTrade(String),
    /// Paid or closed already.
    #[error("trade {0} is {1}")]
    NotPayable(String, &'static str),
}

/// A request the gateway refuses, as Alipay reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GatewayError {
    code: &'static str,
    msg: &'static str,
    sub_code: &'static str,
    sub_msg: String,
}

impl GatewayError {
    fn new(code: &'static str, sub_code: &'static str, sub_msg: impl Into<String>) -> GatewayError {
        let msg = match code {
            "20000" => "Service Currently Unavailable",
            "40001" => "Missing Required Arguments",
            "40002" => "Invalid Arguments",
            "40004" => "Business Failed",
            _ => "Call Failed",
        };
        GatewayError { code, msg, sub_code, sub_msg: sub_msg.into() }
    }

    fn business(sub_code: &'static str, sub_msg: &str) -> GatewayError {
        GatewayError::new("40004", sub_code, sub_msg)
    }

    fn content(&self) -> Value {
        json!({"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg})
    }
}

#[derive(Default)]
struct Ledger {
    trades: BTreeMap<String, SimTrade>,
    refunds: Vec<SimRefund>,
    tamper: Option<AnswerTamper>,
}

/// The Alipay stand-in's state.
pub struct AlipaySim {
    account: AlipayAccount,
    base_url: String,
    alipay_signer: RsaSigner,
    app_key: RsaVerifier,
    app_cert_key: RsaVerifier,
    app_cert_sn: String,
    root_cert_sn: String,
    alipay_cert_sn: String,
    http: reqwest::Client,
    ledger: Mutex<Ledger>,
    deliveries: Arc<Mutex<Vec<NotifyDelivery>>>,
}

fn random_digits(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

impl AlipaySim {
    /// A stand-in for `account`, reachable at `base_url`. Panics if the account's keys or
    /// certificates do not load (generated accounts always do).
    pub fn new(account: &AlipayAccount, base_url: &str) -> AlipaySim {
        let app_cert = certificate_info(&account.app_cert_pem).expect("stand-in app certificate");
        AlipaySim {
            account: account.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            alipay_signer: RsaSigner::from_pem(&account.alipay_private_pem).expect("stand-in Alipay private key"),
            app_key: RsaVerifier::from_pem(&account.app_public_pem).expect("stand-in app public key"),
            app_cert_key: RsaVerifier::from_der(app_cert.public_key_der),
            app_cert_sn: app_cert.sn,
            root_cert_sn: root_cert_sn(&account.root_cert_pem).expect("stand-in root certificate"),
            alipay_cert_sn: certificate_info(&account.alipay_cert_pem).expect("stand-in Alipay certificate").sn,
            http: reqwest::Client::builder().no_proxy().build().expect("HTTP client"),
            ledger: Mutex::new(Ledger::default()),
            deliveries: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The gateway URL to configure the adapter with.
    pub fn gateway_url(&self) -> String {
        format!("{}/gateway.do", self.base_url)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().expect("alipay stand-in ledger")
    }

    /// A trade by `out_trade_no`.
    pub fn trade(&self, out_trade_no: &str) -> Option<SimTrade> {
        self.ledger().trades.get(out_trade_no).cloned()
    }

    /// Every trade.
    pub fn trades(&self) -> Vec<SimTrade> {
        self.ledger().trades.values().cloned().collect()
    }

    /// Every refund made (a repeated request is not a second refund).
    pub fn refunds(&self) -> Vec<SimRefund> {
        self.ledger().refunds.clone()
    }

    /// Every notification delivery attempt so far.
    pub fn deliveries(&self) -> Vec<NotifyDelivery> {
        self.deliveries.lock().expect("delivery log").clone()
    }

    /// Makes every signed answer faulty in the given way (`None`: answer correctly again).
    pub fn tamper_answers(&self, tamper: Option<AnswerTamper>) {
        self.ledger().tamper = tamper;
    }

    /// Signs notification fields with Alipay's key (V1 rule; sets `sign_type` and `sign`), so
    /// a test can forge, alter or replay notifications.
    pub fn sign_notification(&self, fields: &mut BTreeMap<String, String>) {
        sign_notification(&self.alipay_signer, fields);
    }

    /// The payer confirms payment of `out_trade_no` at the cashier (which must have been
    /// opened): the trade is paid, the notification goes out, and the browser would be sent
    /// to the returned URL (the `return_url` with signed return parameters), if any.
    pub fn pay(&self, out_trade_no: &str) -> Result<(SimTrade, Option<String>), PayError> {
        let now = Utc::now();
        let trade = {
            let mut ledger = self.ledger();
            let trade =
                ledger.trades.get_mut(out_trade_no).ok_or_else(|| PayError::NoSuchTrade(out_trade_no.to_owned()))?;
            if trade.status == TradeStatus::WaitBuyerPay && trade.time_expire.is_some_and(|t| t <= now) {
                trade.status = TradeStatus::TradeClosed;
                trade.gmt_close = Some(now);
            }
            if trade.status != TradeStatus::WaitBuyerPay {
                return Err(PayError::NotPayable(out_trade_no.to_owned(), trade.status.code()));
            }
            trade.status = TradeStatus::TradeSuccess;
            trade.gmt_payment = Some(now);
            trade.clone()
        };
        self.notify(&trade, &[]);
        Ok((trade.clone(), self.return_url(&trade, now)))
    }

    /// The `return_url` with Alipay's signed return parameters.
    fn return_url(&self, trade: &SimTrade, now: DateTime<Utc>) -> Option<String> {
        let base = trade.return_url.as_deref()?;
        let mut fields: BTreeMap<String, String> = [
            ("app_id", self.account.app_id.clone()),
            ("auth_app_id", self.account.app_id.clone()),
            ("charset", "utf-8".to_owned()),
            ("method", "alipay.trade.wap.pay.return".to_owned()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("seller_id", self.account.seller_id.clone()),
            ("timestamp", beijing_time(now)),
            ("total_amount", format_yuan(trade.total_amount)),
            ("trade_no", trade.trade_no.clone()),
            ("version", "1.0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        sign_notification(&self.alipay_signer, &mut fields);
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(format!("{base}{separator}{}", form_body(&fields)))
    }

    /// A freshly signed trade callback for the current state of `out_trade_no` (a new
    /// `notify_id`), as the stand-in would send it — for tests to alter, forge or replay.
    pub fn trade_notification(&self, out_trade_no: &str) -> Option<BTreeMap<String, String>> {
        self.trade(out_trade_no).map(|trade| self.notification_fields(&trade, &[]))
    }

    /// Sends the trade callback for `trade`'s current state (with `extra` fields, e.g. a
    /// refund's), if the trade has a notify URL.
    fn notify(&self, trade: &SimTrade, extra: &[(&str, String)]) {
        let Some(url) = trade.notify_url.clone() else { return };
        let fields = self.notification_fields(trade, extra);
        let notify_id = fields["notify_id"].clone();
        tokio::spawn(notify::deliver(
            self.http.clone(),
            self.deliveries.clone(),
            url,
            form_body(&fields),
            notify_id,
            trade.out_trade_no.clone(),
        ));
    }

    /// The signed fields of a trade callback for `trade`'s current state.
    fn notification_fields(&self, trade: &SimTrade, extra: &[(&str, String)]) -> BTreeMap<String, String> {
        let now = Utc::now();
        let paid = trade.gmt_payment.is_some();
        let total = format_yuan(trade.total_amount);
        let paid_amount = if paid { total.clone() } else { "0.00".to_owned() };
        let mut fields: BTreeMap<String, String> = [
            ("notify_time", beijing_time(now)),
            ("notify_type", "trade_status_sync".to_owned()),
            ("notify_id", new_notify_id(now)),
            ("app_id", self.account.app_id.clone()),
            ("auth_app_id", self.account.app_id.clone()),
            ("charset", "utf-8".to_owned()),
            ("version", "1.0".to_owned()),
            ("trade_no", trade.trade_no.clone()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("trade_status", trade.status.code().to_owned()),
            ("total_amount", total.clone()),
            ("receipt_amount", paid_amount.clone()),
            ("invoice_amount", paid_amount.clone()),
            ("buyer_pay_amount", paid_amount.clone()),
            ("point_amount", "0.00".to_owned()),
            ("gmt_create", beijing_time(trade.gmt_create)),
            ("gmt_payment", trade.gmt_payment.map(beijing_time).unwrap_or_default()),
            ("gmt_close", trade.gmt_close.map(beijing_time).unwrap_or_default()),
            ("seller_id", self.account.seller_id.clone()),
            ("seller_email", "yiqian-sim@example.com".to_owned()),
            ("buyer_id", trade.buyer_id.clone()),
            ("buyer_logon_id", trade.buyer_logon_id.clone()),
            ("subject", trade.subject.clone()),
            (
                "fund_bill_list",
                if paid { format!(r#"[{{"amount":"{total}","fundChannel":"ALIPAYACCOUNT"}}]"#) } else { String::new() },
            ),
        ]
        .into_iter()
        .chain(extra.iter().map(|(k, v)| (*k, v.clone())))
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        sign_notification(&self.alipay_signer, &mut fields);
        fields
    }

    /// Checks a request's common parameters and signature; returns whether it used
    /// certificate mode.
    fn check_request(&self, params: &BTreeMap<String, String>, now: DateTime<Utc>) -> Result<bool, GatewayError> {
        let get = |name: &str| params.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let app_id = get("app_id").ok_or_else(|| GatewayError::new("40001", "isv.missing-app-id", "缺少AppID参数"))?;
        if app_id != self.account.app_id {
            return Err(GatewayError::new("40002", "isv.invalid-app-id", "无效的AppID参数"));
        }
        let sign = get("sign").ok_or_else(|| GatewayError::new("40001", "isv.missing-signature", "缺少签名参数"))?;
        match get("sign_type") {
            Some("RSA2") => {}
            Some(_) => return Err(GatewayError::new("40002", "isv.invalid-signature-type", "无效的签名类型")),
            None => return Err(GatewayError::new("40001", "isv.missing-signature-type", "缺少签名类型")),
        }
        if let Some(charset) = get("charset")
            && !charset.eq_ignore_ascii_case("utf-8")
        {
            return Err(GatewayError::new("40002", "isv.invalid-charset", "字符集错误"));
        }
        if get("format").is_some_and(|f| !f.eq_ignore_ascii_case("json")) {
            return Err(GatewayError::new("40002", "isv.invalid-format", "无效的数据格式"));
        }
        if get("version") != Some("1.0") {
            return Err(GatewayError::new("40002", "isv.invalid-version", "无效的版本号"));
        }
        let timestamp =
            get("timestamp").ok_or_else(|| GatewayError::new("40001", "isv.missing-timestamp", "缺少时间戳参数"))?;
        match parse_beijing_time(timestamp) {
            Some(t) if (now - t).num_seconds().abs() <= TIMESTAMP_WINDOW_SECONDS => {}
            _ => return Err(GatewayError::new("40002", "isv.invalid-timestamp", "非法的时间戳参数")),
        }
        let certificate_mode = get("app_cert_sn").is_some() || get("alipay_root_cert_sn").is_some();
        let key = if certificate_mode {
            if get("app_cert_sn") != Some(self.app_cert_sn.as_str()) {
                return Err(GatewayError::new("40002", "isv.app-cert-not-exist", "应用公钥证书不存在"));
            }
            if get("alipay_root_cert_sn") != Some(self.root_cert_sn.as_str()) {
                return Err(GatewayError::new("40002", "isv.invalid-alipay-root-cert-sn", "无效支付宝根证书序列号"));
            }
            &self.app_cert_key
        } else {
            &self.app_key
        };
        let content = sign_content(params, REQUEST_EXCLUDES);
        if !key.verify(content.as_bytes(), sign) {
            return Err(GatewayError::new(
                "40002",
                "isv.invalid-signature",
                format!("验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}"),
            ));
        }
        Ok(certificate_mode)
    }

    /// A signed answer: `{"<key>":<content>,"alipay_cert_sn":…,"sign":…}`.
    fn answer(&self, key: &str, content: &Value, certificate_mode: bool) -> String {
        let text = content.to_string();
        let tamper = self.ledger().tamper;
        let signed = match tamper {
            Some(AnswerTamper::BadSignature) => format!("{text} "),
            _ => text.clone(),
        };
        let signature = self.alipay_signer.sign(signed.as_bytes()).expect("an RSA key signs");
        let shown = match tamper {
            Some(AnswerTamper::AlteredContent) => text.replacen('{', r#"{"altered":"1","#, 1),
            _ => text,
        };
        let mut out = format!("{{{}:{shown}", Value::from(key));
        if certificate_mode {
            let sn =
                if tamper == Some(AnswerTamper::OtherCertSn) { "0".repeat(32) } else { self.alipay_cert_sn.clone() };
            out.push_str(&format!(",\"alipay_cert_sn\":{}", Value::from(sn)));
        }
        if tamper != Some(AnswerTamper::Unsigned) {
            out.push_str(&format!(",\"sign\":{}", Value::from(signature)));
        }
        out.push('}');
        out
    }

    /// Serves a server-to-server API call.
    fn api(&self, params: &BTreeMap<String, String>) -> String {
        let now = Utc::now();
        let certificate_mode = match self.check_request(params, now) {
            Ok(mode) => mode,
            Err(e) => {
                let mode = params.contains_key("app_cert_sn");
                return self.answer(ERROR_RESPONSE, &e.content(), mode);
            }
        };
        let method = params.get("method").map(String::as_str).unwrap_or_default();
        let biz = match params.get("biz_content").map(|b| serde_json::from_str::<Value>(b)) {
            Some(Ok(Value::Object(biz))) => biz,
            _ => {
                let e = GatewayError::new("40002", "isv.invalid-parameter", "biz_content 无效");
                return self.answer(&response_key(method), &e.content(), certificate_mode);
            }
        };
        let result = match method {
            "alipay.trade.query" => self.query(&biz),
            "alipay.trade.refund" => self.refund(&biz, now),
            "alipay.trade.fastpay.refund.query" => self.refund_query(&biz),
            "alipay.trade.close" => self.close(&biz, now),
            _ => {
                let e = GatewayError::new("40002", "isv.invalid-method", "不存在的方法名");
                return self.answer(ERROR_RESPONSE, &e.content(), certificate_mode);
            }
        };
        let content = match result {
            Ok(mut fields) => {
                let mut content = Map::new();
                content.insert("code".into(), "10000".into());
                content.insert("msg".into(), "Success".into());
                content.append(&mut fields);
                Value::Object(content)
            }
            Err(e) => e.content(),
        };
        self.answer(&response_key(method), &content, certificate_mode)
    }

    /// The trade a biz_content names by `out_trade_no` or `trade_no`.
    fn find(ledger: &Ledger, biz: &Map<String, Value>) -> Result<String, GatewayError> {
        let text = |name: &str| biz.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let found = match (text("out_trade_no"), text("trade_no")) {
            (Some(out), _) => ledger.trades.get(out),
            (None, Some(no)) => ledger.trades.values().find(|t| t.trade_no == no),
            (None, None) => {
                return Err(GatewayError::new(
                    "40002",
                    "isv.missing-parameter",
                    "out_trade_no 与 trade_no 不能同时为空",
                ));
            }
        };
        found.map(|t| t.out_trade_no.clone()).ok_or_else(|| GatewayError::business("ACQ.TRADE_NOT_EXIST", "交易不存在"))
    }

    fn query(&self, biz: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
        let mut ledger = self.ledger();
        let key = Self::find(&ledger, biz)?;
        let trade = ledger.trades.get_mut(&key).expect("found");
        let now = Utc::now();
        if trade.status == TradeStatus::WaitBuyerPay && trade.time_expire.is_some_and(|t| t <= now) {
            trade.status = TradeStatus::TradeClosed;
            trade.gmt_close = Some(now);
        }
        let paid = if trade.gmt_payment.is_some() { format_yuan(trade.total_amount) } else { "0.00".into() };
        let mut out = json!({
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "trade_status": trade.status.code(),
            "total_amount": format_yuan(trade.total_amount),
            "buyer_pay_amount": paid,
            "point_amount": "0.00",
            "invoice_amount": paid,
            "receipt_amount": paid,
            "buyer_user_id": trade.buyer_id,
            "buyer_user_type": "PRIVATE",
        });
        if let Some(at) = trade.gmt_payment {
            out["send_pay_date"] = beijing_time(at).into();
        }
        Ok(out.as_object().cloned().unwrap_or_default())
    }

    fn refund(&self, biz: &Map<String, Value>, now: DateTime<Utc>) -> Result<Map<String, Value>, GatewayError> {
        let text = |name: &str| biz.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let amount = parse_yuan(&text("refund_amount"))
            .ok()
            .filter(|a| *a >= Fen(1))
            .ok_or_else(|| GatewayError::new("40002", "isv.invalid-parameter", "refund_amount 无效"))?;
        let (trade, refund_fee, fund_change) = {
            let mut ledger = self.ledger();
            let key = Self::find(&ledger, biz)?;
            let out_request_no = Some(text("out_request_no")).filter(|s| !s.is_empty()).unwrap_or(key.clone());
            if let Some(earlier) =
                ledger.refunds.iter().find(|r| r.out_trade_no == key && r.out_request_no == out_request_no)
            {
                if earlier.amount != amount {
                    return Err(GatewayError::business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致"));
                }
                let trade = ledger.trades[&key].clone();
                let refunded = trade.refunded;
                (trade, refunded, false)
            } else {
                let trade = ledger.trades.get_mut(&key).expect("found");
                if trade.status != TradeStatus::TradeSuccess {
                    return Err(GatewayError::business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
                }
                if trade.refunded.0 + amount.0 > trade.total_amount.0 {
                    return Err(GatewayError::business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"));
                }
                trade.refunded = Fen(trade.refunded.0 + amount.0);
                if trade.refunded == trade.total_amount {
                    trade.status = TradeStatus::TradeClosed;
                    trade.gmt_close = Some(now);
                }
                let trade = trade.clone();
                ledger.refunds.push(SimRefund {
                    out_trade_no: key.clone(),
                    out_request_no: out_request_no.clone(),
                    amount,
                    reason: text("refund_reason"),
                    at: now,
                });
                let refunded = trade.refunded;
                (trade, refunded, true)
            }
        };
        if fund_change {
            let out_request_no = Some(text("out_request_no")).filter(|s| !s.is_empty());
            self.notify(
                &trade,
                &[
                    ("refund_fee", format_yuan(refund_fee)),
                    ("gmt_refund", format!("{}.000", beijing_time(now))),
                    ("out_biz_no", out_request_no.unwrap_or_else(|| trade.out_trade_no.clone())),
                ],
            );
        }
        let out = json!({
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "fund_change": if fund_change { "Y" } else { "N" },
            "refund_fee": format_yuan(refund_fee),
            "gmt_refund_pay": beijing_time(now),
            "buyer_user_id": trade.buyer_id,
        });
        Ok(out.as_object().cloned().unwrap_or_default())
    }

    fn refund_query(&self, biz: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
        let ledger = self.ledger();
        let key = Self::find(&ledger, biz)?;
        let trade = &ledger.trades[&key];
        let out_request_no = biz.get("out_request_no").and_then(Value::as_str).filter(|s| !s.is_empty());
        let Some(out_request_no) = out_request_no else {
            return Err(GatewayError::new("40002", "isv.missing-parameter", "out_request_no 不能为空"));
        };
        let Some(refund) = ledger.refunds.iter().find(|r| r.out_trade_no == key && r.out_request_no == out_request_no)
        else {
            // Alipay answers success without a refund_status for a refund it does not know.
            return Ok(Map::new());
        };
        let out = json!({
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": refund.out_request_no,
            "total_amount": format_yuan(trade.total_amount),
            "refund_amount": format_yuan(refund.amount),
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": beijing_time(refund.at),
        });
        Ok(out.as_object().cloned().unwrap_or_default())
    }

    fn close(&self, biz: &Map<String, Value>, now: DateTime<Utc>) -> Result<Map<String, Value>, GatewayError> {
        let trade = {
            let mut ledger = self.ledger();
            let key = Self::find(&ledger, biz)?;
            let trade = ledger.trades.get_mut(&key).expect("found");
            if trade.status != TradeStatus::WaitBuyerPay {
                return Err(GatewayError::business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
            }
            trade.status = TradeStatus::TradeClosed;
            trade.gmt_close = Some(now);
            trade.clone()
        };
        self.notify(&trade, &[]);
        let out = json!({"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no});
        Ok(out.as_object().cloned().unwrap_or_default())
    }

    /// `alipay.trade.wap.pay`: checks the request and shows the cashier (or an error page).
    fn cashier(&self, params: &BTreeMap<String, String>) -> Html<String> {
        let now = Utc::now();
        let error_page = |e: GatewayError| {
            let code = e.sub_code.strip_prefix("isv.").unwrap_or(e.sub_code);
            Html(pages::request_error(code, &e.sub_msg).into_string())
        };
        let certificate_mode = match self.check_request(params, now) {
            Ok(mode) => mode,
            Err(e) => return error_page(e),
        };
        if params.get("method").map(String::as_str) != Some("alipay.trade.wap.pay") {
            return error_page(GatewayError::new("40002", "isv.invalid-method", "不存在的方法名"));
        }
        let biz = match params.get("biz_content").map(|b| serde_json::from_str::<Value>(b)) {
            Some(Ok(Value::Object(biz))) => biz,
            _ => return error_page(GatewayError::new("40002", "isv.invalid-parameter", "biz_content 无效")),
        };
        let text = |name: &str| biz.get(name).and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty());
        let invalid =
            |what: &str| error_page(GatewayError::new("40002", "isv.invalid-parameter", format!("{what} 无效")));
        let Some(out_trade_no) = text("out_trade_no").filter(|s| s.len() <= 64) else { return invalid("out_trade_no") };
        let Some(amount) =
            text("total_amount").and_then(|a| parse_yuan(&a).ok()).filter(|a| *a >= Fen(1) && *a <= MAX_AMOUNT)
        else {
            return invalid("total_amount");
        };
        let Some(subject) = text("subject").filter(|s| !s.contains(['/', '=', '&'])) else { return invalid("subject") };
        if text("product_code").as_deref() != Some("QUICK_WAP_WAY") {
            return invalid("product_code");
        }
        let time_expire = match text("time_expire") {
            Some(t) => match parse_beijing_time(&t) {
                Some(t) => Some(t),
                None => return invalid("time_expire"),
            },
            None => None,
        };
        let url = |name: &str| params.get(name).filter(|u| !u.is_empty()).cloned();
        let mut ledger = self.ledger();
        let trade = ledger.trades.entry(out_trade_no.clone()).or_insert_with(|| SimTrade {
            out_trade_no: out_trade_no.clone(),
            trade_no: format!(
                "{}22001{}",
                beijing_time(now).get(..10).unwrap_or("").replace('-', ""),
                random_digits(15)
            ),
            subject: subject.clone(),
            total_amount: amount,
            status: TradeStatus::WaitBuyerPay,
            refunded: Fen(0),
            notify_url: None,
            return_url: None,
            quit_url: None,
            time_expire,
            gmt_create: now,
            gmt_payment: None,
            gmt_close: None,
            buyer_id: format!("2088{}", random_digits(12)),
            buyer_logon_id: format!("{}***@example.com", random_digits(3)),
            certificate_mode,
        });
        if trade.total_amount != amount || trade.subject != subject {
            return error_page(GatewayError::business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
        }
        if trade.status == TradeStatus::WaitBuyerPay && trade.time_expire.is_some_and(|t| t <= now) {
            trade.status = TradeStatus::TradeClosed;
            trade.gmt_close = Some(now);
        }
        match trade.status {
            TradeStatus::TradeSuccess => {
                Html(pages::message("订单已支付", "该订单已支付成功，请勿重复付款。").into_string())
            }
            TradeStatus::TradeClosed => {
                Html(pages::message("交易已关闭", "该交易已关闭或已超时，无法付款。").into_string())
            }
            TradeStatus::WaitBuyerPay => {
                trade.notify_url = url("notify_url");
                trade.return_url = url("return_url");
                trade.quit_url = text("quit_url");
                trade.time_expire = time_expire;
                Html(
                    pages::cashier(&trade.subject, trade.total_amount, &trade.trade_no, trade.quit_url.as_deref())
                        .into_string(),
                )
            }
        }
    }
}

/// Query and form parameters together; a parameter given twice is refused.
fn parameters(query: Option<&str>, body: &[u8]) -> Result<BTreeMap<String, String>, GatewayError> {
    let mut params = BTreeMap::new();
    let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).chain(form_urlencoded::parse(body));
    for (key, value) in pairs {
        if params.insert(key.into_owned(), value.into_owned()).is_some() {
            return Err(GatewayError::new("40002", "isv.invalid-parameter", "参数重复"));
        }
    }
    Ok(params)
}

async fn gateway_get(State(sim): State<Sim>, RawQuery(query): RawQuery) -> Response {
    match parameters(query.as_deref(), &[]) {
        Ok(params) => sim.alipay.cashier(&params).into_response(),
        Err(e) => Html(pages::request_error("invalid-parameter", &e.sub_msg).into_string()).into_response(),
    }
}

async fn gateway_post(State(sim): State<Sim>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let params = match parameters(query.as_deref(), &body) {
        Ok(params) => params,
        Err(e) => {
            let mode = query.as_deref().is_some_and(|q| q.contains("app_cert_sn="));
            let answer = sim.alipay.answer(ERROR_RESPONSE, &e.content(), mode);
            return ([(header::CONTENT_TYPE, "application/json;charset=utf-8")], answer).into_response();
        }
    };
    if params.get("method").map(String::as_str) == Some("alipay.trade.wap.pay") {
        // The SDKs' auto-submitting form posts the page request.
        return sim.alipay.cashier(&params).into_response();
    }
    ([(header::CONTENT_TYPE, "application/json;charset=utf-8")], sim.alipay.api(&params)).into_response()
}

/// The cashier button's form.
#[derive(serde::Deserialize)]
struct PayForm {
    trade_no: String,
}

async fn pay_page(State(sim): State<Sim>, Form(form): Form<PayForm>) -> Response {
    let out_trade_no =
        sim.alipay.ledger().trades.values().find(|t| t.trade_no == form.trade_no).map(|t| t.out_trade_no.clone());
    let Some(out_trade_no) = out_trade_no else {
        return (StatusCode::NOT_FOUND, Html(pages::message("交易不存在", "找不到该交易。").into_string()))
            .into_response();
    };
    match sim.alipay.pay(&out_trade_no) {
        Ok((_, Some(return_url))) => Redirect::to(&return_url).into_response(),
        Ok((trade, None)) => Html(
            pages::message("支付成功", &format!("已付款 ¥{}，请返回商家页面。", trade.total_amount.yuan()))
                .into_string(),
        )
        .into_response(),
        Err(e) => {
            let text = match e {
                PayError::NoSuchTrade(_) => "找不到该交易。",
                PayError::NotPayable(_, "TRADE_SUCCESS") => "该订单已支付成功，请勿重复付款。",
                PayError::NotPayable(..) => "该交易已关闭或已超时，无法付款。",
            };
            (StatusCode::CONFLICT, Html(pages::message("无法付款", text).into_string())).into_response()
        }
    }
}

/// The Alipay routes: `/gateway.do` (GET and POST) and the cashier's pay button.
pub fn routes() -> Router<Sim> {
    Router::new().route("/gateway.do", get(gateway_get).post(gateway_post)).route(pages::PAY_PATH, post(pay_page))
}
