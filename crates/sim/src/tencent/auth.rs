//! Verifying a received Tencent Cloud API 3.0 request the way Tencent does: the
//! `Authorization` header is parsed, its SecretId must be the account's, its scope must name
//! the UTC date of `X-TC-Timestamp` and the action's service, `content-type` and `host` must be
//! signed, and the signature is recomputed from the headers and body as received.

use super::ApiFailure;
use crate::accounts::TencentAccount;
use axum::http::HeaderMap;
use yiqian_providers::tencent::tc3;

/// How far `X-TC-Timestamp` may be from the stand-in's clock, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 300;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks the signature of a request to `service` received with `headers` and `body` at
/// `now` (Unix seconds).
pub fn verify(
    account: &TencentAccount,
    headers: &HeaderMap,
    body: &[u8],
    service: &str,
    now: i64,
) -> Result<(), ApiFailure> {
    let invalid = |message: &str| ApiFailure::new("AuthFailure.InvalidAuthorization", message);
    let authorization =
        header(headers, "authorization").ok_or_else(|| invalid("the Authorization header is missing"))?;
    let parsed = tc3::parse_authorization(authorization)
        .map_err(|_| invalid("the Authorization header does not follow TC3-HMAC-SHA256"))?;
    if parsed.secret_id != account.secret_id {
        return Err(ApiFailure::new("AuthFailure.SecretIdNotFound", "The SecretId is not found."));
    }
    let timestamp = header(headers, "x-tc-timestamp")
        .ok_or_else(|| ApiFailure::new("MissingParameter", "The request is missing the header X-TC-Timestamp."))?;
    let timestamp: i64 = timestamp
        .parse()
        .map_err(|_| ApiFailure::new("InvalidParameterValue", "X-TC-Timestamp is not a number of seconds."))?;
    if (now - timestamp).abs() > MAX_SKEW_SECONDS {
        return Err(ApiFailure::new(
            "AuthFailure.SignatureExpire",
            "Signature expired. Timestamp is more than 5 minutes from the server time.",
        ));
    }
    let date = chrono::DateTime::from_timestamp(timestamp, 0).map(tc3::scope_date);
    if date.as_deref() != Some(parsed.date) {
        return Err(invalid("the credential date is not the UTC date of X-TC-Timestamp"));
    }
    if parsed.service != service {
        return Err(invalid("the credential service does not match the action"));
    }
    let signed = &parsed.signed_headers;
    if !signed.contains(&"content-type") || !signed.contains(&"host") {
        return Err(invalid("SignedHeaders must include content-type and host"));
    }
    if signed.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid("SignedHeaders must be sorted and unique"));
    }
    let mut canonical_headers = Vec::with_capacity(signed.len());
    for name in signed {
        let value = header(headers, name).ok_or_else(|| invalid("a signed header is missing"))?;
        canonical_headers.push((*name, value));
    }
    let canonical = tc3::canonical_request_with(&canonical_headers, body);
    let string_to_sign = tc3::string_to_sign_with(timestamp, parsed.date, service, &canonical);
    let expected = tc3::sign(&account.secret_key, parsed.date, service, &string_to_sign);
    if !tc3::signatures_match(parsed.signature, &expected) {
        return Err(ApiFailure::new(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    Ok(())
}
