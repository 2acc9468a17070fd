//! The WeChat Pay v3 payment gateway: JSAPI and H5 orders, query, close, refunds, and
//! notifications, over signed HTTPS calls whose answers are verified before they are trusted.
//!
//! Every request is signed over the exact bytes sent. A 2xx answer is trusted only when its
//! `Wechatpay-*` signature verifies over the raw body; an error answer that carries signature
//! headers must verify too (an unsigned one, e.g. from a proxy, is taken at its status).

use super::certificates::{CertificateError, PlatformCertificate, open_certificate_list};
use super::config::{PROVIDER, Validated, WechatPayConfig};
use super::notification::{NotificationContext, parse_notification};
use super::signing::MerchantSigner;
use super::verify::{SignatureHeaders, WechatPayKeys};
use crate::payment::{
    BillEntry, GatewayNotification, GatewayTrade, NotificationRejected, PaymentGateway, PaymentRequest, PaymentStart,
    RefundOutcome, RefundRequest, SignedNotification,
};
use crate::{ConfigError, ProviderError};
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::RwLock;
use yiqian_domain::{Fen, PaymentId};

/// The `User-Agent` WeChat Pay requires on every call.
const USER_AGENT: &str = concat!("yiqian/", env!("CARGO_PKG_VERSION"));

/// A platform certificate the gateway trusts, for a configuration check to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Its serial (normalised: upper case, no leading zeros).
    pub serial: String,
    /// When it expires.
    pub not_after: DateTime<Utc>,
}

/// The WeChat Pay v3 adapter (direct merchant). Cheap to share behind an `Arc`.
pub struct WechatPayGateway {
    pub(super) base_url: String,
    mchid: String,
    appid: String,
    notify_url: String,
    /// `Wechatpay-Serial` sent with requests in public-key mode.
    public_key_id: Option<String>,
    signer: MerchantSigner,
    apiv3_key: Vec<u8>,
    keys: RwLock<WechatPayKeys>,
    http: reqwest::Client,
}

impl std::fmt::Debug for WechatPayGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayGateway")
            .field("base_url", &self.base_url)
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

/// A raw answer.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
    timestamp: Option<String>,
    nonce: Option<String>,
    signature: Option<String>,
    serial: Option<String>,
}

impl Answer {
    fn signature_headers(&self) -> Option<SignatureHeaders<'_>> {
        Some(SignatureHeaders {
            timestamp: self.timestamp.as_deref()?,
            nonce: self.nonce.as_deref()?,
            signature: self.signature.as_deref()?,
            serial: self.serial.as_deref()?,
        })
    }
}

#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub(super) code: Option<String>,
}

fn random_nonce() -> String {
    hex::encode_upper(rand::thread_rng().r#gen::<[u8; 16]>())
}

/// The longest `description` WeChat Pay takes, in bytes.
const MAX_DESCRIPTION_BYTES: usize = 127;
/// The longest refund `reason`, in characters.
const MAX_REASON_CHARS: usize = 80;

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether `id` is a usable `out_trade_no` / `out_refund_no`: 6–32 of `[0-9A-Za-z_-|*]`.
fn valid_out_no(id: &str) -> bool {
    (6..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b))
}

/// `time_expire`: RFC 3339 in China Standard Time, e.g. `2018-06-08T10:34:56+08:00`.
pub fn time_expire(at: DateTime<Utc>) -> String {
    let cst = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    at.with_timezone(&cst).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Serialize)]
struct Amount {
    total: u64,
    currency: &'static str,
}

#[derive(Serialize)]
struct JsapiPayer<'a> {
    openid: &'a str,
}

#[derive(Serialize)]
struct H5Info {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct SceneInfo<'a> {
    payer_client_ip: &'a str,
    h5_info: H5Info,
}

#[derive(Serialize)]
struct CreateOrder<'a> {
    appid: &'a str,
    mchid: &'a str,
    description: &'a str,
    out_trade_no: &'a str,
    time_expire: String,
    notify_url: &'a str,
    amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    payer: Option<JsapiPayer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene_info: Option<SceneInfo<'a>>,
}

#[derive(Deserialize)]
struct PrepayAnswer {
    prepay_id: String,
}

