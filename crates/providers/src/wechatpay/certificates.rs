//! Platform certificates (certificate mode): parsing a WeChat Pay platform certificate into its
//! serial, validity and RSA public key, and opening the answer of `GET /v3/certificates`, whose
//! certificates come encrypted with the APIv3 key exactly like a notification resource.

use super::resource::{ResourceError, decrypt_resource};
use crate::rsa::RsaVerifier;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::x509_cert::Certificate;

/// The OID of `rsaEncryption`.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Why a platform certificate cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not PEM, or not an X.509 certificate.
    #[error("not a PEM X.509 certificate: {0}")]
    Parse(String),
    /// The certificate's key is not RSA.
    #[error("certificate {0} does not carry an RSA key")]
    NotRsa(String),
    /// The certificate has expired.
    #[error("certificate {serial} expired at {not_after}")]
    Expired {
        /// Its serial.
        serial: String,
        /// Its notAfter.
        not_after: DateTime<Utc>,
    },
    /// The `/v3/certificates` answer is not what WeChat Pay sends.
    #[error("malformed certificate list: {0}")]
    Malformed(String),
    /// An encrypted certificate does not open (wrong APIv3 key?).
    #[error("certificate {serial} does not decrypt: {source}")]
    Decrypt {
        /// The serial the list names.
        serial: String,
        /// Why.
        source: ResourceError,
    },
    /// The list names a certificate under another serial than its own.
    #[error("the list names certificate {actual} as {listed}")]
    SerialMismatch {
        /// The `serial_no` in the list.
        listed: String,
        /// The certificate's own serial.
        actual: String,
    },
}

/// A parsed platform certificate.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    /// The serial, upper-case hex of its magnitude (the `Wechatpay-Serial` naming it).
    pub serial: String,
    /// Valid from.
    pub not_before: DateTime<Utc>,
    /// Valid until.
    pub not_after: DateTime<Utc>,
    key: RsaVerifier,
}

