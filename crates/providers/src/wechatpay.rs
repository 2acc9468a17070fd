//! WeChat Pay API v3 (direct merchant): the wire protocol's building blocks — the merchant's
//! request signature (`WECHATPAY2-SHA256-RSA2048`), the JSAPI `paySign`, the decryption of
//! notification resources (`AEAD_AES_256_GCM`), the verification of what WeChat Pay signs in
//! public-key and platform-certificate mode — and the [`WechatPayGateway`] adapter on top.
//!
//! Wiring: build a [`WechatPayConfig`], call [`WechatPayGateway::new`] (validates offline), and
//! in certificate mode call [`WechatPayGateway::refresh_platform_certificates`] at start and
//! every 12 hours.

pub mod bill;
pub mod certificates;
pub mod config;
pub mod gateway;
pub mod notification;
pub mod resource;
pub mod signing;
pub mod verify;

pub use config::{DEFAULT_BASE_URL, WechatPayConfig, WechatPayPublicKey};
pub use gateway::{CertificateInfo, WechatPayGateway};