#[derive(Deserialize)]
struct H5Answer {
    h5_url: String,
}

#[derive(Serialize)]
struct RefundAmount {
    refund: u64,
    total: u64,
    currency: &'static str,
}

#[derive(Serialize)]
struct CreateRefund<'a> {
    out_trade_no: &'a str,
    out_refund_no: &'a str,
    reason: &'a str,
    notify_url: &'a str,
    amount: RefundAmount,
}

#[derive(Deserialize)]
struct RefundAnswer {
    refund_id: String,
    status: String,
}

#[derive(Deserialize)]
struct TradeAnswer {
    mchid: String,
    out_trade_no: String,
    trade_state: String,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    amount: Option<TradeAmount>,
}

#[derive(Deserialize)]
struct TradeAmount {
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Serialize)]
struct CloseOrder<'a> {
    mchid: &'a str,
}

pub(super) fn rejected(detail: impl Into<String>) -> ProviderError {
    ProviderError::Rejected { provider: PROVIDER, detail: detail.into() }
}

pub(super) fn transient(detail: impl Into<String>) -> ProviderError {
    ProviderError::Transient { provider: PROVIDER, detail: detail.into() }
}

/// The error an unsuccessful answer means: 5xx and 429 are worth retrying, other 4xx are
/// refusals carrying WeChat Pay's `code` (never its message, which may echo request data).
pub(super) fn error_of(answer: &Answer, what: &str) -> ProviderError {
    let code = serde_json::from_slice::<ErrorBody>(&answer.body).ok().and_then(|e| e.code).unwrap_or_default();
    let detail = format!("{what}: HTTP {} {code}", answer.status).trim_end().to_owned();
    tracing::warn!(provider = PROVIDER, status = answer.status, code = %code, "{what} failed");
    if answer.status >= 500 || answer.status == 429 || code == "SYSTEM_ERROR" || code == "FREQUENCY_LIMITED" {
        transient(detail)
    } else {
        rejected(detail)
    }
}

pub(super) fn json<'de, T: Deserialize<'de>>(answer: &'de Answer, what: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(&answer.body)
        .map_err(|e| transient(format!("{what}: unreadable answer ({:?})", e.classify())))
}

impl WechatPayGateway {
    /// An adapter for `config`, validated without any network call.
    pub fn new(config: WechatPayConfig) -> Result<WechatPayGateway, ConfigError> {
        let Validated { signer, public_key, certificates } = config.validate(Utc::now())?;
        let mut keys = WechatPayKeys::default();
        let public_key_id = public_key.map(|(id, key)| {
            keys.insert(&id, key);
            id
        });
        for cert in certificates {
            keys.insert_until(&cert.serial, cert.verifier().clone(), cert.not_after);
        }
        Ok(WechatPayGateway {
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            mchid: config.mchid,
            appid: config.appid,
            notify_url: config.notify_url,
            public_key_id,
            signer,
            apiv3_key: config.apiv3_key.into_bytes(),
            keys: RwLock::new(keys),
            http: crate::http_client(),
        })
    }

