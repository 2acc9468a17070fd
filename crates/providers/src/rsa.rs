//! SHA256withRSA (PKCS#1 v1.5) with Base64 signatures, as WeChat Pay v3 and Alipay's RSA2 use
//! it: one place to load PEM keys and to sign and verify.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    /// Not a PEM RSA key of the expected kind.
    #[error("not a usable RSA key in PEM: {0}")]
    Key(String),
    /// The key refused to sign.
    #[error("signing failed")]
    Sign,
}

fn pem_der(pem: &str) -> Result<(String, Vec<u8>), RsaError> {
    let label = pem
        .lines()
        .find_map(|l| l.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")))
        .ok_or_else(|| RsaError::Key("no PEM header".into()))?
        .to_owned();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let der =
        base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| RsaError::Key(format!("not base64: {e}")))?;
    Ok((label, der))
}

/// An RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`). `Debug` shows nothing.
pub struct RsaSigner(RsaKeyPair);

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaSigner(…)")
    }
}

impl RsaSigner {
    /// Loads a private key from PEM.
    pub fn from_pem(pem: &str) -> Result<RsaSigner, RsaError> {
        let (label, der) = pem_der(pem)?;
        let key = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            other => return Err(RsaError::Key(format!("a {other} is not an RSA private key"))),
        }
        .map_err(|e| RsaError::Key(e.to_string()))?;
        Ok(RsaSigner(key))
    }

    /// The public half (PKCS#1 RSAPublicKey DER), to verify this key's signatures.
    pub fn verifier(&self) -> RsaVerifier {
        use aws_lc_rs::signature::KeyPair;
        RsaVerifier(self.0.public_key().as_ref().to_vec())
    }

    /// SHA256withRSA over `message`, Base64 (standard alphabet, padded).
    pub fn sign(&self, message: &[u8]) -> Result<String, RsaError> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).map_err(|_| RsaError::Sign)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signature))
    }
}

/// An RSA public key (`PUBLIC KEY`, SubjectPublicKeyInfo) to verify signatures with.
#[derive(Debug, Clone)]
pub struct RsaVerifier(Vec<u8>);

impl RsaVerifier {
    /// Loads a public key from PEM.
    pub fn from_pem(pem: &str) -> Result<RsaVerifier, RsaError> {
        match pem_der(pem)? {
            (label, der) if label == "PUBLIC KEY" => Ok(RsaVerifier(der)),
            (label, _) => Err(RsaError::Key(format!("a {label} is not a public key"))),
        }
    }

    /// A public key from DER (SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey).
    pub fn from_der(der: Vec<u8>) -> RsaVerifier {
        RsaVerifier(der)
    }

    /// Whether `signature_b64` is a SHA256withRSA signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.0).verify(message, &signature).is_ok()
    }
}
