//! Certificate mode's serial numbers: `app_cert_sn` and `alipay_root_cert_sn`. A certificate's
//! SN is the lower-case hex MD5 of its issuer rendered `CN=…,OU=…,O=…,C=…` (the attributes in
//! reverse of their DER order) followed by its serial in decimal; the root SN joins the SNs of
//! the bundle's RSA-signed certificates with `_` (the SM2 and ECDSA roots are skipped).

use base64::Engine;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use yiqian_pki::der::asn1::{PrintableStringRef, Utf8StringRef};
use yiqian_pki::der::{Decode, Encode, Tag, Tagged};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::x509_cert::name::Name;

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertSnError {
    /// Not a PEM certificate.
    #[error("not a PEM certificate: {0}")]
    Certificate(String),
    /// An issuer attribute this rendering does not know.
    #[error("unsupported issuer attribute {0}")]
    Attribute(String),
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.11" => "OU",
        "2.5.4.10" => "O",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        _ => return None,
    })
}

/// The issuer as Alipay renders it.
fn render_issuer(name: &Name) -> Result<String, CertSnError> {
    let mut parts = Vec::new();
    for atv in name.iter() {
        let oid = atv.oid.to_string();
        let key = short_name(&oid).ok_or_else(|| CertSnError::Attribute(oid.clone()))?;
        let value = match atv.value.tag() {
            Tag::Utf8String => atv.value.decode_as::<Utf8StringRef<'_>>().map(|s| s.as_str().to_owned()),
            Tag::PrintableString => atv.value.decode_as::<PrintableStringRef<'_>>().map(|s| s.as_str().to_owned()),
            _ => return Err(CertSnError::Attribute(format!("{oid} of type {:?}", atv.value.tag()))),
        }
        .map_err(|e| CertSnError::Attribute(format!("{oid}: {e}")))?;
        parts.push(format!("{key}={value}"));
    }
    parts.reverse();
    Ok(parts.join(","))
}

/// A big-endian unsigned integer in decimal.
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 10) as u8;
            remainder = value % 10;
        }
        digits.push(b'0' + remainder as u8);
        while number.first() == Some(&0) {
            number.remove(0);
        }
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

fn sn_of(cert: &Certificate) -> Result<String, CertSnError> {
    let tbs = cert.tbs_certificate();
    let input = format!("{}{}", render_issuer(tbs.issuer())?, decimal(tbs.serial_number().as_bytes()));
    Ok(hex::encode(Md5::digest(input.as_bytes())))
}

fn certificates(pem: &str) -> Result<Vec<Certificate>, CertSnError> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_marker = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_marker).ok_or_else(|| CertSnError::Certificate("unterminated PEM".into()))?;
        // Vendors' PEM files vary in line length and endings: decode the Base64 leniently.
        let body: String = rest[start + "-----BEGIN CERTIFICATE-----".len()..start + end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| CertSnError::Certificate(format!("not Base64: {e}")))?;
        out.push(Certificate::from_der(&der).map_err(|e| CertSnError::Certificate(e.to_string()))?);
        rest = &rest[start + end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err(CertSnError::Certificate("no certificate found".into()));
    }
    Ok(out)
}

/// `app_cert_sn` (or `alipay_cert_sn`) of a PEM certificate.
pub fn cert_sn(pem: &str) -> Result<String, CertSnError> {
    sn_of(&certificates(pem)?[0])
}

/// What certificate mode needs to know of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Its SN as Alipay computes it (`app_cert_sn`, `alipay_cert_sn`).
    pub sn: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Its public key (SubjectPublicKeyInfo DER), to verify signatures with.
    pub public_key_der: Vec<u8>,
}

fn timestamp(time: yiqian_pki::x509_cert::time::Time) -> Result<DateTime<Utc>, CertSnError> {
    let seconds = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| CertSnError::Certificate("validity out of range".into()))?;
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| CertSnError::Certificate("validity out of range".into()))
}

/// The SN, validity and public key of the first certificate of a PEM text.
pub fn certificate_info(pem: &str) -> Result<CertificateInfo, CertSnError> {
    let cert = &certificates(pem)?[0];
    let tbs = cert.tbs_certificate();
    let public_key_der =
        tbs.subject_public_key_info().to_der().map_err(|e| CertSnError::Certificate(format!("public key: {e}")))?;
    Ok(CertificateInfo {
        sn: sn_of(cert)?,
        not_before: timestamp(tbs.validity().not_before)?,
        not_after: timestamp(tbs.validity().not_after)?,
        public_key_der,
    })
}

/// `alipay_root_cert_sn` of the root bundle.
pub fn root_cert_sn(bundle_pem: &str) -> Result<String, CertSnError> {
    let mut sns = Vec::new();
    for cert in certificates(bundle_pem)? {
        if cert.signature_algorithm().oid.to_string().starts_with("1.2.840.113549.1.1.") {
            sns.push(sn_of(&cert)?);
        }
    }
    Ok(sns.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AL-4: the Node SDK's certificate fixtures.
    #[test]
    fn al4_vector() {
        assert_eq!(cert_sn(include_str!("../../testdata/appcert.crt")).unwrap(), "866efef280dec9137a87d047ac446315");
        assert_eq!(
            root_cert_sn(include_str!("../../testdata/root.crt")).unwrap(),
            "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"
        );
    }

    #[test]
    fn the_issuer_and_serial_render_as_alipay_does() {
        let cert = &certificates(include_str!("../../testdata/appcert.crt")).unwrap()[0];
        let tbs = cert.tbs_certificate();
        assert_eq!(
            render_issuer(tbs.issuer()).unwrap(),
            "CN=Ant Financial Certification Authority Class 1 R1,OU=Certification Authority,O=Ant Financial,C=CN"
        );
        assert_eq!(decimal(tbs.serial_number().as_bytes()), "42701552708448241360226107228231049510");
        assert_eq!(decimal(&[0, 0]), "0");
        assert_eq!(decimal(&[1, 0]), "256");
    }

    #[test]
    fn certificate_info_reads_sn_validity_and_key() {
        let info = certificate_info(include_str!("../../testdata/appcert.crt")).unwrap();
        assert_eq!(info.sn, "866efef280dec9137a87d047ac446315");
        assert!(info.not_before < info.not_after);
        // A SubjectPublicKeyInfo: a DER SEQUENCE.
        assert_eq!(info.public_key_der[0], 0x30);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(cert_sn("no certificate").is_err());
    }
}
