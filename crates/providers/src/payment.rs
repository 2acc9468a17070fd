//! The payment-gateway seam: start a payment, ask for a refund, query a trade, and verify the
//! gateway's signed asynchronous notifications — the way a payment is confirmed (a refund the
//! gateway settles at once, as Alipay's does, is confirmed by its answer).

use crate::ProviderError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yiqian_domain::payment::Channel;
use yiqian_domain::{Fen, OrderId, PaymentId, RefundId};

/// A payment to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// Our out-trade-number.
    pub payment: PaymentId,
    /// The order paid for.
    pub order: OrderId,
    /// Amount.
    pub amount: Fen,
    /// WeChat Pay or Alipay.
    pub channel: Channel,
    /// What the applicant sees at the cashier.
    pub description: String,
    /// Where the applicant's browser returns after paying (or gives up).
    pub return_url: String,
    /// Who pays, as far as the gateway needs to know.
    pub payer: Payer,
    /// Until when the payment may be made.
    pub expires_at: DateTime<Utc>,
}

/// What a gateway needs to know about the payer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// The applicant's WeChat openid under our official account, when the page runs inside
    /// WeChat and the applicant authorised it: WeChat Pay then uses JSAPI, otherwise H5.
    pub wechat_openid: Option<String>,
    /// The payer's IP address (WeChat Pay H5 requires it).
    pub client_ip: Option<String>,
}

/// How the applicant continues to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentStart {
    /// Open this page (a cashier, WeChat Pay's H5 page, Alipay's wap page).
    Redirect {
        /// The page.
        pay_url: String,
    },
    /// Inside WeChat: call `WeixinJSBridge.invoke('getBrandWCPayRequest', params)`, then
    /// go to `return_url` (the front-end result is not proof of payment).
    WechatJsapi {
        /// `appId`, `timeStamp`, `nonceStr`, `package`, `signType`, `paySign`.
        params: JsapiParams,
        /// Where to go after the WeChat cashier closes.
        return_url: String,
    },
}

/// The parameters of `getBrandWCPayRequest`, named as WeChat names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsapiParams {
    /// The official account's AppID.
    pub app_id: String,
    /// Unix seconds, as a string.
    pub time_stamp: String,
    /// A random string.
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    /// `RSA`.
    pub sign_type: String,
    /// SHA256withRSA over `appId\ntimeStamp\nnonceStr\npackage\n`, Base64.
    pub pay_sign: String,
}

/// A refund to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// Our out-refund-number (the idempotency key at the gateway).
    pub refund: RefundId,
    /// The payment refunded.
    pub payment: PaymentId,
    /// Amount returned.
    pub amount: Fen,
    /// What the payment was (WeChat Pay wants the original total).
    pub payment_amount: Fen,
    /// The payment's channel.
    pub channel: Channel,
    /// Why, in words the payer sees on the refund record.
    pub reason: String,
}

/// What the gateway said to a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefundOutcome {
    /// Accepted; the result arrives as a notification.
    Pending,
    /// The money has moved (Alipay answers so at once).
    Succeeded {
        /// The gateway's own reference for the refund.
        gateway_refund: String,
    },
}

/// A trade as the gateway records it (for reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GatewayTrade {
    /// The gateway has no such trade (Alipay: the payer never reached the cashier).
    NotFound,
    /// Created, not paid (or the payer is still paying).
    NotPaid,
    /// Closed without payment.
    Closed,
    /// Paid.
    Paid {
        /// The gateway's transaction id.
        gateway_txn: String,
        /// Amount taken.
        amount: Fen,
    },
    /// Paid, and (some of it) refunded since.
    Refunded {
        /// The gateway's transaction id.
        gateway_txn: String,
        /// Amount taken.
        amount: Fen,
    },
}

/// One successful payment in a gateway's daily bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillEntry {
    /// The merchant's out-trade-number as the gateway recorded it (ours, if we started it).
    pub out_trade_no: String,
    /// The gateway's transaction id.
    pub gateway_txn: String,
    /// Amount paid.
    pub amount: Fen,
}

/// A notification whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type")]
pub enum GatewayNotification {
    /// The applicant paid.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded {
        /// The notification's own id (replays repeat it).
        notification_id: String,
        /// Our out-trade-number.
        payment: PaymentId,
        /// The gateway's transaction id.
        gateway_txn: String,
        /// Amount taken.
        amount: Fen,
    },
    /// A refund went through.
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded {
        /// The notification's own id.
        notification_id: String,
        /// Our out-refund-number.
        refund: RefundId,
        /// Amount returned.
        amount: Fen,
    },
    /// A refund did not go through (WeChat Pay `REFUND.ABNORMAL` / `REFUND.CLOSED`): staff
    /// must act (e.g. the payer's card was closed).
    #[serde(rename = "refund.failed")]
    RefundFailed {
        /// The notification's own id.
        notification_id: String,
        /// Our out-refund-number.
        refund: RefundId,
        /// The gateway's status, e.g. `ABNORMAL`.
        status: String,
    },
    /// A genuine notification that changes nothing here (e.g. Alipay's `TRADE_CLOSED`, or the
    /// trade callback a refund triggers); acknowledged so the gateway stops sending it.
    #[serde(rename = "informational")]
    Informational {
        /// The notification's own id.
        notification_id: String,
        /// What it said, for the log (no personal data).
        summary: String,
    },
}

