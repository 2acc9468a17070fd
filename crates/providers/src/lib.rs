//! Seams to the outside services yiqian depends on — payment gateways, SMS, identity
//! verification — and the built-in sandbox implementations used by the embedded default.
//!
//! Real vendor adapters (WeChat Pay v3, Alipay, Tencent Cloud, …) implement the same traits.
//! Every trait takes the idempotency key of the outbox message that caused the call, so a
//! retried delivery never produces a second effect.

pub mod alipay;
pub mod identity;
pub mod payment;
pub mod rsa;
pub mod sandbox;
pub mod sf;
pub mod sms;
pub mod tencent;
pub mod wechatpay;

/// Why a call to an outside service failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying later (network, timeout, the vendor's 5xx).
    #[error("temporary failure at {provider}: {detail}")]
    Transient {
        /// Which provider.
        provider: &'static str,
        /// What went wrong (no personal data).
        detail: String,
    },
    /// The vendor refused the request; retrying the same request will not help.
    #[error("{provider} refused the request: {detail}")]
    Rejected {
        /// Which provider.
        provider: &'static str,
        /// What went wrong (no personal data).
        detail: String,
    },
}

impl ProviderError {
    /// Whether a later retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }
}
