//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0: a canonical request
//! (method, `/`, query, the signed headers, the body's SHA-256), a string to sign naming the
//! UTC date and the service, and a key derived from the secret key by the date, the service
//! and `tc3_request`.
//!
//! Both sides live here: [`authorization`] signs a request we send, and
//! [`parse_authorization`] with [`canonical_request_with`], [`string_to_sign_with`] and
//! [`sign`] let a receiver (the local stand-in) recompute the signature from the headers it
//! actually received, as Tencent Cloud does.

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
    canonical_request_with(&[("content-type", r.content_type), ("host", r.host)], r.payload)
}

/// The canonical request of a `POST /` without query string, signing `headers` — lower-case
/// names with their values, in the order of `SignedHeaders` (sorted by name).
pub fn canonical_request_with(headers: &[(&str, &str)], payload: &[u8]) -> String {
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{}\n", value.trim())).collect();
    let signed_headers: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    format!("POST\n/\n\n{canonical_headers}\n{}\n{}", signed_headers.join(";"), hex::encode(Sha256::digest(payload)))
}

/// The UTC date of the timestamp, as the credential scope names it.
pub fn scope_date(timestamp: DateTime<Utc>) -> String {
    timestamp.format("%Y-%m-%d").to_string()
}

/// The string to sign.
pub fn string_to_sign(r: &Tc3Request<'_>) -> String {
    string_to_sign_with(r.timestamp.timestamp(), &scope_date(r.timestamp), r.service, &canonical_request(r))
}

/// The string to sign of `canonical_request`, sent at `timestamp` (seconds) under the scope
/// `date`/`service`/`tc3_request`.
pub fn string_to_sign_with(timestamp: i64, date: &str, service: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The signature (lower-case hex) of `string_to_sign` with the key derived from
/// `secret_key`, `date` and `service`.
pub fn sign(secret_key: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The signature (lower-case hex).
pub fn signature(secret_key: &str, r: &Tc3Request<'_>) -> String {
    sign(secret_key, &scope_date(r.timestamp), r.service, &string_to_sign(r))
}

/// The `Authorization` header's value.
pub fn authorization(credentials: &Credentials, r: &Tc3Request<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders=content-type;host, Signature={}",
        credentials.secret_id,
        scope_date(r.timestamp),
        r.service,
        signature(&credentials.secret_key, r)
    )
}

/// The parts of a received `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization<'a> {
    /// The SecretId of the credential.
    pub secret_id: &'a str,
    /// The scope's date, `YYYY-MM-DD`.
    pub date: &'a str,
    /// The scope's service.
    pub service: &'a str,
    /// The signed header names, as listed (lower case, `;`-separated in the header).
    pub signed_headers: Vec<&'a str>,
    /// The signature (hex).
    pub signature: &'a str,
}

/// Why an `Authorization` header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// Not `TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    #[error("the Authorization header is not in the TC3-HMAC-SHA256 format")]
    Malformed,
}

/// Reads `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b,
/// Signature=HEX`, as Tencent Cloud does (the comma-space separators are required).
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization<'_>, AuthorizationError> {
    let rest = value.strip_prefix(ALGORITHM).and_then(|r| r.strip_prefix(' ')).ok_or(AuthorizationError::Malformed)?;
    let mut parts = rest.split(", ");
    let mut field = |name: &str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(name))
            .and_then(|p| p.strip_prefix('='))
            .filter(|v| !v.is_empty())
            .ok_or(AuthorizationError::Malformed)
    };
    let credential = field("Credential")?;
    let signed_headers = field("SignedHeaders")?;
    let signature = field("Signature")?;
    if parts.next().is_some() {
        return Err(AuthorizationError::Malformed);
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, "tc3_request"] = scope[..] else {
        return Err(AuthorizationError::Malformed);
    };
    if [secret_id, date, service].iter().any(|s| s.is_empty()) {
        return Err(AuthorizationError::Malformed);
    }
    let signed_headers: Vec<&str> = signed_headers.split(';').collect();
    if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(AuthorizationError::Malformed);
    }
    Ok(ParsedAuthorization { secret_id, date, service, signed_headers, signature })
}

/// Compares two signatures in time independent of where they differ.
pub fn signatures_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    fn a_receiver_recomputes_the_signature_from_the_parsed_header() {
        let (credentials, r) = tc1();
        let header = authorization(&credentials, &r);
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(parsed.secret_id, credentials.secret_id);
        assert_eq!((parsed.date, parsed.service), ("2019-02-25", "cvm"));
        assert_eq!(parsed.signed_headers, ["content-type", "host"]);
        let canonical = canonical_request_with(&[("content-type", CONTENT_TYPE), ("host", r.host)], r.payload);
        assert_eq!(canonical, canonical_request(&r));
        let expected = sign(
            &credentials.secret_key,
            parsed.date,
            parsed.service,
            &string_to_sign_with(1_551_113_065, "2019-02-25", "cvm", &canonical),
        );
        assert!(signatures_match(parsed.signature, &expected));
        assert!(!signatures_match(parsed.signature, &expected.replace('7', "8")));
    }

    #[test]
    fn malformed_authorization_headers_are_refused() {
        for bad in [
            "",
            "TC3-HMAC-SHA1 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request,SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=Host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab, X=1",
        ] {
            assert_eq!(parse_authorization(bad), Err(AuthorizationError::Malformed), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let (credentials, _) = tc1();
        assert!(!format!("{credentials:?}").contains("Gu5t9x"));
    }
}
