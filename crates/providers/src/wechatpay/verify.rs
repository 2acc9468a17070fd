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
    /// The serial names a platform certificate that has expired.
    #[error("WeChat Pay platform certificate {0:?} has expired")]
    Expired(String),
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

/// Normalises a key serial for lookup: upper case, leading zeros dropped (Java and Go print a
/// certificate serial as a big integer, without the leading zero nibble a byte-wise hex has).
pub fn normalize_serial(serial: &str) -> String {
    let upper = serial.trim().to_ascii_uppercase();
    let trimmed = upper.trim_start_matches('0');
    if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() }
}

#[derive(Debug, Clone)]
struct Entry {
    key: RsaVerifier,
    /// `None` for the WeChat Pay public key, the certificate's notAfter for a platform certificate.
    not_after: Option<DateTime<Utc>>,
}

/// The keys WeChat Pay signs with, by serial: the WeChat Pay public key under its id
/// (`PUB_KEY_ID_…`), and/or platform certificates' public keys under their serials (a
/// certificate is trusted until its notAfter). Serials are compared after
/// [`normalize_serial`].
#[derive(Debug, Clone, Default)]
pub struct WechatPayKeys {
    keys: HashMap<String, Entry>,
}

impl WechatPayKeys {
    /// Trusts `key` for messages naming `serial`, without an end date (the WeChat Pay public key).
    pub fn insert(&mut self, serial: &str, key: RsaVerifier) {
        self.keys.insert(normalize_serial(serial), Entry { key, not_after: None });
    }

    /// Trusts a platform certificate's key for messages naming `serial` until `not_after`.
    pub fn insert_until(&mut self, serial: &str, key: RsaVerifier, not_after: DateTime<Utc>) {
        self.keys.insert(normalize_serial(serial), Entry { key, not_after: Some(not_after) });
    }

    /// Forgets every platform certificate (keeps the public key), before installing a fresh set.
    pub fn remove_certificates(&mut self) {
        self.keys.retain(|_, e| e.not_after.is_none());
    }

    /// Whether a key is trusted for `serial`.
    pub fn contains(&self, serial: &str) -> bool {
        self.keys.contains_key(&normalize_serial(serial))
    }

    /// The platform certificates trusted, as (normalised serial, notAfter), sorted by serial.
    pub fn certificates(&self) -> Vec<(String, DateTime<Utc>)> {
        let mut out: Vec<_> = self.keys.iter().filter_map(|(s, e)| e.not_after.map(|t| (s.clone(), t))).collect();
        out.sort();
        out
    }

    /// Checks a response or notification.
    pub fn verify(&self, h: &SignatureHeaders<'_>, body: &[u8], now: DateTime<Utc>) -> Result<(), VerifyError> {
        if h.signature.starts_with("WECHATPAY/SIGNTEST/") {
            return Err(VerifyError::Probe);
        }
        let entry = self
            .keys
            .get(&normalize_serial(h.serial))
            .ok_or_else(|| VerifyError::UnknownSerial(h.serial.to_owned()))?;
        if entry.not_after.is_some_and(|t| t < now) {
            return Err(VerifyError::Expired(h.serial.to_owned()));
        }
        let ts: i64 = h.timestamp.trim().parse().map_err(|_| VerifyError::Timestamp)?;
        let skew = ts - now.timestamp();
        if skew.abs() > MAX_SKEW_SECONDS {
            return Err(VerifyError::Stale(skew));
        }
        let mut message = Vec::with_capacity(body.len() + 64);
        message.extend_from_slice(format!("{}\n{}\n", h.timestamp, h.nonce).as_bytes());
        message.extend_from_slice(body);
        message.push(b'\n');
        if entry.key.verify(&message, h.signature) { Ok(()) } else { Err(VerifyError::BadSignature) }
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

    #[test]
    fn serials_match_without_case_or_leading_zeros_and_certificates_expire() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let platform = RsaSigner::from_pem(PLATFORM_KEY).unwrap();
        let mut keys = WechatPayKeys::default();
        keys.insert_until("0d7ce59d1f522d701", platform.verifier(), now + chrono::Duration::days(1));
        keys.insert("PUB_KEY_ID_1", platform.verifier());
        assert!(keys.contains("D7CE59D1F522D701"));
        let ts = now.timestamp().to_string();
        let signature = platform.sign(format!("{ts}\nn\n{{}}\n").as_bytes()).unwrap();
        let h = SignatureHeaders { timestamp: &ts, nonce: "n", signature: &signature, serial: "D7CE59D1F522D701" };
        assert_eq!(keys.verify(&h, b"{}", now), Ok(()));
        let later = now + chrono::Duration::days(2);
        let ts2 = later.timestamp().to_string();
        let signature2 = platform.sign(format!("{ts2}\nn\n{{}}\n").as_bytes()).unwrap();
        let h2 = SignatureHeaders { timestamp: &ts2, signature: &signature2, ..h };
        assert_eq!(keys.verify(&h2, b"{}", later), Err(VerifyError::Expired("D7CE59D1F522D701".into())));
        assert_eq!(keys.certificates().len(), 1);
        keys.remove_certificates();
        assert!(!keys.contains("D7CE59D1F522D701"));
        assert!(keys.contains("PUB_KEY_ID_1"));
    }
}
