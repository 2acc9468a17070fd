//! The three signature algorithms a CA or subscriber key may use, their X.509 algorithm
//! identifiers, and the key policy: which SubjectPublicKeyInfo is acceptable for new issuance.

use crate::PkiError;
use crate::oids;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Null, UintRef};
use der::{Decode, Reader, SliceReader, Tag, Tagged};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::fmt;
use std::str::FromStr;

/// Smallest RSA modulus accepted for new issuance, in bits.
pub const RSA_MIN_BITS: usize = 3072;
/// Largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: usize = 4096;

/// Signature algorithms a CA or subscriber key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SM2 with SM3 (GM/T 0003, GM/T 0009), signatures DER `SEQUENCE { r, s }`.
    Sm2,
    /// ECDSA on NIST P-256 with SHA-256.
    P256,
    /// RSA PKCS#1 v1.5 with SHA-256; keys of 3072 to 4096 bits.
    Rsa3072,
}

impl Algorithm {
    /// Every algorithm, in a stable order (for tests and help texts).
    pub const ALL: [Algorithm; 3] = [Algorithm::Sm2, Algorithm::P256, Algorithm::Rsa3072];

    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sm2 => "sm2",
            Algorithm::P256 => "p256",
            Algorithm::Rsa3072 => "rsa3072",
        }
    }

    /// The signatureAlgorithm of certificates/CRLs signed by a key of this algorithm:
    /// SM2 → 1.2.156.10197.1.501 (parameters absent), P-256 → ecdsa-with-SHA256
    /// 1.2.840.10045.4.3.2 (absent), RSA → sha256WithRSAEncryption 1.2.840.113549.1.1.11 (NULL).
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            Algorithm::Sm2 => AlgorithmIdentifierOwned { oid: oids::SM2_WITH_SM3, parameters: None },
            Algorithm::P256 => AlgorithmIdentifierOwned { oid: oids::ECDSA_WITH_SHA256, parameters: None },
            Algorithm::Rsa3072 => {
                AlgorithmIdentifierOwned { oid: oids::SHA256_WITH_RSA, parameters: Some(Any::from(Null)) }
            }
        }
    }

    /// Whether `id` is an acceptable signatureAlgorithm for a key of this algorithm.
    /// Lenient where deployed software is: NULL parameters are tolerated on SM2 and ECDSA
    /// (some legacy CAs emit them) and absent parameters on RSA.
    pub fn accepts_signature_algorithm(self, id: &AlgorithmIdentifierOwned) -> bool {
        let params_ok = match &id.parameters {
            None => true,
            Some(p) => p.tag() == Tag::Null && p.value().is_empty(),
        };
        params_ok && id.oid == self.signature_algorithm().oid
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Algorithm, PkiError> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| PkiError::UnsupportedAlgorithm(format!("{s:?} (expected sm2, p256 or rsa3072)")))
    }
}

/// Human name of a signatureAlgorithm OID, for error messages.
pub(crate) fn signature_algorithm_name(oid: &ObjectIdentifier) -> String {
    match *oid {
        oids::SM2_WITH_SM3 => "SM2-with-SM3".to_owned(),
        oids::ECDSA_WITH_SHA256 => "ecdsa-with-SHA256".to_owned(),
        oids::SHA256_WITH_RSA => "sha256WithRSAEncryption".to_owned(),
        other => match const_oid::db::DB.by_oid(&other) {
            Some(name) => format!("{name} ({other})"),
            None => other.to_string(),
        },
    }
}

