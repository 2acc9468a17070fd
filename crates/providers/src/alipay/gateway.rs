//! The Alipay payment gateway adapter (OpenAPI 2.0, RSA2), in public-key or certificate mode.
//!
//! - Payments start with `alipay.trade.wap.pay` as a signed GET URL on the gateway that the
//!   applicant's browser opens (Alipay's mobile cashier); the result arrives as a trade
//!   notification.
//! - `alipay.trade.query`, `alipay.trade.refund`, `alipay.trade.fastpay.refund.query` and
//!   `alipay.trade.close` are form POSTs; every answer must carry a valid signature over the
//!   raw `…_response` text (and, in certificate mode, name our Alipay certificate), or it is
//!   not believed.
//! - A refund is settled by the answer itself (`fund_change=Y`); a repeated refund answers
//!   `fund_change=N` and is then confirmed with `alipay.trade.fastpay.refund.query`. Alipay
//!   sends no refund notification for this flow, so a refund is never left `Pending`.

use super::amount::{MAX_AMOUNT, format_yuan, parse_yuan};
use super::cert_sn::{CertificateInfo, certificate_info, root_cert_sn};
use super::config::{AlipayConfig, AlipayKeyMode, PROVIDER};
use super::notify::{self, Recipient};
use super::response::{ERROR_RESPONSE, split_answer};
use super::sign;
use crate::payment::{
    GatewayNotification, GatewayTrade, NotificationRejected, PaymentGateway, PaymentRequest, PaymentStart,
    RefundOutcome, RefundRequest, SignedNotification,
};
use crate::rsa::{RsaSigner, RsaVerifier};
use crate::{ConfigError, ProviderError, check_base_url, http_client};
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use yiqian_domain::{Fen, PaymentId};

/// Alipay's clock: Beijing time, UTC+8, no daylight saving.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A time as Alipay writes it: `yyyy-MM-dd HH:mm:ss` in Beijing time.
pub fn beijing_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Reads a `yyyy-MM-dd HH:mm:ss` Beijing time.
pub fn parse_beijing_time(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
    beijing().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

/// Sub-codes of `40004` that a later retry may get past.
const TRANSIENT_SUB_CODES: &[&str] = &["ACQ.SYSTEM_ERROR", "ACQ.SELLER_BALANCE_NOT_ENOUGH", "ACQ.REFUND_CHARGE_ERROR"];

/// Until when the certificates of certificate mode are valid (for a configuration check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateValidity {
    /// The application certificate's notAfter.
    pub app_cert_not_after: DateTime<Utc>,
    /// Alipay's certificate's notAfter.
    pub alipay_cert_not_after: DateTime<Utc>,
}

/// Certificate mode's serial numbers.
#[derive(Debug, Clone)]
struct CertificateMode {
    app_cert_sn: String,
    alipay_root_cert_sn: String,
    alipay_cert_sn: String,
    validity: CertificateValidity,
}

/// The Alipay gateway. `Debug` shows no key.
pub struct AlipayGateway {
    gateway_url: String,
    app_id: String,
    seller_id: Option<String>,
    notify_url: String,
    signer: RsaSigner,
    alipay: RsaVerifier,
    certificates: Option<CertificateMode>,
    http: reqwest::Client,
}

impl fmt::Debug for AlipayGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayGateway")
            .field("gateway_url", &self.gateway_url)
            .field("app_id", &self.app_id)
            .field("certificate_mode", &self.certificates.is_some())
            .finish_non_exhaustive()
    }
}

/// A gateway answer whose signature checked out.
#[derive(Debug)]
struct Reply {
    code: String,
    sub_code: String,
    content: Map<String, Value>,
}