    /// The platform certificates currently trusted (configured or downloaded), with their
    /// expiry, for a configuration check to print. Empty in pure public-key mode.
    pub fn platform_certificates(&self) -> Vec<CertificateInfo> {
        self.keys()
            .certificates()
            .into_iter()
            .map(|(serial, not_after)| CertificateInfo { serial, not_after })
            .collect()
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, WechatPayKeys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a signed request; `path_and_query` starts with `/v3/`.
    async fn send(&self, method: reqwest::Method, path_and_query: &str, body: &str) -> Result<Answer, ProviderError> {
        let url = format!("{}{path_and_query}", self.base_url);
        let parsed = reqwest::Url::parse(&url).map_err(|e| rejected(format!("bad URL: {e}")))?;
        self.send_to(method, parsed, body).await
    }

    /// Sends a request to an absolute URL (e.g. a bill's download URL), signed over its path and
    /// query. The answer's signature is not checked here.
    pub(super) async fn send_to(
        &self,
        method: reqwest::Method,
        parsed: reqwest::Url,
        body: &str,
    ) -> Result<Answer, ProviderError> {
        let canonical = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let timestamp = Utc::now().timestamp();
        let nonce = random_nonce();
        let authorization = self
            .signer
            .authorization(method.as_str(), &canonical, timestamp, &nonce, body)
            .map_err(|e| rejected(format!("cannot sign: {e}")))?;
        let mut request = self
            .http
            .request(method, parsed)
            .header("Authorization", authorization)
            .header("Accept", "application/json")
            .header("User-Agent", USER_AGENT);
        if let Some(id) = &self.public_key_id {
            request = request.header("Wechatpay-Serial", id);
        }
        if !body.is_empty() {
            request = request.header("Content-Type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.map_err(|e| ProviderError::transport(PROVIDER, e))?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (timestamp, nonce, signature, serial) = (
            header("wechatpay-timestamp"),
            header("wechatpay-nonce"),
            header("wechatpay-signature"),
            header("wechatpay-serial"),
        );
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| ProviderError::transport(PROVIDER, e))?.to_vec();
        Ok(Answer { status, body, timestamp, nonce, signature, serial })
    }

    /// Checks an answer's signature with `keys`: required on 2xx, and on errors that carry one.
    fn check(keys: &WechatPayKeys, answer: &Answer, what: &str) -> Result<(), ProviderError> {
        match answer.signature_headers() {
            Some(h) => keys.verify(&h, &answer.body, Utc::now()).map_err(|e| {
                tracing::warn!(provider = PROVIDER, status = answer.status, "{what}: answer signature refused: {e}");
                transient(format!("{what}: answer signature refused: {e}"))
            }),
            None if (200..300).contains(&answer.status) => {
                tracing::warn!(provider = PROVIDER, status = answer.status, "{what}: unsigned answer");
                Err(transient(format!("{what}: unsigned answer")))
            }
            None => Ok(()),
        }
    }

    /// Sends a signed request and verifies the answer with the trusted keys.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: &str,
        what: &str,
    ) -> Result<Answer, ProviderError> {
        let answer = self.send(method, path_and_query, body).await?;
        Self::check(&self.keys(), &answer, what)?;
        Ok(answer)
    }

    /// Downloads the platform certificates (`GET /v3/certificates`), decrypts them with the
    /// APIv3 key, verifies the answer's signature with the downloaded set (plus the keys already
    /// trusted), and replaces the trusted certificates with the unexpired ones downloaded. Call
    /// it at start and every 12 hours in certificate mode (harmless in public-key mode, where
    /// the list may be empty: then nothing changes). Returns the certificates now trusted.
    pub async fn refresh_platform_certificates(&self) -> Result<Vec<CertificateInfo>, ProviderError> {
        let what = "certificates";
        let answer = self.send(reqwest::Method::GET, "/v3/certificates", "").await?;
        if !(200..300).contains(&answer.status) {
            Self::check(&self.keys(), &answer, what)?;
            return Err(error_of(&answer, what));
        }
        let now = Utc::now();
        let downloaded = open_certificate_list(&answer.body, &self.apiv3_key, now).map_err(|e| match e {
            CertificateError::Decrypt { .. } => rejected(format!("{what}: {e} (check the APIv3 key)")),
            e => transient(format!("{what}: {e}")),
        })?;
        let mut candidate = self.keys().clone();
        for cert in &downloaded {
            candidate.insert_until(&cert.serial, cert.verifier().clone(), cert.not_after);
        }
        Self::check(&candidate, &answer, what)?;
        if downloaded.is_empty() {
            return Ok(self.platform_certificates());
        }
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.remove_certificates();
        for cert in &downloaded {
            keys.insert_until(&cert.serial, cert.verifier().clone(), cert.not_after);
        }
        drop(keys);
        let serials: Vec<&str> = downloaded.iter().map(|c: &PlatformCertificate| c.serial.as_str()).collect();
        tracing::info!(provider = PROVIDER, ?serials, "platform certificates refreshed");
        Ok(self.platform_certificates())
    }

    /// The JSAPI parameters for a prepay id, signed now.
    fn jsapi_start(&self, prepay_id: &str, return_url: &str) -> Result<PaymentStart, ProviderError> {
        let params = self
            .signer
            .jsapi_params(&self.appid, prepay_id, Utc::now().timestamp(), &random_nonce())
            .map_err(|e| rejected(format!("cannot sign paySign: {e}")))?;
        Ok(PaymentStart::WechatJsapi { params, return_url: return_url.to_owned() })
    }
}