/// The algorithm of a public key: id-ecPublicKey with curve SM2 or P-256 (the point must lie
/// on the curve), or rsaEncryption with a 3072..=4096-bit modulus and a sane exponent.
/// RSA-2048 is refused as too small for new issuance (`PkiError::KeyNotAllowed`).
pub fn key_algorithm(spki: &SubjectPublicKeyInfoOwned) -> Result<Algorithm, PkiError> {
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| PkiError::Malformed("the public key BIT STRING has unused bits".to_owned()))?;
    match spki.algorithm.oid {
        oids::EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .ok_or_else(|| PkiError::Malformed("an EC public key without a named curve".to_owned()))?
                .decode_as::<ObjectIdentifier>()
                .map_err(|_| {
                    PkiError::UnsupportedAlgorithm("EC public key with explicit curve parameters".to_owned())
                })?;
            match curve {
                oids::SM2_CURVE => {
                    sm2::PublicKey::from_sec1_bytes(key_bytes).map_err(|_| {
                        PkiError::KeyNotAllowed("the SM2 public key is not a valid curve point".to_owned())
                    })?;
                    Ok(Algorithm::Sm2)
                }
                oids::P256_CURVE => {
                    p256::PublicKey::from_sec1_bytes(key_bytes).map_err(|_| {
                        PkiError::KeyNotAllowed("the P-256 public key is not a valid curve point".to_owned())
                    })?;
                    Ok(Algorithm::P256)
                }
                other => Err(PkiError::UnsupportedAlgorithm(format!(
                    "elliptic curve {} (only SM2 and P-256 are accepted)",
                    const_oid::db::DB.by_oid(&other).map_or_else(|| other.to_string(), |n| format!("{n} ({other})"))
                ))),
            }
        }
        oids::RSA_ENCRYPTION => {
            let bits = rsa_modulus_bits(key_bytes)?;
            if bits < RSA_MIN_BITS {
                Err(PkiError::KeyNotAllowed(format!(
                    "RSA-{bits} is too small for new certificates; at least {RSA_MIN_BITS} bits are required"
                )))
            } else if bits > RSA_MAX_BITS {
                Err(PkiError::KeyNotAllowed(format!("RSA-{bits} is larger than the {RSA_MAX_BITS} bits supported")))
            } else {
                Ok(Algorithm::Rsa3072)
            }
        }
        other => Err(PkiError::UnsupportedAlgorithm(format!(
            "public key algorithm {} (only SM2, P-256 and RSA are accepted)",
            const_oid::db::DB.by_oid(&other).map_or_else(|| other.to_string(), |n| format!("{n} ({other})"))
        ))),
    }
}

/// Parses a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// and returns the modulus size in bits, checking the exponent (odd, 3 ≤ e < 2^33, the range
/// the verifier accepts).
pub(crate) fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<usize, PkiError> {
    let malformed = |e: der::Error| PkiError::malformed("RSA public key", e);
    let mut reader = SliceReader::new(pkcs1).map_err(malformed)?;
    let (n, e) = reader.sequence(|r| Ok((UintRef::decode(r)?, UintRef::decode(r)?))).map_err(malformed)?;
    reader.finish().map_err(malformed)?;
    let n = n.as_bytes();
    let e = e.as_bytes();
    let bits = match n.first() {
        Some(&first) if first != 0 => n.len() * 8 - first.leading_zeros() as usize,
        _ => return Err(PkiError::KeyNotAllowed("the RSA modulus is zero".to_owned())),
    };
    let e_value = if e.len() > 5 { u64::MAX } else { e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) };
    if !(3..(1u64 << 33)).contains(&e_value) || e_value % 2 == 0 {
        return Err(PkiError::KeyNotAllowed(
            "the RSA public exponent must be odd, at least 3 and below 2^33".to_owned(),
        ));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
        }
        assert_eq!("SM2".parse::<Algorithm>(), Ok(Algorithm::Sm2));
        assert!(matches!("rsa2048".parse::<Algorithm>(), Err(PkiError::UnsupportedAlgorithm(_))));
    }

    #[test]
    fn signature_algorithm_parameters() {
        use der::Encode;
        let der = |a: Algorithm| a.signature_algorithm().to_der().unwrap();
        // SEQUENCE { OID } with parameters absent, as OpenSSL writes them.
        assert_eq!(der(Algorithm::Sm2), [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75]);
        assert_eq!(der(Algorithm::P256), [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        // sha256WithRSAEncryption carries NULL.
        assert_eq!(&der(Algorithm::Rsa3072)[der(Algorithm::Rsa3072).len() - 2..], [0x05, 0x00]);
    }

    #[test]
    fn rsa_exponent_checked() {
        use der::Encode;
        use der::asn1::Uint;
        let encode = |n: &[u8], e: &[u8]| {
            let n = Uint::new(n).unwrap();
            let e = Uint::new(e).unwrap();
            let mut body = n.to_der().unwrap();
            body.extend(e.to_der().unwrap());
            let mut out = vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8];
            out.extend(body);
            out
        };
        let n = vec![0xc1; 384];
        assert_eq!(rsa_modulus_bits(&encode(&n, &[1, 0, 1])), Ok(3072));
        assert!(matches!(rsa_modulus_bits(&encode(&n, &[2])), Err(PkiError::KeyNotAllowed(_))));
        assert!(matches!(rsa_modulus_bits(&encode(&n, &[1])), Err(PkiError::KeyNotAllowed(_))));
        assert!(matches!(rsa_modulus_bits(b"\x30\x00"), Err(PkiError::Malformed(_))));
    }
}
