//! Full CRLs (RFC 5280 §5): version 2, CRL number, authority key identifier = the issuer's
//! SKI, thisUpdate/nextUpdate, and a CRLReason entry extension per revoked certificate.
//!
//! Not built with `x509_cert`'s `CrlBuilder`: it copies the issuer's *authority* key
//! identifier into the CRL, which is wrong for an issuing CA (OpenSSL then cannot find the
//! CRL). The DER is written by hand in two passes — sizes first, then bytes straight into one
//! buffer — so a million entries cost one allocation of about 47 MB and no quadratic work (about
//! 0.3 s in a release build, signing included).

use crate::PkiError;
use crate::encoding::{bit_string, header_len, push_header, tag, x509_time};
use crate::key::Signer;
use crate::profile::{extension, subject_key_identifier};
use crate::serial::SerialNumber;
use der::Encode;
use der::asn1::{OctetString, Uint};
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, CrlNumber};

/// The reason a certificate was revoked (RFC 5280 §5.3.1 CRLReason; 7 is unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RevocationReason {
    /// unspecified (0); written as no reason code at all, as RFC 5280 recommends.
    Unspecified = 0,
    /// keyCompromise (1).
    KeyCompromise = 1,
    /// cACompromise (2).
    CaCompromise = 2,
    /// affiliationChanged (3).
    AffiliationChanged = 3,
    /// superseded (4).
    Superseded = 4,
    /// cessationOfOperation (5).
    CessationOfOperation = 5,
    /// certificateHold (6): temporarily revoked; yiqian holds certificates until activation.
    CertificateHold = 6,
    /// removeFromCRL (8): only meaningful in delta CRLs, so refused in a full CRL.
    RemoveFromCrl = 8,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn = 9,
    /// aACompromise (10).
    AaCompromise = 10,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason with this CRLReason code.
    pub fn from_code(code: u8) -> Option<RevocationReason> {
        RevocationReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The snake_case name used on the command line and in storage (`key_compromise`).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::CaCompromise => "ca_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
            RevocationReason::CertificateHold => "certificate_hold",
            RevocationReason::RemoveFromCrl => "remove_from_crl",
            RevocationReason::PrivilegeWithdrawn => "privilege_withdrawn",
            RevocationReason::AaCompromise => "aa_compromise",
        }
    }

    /// The text `openssl crl -text` and `openssl ocsp` print for this reason.
    pub fn openssl_name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "Unspecified",
            RevocationReason::KeyCompromise => "Key Compromise",
            RevocationReason::CaCompromise => "CA Compromise",
            RevocationReason::AffiliationChanged => "Affiliation Changed",
            RevocationReason::Superseded => "Superseded",
            RevocationReason::CessationOfOperation => "Cessation Of Operation",
            RevocationReason::CertificateHold => "Certificate Hold",
            RevocationReason::RemoveFromCrl => "Remove From CRL",
            RevocationReason::PrivilegeWithdrawn => "Privilege Withdrawn",
            RevocationReason::AaCompromise => "AA Compromise",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;

    /// Accepts the snake_case names, RFC 5280's (`keyCompromise`) and OpenSSL's
    /// (`Key Compromise`), case-insensitively.
    fn from_str(s: &str) -> Result<RevocationReason, PkiError> {
        let squash = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        let wanted = squash(s);
        RevocationReason::ALL.into_iter().find(|r| squash(r.as_str()) == wanted).ok_or_else(|| {
            let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.as_str()).collect();
            PkiError::InvalidRequest(format!("{s:?} is not a revocation reason (one of: {})", names.join(", ")))
        })
    }
}

/// One revoked certificate in a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial of the revoked certificate.
    pub serial: SerialNumber,
    /// When it was revoked (truncated to whole seconds).
    pub revoked_at: SystemTime,
    /// Why.
    pub reason: RevocationReason,
}

/// 2050-01-01T00:00:00Z: from here on times are GeneralizedTime (RFC 5280).
const GENERALIZED_FROM_UNIX: u64 = 2_524_608_000;

