//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0: a canonical request
//! (method, `/`, query, the signed headers, the body's SHA-256), a string to sign naming the
//! UTC date and the service, and a key derived from the secret key by the date, the service
//! and `tc3_request`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm's name, as it appears in the string to sign and the header.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The content type every JSON call sends; signed byte for byte.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON POST to one Tencent Cloud service.
#[derive(Debug, Clone, Copy)]
pub struct Tc3Request<'a> {
    /// The service's short name, e.g. `sms`, `faceid`, `ocr`.
    pub service: &'a str,
    /// The endpoint's host, e.g. `sms.tencentcloudapi.com`.
    pub host: &'a str,
    /// The content type sent (and signed); [`CONTENT_TYPE`] for JSON calls.
    pub content_type: &'a str,
    /// The body, exactly as sent.
    pub payload: &'a [u8],
    /// `X-TC-Timestamp`.
    pub timestamp: DateTime<Utc>,
}

/// The credentials of a Tencent Cloud account (or sub-account). `Debug` hides the key.
#[derive(Clone)]
pub struct Credentials {
    /// SecretId, printed in the `Authorization` header.
    pub secret_id: String,
    /// SecretKey, never sent.
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("secret_id", &self.secret_id).finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical request of a POST with `content-type` and `host` signed.
pub fn canonical_request(r: &Tc3Request<'_>) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        r.content_type,
        r.host,
        hex::encode(Sha256::digest(r.payload))
    )
}

/// The UTC date of the timestamp, as the credential scope names it.
fn scope_date(r: &Tc3Request<'_>) -> String {
    r.timestamp.format("%Y-%m-%d").to_string()
}

/// The string to sign.
pub fn string_to_sign(r: &Tc3Request<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/tc3_request\n{}",
        r.timestamp.timestamp(),
        scope_date(r),
        r.service,
        hex::encode(Sha256::digest(canonical_request(r).as_bytes()))
    )
}

/// The signature (lower-case hex).
pub fn signature(secret_key: &str, r: &Tc3Request<'_>) -> String {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), scope_date(r).as_bytes());
    let k_service = hmac(&k_date, r.service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    hex::encode(hmac(&k_signing, string_to_sign(r).as_bytes()))
}

/// The `Authorization` header's value.
pub fn authorization(credentials: &Credentials, r: &Tc3Request<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders=content-type;host, Signature={}",
        credentials.secret_id,
        scope_date(r),
        r.service,
        signature(&credentials.secret_key, r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vector TC-1 of the reference sheet (Tencent Cloud's "签名方法 v3" example).
    fn tc1() -> (Credentials, Tc3Request<'static>) {
        let credentials = Credentials {
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE".into(),
            secret_key: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE".into(),
        };
        let request = Tc3Request {
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            content_type: CONTENT_TYPE,
            payload: br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#,
            timestamp: DateTime::from_timestamp(1_551_113_065, 0).unwrap(),
        };
        (credentials, request)
    }

    #[test]
    fn tc1_vector() {
        let (credentials, r) = tc1();
        assert!(canonical_request(&r).ends_with("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"));
        assert_eq!(
            hex::encode(Sha256::digest(canonical_request(&r).as_bytes())),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            signature(&credentials.secret_key, &r),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            authorization(&credentials, &r),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn the_scope_date_is_utc() {
        let (credentials, mut r) = tc1();
        // 2019-02-25 23:30 UTC is already the 26th in Beijing; the scope stays the 25th.
        r.timestamp = DateTime::from_timestamp(1_551_137_400, 0).unwrap();
        assert!(authorization(&credentials, &r).contains("/2019-02-25/cvm/"));
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let (credentials, _) = tc1();
        assert!(!format!("{credentials:?}").contains("Gu5t9x"));
    }
}
