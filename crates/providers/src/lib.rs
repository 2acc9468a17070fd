//! Seams to the outside services yiqian depends on — payment gateways, SMS, identity
//! verification — and the built-in sandbox implementations used by the embedded default.
//!
//! Real vendor adapters (WeChat Pay v3, Alipay, Tencent Cloud, …) implement the same traits.
//! Every trait takes the idempotency key of the outbox message that caused the call, so a
//! retried delivery never produces a second effect.

pub mod alipay;
pub mod courier;
pub mod identity;
pub mod invoice;
pub mod nuonuo;
pub mod payment;
pub mod rsa;
pub mod sandbox;
pub mod sf;
pub mod sms;
pub mod tencent;
pub mod wechat_oauth;
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
    /// A transport failure talking to `provider` (connection, timeout, unreadable answer).
    pub fn transport(provider: &'static str, error: impl std::fmt::Display) -> ProviderError {
        ProviderError::Transient { provider, detail: error.to_string() }
    }

    /// Whether a later retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }
}

/// Why a provider's configuration cannot work, found before any call is made (a key that
/// does not parse, an expired certificate, a malformed URL). Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}.{field}: {message}")]
pub struct ConfigError {
    /// The provider, e.g. `wechatpay`.
    pub provider: &'static str,
    /// The setting, e.g. `merchant_key`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem with `provider`'s `field`.
    pub fn new(provider: &'static str, field: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError { provider, field, message: message.into() }
    }
}

/// Checks that `url` is an absolute `http`/`https` URL without query or fragment, as every
/// base and callback URL must be.
pub fn check_base_url(provider: &'static str, field: &'static str, url: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::new(provider, field, format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(provider, field, format!("{url:?} is not an http(s) URL")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::new(provider, field, format!("{url:?} may not carry a query or fragment")));
    }
    Ok(())
}

/// The HTTP client every vendor adapter uses: 10 s to connect, 30 s per request, TLS with the
/// bundled web PKI roots, no proxy from the environment.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("an HTTP client with the bundled roots always builds")
}
