//! Small encoding helpers shared by the certificate, CSR and CRL code: PEM armour, a minimal
//! DER TLV writer (used where building `der` structures would cost memory or copies), and the
//! RFC 5280 time rule (UTCTime through 2049, GeneralizedTime from 2050).

use crate::PkiError;
use der::DateTime;
use der::asn1::{GeneralizedTime, UtcTime};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::time::Time;

/// PEM label of a certificate.
pub const PEM_CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a PKCS#10 certificate request.
pub const PEM_CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";
/// PEM label of a CRL.
pub const PEM_CRL: &str = "X509 CRL";
/// PEM label of an unencrypted PKCS#8 private key.
pub const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM label of a SubjectPublicKeyInfo.
pub const PEM_PUBLIC_KEY: &str = "PUBLIC KEY";

/// Wraps DER in PEM armour with `label` (64-column base64, `\n` line endings). Use the
/// `PEM_*` labels; a label RFC 7468 forbids (control characters, leading or trailing `-`)
/// yields an empty string.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    // Encoding can only fail on an invalid label.
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Decodes PEM armour, returning its label and the DER inside. Text before the
/// `-----BEGIN` line (such as `openssl req -text` output) is skipped.
pub fn from_pem(input: &[u8]) -> Result<(String, Vec<u8>), PkiError> {
    let start =
        find(input, b"-----BEGIN ").ok_or_else(|| PkiError::Malformed("no PEM \"-----BEGIN\" line".to_owned()))?;
    let (label, der) = der::pem::decode_vec(&input[start..]).map_err(|e| PkiError::malformed("PEM", e))?;
    Ok((label.to_owned(), der))
}

/// Whether `input` looks like PEM rather than DER (DER starts with a SEQUENCE tag).
pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    input.first() != Some(&0x30) && find(input, b"-----BEGIN ").is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An X.509 `Time` for `t`, truncated to whole seconds: UTCTime through 2049,
/// GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). Times before 1970 are refused.
pub fn x509_time(t: SystemTime) -> Result<Time, PkiError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::InvalidRequest("times before 1970 cannot be encoded".to_owned()))?
        .as_secs();
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(|e| PkiError::encoding("time", e))?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(dt).map_err(|e| PkiError::encoding("UTCTime", e))?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// Appends a DER header: one-octet `tag` and the definite length `len`.
pub(crate) fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    push_length(out, len);
}

/// Appends a DER definite length.
pub(crate) fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Length of a DER header for a value of `len` octets (one-octet tag).
pub(crate) fn header_len(len: usize) -> usize {
    if len < 0x80 { 2 } else { 2 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8) }
}

/// A complete TLV: `tag`, length, and the concatenation of `parts`.
pub(crate) fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(header_len(len) + len);
    push_header(&mut out, tag, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// DER tag octets used by the hand-built encodings.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const ENUMERATED: u8 = 0x0a;
    pub const SEQUENCE: u8 = 0x30;
    /// `[0]` constructed (EXPLICIT) context-specific.
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[3]` constructed (EXPLICIT) context-specific.
    pub const CONTEXT_3: u8 = 0xa3;
}

/// A BIT STRING holding `bytes` with no unused bits (how signatures are carried).
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(tag::BIT_STRING, &[&[0], bytes])
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn lengths_match_der() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 16_777_216] {
            let mut out = Vec::new();
            push_header(&mut out, 0x04, len);
            assert_eq!(out.len(), header_len(len), "length {len}");
            let expected =
                der::Header::new(der::Tag::OctetString, der::Length::try_from(len).unwrap()).to_der().unwrap();
            assert_eq!(out, expected, "length {len}");
        }
    }

    #[test]
    fn pem_round_trip() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let pem = to_pem(PEM_CERTIFICATE, &der);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(looks_like_pem(pem.as_bytes()));
        assert!(!looks_like_pem(&der));
        let with_text = format!("Certificate:\n    Data: ...\n{pem}");
        assert_eq!(from_pem(with_text.as_bytes()).unwrap(), (PEM_CERTIFICATE.to_owned(), der));
        assert!(from_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").is_err());
        assert!(from_pem(b"hello").is_err());
    }

    #[test]
    fn rfc5280_time_choice() {
        let t2049 = UNIX_EPOCH + Duration::from_secs(2_524_607_999); // 2049-12-31T23:59:59Z
        let t2050 = UNIX_EPOCH + Duration::from_secs(2_524_608_000); // 2050-01-01T00:00:00Z
        assert!(matches!(x509_time(t2049).unwrap(), Time::UtcTime(_)));
        assert!(matches!(x509_time(t2050).unwrap(), Time::GeneralTime(_)));
        assert_eq!(x509_time(t2050).unwrap().to_der().unwrap()[2..], *b"20500101000000Z");
        // Sub-second parts are truncated, not refused.
        let odd = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(x509_time(odd).unwrap().to_unix_duration(), Duration::from_secs(1_700_000_000));
        assert!(x509_time(UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }
}
