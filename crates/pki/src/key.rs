//! The `Signer` seam (a software key now, a PKCS#11 HSM key later), the software key
//! implementation, and signature verification against a SubjectPublicKeyInfo.
//!
//! Backends, per the feasibility probe: SM2 uses the pure-Rust `sm2` crate (faster than
//! OpenSSL 3.0's generic-curve code); P-256 and RSA private-key operations use aws-lc-rs
//! (5.6× and 9× the pure-Rust crates). Verification of P-256 and RSA also goes through
//! aws-lc-rs; SM2 through `sm2`. All randomness comes from aws-lc-rs's system RNG.

use crate::PkiError;
use crate::algorithm::{Algorithm, RSA_MAX_BITS, RSA_MIN_BITS, key_algorithm};
use crate::oids;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use der::asn1::{Any, BitString, Null};
use signature::{Signer as _, Verifier as _};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::fmt;
use zeroize::Zeroizing;

/// The default SM2 distinguishing ID (GM/T 0009, RFC 8998).
pub const DEFAULT_SM2_DISTID: &str = "1234567812345678";

/// Something that signs for a CA: a software key now, a PKCS#11 HSM key later (the seam).
pub trait Signer: Send + Sync {
    /// The algorithm of the key.
    fn algorithm(&self) -> Algorithm;

    /// The DER SubjectPublicKeyInfo of the key.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;

    /// Signs `message` (the DER TBS bytes) — hashing included (SM3 with Z_A over the
    /// distinguishing ID for SM2, SHA-256 otherwise) — and returns the signature as it goes in
    /// the BIT STRING: DER `SEQUENCE { r, s }` for SM2/ECDSA, PKCS#1 v1.5 bytes for RSA.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;

    /// The SM2 distinguishing ID this signer hashes into Z_A (ignored for other algorithms).
    /// Used to check signatures right after they are made.
    fn sm2_distid(&self) -> &str {
        DEFAULT_SM2_DISTID
    }
}

/// A software private key: the embedded default for CA keys (stored encrypted by the
/// caller), and subscriber keys in tests. `Debug` never prints key material.
pub struct SoftwareKey {
    inner: Inner,
    spki: SubjectPublicKeyInfoOwned,
}