impl Reply {
    fn ok(&self) -> bool {
        self.code == "10000"
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.content.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

fn config_error(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(PROVIDER, field, message)
}

fn transient(detail: impl Into<String>) -> ProviderError {
    ProviderError::Transient { provider: PROVIDER, detail: detail.into() }
}

fn rejected(detail: impl Into<String>) -> ProviderError {
    ProviderError::Rejected { provider: PROVIDER, detail: detail.into() }
}

fn checked_certificate(field: &'static str, pem: &str, now: DateTime<Utc>) -> Result<CertificateInfo, ConfigError> {
    let info = certificate_info(pem).map_err(|e| config_error(field, e.to_string()))?;
    if info.not_after <= now {
        return Err(config_error(field, format!("the certificate expired on {}", info.not_after.format("%Y-%m-%d"))));
    }
    if info.not_before > now {
        return Err(config_error(field, format!("the certificate is valid only from {}", info.not_before)));
    }
    Ok(info)
}

/// The `subject` Alipay accepts: no `/`, `=` or `&`, at most 256 characters.
fn subject(description: &str) -> String {
    let cleaned: String =
        description.chars().map(|c| if matches!(c, '/' | '=' | '&') || c.is_control() { ' ' } else { c }).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() { "订单".to_owned() } else { trimmed.chars().take(256).collect() }
}

/// Percent-encodes query parameters (spaces as `%20`, as the SDKs' `encodeURIComponent`).
fn query_string(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| {
            let key: String = form_urlencoded::byte_serialize(k.as_bytes()).collect();
            let value: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
            // byte_serialize writes a space as `+` and a literal `+` as `%2B`.
            format!("{key}={}", value.replace('+', "%20"))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Serialize)]
struct WapPayBiz<'a> {
    out_trade_no: &'a str,
    total_amount: String,
    subject: String,
    product_code: &'static str,
    quit_url: &'a str,
    time_expire: String,
}

#[derive(Serialize)]
struct RefundBiz<'a> {
    out_trade_no: &'a str,
    refund_amount: String,
    out_request_no: &'a str,
    refund_reason: &'a str,
}

#[derive(Serialize)]
struct RefundQueryBiz<'a> {
    out_trade_no: &'a str,
    out_request_no: &'a str,
}

#[derive(Serialize)]
struct TradeBiz<'a> {
    out_trade_no: &'a str,
}

fn biz_json(biz: &impl Serialize) -> Result<String, ProviderError> {
    serde_json::to_string(biz).map_err(|e| rejected(format!("biz_content: {e}")))
}

impl AlipayGateway {
    /// Checks the configuration without a network call: the private key loads, Alipay's key
    /// or certificates load and are valid now (the application certificate must hold our
    /// key), their SNs are computed, and every URL is well-formed.
    pub fn new(config: AlipayConfig) -> Result<AlipayGateway, ConfigError> {
        Self::new_at(config, Utc::now())
    }