fn time(t: yiqian_pki::x509_cert::time::Time) -> DateTime<Utc> {
    let d = t.to_unix_duration();
    DateTime::from_timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl PlatformCertificate {
    /// Parses a PEM certificate (the first one in `pem`).
    pub fn from_pem(pem: &str) -> Result<PlatformCertificate, CertificateError> {
        let (label, der) = yiqian_pki::from_pem(pem.as_bytes()).map_err(|e| CertificateError::Parse(e.to_string()))?;
        if label != "CERTIFICATE" {
            return Err(CertificateError::Parse(format!("a {label} is not a certificate")));
        }
        PlatformCertificate::from_der(&der)
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<PlatformCertificate, CertificateError> {
        let cert = Certificate::from_der(der).map_err(|e| CertificateError::Parse(e.to_string()))?;
        let tbs = cert.tbs_certificate();
        let magnitude: Vec<u8> = tbs.serial_number().as_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        let serial = hex::encode_upper(&magnitude);
        let spki = tbs.subject_public_key_info();
        if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return Err(CertificateError::NotRsa(serial));
        }
        let spki_der = spki.to_der().map_err(|e| CertificateError::Parse(e.to_string()))?;
        Ok(PlatformCertificate {
            serial,
            not_before: time(tbs.validity().not_before),
            not_after: time(tbs.validity().not_after),
            key: RsaVerifier::from_der(spki_der),
        })
    }

    /// The certificate's public key.
    pub fn verifier(&self) -> &RsaVerifier {
        &self.key
    }

    /// Refuses the certificate if it has expired at `now`.
    pub fn check_unexpired(&self, now: DateTime<Utc>) -> Result<(), CertificateError> {
        if self.not_after < now {
            return Err(CertificateError::Expired { serial: self.serial.clone(), not_after: self.not_after });
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct CertificateList {
    data: Vec<ListedCertificate>,
}

#[derive(Deserialize)]
struct ListedCertificate {
    serial_no: String,
    encrypt_certificate: EncryptedCertificate,
}

#[derive(Deserialize)]
struct EncryptedCertificate {
    algorithm: String,
    nonce: String,
    #[serde(default)]
    associated_data: String,
    ciphertext: String,
}

/// Opens the body of a `GET /v3/certificates` answer: decrypts and parses every certificate,
/// checks each is listed under its own serial, and returns the ones not expired at `now`.
pub fn open_certificate_list(
    body: &[u8],
    api_v3_key: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<PlatformCertificate>, CertificateError> {
    let list: CertificateList = serde_json::from_slice(body).map_err(|e| CertificateError::Malformed(e.to_string()))?;
    let mut out = Vec::new();
    for listed in list.data {
        let enc = &listed.encrypt_certificate;
        if enc.algorithm != "AEAD_AES_256_GCM" {
            return Err(CertificateError::Malformed(format!("unknown algorithm {:?}", enc.algorithm)));
        }
        let pem = decrypt_resource(api_v3_key, &enc.nonce, &enc.associated_data, &enc.ciphertext)
            .map_err(|source| CertificateError::Decrypt { serial: listed.serial_no.clone(), source })?;
        let pem = String::from_utf8(pem).map_err(|_| CertificateError::Parse("certificate is not text".into()))?;
        let cert = PlatformCertificate::from_pem(&pem)?;
        if super::verify::normalize_serial(&cert.serial) != super::verify::normalize_serial(&listed.serial_no) {
            return Err(CertificateError::SerialMismatch { listed: listed.serial_no, actual: cert.serial });
        }
        if cert.check_unexpired(now).is_ok() {
            out.push(cert);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WX3_CERT: &str = include_str!("../../testdata/wx3_platform_cert.pem");

    #[test]
    fn the_go_sdk_test_certificate_parses() {
        let cert = PlatformCertificate::from_pem(WX3_CERT).unwrap();
        assert_eq!(cert.serial, "D7CE59D1F522D701");
        assert_eq!(cert.not_after, DateTime::parse_from_rfc3339("2031-04-25T08:55:23Z").unwrap());
        assert_eq!(cert.not_before, DateTime::parse_from_rfc3339("2021-04-27T08:55:23Z").unwrap());
        let after = DateTime::parse_from_rfc3339("2031-04-26T00:00:00Z").unwrap().to_utc();
        assert!(matches!(cert.check_unexpired(after), Err(CertificateError::Expired { .. })));
        assert!(cert.check_unexpired(Utc::now()).is_ok());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(PlatformCertificate::from_pem("nope"), Err(CertificateError::Parse(_))));
        let key = include_str!("../../testdata/wxgo_test_key.pem");
        assert!(matches!(PlatformCertificate::from_pem(key), Err(CertificateError::Parse(_))));
    }

    #[test]
    fn a_certificate_list_opens_and_serials_are_checked() {
        let key = b"0123456789abcdef0123456789abcdef";
        let ct =
            super::super::resource::encrypt_resource(key, "abcdefghijkl", "certificate", WX3_CERT.as_bytes()).unwrap();
        let body = |serial: &str| {
            serde_json::json!({"data":[{"serial_no":serial,"effective_time":"2021-04-27T16:55:23+08:00",
                "expire_time":"2031-04-25T16:55:23+08:00","encrypt_certificate":{"algorithm":"AEAD_AES_256_GCM",
                "nonce":"abcdefghijkl","associated_data":"certificate","ciphertext":ct}}]})
            .to_string()
        };
        let now = Utc::now();
        let certs = open_certificate_list(body("D7CE59D1F522D701").as_bytes(), key, now).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].serial, "D7CE59D1F522D701");
        assert!(matches!(
            open_certificate_list(body("0123").as_bytes(), key, now),
            Err(CertificateError::SerialMismatch { .. })
        ));
        assert!(matches!(
            open_certificate_list(body("D7CE59D1F522D701").as_bytes(), b"0123456789abcdef0123456789abcdeX", now),
            Err(CertificateError::Decrypt { .. })
        ));
        let later = DateTime::parse_from_rfc3339("2032-01-01T00:00:00Z").unwrap().to_utc();
        assert!(open_certificate_list(body("D7CE59D1F522D701").as_bytes(), key, later).unwrap().is_empty());
    }
}
