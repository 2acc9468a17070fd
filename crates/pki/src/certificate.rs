//! Issuing certificates: the TBSCertificate is built by hand from the profile (not through
//! `x509_cert`'s builder profiles), signed through the `Signer` seam, and the signature is
//! checked against the issuer's key before the certificate is handed out.

use crate::PkiError;
use crate::algorithm::key_algorithm;
use crate::encoding::{bit_string, tag, tlv, x509_time};
use crate::key::{Signer, verify};
use crate::name::common_name;
use crate::profile::{IssuanceOptions, Profile, extensions, subject_key_identifier};
use crate::serial::SerialNumber;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use std::time::SystemTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::Name;

/// A certificate to issue.
#[derive(Debug, Clone)]
pub struct CertificateRequest<'a> {
    /// What kind of certificate, with its profile-specific data.
    pub profile: Profile,
    /// The subject; for `Profile::Personal` build it with `personal_subject(name)`.
    pub subject: Name,
    /// The key being certified (from a verified CSR, or the CA's own key).
    pub public_key: SubjectPublicKeyInfoOwned,
    /// The serial number (`SerialNumber::random()`; the caller makes sure it is unique).
    pub serial: SerialNumber,
    /// Start of validity (truncated to whole seconds).
    pub not_before: SystemTime,
    /// End of validity (truncated to whole seconds); at most the issuer's.
    pub not_after: SystemTime,
    /// The issuing CA's certificate; `None` = self-signed (`Profile::Root` only).
    pub issuer: Option<&'a Certificate>,
    /// URLs and policy of the issuing CA.
    pub options: &'a IssuanceOptions,
}

/// Builds the TBSCertificate (version 3; UTCTime through 2049, GeneralizedTime from 2050),
/// signs it with `signer`, verifies the signature, and returns the certificate.
///
/// Refused: a subscriber key `key_algorithm` refuses; a root with an issuer or anything else
/// without one; a signer whose key is not the issuer's (or, for a root, the subject's); an
/// issuer that is not a CA or may not issue CA certificates; validity that is empty or ends
/// after the issuer's; a personal subject whose CN is not the profile's name.
pub fn issue(request: &CertificateRequest<'_>, signer: &dyn Signer) -> Result<Certificate, PkiError> {
    key_algorithm(&request.public_key)?;
    if request.subject.is_empty() {
        return Err(PkiError::InvalidRequest("the subject name is empty".to_owned()));
    }
    if let Profile::Personal { name, .. } = &request.profile
        && common_name(&request.subject).as_deref() != Some(name.trim())
    {
        return Err(PkiError::InvalidRequest(format!(
            "the subject's common name is not the holder's name {:?}",
            name.trim()
        )));
    }
    if request.not_before >= request.not_after {
        return Err(PkiError::InvalidRequest(
            "the validity period is empty (notBefore is not before notAfter)".to_owned(),
        ));
    }

    let (issuer_name, authority_key_id) = match (&request.profile, request.issuer) {
        (Profile::Root, None) => {
            if signer.public_key() != &request.public_key {
                return Err(PkiError::InvalidRequest(
                    "a root certificate is self-signed: the signer must hold the certified key".to_owned(),
                ));
            }
            (request.subject.clone(), None)
        }
        (Profile::Root, Some(_)) => {
            return Err(PkiError::InvalidRequest(
                "a root certificate is self-signed; no issuer may be given".to_owned(),
            ));
        }
        (profile, None) => {
            return Err(PkiError::InvalidRequest(format!(
                "a {} certificate needs an issuing CA certificate",
                profile.name()
            )));
        }
        (profile, Some(issuer)) => {
            check_issuer(issuer, profile, request.not_after, signer)?;
            (issuer.tbs_certificate().subject().clone(), Some(subject_key_identifier(issuer)?))
        }
    };

    let algorithm = signer.algorithm();
    let signature_algorithm = algorithm.signature_algorithm();
    let exts =
        extensions(&request.profile, &request.public_key, authority_key_id.as_deref(), request.options, algorithm)?;

    let enc = |what: &str, r: der::Result<Vec<u8>>| r.map_err(|e| PkiError::encoding(what, e));
    let version = [tag::CONTEXT_0, 3, tag::INTEGER, 1, 2]; // [0] EXPLICIT INTEGER v3(2)
    let serial = enc("serial number", request.serial.to_x509()?.to_der())?;
    let sig_alg = enc("signature algorithm", signature_algorithm.to_der())?;
    let issuer_der = enc("issuer name", issuer_name.to_der())?;
    let validity = tlv(
        tag::SEQUENCE,
        &[
            &enc("notBefore", x509_time(request.not_before)?.to_der())?,
            &enc("notAfter", x509_time(request.not_after)?.to_der())?,
        ],
    );
    let subject = enc("subject name", request.subject.to_der())?;
    let spki = enc("public key", request.public_key.to_der())?;
    let exts = tlv(tag::CONTEXT_3, &[&enc("extensions", exts.to_der())?]);
    let tbs = tlv(tag::SEQUENCE, &[&version, &serial, &sig_alg, &issuer_der, &validity, &subject, &spki, &exts]);

    let signature = signer.sign(&tbs)?;
    verify(signer.public_key(), algorithm, &tbs, &signature, signer.sm2_distid())
        .map_err(|e| PkiError::Signing(format!("the signer produced a signature that does not verify ({e})")))?;
    let der = tlv(tag::SEQUENCE, &[&tbs, &sig_alg, &bit_string(&signature)]);
    Certificate::from_der(&der).map_err(|e| PkiError::encoding("certificate", e))
}

/// Checks that `issuer` may issue a certificate of `profile` valid until `not_after`, and that
/// `signer` holds its key.
fn check_issuer(
    issuer: &Certificate,
    profile: &Profile,
    not_after: SystemTime,
    signer: &dyn Signer,
) -> Result<(), PkiError> {
    let tbs = issuer.tbs_certificate();
    if signer.public_key() != tbs.subject_public_key_info() {
        return Err(PkiError::InvalidRequest("the signer's key is not the issuing CA certificate's key".to_owned()));
    }
    let constraints = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| PkiError::malformed("the issuer's basic constraints", e))?;
    match constraints {
        Some((_, bc)) if bc.ca => {
            if profile.is_ca() && bc.path_len_constraint == Some(0) {
                return Err(PkiError::InvalidRequest(
                    "the issuing CA has path length 0 and may not issue CA certificates".to_owned(),
                ));
            }
        }
        _ => return Err(PkiError::InvalidRequest("the issuer certificate is not a CA certificate".to_owned())),
    }
    if not_after > tbs.validity().not_after.to_system_time() {
        return Err(PkiError::InvalidRequest("the certificate would outlive its issuing CA certificate".to_owned()));
    }
    Ok(())
}