/// Checks our id fits WeChat Pay's `out_trade_no`/`out_refund_no` rules.
fn out_no<'a>(id: &'a str, field: &str) -> Result<&'a str, ProviderError> {
    if !valid_out_no(id) {
        return Err(rejected(format!("{field} must be 6-32 of [0-9A-Za-z_-|*]")));
    }
    Ok(id)
}

#[async_trait]
impl PaymentGateway for WechatPayGateway {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<PaymentStart, ProviderError> {
        let out_trade_no = out_no(request.payment.as_str(), "out_trade_no")?;
        if request.amount.0 == 0 {
            return Err(rejected("amount must be positive"));
        }
        let (path, payer, scene_info) = match &request.payer.wechat_openid {
            Some(openid) => ("/v3/pay/transactions/jsapi", Some(JsapiPayer { openid }), None),
            None => {
                let ip =
                    request.payer.client_ip.as_deref().filter(|ip| !ip.is_empty()).ok_or_else(|| {
                        rejected("H5 payment needs the payer's IP address (scene_info.payer_client_ip)")
                    })?;
                (
                    "/v3/pay/transactions/h5",
                    None,
                    Some(SceneInfo { payer_client_ip: ip, h5_info: H5Info { kind: "Wap" } }),
                )
            }
        };
        let order = CreateOrder {
            appid: &self.appid,
            mchid: &self.mchid,
            description: truncate_bytes(&request.description, MAX_DESCRIPTION_BYTES),
            out_trade_no,
            time_expire: time_expire(request.expires_at),
            notify_url: &self.notify_url,
            amount: Amount { total: request.amount.0, currency: "CNY" },
            payer,
            scene_info,
        };
        let body = serde_json::to_string(&order).map_err(|e| rejected(format!("cannot encode order: {e}")))?;
        let answer = self.call(reqwest::Method::POST, path, &body, "create order").await?;
        if !(200..300).contains(&answer.status) {
            return Err(error_of(&answer, "create order"));
        }
        if request.payer.wechat_openid.is_some() {
            let PrepayAnswer { prepay_id } = json(&answer, "create order")?;
            self.jsapi_start(&prepay_id, &request.return_url)
        } else {
            let H5Answer { h5_url } = json(&answer, "create order")?;
            let separator = if h5_url.contains('?') { '&' } else { '?' };
            Ok(PaymentStart::Redirect {
                pay_url: format!("{h5_url}{separator}redirect_url={}", encode(&request.return_url)),
            })
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let refund = CreateRefund {
            out_trade_no: out_no(request.payment.as_str(), "out_trade_no")?,
            out_refund_no: out_no(request.refund.as_str(), "out_refund_no")?,
            reason: {
                let end = request.reason.char_indices().nth(MAX_REASON_CHARS).map_or(request.reason.len(), |(i, _)| i);
                &request.reason[..end]
            },
            notify_url: &self.notify_url,
            amount: RefundAmount { refund: request.amount.0, total: request.payment_amount.0, currency: "CNY" },
        };
        let body = serde_json::to_string(&refund).map_err(|e| rejected(format!("cannot encode refund: {e}")))?;
        let answer = self.call(reqwest::Method::POST, "/v3/refund/domestic/refunds", &body, "refund").await?;
        if !(200..300).contains(&answer.status) {
            return Err(error_of(&answer, "refund"));
        }
        let RefundAnswer { refund_id, status } = json(&answer, "refund")?;
        match status.as_str() {
            "SUCCESS" => Ok(RefundOutcome::Succeeded { gateway_refund: refund_id }),
            "PROCESSING" => Ok(RefundOutcome::Pending),
            other => {
                tracing::warn!(provider = PROVIDER, status = other, "refund not accepted");
                Err(rejected(format!("refund status {other}")))
            }
        }
    }