impl GatewayNotification {
    /// The notification's own id.
    pub fn id(&self) -> &str {
        match self {
            GatewayNotification::PaymentSucceeded { notification_id, .. }
            | GatewayNotification::RefundSucceeded { notification_id, .. }
            | GatewayNotification::RefundFailed { notification_id, .. }
            | GatewayNotification::Informational { notification_id, .. } => notification_id,
        }
    }
}

/// Why a notification was not accepted. Nothing changes for a rejected notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationRejected {
    /// Signature headers missing or malformed.
    #[error("notification is missing its signature headers")]
    MissingSignature,
    /// The signature does not verify.
    #[error("notification signature does not verify")]
    BadSignature,
    /// The timestamp is too far from now (a stale replay).
    #[error("notification timestamp is outside the accepted window")]
    Stale,
    /// Signed by a key we do not know (an unknown `Wechatpay-Serial`, a foreign app id).
    #[error("notification is signed by an unknown key")]
    UnknownKey,
    /// A deliberate probe (WeChat Pay's `WECHATPAY/SIGNTEST/` signatures).
    #[error("notification is a signature probe")]
    Probe,
    /// The body is not what the gateway sends.
    #[error("notification body is malformed: {0}")]
    Malformed(String),
}

/// The parts of an HTTP notification a gateway signs.
#[derive(Debug, Clone, Default)]
pub struct SignedNotification {
    /// Header name (lower case) → value.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl SignedNotification {
    /// A header's value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A payment gateway (WeChat Pay, Alipay, or the sandbox).
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The gateway's name, recorded as the actor of its notifications and used in its
    /// webhook path `/notify/{name}`.
    fn name(&self) -> &'static str;
    /// Starts a payment; the applicant continues as the answer says. Repeating the same
    /// payment id returns the same trade.
    async fn create_payment(&self, request: &PaymentRequest) -> Result<PaymentStart, ProviderError>;
    /// Asks for a refund. Repeating the same refund id is harmless (the gateway's
    /// idempotency key).
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ProviderError>;
    /// The gateway's record of a payment (for reconciliation and when a notification is late).
    async fn query_payment(&self, payment: &PaymentId) -> Result<GatewayTrade, ProviderError>;
    /// Closes an unpaid trade so it can no longer be paid (an expired or cancelled order).
    async fn close_payment(&self, payment: &PaymentId) -> Result<(), ProviderError>;
    /// The gateway's bill of a day (Beijing time): every successful payment it recorded for
    /// the merchant, whoever started it. `None` when the gateway offers no bill this adapter
    /// reads; reconciliation then relies on per-payment queries alone.
    async fn daily_bill(&self, day: chrono::NaiveDate) -> Result<Option<Vec<BillEntry>>, ProviderError> {
        let _ = day;
        Ok(None)
    }
    /// Verifies and parses a notification.
    fn verify_notification(
        &self,
        n: &SignedNotification,
        now: DateTime<Utc>,
    ) -> Result<GatewayNotification, NotificationRejected>;
    /// The HTTP status, content type and body the gateway expects when a notification was
    /// taken.
    fn acknowledgement(&self) -> (u16, &'static str, &'static str);
    /// The answer for a notification that was refused (the gateway will retry).
    fn refusal(&self) -> (u16, &'static str, &'static str) {
        (400, "application/json", r#"{"code":"FAIL","message":"失败"}"#)
    }
}

/// The gateway serving each channel. The sandbox serves both; a deployment usually has
/// WeChat Pay for 微信支付 and Alipay for 支付宝.
#[derive(Clone)]
pub struct PaymentGateways {
    /// Serves [`Channel::Wechat`].
    pub wechat: std::sync::Arc<dyn PaymentGateway>,
    /// Serves [`Channel::Alipay`].
    pub alipay: std::sync::Arc<dyn PaymentGateway>,
}

impl PaymentGateways {
    /// One gateway for both channels (the sandbox).
    pub fn single(gateway: std::sync::Arc<dyn PaymentGateway>) -> PaymentGateways {
        PaymentGateways { wechat: gateway.clone(), alipay: gateway }
    }

    /// The gateway of a channel.
    pub fn for_channel(&self, channel: Channel) -> &std::sync::Arc<dyn PaymentGateway> {
        match channel {
            Channel::Wechat => &self.wechat,
            Channel::Alipay => &self.alipay,
        }
    }

    /// The gateway whose webhook is `/notify/{name}`.
    pub fn by_name(&self, name: &str) -> Option<&std::sync::Arc<dyn PaymentGateway>> {
        [&self.wechat, &self.alipay].into_iter().find(|g| g.name() == name)
    }
}