    /// [`AlipayGateway::new`] as of `now` (certificate validity).
    pub fn new_at(config: AlipayConfig, now: DateTime<Utc>) -> Result<AlipayGateway, ConfigError> {
        check_base_url(PROVIDER, "gateway_url", &config.gateway_url)?;
        check_base_url(PROVIDER, "notify_url", &config.notify_url)?;
        if config.app_id.is_empty() || config.app_id.len() > 32 || !config.app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(config_error("app_id", "an app_id is a string of digits"));
        }
        if let Some(seller) = &config.seller_id
            && (seller.len() != 16 || !seller.starts_with("2088") || !seller.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(config_error("seller_id", "a seller id is 16 digits starting with 2088"));
        }
        let signer = RsaSigner::from_pem(&config.app_private_key_pem)
            .map_err(|e| config_error("app_private_key", e.to_string()))?;
        let (alipay, certificates) = match &config.mode {
            AlipayKeyMode::PublicKey { alipay_public_key_pem } => {
                let key = RsaVerifier::from_pem(alipay_public_key_pem)
                    .map_err(|e| config_error("alipay_public_key", e.to_string()))?;
                (key, None)
            }
            AlipayKeyMode::Certificate { app_cert_pem, alipay_cert_pem, alipay_root_cert_pem } => {
                let app = checked_certificate("app_cert", app_cert_pem, now)?;
                let probe = b"yiqian alipay key check";
                let signature = signer.sign(probe).map_err(|e| config_error("app_private_key", e.to_string()))?;
                if !RsaVerifier::from_der(app.public_key_der.clone()).verify(probe, &signature) {
                    return Err(config_error("app_cert", "the certificate is not for the application's private key"));
                }
                let alipay = checked_certificate("alipay_cert", alipay_cert_pem, now)?;
                let root =
                    root_cert_sn(alipay_root_cert_pem).map_err(|e| config_error("alipay_root_cert", e.to_string()))?;
                if root.is_empty() {
                    return Err(config_error("alipay_root_cert", "the bundle holds no RSA root certificate"));
                }
                let mode = CertificateMode {
                    app_cert_sn: app.sn,
                    alipay_root_cert_sn: root,
                    alipay_cert_sn: alipay.sn,
                    validity: CertificateValidity {
                        app_cert_not_after: app.not_after,
                        alipay_cert_not_after: alipay.not_after,
                    },
                };
                (RsaVerifier::from_der(alipay.public_key_der), Some(mode))
            }
        };
        Ok(AlipayGateway {
            gateway_url: config.gateway_url,
            app_id: config.app_id,
            seller_id: config.seller_id,
            notify_url: config.notify_url,
            signer,
            alipay,
            certificates,
            http: http_client(),
        })
    }

    /// Certificate mode: until when the certificates are valid; `None` in public-key mode.
    pub fn certificate_validity(&self) -> Option<CertificateValidity> {
        self.certificates.as_ref().map(|c| c.validity)
    }

    /// Certificate mode: `app_cert_sn`.
    pub fn app_cert_sn(&self) -> Option<&str> {
        self.certificates.as_ref().map(|c| c.app_cert_sn.as_str())
    }

    /// Certificate mode: `alipay_root_cert_sn`.
    pub fn alipay_root_cert_sn(&self) -> Option<&str> {
        self.certificates.as_ref().map(|c| c.alipay_root_cert_sn.as_str())
    }

    /// Certificate mode: the SN of the Alipay certificate answers must name.
    pub fn alipay_cert_sn(&self) -> Option<&str> {
        self.certificates.as_ref().map(|c| c.alipay_cert_sn.as_str())
    }

    /// The common parameters of a request to `method`, signed together with `extra`.
    fn signed_params(
        &self,
        method: &str,
        extra: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut params: BTreeMap<String, String> = [
            ("app_id", self.app_id.as_str()),
            ("method", method),
            ("format", "JSON"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        params.insert("timestamp".into(), beijing_time(now));
        if let Some(cert) = &self.certificates {
            params.insert("app_cert_sn".into(), cert.app_cert_sn.clone());
            params.insert("alipay_root_cert_sn".into(), cert.alipay_root_cert_sn.clone());
        }
        let signature = sign::sign_request(&self.signer, &params).map_err(|e| rejected(format!("signing: {e}")))?;
        params.insert("sign".into(), signature);
        Ok(params)
    }

    /// The signed `alipay.trade.wap.pay` URL the applicant's browser opens, as of `now`.
    pub fn pay_url(&self, request: &PaymentRequest, now: DateTime<Utc>) -> Result<String, ProviderError> {
        if request.amount < Fen(1) || request.amount > MAX_AMOUNT {
            return Err(rejected(format!("amount {} is outside 0.01–100000000.00 yuan", request.amount.yuan())));
        }
        if request.expires_at <= now {
            return Err(rejected("the payment has already expired"));
        }
        let return_url = reqwest::Url::parse(&request.return_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| rejected("return_url is not an http(s) URL"))?;
        let biz = biz_json(&WapPayBiz {
            out_trade_no: request.payment.as_str(),
            total_amount: format_yuan(request.amount),
            subject: subject(&request.description),
            product_code: "QUICK_WAP_WAY",
            quit_url: return_url.as_str(),
            time_expire: beijing_time(request.expires_at),
        })?;
        let params = self.signed_params(
            "alipay.trade.wap.pay",
            &[("biz_content", &biz), ("notify_url", &self.notify_url), ("return_url", return_url.as_str())],
            now,
        )?;
        Ok(format!("{}?{}", self.gateway_url, query_string(&params)))
    }

    /// Calls a server API: the common parameters in the query, `biz_content` in the form
    /// body (as Alipay's SDKs send them), and the answer verified.
    async fn call(&self, method: &str, biz_content: String) -> Result<Reply, ProviderError> {
        let mut params = self.signed_params(method, &[("biz_content", &biz_content)], Utc::now())?;
        let biz_content = params.remove("biz_content").unwrap_or_default();
        let url = format!("{}?{}", self.gateway_url, query_string(&params));
        let response = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("biz_content", biz_content)])
            .send()
            .await
            .map_err(|e| ProviderError::transport(PROVIDER, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ProviderError::transport(PROVIDER, e))?;
        if !status.is_success() {
            tracing::warn!(method, status = status.as_u16(), "alipay gateway answered with an HTTP error");
            return Err(transient(format!("{method}: HTTP {status}")));
        }
        let text = std::str::from_utf8(&body).map_err(|_| transient(format!("{method}: the answer is not UTF-8")))?;
        let reply = self.verify_answer(method, text)?;
        tracing::info!(method, code = %reply.code, sub_code = %reply.sub_code, "alipay answered");
        Ok(reply)
    }

    /// Checks an answer's signature over the raw response text, then reads it.
    fn verify_answer(&self, method: &str, text: &str) -> Result<Reply, ProviderError> {
        let raw = split_answer(text, method).map_err(|e| transient(format!("{method}: {e}")))?;
        let Some(signature) = raw.sign.as_deref().filter(|s| !s.is_empty()) else {
            tracing::warn!(method, "alipay answer without a signature");
            return Err(transient(format!("{method}: the answer is not signed")));
        };
        if !self.alipay.verify(raw.content.as_bytes(), signature) {
            tracing::warn!(method, "alipay answer with a signature that does not verify");
            return Err(transient(format!("{method}: the answer's signature does not verify")));
        }
        if let Some(cert) = &self.certificates
            && raw.alipay_cert_sn.as_deref() != Some(cert.alipay_cert_sn.as_str())
        {
            // Alipay names the certificate it signed with; another one means it has rotated
            // its certificate and the configuration needs the new one.
            tracing::warn!(method, "alipay answer signed under another alipay_cert_sn");
            return Err(transient(format!("{method}: the answer names another Alipay certificate")));
        }
        let content = match serde_json::from_str::<Value>(raw.content) {
            Ok(Value::Object(content)) => content,
            _ => return Err(transient(format!("{method}: the response is not a JSON object"))),
        };
        let text = |name: &str| content.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (code, sub_code) = (text("code"), text("sub_code"));
        if raw.key == ERROR_RESPONSE && code == "10000" {
            return Err(transient(format!("{method}: error_response claims success")));
        }
        Ok(Reply { code, sub_code, content })
    }

    /// The error for an answer other than `10000`.
    fn failure(method: &str, reply: &Reply) -> ProviderError {
        let detail = format!("{method}: code {}, sub_code {}", reply.code, reply.sub_code);
        tracing::warn!(method, code = %reply.code, sub_code = %reply.sub_code, "alipay refused a request");
        let transient_code = match reply.code.as_str() {
            "20000" => true,
            "40004" => {
                TRANSIENT_SUB_CODES.contains(&reply.sub_code.as_str())
                    || reply.sub_code.starts_with("isp.")
                    || reply.sub_code.starts_with("aop.")
            }
            _ => false,
        };
        if transient_code { transient(detail) } else { rejected(detail) }
    }

    /// Checks that an answer is about `payment` when it says which trade it is about.
    fn same_trade(method: &str, reply: &Reply, payment: &PaymentId) -> Result<(), ProviderError> {
        match reply.text("out_trade_no") {
            Some(other) if other != payment.as_str() => {
                Err(rejected(format!("{method}: the answer is about another trade")))
            }
            _ => Ok(()),
        }
    }

    fn amount(method: &str, reply: &Reply, field: &str) -> Result<Fen, ProviderError> {
        let text = reply.text(field).ok_or_else(|| transient(format!("{method}: the answer lacks {field}")))?;
        parse_yuan(text).map_err(|e| transient(format!("{method}: {field}: {e}")))
    }

    /// Confirms a refund Alipay did not report as moving money on this call (a retry).
    async fn confirm_refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        const METHOD: &str = "alipay.trade.fastpay.refund.query";
        let biz = biz_json(&RefundQueryBiz {
            out_trade_no: request.payment.as_str(),
            out_request_no: request.refund.as_str(),
        })?;
        let reply = self.call(METHOD, biz).await?;
        if !reply.ok() {
            return Err(Self::failure(METHOD, &reply));
        }
        Self::same_trade(METHOD, &reply, &request.payment)?;
        if reply.text("refund_status") != Some("REFUND_SUCCESS") {
            return Err(transient(format!("{METHOD}: refund {} is not confirmed yet", request.refund)));
        }
        if let Some(other) = reply.text("out_request_no")
            && other != request.refund.as_str()
        {
            return Err(rejected(format!("{METHOD}: the answer is about another refund")));
        }
        let amount = Self::amount(METHOD, &reply, "refund_amount")?;
        if amount != request.amount {
            return Err(rejected(format!(
                "{METHOD}: refund {} was made for {} yuan, not {}",
                request.refund,
                amount.yuan(),
                request.amount.yuan()
            )));
        }
        let trade_no =
            reply.text("trade_no").ok_or_else(|| transient(format!("{METHOD}: the answer lacks trade_no")))?;
        Ok(RefundOutcome::Succeeded { gateway_refund: trade_no.to_owned() })
    }
}