enum Inner {
    /// `distid` is the ID asked for; `key` was built with it unless it was too long.
    Sm2 {
        key: sm2::dsa::SigningKey,
        distid: String,
    },
    P256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl SoftwareKey {
    /// Generates a new key: SM2, P-256, or RSA-3072.
    pub fn generate(algorithm: Algorithm) -> Result<SoftwareKey, PkiError> {
        let failed = |what: &str| PkiError::Key(format!("could not generate {what} key"));
        match algorithm {
            Algorithm::Sm2 => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                // A random 256-bit string is a valid scalar unless it is zero or ≥ n, which
                // happens with probability about 2^-32: draw again then.
                for _ in 0..64 {
                    aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| failed("an SM2"))?;
                    if let Ok(key) = sm2::dsa::SigningKey::from_slice(DEFAULT_SM2_DISTID, &bytes[..]) {
                        return SoftwareKey::from_sm2(key, DEFAULT_SM2_DISTID.to_owned());
                    }
                }
                Err(failed("an SM2"))
            }
            Algorithm::P256 => {
                let key = EcdsaKeyPair::generate(&lc::ECDSA_P256_SHA256_ASN1_SIGNING).map_err(|_| failed("a P-256"))?;
                SoftwareKey::from_p256(key)
            }
            Algorithm::Rsa3072 => {
                let key = RsaKeyPair::generate(KeySize::Rsa3072).map_err(|_| failed("an RSA-3072"))?;
                SoftwareKey::from_rsa(key)
            }
        }
    }

    /// SM2 keys sign with this distinguishing ID (default `DEFAULT_SM2_DISTID`). No effect on
    /// other algorithms. An ID longer than 8191 bytes cannot be hashed: signing then fails.
    pub fn with_sm2_distid(self, distid: &str) -> SoftwareKey {
        match self.inner {
            Inner::Sm2 { key, .. } => {
                let key = sm2::dsa::SigningKey::from_nonzero_scalar(distid, *key.as_nonzero_scalar()).unwrap_or(key);
                SoftwareKey { inner: Inner::Sm2 { key, distid: distid.to_owned() }, spki: self.spki }
            }
            inner => SoftwareKey { inner, spki: self.spki },
        }
    }

    /// PKCS#8 (RFC 5208 v1) DER of the private key, for the caller to encrypt at rest.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let failed = |e: &dyn fmt::Display| PkiError::Key(format!("could not export the private key: {e}"));
        match &self.inner {
            Inner::Sm2 { key, .. } => {
                use sm2::pkcs8::EncodePrivateKey;
                let secret = sm2::SecretKey::from(key.as_nonzero_scalar());
                let doc = secret.to_pkcs8_der().map_err(|e| failed(&e))?;
                Ok(Zeroizing::new(doc.as_bytes().to_vec()))
            }
            Inner::P256(key) => {
                let doc = key.to_pkcs8v1().map_err(|e| failed(&e))?;
                Ok(Zeroizing::new(doc.as_ref().to_vec()))
            }
            Inner::Rsa(key) => {
                let doc = key.as_der().map_err(|e| failed(&e))?;
                Ok(Zeroizing::new(doc.as_ref().to_vec()))
            }
        }
    }

    /// Reads a PKCS#8 DER private key of `algorithm` (SM2 keys get the default distinguishing
    /// ID; chain `with_sm2_distid` to change it). RSA keys must be 3072 to 4096 bits.
    pub fn from_pkcs8_der(algorithm: Algorithm, der: &[u8]) -> Result<SoftwareKey, PkiError> {
        let refused = |e: &dyn fmt::Display| PkiError::Key(format!("not a {algorithm} PKCS#8 private key: {e}"));
        let key = match algorithm {
            Algorithm::Sm2 => {
                use sm2::pkcs8::DecodePrivateKey;
                let secret = sm2::SecretKey::from_pkcs8_der(der).map_err(|e| refused(&e))?;
                let key = sm2::dsa::SigningKey::new(DEFAULT_SM2_DISTID, &secret).map_err(|e| refused(&e))?;
                SoftwareKey::from_sm2(key, DEFAULT_SM2_DISTID.to_owned())?
            }
            Algorithm::P256 => {
                let key =
                    EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|e| refused(&e))?;
                SoftwareKey::from_p256(key)?
            }
            Algorithm::Rsa3072 => {
                let key = RsaKeyPair::from_pkcs8(der).map_err(|e| refused(&e))?;
                let bits = key.public_modulus_len() * 8;
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(PkiError::KeyNotAllowed(format!(
                        "an RSA-{bits} key; {RSA_MIN_BITS} to {RSA_MAX_BITS} bits are supported"
                    )));
                }
                SoftwareKey::from_rsa(key)?
            }
        };
        // The public half must satisfy the same policy as any subscriber key.
        key_algorithm(&key.spki)?;
        Ok(key)
    }

    fn from_sm2(key: sm2::dsa::SigningKey, distid: String) -> Result<SoftwareKey, PkiError> {
        let point = key.verifying_key().to_sec1_bytes();
        let spki = ec_spki(oids::SM2_CURVE, &point)?;
        Ok(SoftwareKey { inner: Inner::Sm2 { key, distid }, spki })
    }

    fn from_p256(key: EcdsaKeyPair) -> Result<SoftwareKey, PkiError> {
        let spki = ec_spki(oids::P256_CURVE, key.public_key().as_ref())?;
        Ok(SoftwareKey { inner: Inner::P256(key), spki })
    }

    fn from_rsa(key: RsaKeyPair) -> Result<SoftwareKey, PkiError> {
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned { oid: oids::RSA_ENCRYPTION, parameters: Some(Any::from(Null)) },
            subject_public_key: BitString::from_bytes(key.public_key().as_ref())
                .map_err(|e| PkiError::encoding("RSA public key", e))?,
        };
        Ok(SoftwareKey { inner: Inner::Rsa(key), spki })
    }
}

