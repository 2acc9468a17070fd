//! What the Alipay adapter is configured with: the gateway, the application's id and private
//! key, how Alipay's signatures are checked (Alipay's public key, or certificate mode with the
//! application certificate, Alipay's certificate and the root bundle), and the notify URL.
//! `Debug` never prints a key or certificate.

use std::fmt;

/// The adapter's name (provider, webhook path segment).
pub const PROVIDER: &str = "alipay";
/// Alipay's production gateway.
pub const DEFAULT_GATEWAY_URL: &str = "https://openapi.alipay.com/gateway.do";
/// Alipay's sandbox gateway.
pub const SANDBOX_GATEWAY_URL: &str = "https://openapi-sandbox.dl.alipaydev.com/gateway.do";

/// How Alipay's signatures are verified and our requests identify their key.
#[derive(Clone, PartialEq, Eq)]
pub enum AlipayKeyMode {
    /// Public-key mode: Alipay's RSA public key (SPKI PEM, `PUBLIC KEY`).
    PublicKey {
        /// Alipay's public key for this application.
        alipay_public_key_pem: String,
    },
    /// Certificate mode: requests carry `app_cert_sn` and `alipay_root_cert_sn`; answers and
    /// notifications are verified with the key of Alipay's certificate.
    Certificate {
        /// The application's public-key certificate (`appCertPublicKey_….crt`).
        app_cert_pem: String,
        /// Alipay's public-key certificate (`alipayCertPublicKey_RSA2.crt`).
        alipay_cert_pem: String,
        /// Alipay's root certificate bundle (`alipayRootCert.crt`).
        alipay_root_cert_pem: String,
    },
}

impl fmt::Debug for AlipayKeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlipayKeyMode::PublicKey { .. } => f.write_str("PublicKey { alipay_public_key_pem: <hidden> }"),
            AlipayKeyMode::Certificate { .. } => f.write_str(
                "Certificate { app_cert_pem: <hidden>, alipay_cert_pem: <hidden>, alipay_root_cert_pem: <hidden> }",
            ),
        }
    }
}

/// The Alipay adapter's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct AlipayConfig {
    /// The OpenAPI gateway, [`DEFAULT_GATEWAY_URL`] unless testing.
    pub gateway_url: String,
    /// The application's `app_id`.
    pub app_id: String,
    /// The application's private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM).
    pub app_private_key_pem: String,
    /// Public-key or certificate mode.
    pub mode: AlipayKeyMode,
    /// Our webhook Alipay posts trade notifications to.
    pub notify_url: String,
    /// The seller's Alipay user id (`2088…`); when set, notifications must name it.
    pub seller_id: Option<String>,
}

impl AlipayConfig {
    /// Settings for the production gateway, without a seller id check.
    pub fn new(
        app_id: impl Into<String>,
        app_private_key_pem: impl Into<String>,
        mode: AlipayKeyMode,
        notify_url: impl Into<String>,
    ) -> AlipayConfig {
        AlipayConfig {
            gateway_url: DEFAULT_GATEWAY_URL.to_owned(),
            app_id: app_id.into(),
            app_private_key_pem: app_private_key_pem.into(),
            mode,
            notify_url: notify_url.into(),
            seller_id: None,
        }
    }
}

impl fmt::Debug for AlipayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayConfig")
            .field("gateway_url", &self.gateway_url)
            .field("app_id", &self.app_id)
            .field("app_private_key_pem", &"<hidden>")
            .field("mode", &self.mode)
            .field("notify_url", &self.notify_url)
            .field("seller_id", &self.seller_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_keys() {
        let config = AlipayConfig::new(
            "2021000000000001",
            "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----",
            AlipayKeyMode::PublicKey { alipay_public_key_pem: "PUBLICKEYTEXT".into() },
            "https://example.com/notify/alipay",
        );
        let shown = format!("{config:?}");
        assert!(shown.contains("2021000000000001") && shown.contains("example.com"));
        assert!(!shown.contains("SECRET") && !shown.contains("PUBLICKEYTEXT"));
        let cert = AlipayKeyMode::Certificate {
            app_cert_pem: "APPCERT".into(),
            alipay_cert_pem: "ALIPAYCERT".into(),
            alipay_root_cert_pem: "ROOT".into(),
        };
        let shown = format!("{cert:?}");
        assert!(!shown.contains("APPCERT") && !shown.contains("ALIPAYCERT") && !shown.contains("ROOT\""));
    }
}