#[async_trait]
impl PaymentGateway for AlipayGateway {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<PaymentStart, ProviderError> {
        Ok(PaymentStart::Redirect { pay_url: self.pay_url(request, Utc::now())? })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        const METHOD: &str = "alipay.trade.refund";
        if request.amount < Fen(1) || request.amount > request.payment_amount {
            return Err(rejected(format!("refund of {} yuan out of range", request.amount.yuan())));
        }
        let reason: String = request.reason.chars().take(256).collect();
        let biz = biz_json(&RefundBiz {
            out_trade_no: request.payment.as_str(),
            refund_amount: format_yuan(request.amount),
            out_request_no: request.refund.as_str(),
            refund_reason: &reason,
        })?;
        let reply = self.call(METHOD, biz).await?;
        if !reply.ok() {
            return Err(Self::failure(METHOD, &reply));
        }
        Self::same_trade(METHOD, &reply, &request.payment)?;
        match reply.text("fund_change") {
            Some("Y") => {
                let trade_no =
                    reply.text("trade_no").ok_or_else(|| transient(format!("{METHOD}: the answer lacks trade_no")))?;
                Ok(RefundOutcome::Succeeded { gateway_refund: trade_no.to_owned() })
            }
            // Typically a retry of a refund already made: ask what became of it.
            _ => self.confirm_refund(request).await,
        }
    }

