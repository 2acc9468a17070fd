//! WeChat Pay API v3: the wire protocol's building blocks — the merchant's request signature
//! (`WECHATPAY2-SHA256-RSA2048`) and the decryption of notification resources
//! (`AEAD_AES_256_GCM`), and the verification of what WeChat Pay signs. The gateway adapter
//! comes on top of them.

pub mod resource;
pub mod signing;
pub mod verify;