/// The SubjectPublicKeyInfo of an EC key: id-ecPublicKey, namedCurve, uncompressed point.
fn ec_spki(curve: const_oid::ObjectIdentifier, point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: oids::EC_PUBLIC_KEY, parameters: Some(Any::from(&curve)) },
        subject_public_key: BitString::from_bytes(point).map_err(|e| PkiError::encoding("EC public key", e))?,
    })
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::Sm2 { .. } => Algorithm::Sm2,
            Inner::P256(_) => Algorithm::P256,
            Inner::Rsa(_) => Algorithm::Rsa3072,
        }
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        match &self.inner {
            Inner::Sm2 { key, distid } => {
                if key.distid() != distid.as_str() {
                    return Err(PkiError::Signing(format!(
                        "the SM2 distinguishing ID is {} bytes long; at most 8191 can be hashed",
                        distid.len()
                    )));
                }
                let sig: sm2::dsa::Signature =
                    key.try_sign(message).map_err(|e| PkiError::Signing(format!("SM2: {e}")))?;
                Ok(sig.to_der().to_vec())
            }
            Inner::P256(key) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let sig = key.sign(&rng, message).map_err(|e| PkiError::Signing(format!("P-256: {e}")))?;
                Ok(sig.as_ref().to_vec())
            }
            Inner::Rsa(key) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(&lc::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|e| PkiError::Signing(format!("RSA: {e}")))?;
                Ok(sig)
            }
        }
    }

    fn sm2_distid(&self) -> &str {
        match &self.inner {
            Inner::Sm2 { distid, .. } => distid,
            _ => DEFAULT_SM2_DISTID,
        }
    }
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SoftwareKey");
        d.field("algorithm", &self.algorithm());
        if let Inner::Sm2 { distid, .. } = &self.inner {
            d.field("sm2_distid", distid);
        }
        d.finish_non_exhaustive()
    }
}