    async fn query_payment(&self, payment: &PaymentId) -> Result<GatewayTrade, ProviderError> {
        const METHOD: &str = "alipay.trade.query";
        let reply = self.call(METHOD, biz_json(&TradeBiz { out_trade_no: payment.as_str() })?).await?;
        if reply.code == "40004" && reply.sub_code == "ACQ.TRADE_NOT_EXIST" {
            return Ok(GatewayTrade::NotFound);
        }
        if !reply.ok() {
            return Err(Self::failure(METHOD, &reply));
        }
        Self::same_trade(METHOD, &reply, payment)?;
        let status = reply.text("trade_status").ok_or_else(|| transient(format!("{METHOD}: no trade_status")))?;
        let paid = || -> Result<(String, Fen), ProviderError> {
            let trade_no = reply.text("trade_no").ok_or_else(|| transient(format!("{METHOD}: no trade_no")))?;
            Ok((trade_no.to_owned(), Self::amount(METHOD, &reply, "total_amount")?))
        };
        match status {
            "WAIT_BUYER_PAY" => Ok(GatewayTrade::NotPaid),
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                let (gateway_txn, amount) = paid()?;
                Ok(GatewayTrade::Paid { gateway_txn, amount })
            }
            "TRADE_CLOSED" => {
                // Closed after payment means refunded in full; closed unpaid leaves no trace
                // of money (no send_pay_date, nothing paid by the buyer).
                let buyer_paid = match reply.text("buyer_pay_amount") {
                    Some(text) => parse_yuan(text).map_err(|e| transient(format!("{METHOD}: {e}")))? > Fen(0),
                    None => false,
                };
                if buyer_paid || reply.text("send_pay_date").is_some() {
                    let (gateway_txn, amount) = paid()?;
                    Ok(GatewayTrade::Refunded { gateway_txn, amount })
                } else {
                    Ok(GatewayTrade::Closed)
                }
            }
            other => Err(transient(format!("{METHOD}: unknown trade_status {other}"))),
        }
    }

    async fn close_payment(&self, payment: &PaymentId) -> Result<(), ProviderError> {
        const METHOD: &str = "alipay.trade.close";
        let reply = self.call(METHOD, biz_json(&TradeBiz { out_trade_no: payment.as_str() })?).await?;
        if reply.ok() {
            return Self::same_trade(METHOD, &reply, payment);
        }
        match (reply.code.as_str(), reply.sub_code.as_str()) {
            // The payer never reached the cashier: there is nothing to close.
            ("40004", "ACQ.TRADE_NOT_EXIST") => Ok(()),
            // Closed already — or paid, which closing cannot undo.
            ("40004", "ACQ.TRADE_STATUS_ERROR") => match self.query_payment(payment).await? {
                GatewayTrade::Closed | GatewayTrade::NotFound => Ok(()),
                _ => Err(Self::failure(METHOD, &reply)),
            },
            _ => Err(Self::failure(METHOD, &reply)),
        }
    }

    fn verify_notification(
        &self,
        n: &SignedNotification,
        _now: DateTime<Utc>,
    ) -> Result<GatewayNotification, NotificationRejected> {
        // No freshness window: see the `notify` module (Alipay retries for ~25 h with the
        // same notify_id; duplicates are absorbed downstream by that id).
        let recipient = Recipient { app_id: &self.app_id, seller_id: self.seller_id.as_deref(), alipay: &self.alipay };
        let result = notify::interpret(&n.body, &recipient);
        if let Err(e) = &result {
            tracing::warn!(reason = %e, "alipay notification refused");
        }
        result
    }

    fn acknowledgement(&self) -> (u16, &'static str, &'static str) {
        (200, "text/plain", "success")
    }

    fn refusal(&self) -> (u16, &'static str, &'static str) {
        (400, "text/plain", "fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::Payer;
    use yiqian_domain::OrderId;
    use yiqian_domain::payment::Channel;

    const APP_KEY: &str = include_str!("../../testdata/ali_app_priv.pem");
    const APP_PUB: &str = include_str!("../../testdata/ali_app_pub.pem");
    const NOTIFY_V1_PUB: &str = include_str!("../../testdata/ali_notify_v1_pub.pem");
    const NOTIFY_V1_BODY: &[u8] = include_bytes!("../../testdata/ali_notify_v1.form");

    fn config(app_id: &str, alipay_public_key_pem: &str) -> AlipayConfig {
        AlipayConfig::new(
            app_id,
            APP_KEY,
            AlipayKeyMode::PublicKey { alipay_public_key_pem: alipay_public_key_pem.into() },
            "https://yiqian.example.com/notify/alipay",
        )
    }

    fn notification(body: &[u8]) -> SignedNotification {
        SignedNotification { headers: vec![], body: body.to_vec() }
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_beijing_time(text).unwrap()
    }

    /// AL-2 through the adapter: Alipay's own notification is a payment.
    #[test]
    fn a_genuine_notification_is_a_payment() {
        let gateway = AlipayGateway::new(config("2019073166072302", NOTIFY_V1_PUB)).unwrap();
        let expected = GatewayNotification::PaymentSucceeded {
            notification_id: "2019081500222155624068450559358070".into(),
            payment: PaymentId::parse("20190815155618536-564-57").unwrap(),
            gateway_txn: "2019081522001468450512505578".into(),
            amount: Fen(10),
        };
        // Years later still: Alipay's retries make old notifications normal.
        assert_eq!(gateway.verify_notification(&notification(NOTIFY_V1_BODY), Utc::now()), Ok(expected.clone()));

        let mut with_seller = config("2019073166072302", NOTIFY_V1_PUB);
        with_seller.seller_id = Some("2088531891668739".into());
        let gateway = AlipayGateway::new(with_seller.clone()).unwrap();
        assert_eq!(gateway.verify_notification(&notification(NOTIFY_V1_BODY), Utc::now()), Ok(expected));
        with_seller.seller_id = Some("2088000000000000".into());
        let other_seller = AlipayGateway::new(with_seller).unwrap();
        assert_eq!(
            other_seller.verify_notification(&notification(NOTIFY_V1_BODY), Utc::now()),
            Err(NotificationRejected::UnknownKey)
        );
    }

    #[test]
    fn notifications_that_do_not_check_out_are_refused() {
        let gateway = AlipayGateway::new(config("2019073166072302", NOTIFY_V1_PUB)).unwrap();
        let body = String::from_utf8(NOTIFY_V1_BODY.to_vec()).unwrap();
        let verify = |body: &str| gateway.verify_notification(&notification(body.as_bytes()), Utc::now());
        assert_eq!(
            verify(&body.replace("total_amount=0.10", "total_amount=100.10")),
            Err(NotificationRejected::BadSignature)
        );
        let unsigned: Vec<&str> = body.split('&').filter(|p| !p.starts_with("sign=")).collect();
        assert_eq!(verify(&unsigned.join("&")), Err(NotificationRejected::MissingSignature));
        assert!(matches!(verify(&format!("{body}&trade_no=1")), Err(NotificationRejected::Malformed(_))));
        // Another application's notification (the key is right, the app is not ours).
        let foreign = AlipayGateway::new(config("2021000000000001", NOTIFY_V1_PUB)).unwrap();
        assert_eq!(
            foreign.verify_notification(&notification(NOTIFY_V1_BODY), Utc::now()),
            Err(NotificationRejected::UnknownKey)
        );
        // The wrong Alipay key.
        let wrong_key = AlipayGateway::new(config("2019073166072302", APP_PUB)).unwrap();
        assert_eq!(
            wrong_key.verify_notification(&notification(NOTIFY_V1_BODY), Utc::now()),
            Err(NotificationRejected::BadSignature)
        );
    }

    /// Notifications signed with the fixture app key standing in for Alipay's.
    fn signed(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut map: BTreeMap<String, String> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("sign_type".into(), "RSA2".into());
        let signature = RsaSigner::from_pem(APP_KEY)
            .unwrap()
            .sign(sign::sign_content(&map, sign::NOTIFY_EXCLUDES).as_bytes())
            .unwrap();
        map.insert("sign".into(), signature);
        form_urlencoded::Serializer::new(String::new()).extend_pairs(&map).finish().into_bytes()
    }

    #[test]
    fn refund_callbacks_and_other_states_are_informational() {
        let gateway = AlipayGateway::new(config("2021000000000001", APP_PUB)).unwrap();
        let base = [
            ("app_id", "2021000000000001"),
            ("notify_id", "N1"),
            ("notify_type", "trade_status_sync"),
            ("out_trade_no", "P1"),
            ("trade_no", "2026010122001400000000000001"),
            ("total_amount", "150.00"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let fields: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            gateway.verify_notification(&notification(&signed(&fields)), Utc::now())
        };
        assert!(matches!(
            with(&[("trade_status", "TRADE_SUCCESS")]),
            Ok(GatewayNotification::PaymentSucceeded { amount: Fen(15000), .. })
        ));
        for extra in [
            &[("trade_status", "TRADE_SUCCESS"), ("refund_fee", "50.00"), ("gmt_refund", "2026-01-01 12:00:00")][..],
            &[("trade_status", "TRADE_CLOSED"), ("refund_fee", "150.00")],
            &[("trade_status", "TRADE_CLOSED")],
            &[("trade_status", "WAIT_BUYER_PAY")],
        ] {
            assert!(matches!(with(extra), Ok(GatewayNotification::Informational { .. })), "{extra:?}");
        }
        assert!(matches!(
            with(&[("trade_status", "TRADE_SUCCESS"), ("total_amount", "1.5e2")]),
            Err(NotificationRejected::Malformed(_))
        ));
    }

    fn payment() -> PaymentRequest {
        PaymentRequest {
            payment: PaymentId::parse("P20260101ABC").unwrap(),
            order: OrderId::parse("YQ20260101K7M2Q9XW").unwrap(),
            amount: Fen(15000),
            channel: Channel::Alipay,
            description: "个人数字证书 A&B/C=D".into(),
            return_url: "https://yiqian.example.com/orders/YQ20260101K7M2Q9XW?paid=1".into(),
            payer: Payer::default(),
            expires_at: at("2026-01-01 12:30:00"),
        }
    }

    #[test]
    fn the_pay_url_is_a_signed_wap_pay_request() {
        let gateway = AlipayGateway::new(config("2021000000000001", APP_PUB)).unwrap();
        let url = gateway.pay_url(&payment(), at("2026-01-01 12:00:00")).unwrap();
        assert!(url.starts_with("https://openapi.alipay.com/gateway.do?"));
        assert!(!url.contains('+'), "spaces are %20");
        let query = reqwest::Url::parse(&url).unwrap();
        let params: BTreeMap<String, String> = query.query_pairs().into_owned().collect();
        assert_eq!(params["method"], "alipay.trade.wap.pay");
        assert_eq!(params["app_id"], "2021000000000001");
        assert_eq!(params["timestamp"], "2026-01-01 12:00:00");
        assert_eq!(params["sign_type"], "RSA2");
        assert_eq!(params["charset"], "utf-8");
        assert_eq!(params["notify_url"], "https://yiqian.example.com/notify/alipay");
        assert_eq!(params["return_url"], "https://yiqian.example.com/orders/YQ20260101K7M2Q9XW?paid=1");
        assert!(!params.contains_key("app_cert_sn"));
        let biz: Value = serde_json::from_str(&params["biz_content"]).unwrap();
        assert_eq!(biz["out_trade_no"], "P20260101ABC");
        assert_eq!(biz["total_amount"], "150.00");
        assert_eq!(biz["subject"], "个人数字证书 A B C D");
        assert_eq!(biz["product_code"], "QUICK_WAP_WAY");
        assert_eq!(biz["quit_url"], params["return_url"]);
        assert_eq!(biz["time_expire"], "2026-01-01 12:30:00");
        let app = RsaVerifier::from_pem(APP_PUB).unwrap();
        assert!(app.verify(sign::sign_content(&params, sign::REQUEST_EXCLUDES).as_bytes(), &params["sign"]));

        let mut free = payment();
        free.amount = Fen(0);
        assert!(matches!(gateway.pay_url(&free, at("2026-01-01 12:00:00")), Err(ProviderError::Rejected { .. })));
        assert!(matches!(gateway.pay_url(&payment(), at("2026-01-01 13:00:00")), Err(ProviderError::Rejected { .. })));
    }

    /// AL-3 through the adapter: Alipay's signed answer, cut out of the raw text.
    #[test]
    fn a_genuine_answer_verifies_and_a_tampered_one_does_not() {
        let gateway =
            AlipayGateway::new(config("2021000000000001", include_str!("../../testdata/ali_pub.pem"))).unwrap();
        let answer = r#"{"alipay_open_file_upload_response":{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"},"sign":"F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw=="}"#;
        let reply = gateway.verify_answer("alipay.open.file.upload", answer).unwrap();
        assert!(reply.ok());
        assert_eq!(reply.text("file_id"), Some("CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"));
        // Re-serialising with a space would break the signature: the raw text is what counts.
        let spaced = answer.replace(r#""code":"10000""#, r#""code": "10000""#);
        assert!(matches!(
            gateway.verify_answer("alipay.open.file.upload", &spaced),
            Err(ProviderError::Transient { .. })
        ));
        let altered = answer.replace("CAxAToWB1JsA", "CAxAToWB1JsB");
        assert!(gateway.verify_answer("alipay.open.file.upload", &altered).is_err());
        let unsigned = answer.split(r#","sign""#).next().unwrap().to_owned() + "}";
        assert!(gateway.verify_answer("alipay.open.file.upload", &unsigned).is_err());
    }

    #[test]
    fn errors_map_to_transient_or_rejected() {
        let reply =
            |code: &str, sub_code: &str| Reply { code: code.into(), sub_code: sub_code.into(), content: Map::new() };
        let failure = |code, sub| AlipayGateway::failure("alipay.trade.refund", &reply(code, sub));
        assert!(failure("20000", "isp.unknow-error").is_transient());
        assert!(failure("40004", "ACQ.SYSTEM_ERROR").is_transient());
        assert!(!failure("40004", "ACQ.TRADE_STATUS_ERROR").is_transient());
        assert!(!failure("40002", "isv.invalid-signature").is_transient());
        assert!(!failure("40006", "isv.insufficient-isv-permissions").is_transient());
    }

    #[test]
    fn configuration_is_checked_up_front() {
        let err = |c: AlipayConfig| AlipayGateway::new(c).unwrap_err().field;
        let mut c = config("2021000000000001", APP_PUB);
        c.app_private_key_pem = "not a key".into();
        assert_eq!(err(c), "app_private_key");
        assert_eq!(err(config("2021000000000001", "not a key")), "alipay_public_key");
        assert_eq!(err(config("app-1", APP_PUB)), "app_id");
        let mut c = config("2021000000000001", APP_PUB);
        c.gateway_url = "openapi.alipay.com/gateway.do".into();
        assert_eq!(err(c), "gateway_url");
        let mut c = config("2021000000000001", APP_PUB);
        c.notify_url = "https://example.com/notify?x=1".into();
        assert_eq!(err(c), "notify_url");
        let mut c = config("2021000000000001", APP_PUB);
        c.seller_id = Some("12345".into());
        assert_eq!(err(c), "seller_id");

        // Certificate mode with the SDK's certificates: expired since 2022.
        let mut c = config("2021000000000001", APP_PUB);
        c.mode = AlipayKeyMode::Certificate {
            app_cert_pem: include_str!("../../testdata/appcert.crt").into(),
            alipay_cert_pem: include_str!("../../testdata/appcert.crt").into(),
            alipay_root_cert_pem: include_str!("../../testdata/root.crt").into(),
        };
        let e = AlipayGateway::new(c.clone()).unwrap_err();
        assert_eq!((e.field, e.message.contains("expired")), ("app_cert", true));
        // While it was valid, its key was not ours: refused too.
        assert_eq!(AlipayGateway::new_at(c, at("2021-01-01 00:00:00")).unwrap_err().field, "app_cert");
    }

    #[test]
    fn beijing_time_round_trips() {
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap(); // 2026-01-01T00:00:00Z
        assert_eq!(beijing_time(t), "2026-01-01 08:00:00");
        assert_eq!(parse_beijing_time("2026-01-01 08:00:00"), Some(t));
        assert_eq!(parse_beijing_time("2026-01-01T08:00:00"), None);
        assert_eq!(subject(" / "), "订单");
    }
}
