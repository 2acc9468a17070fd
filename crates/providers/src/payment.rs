//! The payment-gateway seam: start a payment, ask for a refund, and verify the gateway's
//! signed asynchronous notifications — the only way a payment or refund is ever confirmed.

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
    /// Where the applicant's browser returns after paying.
    pub return_url: String,
}

/// How the applicant continues to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStart {
    /// The cashier page to open.
    pub pay_url: String,
}

/// A refund to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// Our out-refund-number (the idempotency key at the gateway).
    pub refund: RefundId,
    /// The payment refunded.
    pub payment: PaymentId,
    /// Amount.
    pub amount: Fen,
    /// The payment's channel.
    pub channel: Channel,
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
}

impl GatewayNotification {
    /// The notification's own id.
    pub fn id(&self) -> &str {
        match self {
            GatewayNotification::PaymentSucceeded { notification_id, .. }
            | GatewayNotification::RefundSucceeded { notification_id, .. } => notification_id,
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
    /// The gateway's name, recorded as the actor of its notifications.
    fn name(&self) -> &'static str;
    /// Starts a payment; the applicant continues at the returned URL.
    async fn create_payment(&self, request: &PaymentRequest) -> Result<PaymentStart, ProviderError>;
    /// Asks for a refund; the result arrives later as a notification. Repeating the same
    /// refund id is harmless.
    async fn refund(&self, request: &RefundRequest) -> Result<(), ProviderError>;
    /// Verifies and parses a notification.
    fn verify_notification(
        &self,
        n: &SignedNotification,
        now: DateTime<Utc>,
    ) -> Result<GatewayNotification, NotificationRejected>;
    /// The HTTP status and body the gateway expects when a notification was taken.
    fn acknowledgement(&self) -> (u16, &'static str);
}