/// Verifies `signature` over `message` with a SubjectPublicKeyInfo (for CSRs, chains, tests).
/// The key must be of `algorithm` and acceptable to `key_algorithm`; `sm2_distid` is used
/// only for SM2.
pub fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: Algorithm,
    message: &[u8],
    signature: &[u8],
    sm2_distid: &str,
) -> Result<(), PkiError> {
    let key_alg = key_algorithm(spki)?;
    if key_alg != algorithm {
        return Err(PkiError::AlgorithmMismatch(format!(
            "a {algorithm} signature cannot be checked with a {key_alg} key"
        )));
    }
    let key_bytes = spki.subject_public_key.raw_bytes();
    match algorithm {
        Algorithm::Sm2 => {
            let key = sm2::dsa::VerifyingKey::from_sec1_bytes(sm2_distid, key_bytes).map_err(|_| {
                PkiError::KeyNotAllowed(format!(
                    "the SM2 key or the distinguishing ID ({} bytes) cannot be used",
                    sm2_distid.len()
                ))
            })?;
            let sig = sm2::dsa::Signature::from_der(signature).map_err(|_| PkiError::BadSignature)?;
            key.verify(message, &sig).map_err(|_| PkiError::BadSignature)
        }
        Algorithm::P256 => lc::UnparsedPublicKey::new(&lc::ECDSA_P256_SHA256_ASN1, key_bytes)
            .verify(message, signature)
            .map_err(|_| PkiError::BadSignature),
        Algorithm::Rsa3072 => lc::UnparsedPublicKey::new(&lc::RSA_PKCS1_2048_8192_SHA256, key_bytes)
            .verify(message, signature)
            .map_err(|_| PkiError::BadSignature),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// One key per algorithm for the whole unit-test run (RSA generation is slow).
    pub(crate) fn test_key(algorithm: Algorithm) -> &'static SoftwareKey {
        static KEYS: OnceLock<Vec<SoftwareKey>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| Algorithm::ALL.iter().map(|a| SoftwareKey::generate(*a).unwrap()).collect());
        &keys[Algorithm::ALL.iter().position(|a| *a == algorithm).unwrap()]
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        for alg in Algorithm::ALL {
            let key = test_key(alg);
            let der = key.to_pkcs8_der().unwrap();
            let back = SoftwareKey::from_pkcs8_der(alg, &der).unwrap();
            assert_eq!(back.public_key(), key.public_key(), "{alg}");
            assert_eq!(back.algorithm(), alg);
            // The re-read key signs, and the original public key verifies it.
            let sig = back.sign(b"message").unwrap();
            verify(key.public_key(), alg, b"message", &sig, DEFAULT_SM2_DISTID).unwrap();
        }
    }

    #[test]
    fn pkcs8_of_the_wrong_algorithm_or_garbage_is_refused() {
        let p256 = test_key(Algorithm::P256).to_pkcs8_der().unwrap();
        assert!(matches!(SoftwareKey::from_pkcs8_der(Algorithm::Rsa3072, &p256), Err(PkiError::Key(_))));
        assert!(SoftwareKey::from_pkcs8_der(Algorithm::Sm2, &p256).is_err());
        for alg in Algorithm::ALL {
            assert!(SoftwareKey::from_pkcs8_der(alg, b"\x30\x03\x02\x01\x00").is_err());
            assert!(SoftwareKey::from_pkcs8_der(alg, b"").is_err());
        }
    }

    #[test]
    fn rsa_2048_pkcs8_is_refused() {
        let small = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = small.as_der().unwrap();
        assert!(matches!(
            SoftwareKey::from_pkcs8_der(Algorithm::Rsa3072, der.as_ref()),
            Err(PkiError::KeyNotAllowed(_))
        ));
    }

    #[test]
    fn verify_rejects_a_wrong_key_a_changed_message_and_a_wrong_algorithm() {
        for alg in Algorithm::ALL {
            let key = test_key(alg);
            let other = SoftwareKey::generate(if alg == Algorithm::Rsa3072 { Algorithm::P256 } else { alg }).unwrap();
            let sig = key.sign(b"tbs").unwrap();
            verify(key.public_key(), alg, b"tbs", &sig, DEFAULT_SM2_DISTID).unwrap();
            assert_eq!(verify(key.public_key(), alg, b"tbs!", &sig, DEFAULT_SM2_DISTID), Err(PkiError::BadSignature));
            assert_eq!(
                verify(key.public_key(), alg, b"tbs", b"\x30\x00", DEFAULT_SM2_DISTID),
                Err(PkiError::BadSignature)
            );
            if other.algorithm() == alg {
                assert_eq!(
                    verify(other.public_key(), alg, b"tbs", &sig, DEFAULT_SM2_DISTID),
                    Err(PkiError::BadSignature)
                );
            } else {
                assert!(matches!(
                    verify(other.public_key(), alg, b"tbs", &sig, DEFAULT_SM2_DISTID),
                    Err(PkiError::AlgorithmMismatch(_))
                ));
            }
        }
    }

    #[test]
    fn sm2_signatures_are_der_and_bound_to_the_distid() {
        let key = test_key(Algorithm::Sm2);
        let sig = key.sign(b"tbs").unwrap();
        assert_eq!(sig[0], 0x30, "SM2 signatures go in the BIT STRING as DER SEQUENCE {{r, s}}");
        assert!((8..=72).contains(&sig.len()));
        assert_eq!(verify(key.public_key(), Algorithm::Sm2, b"tbs", &sig, ""), Err(PkiError::BadSignature));

        let der = key.to_pkcs8_der().unwrap();
        let empty = SoftwareKey::from_pkcs8_der(Algorithm::Sm2, &der).unwrap().with_sm2_distid("");
        assert_eq!(empty.sm2_distid(), "");
        let sig = empty.sign(b"tbs").unwrap();
        verify(key.public_key(), Algorithm::Sm2, b"tbs", &sig, "").unwrap();
        assert_eq!(
            verify(key.public_key(), Algorithm::Sm2, b"tbs", &sig, DEFAULT_SM2_DISTID),
            Err(PkiError::BadSignature)
        );

        let too_long = SoftwareKey::from_pkcs8_der(Algorithm::Sm2, &der).unwrap().with_sm2_distid(&"x".repeat(9000));
        assert!(matches!(too_long.sign(b"tbs"), Err(PkiError::Signing(_))));
    }

    #[test]
    fn debug_prints_no_key_material() {
        for alg in Algorithm::ALL {
            let key = test_key(alg);
            let debug = format!("{key:?}");
            assert!(debug.starts_with("SoftwareKey {"), "{debug}");
            assert!(debug.len() < 80, "{debug}");
            let pkcs8 = key.to_pkcs8_der().unwrap();
            let hex: String = pkcs8[pkcs8.len() - 8..].iter().map(|b| format!("{b:02x}")).collect();
            assert!(!debug.to_lowercase().contains(&hex));
        }
    }

    #[test]
    fn generated_keys_have_the_expected_spki() {
        use der::Encode;
        let sm2 = test_key(Algorithm::Sm2).public_key().to_der().unwrap();
        // GM/T 0006 / vendor-protocols §8.1: id-ecPublicKey + SM2 curve, uncompressed point.
        assert_eq!(
            &sm2[..27],
            [
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x81,
                0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d, 0x03, 0x42, 0x00, 0x04
            ]
        );
        for alg in Algorithm::ALL {
            assert_eq!(key_algorithm(test_key(alg).public_key()), Ok(alg));
        }
    }
}