/// The crlEntryExtensions of a reason code `c`:
/// `SEQUENCE { SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED c } } }`.
fn reason_extensions(code: u8) -> [u8; 14] {
    [tag::SEQUENCE, 12, tag::SEQUENCE, 10, 0x06, 0x03, 0x55, 0x1d, 0x15, tag::OCTET_STRING, 3, tag::ENUMERATED, 1, code]
}

/// Content length of one revokedCertificates entry (always < 128: a two-octet header).
fn entry_content_len(entry: &RevokedEntry, secs: u64) -> usize {
    let serial = entry.serial.as_bytes();
    let serial_len = 2 + serial.len() + usize::from(serial[0] & 0x80 != 0);
    let time_len = if secs < GENERALIZED_FROM_UNIX { 2 + 13 } else { 2 + 15 };
    let ext_len = if entry.reason == RevocationReason::Unspecified { 0 } else { 14 };
    serial_len + time_len + ext_len
}

/// Builds a full CRL (DER) signed by `signer` for the CA `issuer`: version 2, CRL number
/// `crl_number`, AKI = the issuer's SKI, `this_update`/`next_update`, and each entry with its
/// CRLReason (none for `Unspecified`). An empty list omits revokedCertificates, as RFC 5280
/// requires. Refused: a signer that does not hold the issuer's key, an issuer that is not a
/// CA, `next_update` not after `this_update`, and `RemoveFromCrl` (delta CRLs only).
pub fn build_crl(
    issuer: &Certificate,
    signer: &dyn Signer,
    crl_number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
    revoked: &[RevokedEntry],
) -> Result<Vec<u8>, PkiError> {
    let tbs_cert = issuer.tbs_certificate();
    if signer.public_key() != tbs_cert.subject_public_key_info() {
        return Err(PkiError::InvalidRequest("the signer's key is not the CRL issuer certificate's key".to_owned()));
    }
    match tbs_cert.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => {}
        _ => return Err(PkiError::InvalidRequest("the CRL issuer certificate is not a CA certificate".to_owned())),
    }
    if next_update <= this_update {
        return Err(PkiError::InvalidRequest("nextUpdate must be after thisUpdate".to_owned()));
    }

    // Everything before and after the entries, encoded with `der`.
    let enc = |what: &str, r: der::Result<Vec<u8>>| r.map_err(|e| PkiError::encoding(what, e));
    let sig_alg = enc("signature algorithm", signer.algorithm().signature_algorithm().to_der())?;
    let issuer_name = enc("issuer name", tbs_cert.subject().to_der())?;
    let this_update = enc("thisUpdate", x509_time(this_update)?.to_der())?;
    let next_update = enc("nextUpdate", x509_time(next_update)?.to_der())?;
    let crl_number = Uint::new(&crl_number.to_be_bytes()).map_err(|e| PkiError::encoding("CRL number", e))?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(
            OctetString::new(subject_key_identifier(issuer)?).map_err(|e| PkiError::encoding("AKI", e))?,
        ),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let crl_exts =
        enc("CRL extensions", vec![extension(&aki, false)?, extension(&CrlNumber(crl_number), false)?].to_der())?;
    let version = [tag::INTEGER, 1, 1]; // v2

    // Pass 1: sizes (and validation), so pass 2 writes into one exact allocation.
    let mut entries_len = 0usize;
    for entry in revoked {
        if entry.reason == RevocationReason::RemoveFromCrl {
            return Err(PkiError::InvalidRequest(format!(
                "serial {}: removeFromCRL may only appear in delta CRLs",
                entry.serial
            )));
        }
        let secs = unix_secs(entry)?;
        entries_len += 2 + entry_content_len(entry, secs);
    }
    let revoked_len = if revoked.is_empty() { 0 } else { header_len(entries_len) + entries_len };
    let crl_exts_len = header_len(crl_exts.len()) + crl_exts.len();
    let tbs_content_len = version.len()
        + sig_alg.len()
        + issuer_name.len()
        + this_update.len()
        + next_update.len()
        + revoked_len
        + crl_exts_len;
    let tbs_len = header_len(tbs_content_len) + tbs_content_len;

    // Pass 2. Room is left in front for the outer SEQUENCE header, written once the signature
    // (whose length varies for ECDSA/SM2) is known; at the end for the signature.
    const OUTER_HEADER_ROOM: usize = 1 + 1 + 8;
    let mut out = Vec::with_capacity(OUTER_HEADER_ROOM + tbs_len + sig_alg.len() + 1024);
    out.resize(OUTER_HEADER_ROOM, 0);
    push_header(&mut out, tag::SEQUENCE, tbs_content_len);
    out.extend_from_slice(&version);
    out.extend_from_slice(&sig_alg);
    out.extend_from_slice(&issuer_name);
    out.extend_from_slice(&this_update);
    out.extend_from_slice(&next_update);
    if !revoked.is_empty() {
        push_header(&mut out, tag::SEQUENCE, entries_len);
        let mut time_buf = [0u8; 17];
        for entry in revoked {
            let secs = unix_secs(entry)?;
            push_header(&mut out, tag::SEQUENCE, entry_content_len(entry, secs));
            let serial = entry.serial.as_bytes();
            let pad = serial[0] & 0x80 != 0;
            push_header(&mut out, tag::INTEGER, serial.len() + usize::from(pad));
            if pad {
                out.push(0);
            }
            out.extend_from_slice(serial);
            let time = x509_time(entry.revoked_at)?
                .encode_to_slice(&mut time_buf)
                .map_err(|e| PkiError::encoding("revocationDate", e))?;
            out.extend_from_slice(time);
            if entry.reason != RevocationReason::Unspecified {
                out.extend_from_slice(&reason_extensions(entry.reason.code()));
            }
        }
    }
    push_header(&mut out, tag::CONTEXT_0, crl_exts.len());
    out.extend_from_slice(&crl_exts);
    debug_assert_eq!(out.len(), OUTER_HEADER_ROOM + tbs_len);

    let signature = signer.sign(&out[OUTER_HEADER_ROOM..])?;
    out.extend_from_slice(&sig_alg);
    out.extend_from_slice(&bit_string(&signature));

    let content_len = out.len() - OUTER_HEADER_ROOM;
    let mut header = Vec::with_capacity(OUTER_HEADER_ROOM);
    push_header(&mut header, tag::SEQUENCE, content_len);
    let start = OUTER_HEADER_ROOM - header.len();
    out[start..OUTER_HEADER_ROOM].copy_from_slice(&header);
    out.drain(..start);
    Ok(out)
}

