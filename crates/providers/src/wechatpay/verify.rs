//! Verifying what WeChat Pay sends — API responses and notifications: SHA256withRSA over
//! `timestamp\nnonce\nbody\n` (the body's raw bytes), by the key the `Wechatpay-Serial` header
//! names (the WeChat Pay public key's id, or a platform certificate's serial); unknown serials,
//! timestamps more than five minutes off and WeChat's deliberate probe signatures are refused.

use crate::rsa::RsaVerifier;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Largest difference between the message's timestamp and our clock.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// The signature headers of a response or notification.
#[derive(Debug, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    /// `Wechatpay-Timestamp` (seconds).
    pub timestamp: &'a str,
    /// `Wechatpay-Nonce`.
    pub nonce: &'a str,
    /// `Wechatpay-Signature` (Base64).
    pub signature: &'a str,
    /// `Wechatpay-Serial`.
    pub serial: &'a str,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The serial names no key we trust.
    #[error("unknown WeChat Pay key serial {0:?}")]
    UnknownSerial(String),
    /// The timestamp is not a number of seconds.
    #[error("malformed Wechatpay-Timestamp")]
    Timestamp,
    /// Too old or from the future.
    #[error("stale message: {0} s from now")]
    Stale(i64),
    /// A probe WeChat Pay sends on purpose to see that signatures are checked.
    #[error("signature probe")]
    Probe,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// The keys WeChat Pay signs with, by serial: the WeChat Pay public key under its id
/// (`PUB_KEY_ID_…`), and/or platform certificates' public keys under their serials.
#[derive(Debug, Clone, Default)]
pub struct WechatPayKeys {
    keys: HashMap<String, RsaVerifier>,
}

impl WechatPayKeys {
    /// Trusts `key` for messages naming `serial`.
    pub fn insert(&mut self, serial: &str, key: RsaVerifier) {
        self.keys.insert(serial.to_owned(), key);
    }

    /// Checks a response or notification.
    pub fn verify(&self, h: &SignatureHeaders<'_>, body: &[u8], now: DateTime<Utc>) -> Result<(), VerifyError> {
        if h.signature.starts_with("WECHATPAY/SIGNTEST/") {
            return Err(VerifyError::Probe);
        }
        let key = self.keys.get(h.serial).ok_or_else(|| VerifyError::UnknownSerial(h.serial.to_owned()))?;
        let ts: i64 = h.timestamp.trim().parse().map_err(|_| VerifyError::Timestamp)?;
        let skew = ts - now.timestamp();
        if skew.abs() > MAX_SKEW_SECONDS {
            return Err(VerifyError::Stale(skew));
        }
        let mut message = Vec::with_capacity(body.len() + 64);
        message.extend_from_slice(format!("{}\n{}\n", h.timestamp, h.nonce).as_bytes());
        message.extend_from_slice(body);
        message.push(b'\n');
        if key.verify(&message, h.signature) { Ok(()) } else { Err(VerifyError::BadSignature) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::RsaSigner;

    const PLATFORM_KEY: &str = include_str!("../../testdata/wxgo_test_key.pem");

    fn signed(body: &str, ts: i64) -> (WechatPayKeys, String) {
        let platform = RsaSigner::from_pem(PLATFORM_KEY).unwrap();
        let mut keys = WechatPayKeys::default();
        keys.insert("PUB_KEY_ID_0114232134912410000", platform.verifier());
        let signature = platform.sign(format!("{ts}\nEcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz\n{body}\n").as_bytes()).unwrap();
        (keys, signature)
    }

    #[test]
    fn a_signed_notification_verifies_and_alterations_fail() {
        let now = DateTime::from_timestamp(1_624_523_846, 0).unwrap();
        let body = r#"{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","event_type":"TRANSACTION.SUCCESS"}"#;
        let (keys, signature) = signed(body, now.timestamp());
        let ts = now.timestamp().to_string();
        let h = SignatureHeaders {
            timestamp: &ts,
            nonce: "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz",
            signature: &signature,
            serial: "PUB_KEY_ID_0114232134912410000",
        };
        assert_eq!(keys.verify(&h, body.as_bytes(), now), Ok(()));
        assert_eq!(keys.verify(&h, body.replace("SUCCESS", "CLOSED").as_bytes(), now), Err(VerifyError::BadSignature));
        assert_eq!(
            keys.verify(&SignatureHeaders { nonce: "other", ..h }, body.as_bytes(), now),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            keys.verify(&SignatureHeaders { serial: "D7CE59D1F522D701", ..h }, body.as_bytes(), now),
            Err(VerifyError::UnknownSerial("D7CE59D1F522D701".into()))
        );
        let later = now + chrono::Duration::seconds(301);
        assert_eq!(keys.verify(&h, body.as_bytes(), later), Err(VerifyError::Stale(-301)));
        assert_eq!(
            keys.verify(&SignatureHeaders { signature: "WECHATPAY/SIGNTEST/abc", ..h }, body.as_bytes(), now),
            Err(VerifyError::Probe)
        );
        assert_eq!(
            keys.verify(&SignatureHeaders { timestamp: "1624523846000x", ..h }, body.as_bytes(), now),
            Err(VerifyError::Timestamp)
        );
    }

    #[test]
    fn an_empty_body_signs_an_empty_third_line() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let (keys, signature) = signed("", now.timestamp());
        let ts = now.timestamp().to_string();
        let h = SignatureHeaders {
            timestamp: &ts,
            nonce: "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz",
            signature: &signature,
            serial: "PUB_KEY_ID_0114232134912410000",
        };
        assert_eq!(keys.verify(&h, b"", now), Ok(()));
    }
}