    async fn query_payment(&self, payment: &PaymentId) -> Result<GatewayTrade, ProviderError> {
        let what = "query order";
        let path =
            format!("/v3/pay/transactions/out-trade-no/{}?mchid={}", encode(payment.as_str()), encode(&self.mchid));
        let answer = self.call(reqwest::Method::GET, &path, "", what).await?;
        if answer.status == 404 {
            let code = serde_json::from_slice::<ErrorBody>(&answer.body).ok().and_then(|e| e.code);
            if matches!(code.as_deref(), Some("ORDER_NOT_EXIST" | "ORDERNOTEXIST") | None) {
                return Ok(GatewayTrade::NotFound);
            }
        }
        if !(200..300).contains(&answer.status) {
            return Err(error_of(&answer, what));
        }
        let trade: TradeAnswer = json(&answer, what)?;
        if trade.mchid != self.mchid || trade.out_trade_no != payment.as_str() {
            return Err(transient(format!("{what}: the answer concerns another trade")));
        }
        let paid = |trade: TradeAnswer| -> Result<(String, Fen), ProviderError> {
            let txn = trade.transaction_id.filter(|t| !t.is_empty());
            let total = trade.amount.and_then(|a| a.total);
            match (txn, total) {
                (Some(txn), Some(total)) => Ok((txn, Fen(total))),
                _ => Err(transient(format!("{what}: a paid trade without transaction id or amount"))),
            }
        };
        Ok(match trade.trade_state.as_str() {
            "SUCCESS" => {
                let (gateway_txn, amount) = paid(trade)?;
                GatewayTrade::Paid { gateway_txn, amount }
            }
            "REFUND" => {
                let (gateway_txn, amount) = paid(trade)?;
                GatewayTrade::Refunded { gateway_txn, amount }
            }
            "NOTPAY" | "USERPAYING" => GatewayTrade::NotPaid,
            "CLOSED" | "REVOKED" | "PAYERROR" => GatewayTrade::Closed,
            other => return Err(transient(format!("{what}: unknown trade_state {other}"))),
        })
    }

    async fn close_payment(&self, payment: &PaymentId) -> Result<(), ProviderError> {
        let what = "close order";
        let path = format!("/v3/pay/transactions/out-trade-no/{}/close", encode(payment.as_str()));
        let body = serde_json::to_string(&CloseOrder { mchid: &self.mchid }).expect("a struct of strings encodes");
        let answer = self.call(reqwest::Method::POST, &path, &body, what).await?;
        if (200..300).contains(&answer.status) { Ok(()) } else { Err(error_of(&answer, what)) }
    }

    fn verify_notification(
        &self,
        n: &SignedNotification,
        now: DateTime<Utc>,
    ) -> Result<GatewayNotification, NotificationRejected> {
        let keys = self.keys();
        let ctx =
            NotificationContext { keys: &keys, api_v3_key: &self.apiv3_key, mchid: &self.mchid, appid: &self.appid };
        let result = parse_notification(&ctx, n, now);
        if let Err(e) = &result {
            tracing::warn!(provider = PROVIDER, serial = ?n.header("wechatpay-serial"), "notification refused: {e}");
        }
        result
    }

    async fn daily_bill(&self, day: NaiveDate) -> Result<Option<Vec<BillEntry>>, ProviderError> {
        self.trade_bill(day).await.map(Some)
    }

