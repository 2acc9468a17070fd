//! `X-Nuonuo-Sign`, the signature of every Nuonuo open-API call: Base64(HMAC-SHA1(appSecret,
//! `a={a}&l={l}&p={p}&k={appKey}&i={senid}&n={nonce}&t={timestamp}&f={body}`)), where `p`, `l`
//! and `a` are the last three segments of the request path (`/open/v1/services` → `open`, `v1`,
//! `services`) and `f` is the exact body sent.

use aws_lc_rs::hmac;
use base64::Engine;

/// The text that is signed, for a call to `path` (e.g. `/open/v1/services`); `None` when the
/// path has fewer than three segments.
pub fn sign_input(path: &str, app_key: &str, senid: &str, nonce: &str, timestamp: &str, body: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let [.., p, l, a] = segments.as_slice() else {
        return None;
    };
    Some(format!("a={a}&l={l}&p={p}&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={body}"))
}

/// The Base64 HMAC-SHA1 of `input` under `app_secret`.
pub fn sign(app_secret: &str, input: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, app_secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, input.as_bytes()).as_ref())
}

/// Whether `signature` (Base64) is the right one for `input` (constant-time comparison), for
/// the local stand-in.
pub fn verify(app_secret: &str, input: &str, signature: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, app_secret.as_bytes());
    hmac::verify(&key, input.as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"serialNos":["24010112345678901234"]}"#;

    /// Vector NN-1 of the reference sheet (self-computed there, no official vector exists).
    #[test]
    fn nn1_vector() {
        let input = sign_input(
            "/open/v1/services",
            "SD63236305",
            "8f1d5c2a7b3e4f6a9c0d1e2f3a4b5c6d",
            "12345678",
            "1700000000",
            BODY,
        )
        .unwrap();
        assert_eq!(
            input,
            r#"a=services&l=v1&p=open&k=SD63236305&i=8f1d5c2a7b3e4f6a9c0d1e2f3a4b5c6d&n=12345678&t=1700000000&f={"serialNos":["24010112345678901234"]}"#
        );
        assert_eq!(sign("SDDED2523BED4643", &input), "HnEr4zLCFRJkTWqre13JTrCGQrI=");
        assert!(verify("SDDED2523BED4643", &input, "HnEr4zLCFRJkTWqre13JTrCGQrI="));
    }

    #[test]
    fn other_secret_body_or_path_fails() {
        let input = sign_input("/open/v1/services", "K", "s", "12345678", "1", BODY).unwrap();
        let good = sign("secret", &input);
        assert!(!verify("other", &input, &good));
        assert!(!verify("secret", &input.replace("1234", "1235"), &good));
        assert!(!verify("secret", &input, "not base64!"));
        assert_eq!(sign_input("/v1/services", "K", "s", "n", "t", BODY), None);
        assert!(
            sign_input("/prefix/open/v1/services/", "K", "s", "n", "t", BODY)
                .unwrap()
                .starts_with("a=services&l=v1&p=open&")
        );
    }
}
