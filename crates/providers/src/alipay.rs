//! Alipay Open Platform (OpenAPI 2.0 gateway, RSA2): the payment gateway adapter for 支付宝,
//! in public-key or certificate mode, and the wire protocol's building blocks the Alipay
//! stand-in reuses — request and notification signatures, certificate SNs, yuan amounts and
//! the cutting of signed answers.

pub mod amount;
pub mod cert_sn;
pub mod config;
pub mod gateway;
pub mod notify;
pub mod response;
pub mod sign;

pub use config::{AlipayConfig, AlipayKeyMode, DEFAULT_GATEWAY_URL, PROVIDER, SANDBOX_GATEWAY_URL};
pub use gateway::{AlipayGateway, CertificateValidity, beijing_time, parse_beijing_time};