fn unix_secs(entry: &RevokedEntry) -> Result<u64, PkiError> {
    entry.revoked_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).map_err(|_| {
        PkiError::InvalidRequest(format!("serial {}: a revocation time before 1970 cannot be encoded", entry.serial))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;
    use crate::certificate::{CertificateRequest, issue};
    use crate::key::tests::test_key;
    use crate::key::{DEFAULT_SM2_DISTID, verify};
    use crate::name::build_name;
    use crate::profile::{IssuanceOptions, Profile};
    use der::Decode;
    use der::asn1::Utf8StringRef;
    use std::time::Duration;
    type CertificateList = x509_cert::crl::CertificateList;
    use x509_cert::ext::pkix::CrlReason;

    fn root(alg: Algorithm) -> Certificate {
        let key = test_key(alg);
        let subject =
            build_name(&[(crate::oids::COMMON_NAME, der::asn1::Any::from(Utf8StringRef::new("Test Root").unwrap()))])
                .unwrap();
        let now = SystemTime::now();
        issue(
            &CertificateRequest {
                profile: Profile::Root,
                subject,
                public_key: key.public_key().clone(),
                serial: SerialNumber::random(),
                not_before: now,
                not_after: now + Duration::from_secs(86400 * 365),
                issuer: None,
                options: &IssuanceOptions::default(),
            },
            key,
        )
        .unwrap()
    }

    #[test]
    fn reason_names() {
        for r in RevocationReason::ALL {
            assert_eq!(r.as_str().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(r.openssl_name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        assert_eq!("keyCompromise".parse::<RevocationReason>().unwrap(), RevocationReason::KeyCompromise);
        assert_eq!("certificateHold".parse::<RevocationReason>().unwrap(), RevocationReason::CertificateHold);
        assert!("lost".parse::<RevocationReason>().is_err());
        assert_eq!(RevocationReason::from_code(7), None);
    }

    #[test]
    fn hand_built_crl_parses_and_verifies() {
        let alg = Algorithm::P256;
        let ca = root(alg);
        let now = SystemTime::now();
        let far = UNIX_EPOCH + Duration::from_secs(GENERALIZED_FROM_UNIX + 5);
        let high = SerialNumber::from_hex("80112233").unwrap();
        let entries = vec![
            RevokedEntry { serial: SerialNumber::random(), revoked_at: now, reason: RevocationReason::KeyCompromise },
            RevokedEntry { serial: high.clone(), revoked_at: far, reason: RevocationReason::Unspecified },
            RevokedEntry { serial: SerialNumber::random(), revoked_at: now, reason: RevocationReason::CertificateHold },
        ];
        let der = build_crl(&ca, test_key(alg), 42, now, now + Duration::from_secs(3600), &entries).unwrap();
        let crl = CertificateList::from_der(&der).unwrap();
        let tbs = &crl.tbs_cert_list;
        let revoked = tbs.revoked_certificates.as_ref().unwrap();
        assert_eq!(revoked.len(), 3);
        assert_eq!(SerialNumber::from_x509(&revoked[1].serial_number).unwrap(), high);
        assert!(revoked[1].crl_entry_extensions.is_none());
        assert!(matches!(revoked[1].revocation_date, x509_cert::time::Time::GeneralTime(_)));
        let reason =
            CrlReason::from_der(revoked[2].crl_entry_extensions.as_ref().unwrap()[0].extn_value.as_bytes()).unwrap();
        assert_eq!(reason, CrlReason::CertificateHold);
        // AKI is the issuer's SKI; the CRL number is there.
        let exts = tbs.crl_extensions.as_ref().unwrap();
        let aki = AuthorityKeyIdentifier::from_der(exts[0].extn_value.as_bytes()).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), subject_key_identifier(&ca).unwrap());
        assert_eq!(CrlNumber::from_der(exts[1].extn_value.as_bytes()).unwrap().0.as_bytes(), [42]);
        // The signature covers the TBS exactly as encoded.
        let tbs_der = tbs.to_der().unwrap();
        verify(test_key(alg).public_key(), alg, &tbs_der, crl.signature.as_bytes().unwrap(), DEFAULT_SM2_DISTID)
            .unwrap();
    }

    #[test]
    fn empty_crl_omits_the_list_and_bad_requests_are_refused() {
        let alg = Algorithm::Sm2;
        let ca = root(alg);
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let der = build_crl(&ca, test_key(alg), 0, now, later, &[]).unwrap();
        assert!(CertificateList::from_der(&der).unwrap().tbs_cert_list.revoked_certificates.is_none());

        assert!(build_crl(&ca, test_key(alg), 1, later, now, &[]).is_err());
        assert!(build_crl(&ca, test_key(Algorithm::P256), 1, now, later, &[]).is_err());
        let remove =
            RevokedEntry { serial: SerialNumber::random(), revoked_at: now, reason: RevocationReason::RemoveFromCrl };
        assert!(matches!(build_crl(&ca, test_key(alg), 1, now, later, &[remove]), Err(PkiError::InvalidRequest(_))));
    }

    #[test]
    fn a_hundred_thousand_entries_encode_and_parse() {
        // Many entries: the two-pass encoder must agree with a real DER parser on every length.
        let alg = Algorithm::P256;
        let ca = root(alg);
        let now = SystemTime::now();
        let entries: Vec<RevokedEntry> = (0..100_000u32)
            .map(|i| RevokedEntry {
                serial: SerialNumber::random(),
                revoked_at: now,
                reason: RevocationReason::ALL[(i % 7) as usize],
            })
            .collect();
        let der = build_crl(&ca, test_key(alg), 7, now, now + Duration::from_secs(3600), &entries).unwrap();
        // 16-octet serials: 18 + 15 (+ 14 with a reason) + 2 per entry.
        assert!(der.len() > 100_000 * 35 && der.len() < 100_000 * 50, "{}", der.len());
        let crl = CertificateList::from_der(&der).unwrap();
        assert_eq!(crl.tbs_cert_list.revoked_certificates.unwrap().len(), 100_000);
    }
}
