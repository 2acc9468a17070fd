//! The PKI engine of yiqian: keys and the `Signer` seam (software keys, and PKCS#11 HSM keys
//! in `pkcs11`), certificate profiles (root, issuing CA, GM/T 0015 personal certificate, OCSP
//! signer), PKCS#10 requests, CRLs, and OCSP requests and responses (RFC 6960, in `ocsp`), for
//! SM2/SM3, ECDSA P-256 and RSA-3072.
//!
//! It knows nothing of orders or databases: callers pass names, keys, serials and times in,
//! and get DER (or `x509_cert` values) out. Everything it produces is checked against the
//! system `openssl` in `tests/openssl.rs`.
//!
//! Crate choices follow `shared/reference/crypto-feasibility.md`: the RustCrypto "new stack"
//! (x509-cert 0.3, der 0.8, spki 0.8) for ASN.1, the `sm2`/`sm3` crates for SM2 (signatures
//! re-encoded as DER `SEQUENCE { r, s }`, which the crate's own X.509 encoding gets wrong),
//! and aws-lc-rs for P-256 and RSA private-key operations and for their verification.
//! Certificates and CRLs are encoded by hand from those types rather than through
//! `x509_cert`'s builders, whose profiles and CRL authority key identifier do not fit.
//!
//! SM2 distinguishing ID: we sign with `DEFAULT_SM2_DISTID` ("1234567812345678"), settable
//! per key. OpenSSL 3.0's command line uses an empty ID unless told otherwise
//! (`-vfyopt distid:1234567812345678` for `verify` and `req -verify`, one chain level at a
//! time); `openssl crl` and `openssl ocsp` cannot be told, so SM2 CRL signatures are checked
//! with `openssl dgst -sm3 -sigopt distid:1234567812345678` over the extracted TBS bytes.

pub mod algorithm;
pub mod certificate;
pub mod crl;
pub mod csr;
pub mod encoding;
mod error;
pub mod key;
pub mod name;
pub mod ocsp;
pub mod oids;
pub mod pkcs11;
pub mod profile;
pub mod serial;

pub use algorithm::{Algorithm, key_algorithm};
pub use certificate::{CertificateRequest, issue};
pub use crl::{RevocationReason, RevokedEntry, build_crl};
pub use csr::{MAX_CSR_SIZE, VerifiedCsr, build_csr, verify_csr};
pub use encoding::{from_pem, to_pem};
pub use error::PkiError;
pub use key::{DEFAULT_SM2_DISTID, Signer, SoftwareKey, verify};
pub use name::{common_name, personal_subject};
pub use ocsp::{
    CertId, CertIdHash, CertStatus, IssuerHashes, MAX_OCSP_REQUEST_SIZE, OcspErrorStatus, OcspRequest, SingleResponse,
    build_ocsp_response, ocsp_error_response, parse_ocsp_request,
};
pub use pkcs11::{Pkcs11Config, Pkcs11Key};
pub use profile::{IdNumberPolicy, IssuanceOptions, Profile};
pub use serial::SerialNumber;

// The types of the public API, so callers need not depend on the same versions themselves.
pub use const_oid;
pub use der;
pub use spki;
pub use x509_cert;
pub use zeroize;