    fn acknowledgement(&self) -> (u16, &'static str, &'static str) {
        (200, "application/json", r#"{"code":"SUCCESS","message":"成功"}"#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechatpay::config::{DEFAULT_BASE_URL, WechatPayPublicKey};

    const MERCHANT_KEY: &str = include_str!("../../testdata/wxdoc_test_key.pem");
    const PLATFORM_KEY: &str = include_str!("../../testdata/wxgo_test_key.pem");
    const WX3_CERT: &str = include_str!("../../testdata/wx3_platform_cert.pem");

    fn public_pem() -> String {
        // The SPKI of the WX-1 key, taken from the WX-3 certificate (same key).
        let (_, cert) = yiqian_pki::from_pem(WX3_CERT.as_bytes()).unwrap();
        use yiqian_pki::der::{Decode, Encode};
        let cert = yiqian_pki::x509_cert::Certificate::from_der(&cert).unwrap();
        yiqian_pki::to_pem("PUBLIC KEY", &cert.tbs_certificate().subject_public_key_info().to_der().unwrap())
    }

    fn config() -> WechatPayConfig {
        WechatPayConfig {
            base_url: DEFAULT_BASE_URL.into(),
            mchid: "1900007291".into(),
            appid: "wxd678efh567hg6787".into(),
            merchant_serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into(),
            merchant_key_pem: MERCHANT_KEY.into(),
            apiv3_key: "0123456789abcdef0123456789abcdef".into(),
            public_key: Some(WechatPayPublicKey {
                public_key_id: "PUB_KEY_ID_0114232134912410000".into(),
                public_key_pem: public_pem(),
            }),
            platform_certificates: vec![WX3_CERT.into()],
            notify_url: "https://yiqian.example.cn/notify/wechatpay".into(),
        }
    }

    #[test]
    fn a_good_configuration_loads_and_reports_its_certificates() {
        let gateway = WechatPayGateway::new(config()).unwrap();
        assert_eq!(gateway.name(), "wechatpay");
        assert_eq!(
            gateway.platform_certificates(),
            vec![CertificateInfo {
                serial: "D7CE59D1F522D701".into(),
                not_after: DateTime::parse_from_rfc3339("2031-04-25T08:55:23Z").unwrap().to_utc()
            }]
        );
        let debug = format!("{:?} {:?}", config(), gateway);
        assert!(!debug.contains("PRIVATE") && !debug.contains("0123456789abcdef") && !debug.contains("PUBLIC KEY"));
    }

    #[test]
    fn bad_configurations_are_refused_by_field() {
        let field = |c: WechatPayConfig| WechatPayGateway::new(c).unwrap_err().field;
        assert_eq!(field(WechatPayConfig { apiv3_key: "testMchAPIv3Key0".into(), ..config() }), "apiv3_key");
        assert_eq!(field(WechatPayConfig { merchant_key_pem: "x".into(), ..config() }), "merchant_key");
        assert_eq!(field(WechatPayConfig { base_url: "api.mch.weixin.qq.com".into(), ..config() }), "base_url");
        assert_eq!(field(WechatPayConfig { notify_url: "https://a.cn/n?x=1".into(), ..config() }), "notify_url");
        assert_eq!(field(WechatPayConfig { mchid: "19x".into(), ..config() }), "mchid");
        assert_eq!(
            field(WechatPayConfig { platform_certificates: vec![PLATFORM_KEY.into()], ..config() }),
            "platform_certificates"
        );
        assert_eq!(
            field(WechatPayConfig { public_key: None, platform_certificates: vec![], ..config() }),
            "public_key"
        );
        let bad_pk = WechatPayPublicKey { public_key_id: "PUB_KEY_ID_1".into(), public_key_pem: WX3_CERT.into() };
        assert_eq!(field(WechatPayConfig { public_key: Some(bad_pk), ..config() }), "public_key");
        // Either mode alone is enough.
        WechatPayGateway::new(WechatPayConfig { public_key: None, ..config() }).unwrap();
        WechatPayGateway::new(WechatPayConfig { platform_certificates: vec![], ..config() }).unwrap();
    }

    #[test]
    fn time_expire_is_in_china_standard_time() {
        let at = DateTime::parse_from_rfc3339("2018-06-08T02:34:56Z").unwrap().to_utc();
        assert_eq!(time_expire(at), "2018-06-08T10:34:56+08:00");
    }

    #[test]
    fn out_numbers_and_descriptions_follow_wechat_rules() {
        assert!(valid_out_no("P2026_abc-1"));
        assert!(!valid_out_no("P1"));
        assert!(!valid_out_no(&"P".repeat(33)));
        let d = "证".repeat(50);
        let cut = truncate_bytes(&d, MAX_DESCRIPTION_BYTES);
        assert_eq!(cut.len(), 126);
        assert_eq!(truncate_bytes("abc", 127), "abc");
    }

    #[test]
    fn acknowledgement_is_what_wechat_pay_expects() {
        let gateway = WechatPayGateway::new(config()).unwrap();
        assert_eq!(gateway.acknowledgement(), (200, "application/json", r#"{"code":"SUCCESS","message":"成功"}"#));
    }
}
