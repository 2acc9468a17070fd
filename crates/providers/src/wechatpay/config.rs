//! The WeChat Pay adapter's configuration: plain values with secrets already resolved, and its
//! validation (keys parse, the APIv3 key is 32 bytes, certificates parse and are unexpired,
//! URLs are well-formed) without any network call.

use super::certificates::PlatformCertificate;
use super::signing::MerchantSigner;
use crate::rsa::RsaVerifier;
use crate::{ConfigError, check_base_url};
use chrono::{DateTime, Utc};

/// The provider name in configuration errors and the gateway's name.
pub const PROVIDER: &str = "wechatpay";

/// WeChat Pay's production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// The WeChat Pay public key (public-key mode).
#[derive(Clone, PartialEq, Eq)]
pub struct WechatPayPublicKey {
    /// Its id, `PUB_KEY_ID_…` (the `Wechatpay-Serial` of what it signs).
    pub public_key_id: String,
    /// The key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
}

impl std::fmt::Debug for WechatPayPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayPublicKey").field("public_key_id", &self.public_key_id).finish_non_exhaustive()
    }
}

/// Everything the adapter needs. At least one of `public_key` and `platform_certificates`
/// must be set; both are set while the merchant switches from one mode to the other.
#[derive(Clone, PartialEq, Eq)]
pub struct WechatPayConfig {
    /// API host, [`DEFAULT_BASE_URL`] in production.
    pub base_url: String,
    /// 商户号.
    pub mchid: String,
    /// The official account's AppID bound to the merchant (JSAPI payers' openids are under it).
    pub appid: String,
    /// Serial (hex) of the merchant API certificate.
    pub merchant_serial: String,
    /// The merchant's private key (`apiclient_key.pem`, PKCS#8 or PKCS#1 PEM). Secret.
    pub merchant_key_pem: String,
    /// The APIv3 key (32 ASCII characters). Secret.
    pub apiv3_key: String,
    /// Public-key mode.
    pub public_key: Option<WechatPayPublicKey>,
    /// Platform-certificate mode: the certificates known at start (PEM each); more are fetched
    /// by `WechatPayGateway::refresh_platform_certificates`.
    pub platform_certificates: Vec<String>,
    /// Our webhook, `https://…/notify/wechatpay` (no query).
    pub notify_url: String,
}

impl std::fmt::Debug for WechatPayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayConfig")
            .field("base_url", &self.base_url)
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial", &self.merchant_serial)
            .field("merchant_key_pem", &"<secret>")
            .field("apiv3_key", &"<secret>")
            .field("public_key", &self.public_key)
            .field("platform_certificates", &self.platform_certificates.len())
            .field("notify_url", &self.notify_url)
            .finish()
    }
}

/// A configuration that passed validation, with its keys loaded.
pub(crate) struct Validated {
    pub signer: MerchantSigner,
    pub public_key: Option<(String, RsaVerifier)>,
    pub certificates: Vec<PlatformCertificate>,
}

fn non_empty(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() || value.trim() != value {
        return Err(ConfigError::new(PROVIDER, field, "must be set, without surrounding spaces"));
    }
    Ok(())
}

impl WechatPayConfig {
    /// Checks every setting and loads the keys (no network call).
    pub(crate) fn validate(&self, now: DateTime<Utc>) -> Result<Validated, ConfigError> {
        check_base_url(PROVIDER, "base_url", &self.base_url)?;
        check_base_url(PROVIDER, "notify_url", &self.notify_url)?;
        non_empty("mchid", &self.mchid)?;
        if !self.mchid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(PROVIDER, "mchid", "a merchant id is digits only"));
        }
        non_empty("appid", &self.appid)?;
        non_empty("merchant_serial", &self.merchant_serial)?;
        if !self.merchant_serial.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::new(PROVIDER, "merchant_serial", "a certificate serial is hex digits"));
        }
        let signer = MerchantSigner::from_pem(&self.mchid, &self.merchant_serial, &self.merchant_key_pem)
            .map_err(|e| ConfigError::new(PROVIDER, "merchant_key", e.to_string()))?;
        if self.apiv3_key.len() != 32 {
            return Err(ConfigError::new(
                PROVIDER,
                "apiv3_key",
                format!("must be 32 bytes (AES-256), this one has {}", self.apiv3_key.len()),
            ));
        }
        let public_key = match &self.public_key {
            None => None,
            Some(pk) => {
                if !pk.public_key_id.starts_with("PUB_KEY_ID_") {
                    return Err(ConfigError::new(PROVIDER, "public_key_id", "must start with PUB_KEY_ID_"));
                }
                let key = RsaVerifier::from_pem(&pk.public_key_pem)
                    .map_err(|e| ConfigError::new(PROVIDER, "public_key", e.to_string()))?;
                Some((pk.public_key_id.clone(), key))
            }
        };
        let mut certificates = Vec::new();
        for pem in &self.platform_certificates {
            let cert = PlatformCertificate::from_pem(pem)
                .map_err(|e| ConfigError::new(PROVIDER, "platform_certificates", e.to_string()))?;
            cert.check_unexpired(now)
                .map_err(|e| ConfigError::new(PROVIDER, "platform_certificates", e.to_string()))?;
            certificates.push(cert);
        }
        if public_key.is_none() && certificates.is_empty() {
            return Err(ConfigError::new(
                PROVIDER,
                "public_key",
                "set the WeChat Pay public key or at least one platform certificate",
            ));
        }
        Ok(Validated { signer, public_key, certificates })
    }
}
