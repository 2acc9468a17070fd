//! Alipay OpenAPI 2.0: the RSA2 signature of requests and notifications. The gateway adapter
//! comes on top of it.

pub mod cert_sn;
pub mod sign;
