//! The object identifiers this engine writes or recognises, in one place, each with the
//! standard that assigns it.

use const_oid::ObjectIdentifier as Oid;

/// SM2 signature with SM3 (GM/T 0006): `signatureAlgorithm` of SM2-signed objects.
pub const SM2_WITH_SM3: Oid = Oid::new_unwrap("1.2.156.10197.1.501");
/// The SM2 curve sm2p256v1 (GM/T 0006), the `namedCurve` of an SM2 `id-ecPublicKey`.
pub const SM2_CURVE: Oid = Oid::new_unwrap("1.2.156.10197.1.301");
/// ecdsa-with-SHA256 (RFC 5758).
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// sha256WithRSAEncryption (RFC 4055).
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// rsaEncryption (RFC 3279): the SubjectPublicKeyInfo algorithm of an RSA key.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (RFC 5480): the SubjectPublicKeyInfo algorithm of P-256 and SM2 keys.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / prime256v1 / NIST P-256 (RFC 5480).
pub const P256_CURVE: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");

/// id-at-commonName (X.520).
pub const COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
/// id-at-countryName (X.520).
pub const COUNTRY_NAME: Oid = Oid::new_unwrap("2.5.4.6");

/// id-kp-clientAuth (RFC 5280).
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
/// id-kp-emailProtection (RFC 5280).
pub const KP_EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
/// id-kp-OCSPSigning (RFC 5280).
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-ad-ocsp (RFC 5280), an AuthorityInfoAccess method.
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers (RFC 5280), an AuthorityInfoAccess method.
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): "do not check the revocation of this responder".
pub const OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-pkix-ocsp-basic (RFC 6960 §4.2.1): the responseType of a BasicOCSPResponse.
pub const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 8954).
pub const OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-response (RFC 6960 §4.4.3): the acceptable response types of a request.
pub const OCSP_RESPONSE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.4");

/// id-sha1 (RFC 3279), a CertID hash algorithm.
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754), a CertID hash algorithm.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");

/// id-ce-cRLNumber (RFC 5280).
pub const CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
/// id-ce-cRLReasons (RFC 5280), a CRL entry extension.
pub const CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
/// id-ce-authorityKeyIdentifier (RFC 5280).
pub const AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");

/// GM/T 0015-2023 identity extension: resident ID number (公民身份号码), a PrintableString.
pub const GMT0015_RESIDENT_ID: Oid = Oid::new_unwrap("1.2.156.10260.4.1.1.1");
