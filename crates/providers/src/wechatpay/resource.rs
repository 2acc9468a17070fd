//! Notification resources: `AEAD_AES_256_GCM` with the merchant's 32-byte APIv3 key, the
//! 12-byte `nonce` as IV, `associated_data` as AAD, and the Base64 `ciphertext` carrying the
//! 16-byte tag at its end. Decrypt only after the notification's signature verified. The
//! inverse, [`encrypt_resource`], is what WeChat Pay does (the local stand-in uses it).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;

/// Why a resource could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The APIv3 key is not 32 bytes.
    #[error("the APIv3 key must be 32 bytes, this one has {0}")]
    KeyLength(usize),
    /// The nonce is not 12 bytes.
    #[error("the resource nonce must be 12 bytes")]
    Nonce,
    /// The ciphertext is not Base64.
    #[error("the resource ciphertext is not Base64")]
    Encoding,
    /// Wrong key, or the resource was altered.
    #[error("the resource does not decrypt: wrong APIv3 key or altered data")]
    Authentication,
}

/// Decrypts a notification resource.
pub fn decrypt_resource(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, ResourceError> {
    if api_v3_key.len() != 32 {
        return Err(ResourceError::KeyLength(api_v3_key.len()));
    }
    if nonce.len() != 12 {
        return Err(ResourceError::Nonce);
    }
    let ciphertext =
        base64::engine::general_purpose::STANDARD.decode(ciphertext_b64).map_err(|_| ResourceError::Encoding)?;
    let cipher = Aes256Gcm::new_from_slice(api_v3_key).map_err(|_| ResourceError::KeyLength(api_v3_key.len()))?;
    cipher
        .decrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: &ciphertext, aad: associated_data.as_bytes() })
        .map_err(|_| ResourceError::Authentication)
}

/// Encrypts `plaintext` as WeChat Pay does for a notification resource or a downloaded
/// platform certificate: AES-256-GCM, Base64 of ciphertext followed by the tag.
pub fn encrypt_resource(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, ResourceError> {
    if api_v3_key.len() != 32 {
        return Err(ResourceError::KeyLength(api_v3_key.len()));
    }
    if nonce.len() != 12 {
        return Err(ResourceError::Nonce);
    }
    let cipher = Aes256Gcm::new_from_slice(api_v3_key).map_err(|_| ResourceError::KeyLength(api_v3_key.len()))?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: plaintext, aad: associated_data.as_bytes() })
        .map_err(|_| ResourceError::Authentication)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WX5: &str = "pAyOu7QNn5GkJO0qnW9XJYUL1sQY2yu6fR/Kj//0OIa5Fy9UdbkG5G6Gk0gNMiQe9JRyfwJemdqpV+/hUjgA7BMmlPyUFbjfSG1pf4eITowZ7GAOeRqDWJCLnabLDaR3gA==";

    /// WX-5: true AES-256-GCM with a 32-byte key.
    #[test]
    fn wx5_vector() {
        let plain = decrypt_resource(b"0123456789abcdef0123456789abcdef", "fBh0tPaM3n2z", "transaction", WX5).unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            r#"{"out_trade_no":"T20240101000001","trade_state":"SUCCESS","amount":{"total":100}}"#
        );
    }

    /// WX-4 uses a 16-byte key (AES-128): real APIv3 keys are 32 bytes, so it is refused.
    #[test]
    fn wx4_sixteen_byte_key_is_refused() {
        assert_eq!(
            decrypt_resource(
                b"testAPIv3Key0000",
                "wCq51qZv4Yfg",
                "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
                "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"
            ),
            Err(ResourceError::KeyLength(16))
        );
    }

    #[test]
    fn encryption_reproduces_wx5() {
        let plain = r#"{"out_trade_no":"T20240101000001","trade_state":"SUCCESS","amount":{"total":100}}"#;
        let key = b"0123456789abcdef0123456789abcdef";
        assert_eq!(encrypt_resource(key, "fBh0tPaM3n2z", "transaction", plain.as_bytes()).unwrap(), WX5);
        assert_eq!(encrypt_resource(b"short", "fBh0tPaM3n2z", "", b""), Err(ResourceError::KeyLength(5)));
    }

    #[test]
    fn altered_data_or_wrong_key_fails() {
        let key = b"0123456789abcdef0123456789abcdef";
        assert_eq!(decrypt_resource(key, "fBh0tPaM3n2z", "refund", WX5), Err(ResourceError::Authentication));
        assert_eq!(
            decrypt_resource(b"0123456789abcdef0123456789abcdeX", "fBh0tPaM3n2z", "transaction", WX5),
            Err(ResourceError::Authentication)
        );
        assert_eq!(decrypt_resource(key, "short", "transaction", WX5), Err(ResourceError::Nonce));
        assert_eq!(decrypt_resource(key, "fBh0tPaM3n2z", "transaction", "%%%"), Err(ResourceError::Encoding));
    }
}
