//! OCSP (RFC 6960): parsing requests and building signed responses, for the responder at
//! `/pki/ocsp`.
//!
//! `x509-ocsp` is only published for the older RustCrypto stack (der 0.7), so the structures
//! are written here: requests are decoded through `der` 0.8 derives, and responses are encoded
//! by hand like the CRL (a few TLVs, no builder), which keeps a nonce'd response to one
//! signature and a handful of small allocations.
//!
//! What a client sees:
//! - CertIDs with SHA-1 (what most clients send) or SHA-256; the response repeats each
//!   CertID with the same hash, `hashAlgorithm` written with NULL parameters as OpenSSL
//!   writes it (clients compare the OID, the hashes and the serial).
//! - `responderID` byKey: the SHA-1 of the responder's public key (§4.2.1), which is also
//!   its subject key identifier.
//! - Times are GeneralizedTime in whole seconds, UTC.
//! - The nonce (id-pkix-ocsp-nonce, RFC 8954) is echoed byte for byte: OpenSSL compares the
//!   whole `extnValue`, and wraps the nonce in an OCTET STRING inside it, so the response
//!   carries exactly the `extnValue` contents the request had.
//! - A revoked certificate carries its revocation time and, except for `Unspecified` (left
//!   out, as in the CRL), its reason.
//!
//! The signer signs with whatever distinguishing ID it holds for SM2 (`Signer::sm2_distid`).
//! OpenSSL 3.0's `openssl ocsp` cannot be given an SM2 ID: check SM2 responses with
//! `openssl dgst -sm3 -sigopt distid:1234567812345678` over the `tbsResponseData` bytes, and
//! read their statuses with `openssl ocsp -respin resp.der -resp_text -noverify`.

use crate::PkiError;
use crate::crl::RevocationReason;
use crate::encoding::{bit_string, tag, tlv};
use crate::key::Signer;
use crate::oids;
use crate::profile::key_identifier;
use crate::serial::SerialNumber;
use der::asn1::{AnyRef, GeneralizedTime, IntRef, OctetStringRef};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierRef;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::Certificate;
use x509_cert::ext::Extension;

/// Largest request accepted, in bytes. A request for one certificate is about 80 bytes
/// (120 with a nonce); this leaves room for a signed request with a certificate chain.
pub const MAX_OCSP_REQUEST_SIZE: usize = 16 * 1024;

/// The longest nonce accepted (RFC 8954 §2.1: 1 to 32 octets; longer is malformedRequest).
const MAX_NONCE_LEN: usize = 32;

/// `[1]` constructed context-specific tag (EXPLICIT).
const CONTEXT_1: u8 = 0xa1;
/// `[2]` constructed context-specific tag (EXPLICIT).
const CONTEXT_2: u8 = 0xa2;
/// `[0] IMPLICIT NULL`: certStatus good.
const STATUS_GOOD: [u8; 2] = [0x80, 0x00];
/// `[2] IMPLICIT NULL` (UnknownInfo): certStatus unknown.
const STATUS_UNKNOWN: [u8; 2] = [0x82, 0x00];
const OID: u8 = 0x06;
const NULL: [u8; 2] = [0x05, 0x00];

/// The hash algorithm of a CertID: SHA-1 (what most clients send) or SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1 (1.3.14.3.2.26), the RFC 6960 default and what OpenSSL and browsers send.
    Sha1,
    /// SHA-256 (2.16.840.1.101.3.4.2.1), e.g. `openssl ocsp -sha256`.
    Sha256,
}

impl CertIdHash {
    /// Both hashes a CertID may use.
    pub const ALL: [CertIdHash; 2] = [CertIdHash::Sha1, CertIdHash::Sha256];

    /// The hash algorithm's OID.
    pub fn oid(self) -> const_oid::ObjectIdentifier {
        match self {
            CertIdHash::Sha1 => oids::SHA1,
            CertIdHash::Sha256 => oids::SHA256,
        }
    }

    /// The hash with this OID, if supported.
    pub fn from_oid(oid: &const_oid::ObjectIdentifier) -> Option<CertIdHash> {
        [CertIdHash::Sha1, CertIdHash::Sha256].into_iter().find(|h| h.oid() == *oid)
    }

    /// Length of a digest, in bytes.
    pub fn output_len(self) -> usize {
        match self {
            CertIdHash::Sha1 => 20,
            CertIdHash::Sha256 => 32,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            CertIdHash::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            CertIdHash::Sha256 => &aws_lc_rs::digest::SHA256,
        };
        aws_lc_rs::digest::digest(algorithm, data).as_ref().to_vec()
    }
}

/// A CertID from a request: which certificate a client asks about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The hash of `issuer_name_hash` and `issuer_key_hash`.
    pub hash: CertIdHash,
    /// Hash of the DER of the issuer's subject name.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey BIT STRING contents (without the unused-bits
    /// octet).
    pub issuer_key_hash: Vec<u8>,
    /// The certificate's serial number.
    pub serial: SerialNumber,
}

impl CertId {
    /// Whether this CertID names a certificate issued by `issuer` (name hash over the
    /// issuer's DER subject, key hash over the issuer's subjectPublicKey BIT STRING
    /// contents). Says nothing about whether the serial exists.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        let (name_hash, key_hash) = issuer_hashes(self.hash, issuer);
        // A name that cannot be encoded (cannot happen for a decoded certificate) matches nothing.
        name_hash.is_some_and(|h| h == self.issuer_name_hash) && key_hash == self.issuer_key_hash
    }

    /// The CertID of `serial` under `issuer` (for tests and pre-signing).
    pub fn for_serial(hash: CertIdHash, issuer: &Certificate, serial: &SerialNumber) -> CertId {
        let (name_hash, key_hash) = issuer_hashes(hash, issuer);
        CertId {
            hash,
            issuer_name_hash: name_hash.unwrap_or_default(),
            issuer_key_hash: key_hash,
            serial: serial.clone(),
        }
    }

    /// A DER OCSPRequest for this one certificate, without a nonce or a signature: what an
    /// RFC 5019 client sends (and what a cacheable GET carries).
    pub fn request_der(&self) -> Vec<u8> {
        let single = tlv(tag::SEQUENCE, &[&self.to_der()]);
        tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&single])])])
    }

    /// The DER CertID, as it goes in a SingleResponse (or a request).
    fn to_der(&self) -> Vec<u8> {
        let oid = self.hash.oid();
        let algorithm = tlv(tag::SEQUENCE, &[&tlv(OID, &[oid.as_bytes()]), &NULL]);
        tlv(
            tag::SEQUENCE,
            &[
                &algorithm,
                &tlv(tag::OCTET_STRING, &[&self.issuer_name_hash]),
                &tlv(tag::OCTET_STRING, &[&self.issuer_key_hash]),
                &tlv(tag::INTEGER, &[&self.serial.to_der_content()]),
            ],
        )
    }
}

/// An issuer's name and key hashes under both CertID hashes, computed once: what a responder
/// compares every request's CertIDs with (`CertId::is_issued_by` computes them each time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    by_hash: [(CertIdHash, Option<Vec<u8>>, Vec<u8>); 2],
}

impl IssuerHashes {
    /// The hashes of `issuer`.
    pub fn of(issuer: &Certificate) -> IssuerHashes {
        IssuerHashes {
            by_hash: CertIdHash::ALL.map(|hash| {
                let (name, key) = issuer_hashes(hash, issuer);
                (hash, name, key)
            }),
        }
    }

    /// Whether `id` names a certificate of this issuer (as [`CertId::is_issued_by`]).
    pub fn issued(&self, id: &CertId) -> bool {
        self.by_hash.iter().any(|(hash, name, key)| {
            *hash == id.hash && name.as_deref() == Some(id.issuer_name_hash.as_slice()) && *key == id.issuer_key_hash
        })
    }
}

/// The name and key hashes of `issuer` under `hash` (the name hash is `None` only if the
/// subject cannot be encoded).
fn issuer_hashes(hash: CertIdHash, issuer: &Certificate) -> (Option<Vec<u8>>, Vec<u8>) {
    let tbs = issuer.tbs_certificate();
    let name = tbs.subject().to_der().ok().map(|der| hash.digest(&der));
    let key = hash.digest(tbs.subject_public_key_info().subject_public_key.raw_bytes());
    (name, key)
}

/// A parsed OCSPRequest.
///
/// Signed requests are accepted (the optional signature is ignored, as most responders do),
/// and so is a requestorName. Extensions other than the nonce are ignored unless critical:
/// a critical extension this responder does not understand makes the request malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about, in request order (never empty).
    pub cert_ids: Vec<CertId>,
    /// The `extnValue` contents of the nonce extension, to echo byte for byte (OpenSSL sends
    /// `04 10` and 16 random octets).
    pub nonce: Option<Vec<u8>>,
}

// RFC 6960 §4.1.1, in an EXPLICIT TAGS module. Decoding only; parts that are ignored are
// kept as `AnyRef` so that they are still checked to be well-formed DER.

#[derive(Sequence)]
struct OcspRequestDer<'a> {
    tbs_request: TbsRequestDer<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    optional_signature: Option<AnyRef<'a>>,
}

#[derive(Sequence)]
struct TbsRequestDer<'a> {
    #[asn1(context_specific = "0", optional = "true")]
    version: Option<u8>,
    #[asn1(context_specific = "1", optional = "true")]
    requestor_name: Option<AnyRef<'a>>,
    request_list: Vec<RequestDer<'a>>,
    #[asn1(context_specific = "2", optional = "true")]
    request_extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct RequestDer<'a> {
    req_cert: CertIdDer<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    single_request_extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct CertIdDer<'a> {
    hash_algorithm: AlgorithmIdentifierRef<'a>,
    issuer_name_hash: &'a OctetStringRef,
    issuer_key_hash: &'a OctetStringRef,
    serial_number: IntRef<'a>,
}

/// Parses a DER OCSPRequest.
///
/// Typed errors, never a panic: `TooLarge` above `MAX_OCSP_REQUEST_SIZE`; `Malformed` for
/// anything that is not a DER OCSPRequest (trailing bytes included), an empty requestList, a
/// version other than v1, hashes of the wrong length, a serial that is not positive or longer
/// than 20 octets, an empty, over-long (RFC 8954: more than 32 octets) or repeated nonce, or a
/// critical extension other than the nonce; `UnsupportedAlgorithm` for a CertID hash other
/// than SHA-1 or SHA-256. The responder answers all of these with malformedRequest.
pub fn parse_ocsp_request(der: &[u8]) -> Result<OcspRequest, PkiError> {
    if der.len() > MAX_OCSP_REQUEST_SIZE {
        return Err(PkiError::TooLarge { size: der.len(), limit: MAX_OCSP_REQUEST_SIZE });
    }
    let request = OcspRequestDer::from_der(der).map_err(|e| PkiError::malformed("OCSP request", e))?;
    let tbs = request.tbs_request;
    if let Some(version) = tbs.version
        && version != 0
    {
        return Err(PkiError::Malformed(format!("OCSP request: version {} (only v1 exists)", u16::from(version) + 1)));
    }
    if tbs.request_list.is_empty() {
        return Err(PkiError::Malformed("OCSP request: the request list is empty".to_owned()));
    }
    let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
    for request in &tbs.request_list {
        for ext in request.single_request_extensions.iter().flatten() {
            refuse_critical(ext)?;
        }
        cert_ids.push(cert_id(&request.req_cert)?);
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id == oids::OCSP_NONCE {
            if nonce.is_some() {
                return Err(PkiError::Malformed("OCSP request: two nonce extensions".to_owned()));
            }
            nonce = Some(checked_nonce(ext.extn_value.as_bytes())?.to_vec());
        } else {
            refuse_critical(ext)?;
        }
    }
    Ok(OcspRequest { cert_ids, nonce })
}

fn cert_id(der: &CertIdDer<'_>) -> Result<CertId, PkiError> {
    let algorithm = &der.hash_algorithm;
    let hash = CertIdHash::from_oid(&algorithm.oid).ok_or_else(|| {
        PkiError::UnsupportedAlgorithm(format!("CertID hash {} (SHA-1 and SHA-256 are supported)", algorithm.oid))
    })?;
    if algorithm.parameters.is_some_and(|p| !p.is_null()) {
        return Err(PkiError::Malformed("OCSP request: CertID hash parameters other than NULL".to_owned()));
    }
    let name_hash = der.issuer_name_hash.as_bytes();
    let key_hash = der.issuer_key_hash.as_bytes();
    if name_hash.len() != hash.output_len() || key_hash.len() != hash.output_len() {
        return Err(PkiError::Malformed(format!(
            "OCSP request: CertID hashes of {} and {} octets; {:?} gives {}",
            name_hash.len(),
            key_hash.len(),
            hash,
            hash.output_len()
        )));
    }
    let serial = der.serial_number.as_bytes();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(PkiError::Malformed("OCSP request: a negative serial number".to_owned()));
    }
    let serial = SerialNumber::from_bytes(serial).map_err(|e| PkiError::malformed("OCSP request", e))?;
    Ok(CertId { hash, issuer_name_hash: name_hash.to_vec(), issuer_key_hash: key_hash.to_vec(), serial })
}

/// The nonce `extnValue` contents, checked for length: the nonce is the OCTET STRING inside
/// (RFC 8954), or the raw contents for clients that leave the wrapper out.
fn checked_nonce(value: &[u8]) -> Result<&[u8], PkiError> {
    let inner = match <&OctetStringRef>::from_der(value) {
        Ok(octets) => octets.as_bytes(),
        Err(_) => value,
    };
    if inner.is_empty() || inner.len() > MAX_NONCE_LEN {
        return Err(PkiError::Malformed(format!(
            "OCSP request: a nonce of {} octets (RFC 8954 allows 1 to {MAX_NONCE_LEN})",
            inner.len()
        )));
    }
    Ok(value)
}

/// Refuses a critical extension this responder does not act on. The one exception is a
/// critical acceptable-responses extension (§4.4.3) that lists the basic response type.
fn refuse_critical(ext: &Extension) -> Result<(), PkiError> {
    if !ext.critical {
        return Ok(());
    }
    if ext.extn_id == oids::OCSP_RESPONSE
        && Vec::<const_oid::ObjectIdentifier>::from_der(ext.extn_value.as_bytes())
            .is_ok_and(|types| types.contains(&oids::OCSP_BASIC))
    {
        return Ok(());
    }
    Err(PkiError::Malformed(format!("OCSP request: critical extension {} is not supported", ext.extn_id)))
}

/// The status of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by this CA and not revoked (RFC 6960 §2.2 "good").
    Good,
    /// Revoked, or on hold (`reason` `CertificateHold`).
    Revoked {
        /// When (truncated to whole seconds).
        at: SystemTime,
        /// Why; `None` and `Unspecified` both leave revocationReason out, as the CRL does.
        reason: Option<RevocationReason>,
    },
    /// Not a certificate this responder knows of.
    Unknown,
}

/// One SingleResponse: the status of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleResponse {
    /// The CertID as the request gave it (its hash algorithm is kept).
    pub cert_id: CertId,
    /// The status.
    pub status: CertStatus,
    /// When the status was known to be correct (truncated to whole seconds).
    pub this_update: SystemTime,
    /// When newer information will be available; `None` = at any time. Must be after
    /// `this_update`.
    pub next_update: Option<SystemTime>,
}

/// A GeneralizedTime TLV for `t`, truncated to whole seconds (RFC 6960 §4.2.2.1).
fn generalized_time(t: SystemTime, what: &str) -> Result<Vec<u8>, PkiError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::InvalidRequest(format!("{what}: times before 1970 cannot be encoded")))?
        .as_secs();
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .and_then(|t| t.to_der())
        .map_err(|e| PkiError::encoding(what, e))
}

fn single_response(response: &SingleResponse) -> Result<Vec<u8>, PkiError> {
    let status = match response.status {
        CertStatus::Good => STATUS_GOOD.to_vec(),
        CertStatus::Unknown => STATUS_UNKNOWN.to_vec(),
        CertStatus::Revoked { at, reason } => {
            let time = generalized_time(at, "revocationTime")?;
            match reason {
                None | Some(RevocationReason::Unspecified) => tlv(CONTEXT_1, &[&time]),
                Some(RevocationReason::RemoveFromCrl) => {
                    return Err(PkiError::InvalidRequest(format!(
                        "serial {}: removeFromCRL is not a revocation reason in OCSP",
                        response.cert_id.serial
                    )));
                }
                Some(reason) => {
                    let reason = tlv(tag::CONTEXT_0, &[&[tag::ENUMERATED, 1, reason.code()]]);
                    tlv(CONTEXT_1, &[&time, &reason])
                }
            }
        }
    };
    let this_update = generalized_time(response.this_update, "thisUpdate")?;
    let next_update = match response.next_update {
        Some(next) if next <= response.this_update => {
            return Err(PkiError::InvalidRequest("nextUpdate must be after thisUpdate".to_owned()));
        }
        Some(next) => tlv(tag::CONTEXT_0, &[&generalized_time(next, "nextUpdate")?]),
        None => Vec::new(),
    };
    Ok(tlv(tag::SEQUENCE, &[&response.cert_id.to_der(), &status, &this_update, &next_update]))
}

/// Builds a successful OCSPResponse (DER): responseStatus successful, responseBytes
/// id-pkix-ocsp-basic, holding a BasicOCSPResponse with tbsResponseData v1 (version left
/// out, as DER wants), responderID byKey (SHA-1 of the responder's public key, §4.2.1),
/// `produced_at`, the `responses`, and the nonce extension when `nonce` (the request's
/// `extnValue` contents, echoed as they are) is given; signed by `signer`, with the
/// signatureAlgorithm of the signer's algorithm.
///
/// `certs` holds the responder certificate when `include_responder_cert` (a delegated
/// signer: clients need it to check the signature and its id-kp-OCSPSigning), and nothing
/// otherwise (the responder is the CA itself, which clients already have).
///
/// Refused (`InvalidRequest`): a signer whose key is not the responder certificate's, no
/// responses, a nextUpdate not after its thisUpdate, a time before 1970, and the reason
/// removeFromCRL. The signature is not checked after signing (the CRL's is not either): a
/// broken signer shows in the interop tests, and nonce'd responses are signed per request.
pub fn build_ocsp_response(
    responder: &Certificate,
    signer: &dyn Signer,
    produced_at: SystemTime,
    responses: &[SingleResponse],
    nonce: Option<&[u8]>,
    include_responder_cert: bool,
) -> Result<Vec<u8>, PkiError> {
    let responder_key = responder.tbs_certificate().subject_public_key_info();
    if signer.public_key() != responder_key {
        return Err(PkiError::InvalidRequest(
            "the signer's key is not the OCSP responder certificate's key".to_owned(),
        ));
    }
    if responses.is_empty() {
        return Err(PkiError::InvalidRequest("an OCSP response needs at least one SingleResponse".to_owned()));
    }

    let responder_id = tlv(CONTEXT_2, &[&tlv(tag::OCTET_STRING, &[&key_identifier(responder_key)])]);
    let produced_at = generalized_time(produced_at, "producedAt")?;
    let mut singles = Vec::with_capacity(responses.len());
    for response in responses {
        singles.push(single_response(response)?);
    }
    let singles: Vec<&[u8]> = singles.iter().map(Vec::as_slice).collect();
    let singles = tlv(tag::SEQUENCE, &singles);
    let extensions = match nonce {
        Some(nonce) => {
            let nonce_ext =
                tlv(tag::SEQUENCE, &[&tlv(OID, &[oids::OCSP_NONCE.as_bytes()]), &tlv(tag::OCTET_STRING, &[nonce])]);
            tlv(CONTEXT_1, &[&tlv(tag::SEQUENCE, &[&nonce_ext])])
        }
        None => Vec::new(),
    };
    let tbs = tlv(tag::SEQUENCE, &[&responder_id, &produced_at, &singles, &extensions]);

    let signature = signer.sign(&tbs)?;
    let sig_alg =
        signer.algorithm().signature_algorithm().to_der().map_err(|e| PkiError::encoding("signature algorithm", e))?;
    let certs = if include_responder_cert {
        let cert = responder.to_der().map_err(|e| PkiError::encoding("responder certificate", e))?;
        tlv(tag::CONTEXT_0, &[&tlv(tag::SEQUENCE, &[&cert])])
    } else {
        Vec::new()
    };
    let basic = tlv(tag::SEQUENCE, &[&tbs, &sig_alg, &bit_string(&signature), &certs]);
    let response_bytes =
        tlv(tag::SEQUENCE, &[&tlv(OID, &[oids::OCSP_BASIC.as_bytes()]), &tlv(tag::OCTET_STRING, &[&basic])]);
    Ok(tlv(tag::SEQUENCE, &[&[tag::ENUMERATED, 1, 0], &tlv(tag::CONTEXT_0, &[&response_bytes])]))
}

/// The unsuccessful answers (an OCSPResponse with this responseStatus and no responseBytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OcspErrorStatus {
    /// malformedRequest (1): the request could not be parsed or is not acceptable.
    MalformedRequest = 1,
    /// internalError (2): the responder failed.
    InternalError = 2,
    /// tryLater (3): the responder cannot answer now.
    TryLater = 3,
    /// unauthorized (6): the request is about certificates this responder does not answer for.
    Unauthorized = 6,
}

/// The OCSPResponse (DER) carrying only `status`: `30 03 0a 01 <status>`.
pub fn ocsp_error_response(status: OcspErrorStatus) -> Vec<u8> {
    vec![tag::SEQUENCE, 3, tag::ENUMERATED, 1, status as u8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;
    use crate::certificate::{CertificateRequest, issue};
    use crate::key::tests::test_key;
    use crate::key::{DEFAULT_SM2_DISTID, verify};
    use crate::profile::{IssuanceOptions, Profile};
    use der::{Header, Reader, SliceReader};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A self-signed CA and an OCSP signer under it (same key, for speed: the key check is on
    /// the responder certificate only). Built once.
    fn fixtures() -> &'static (Certificate, Certificate) {
        static CERTS: OnceLock<(Certificate, Certificate)> = OnceLock::new();
        CERTS.get_or_init(|| {
            let key = test_key(Algorithm::P256);
            // Whole seconds, as certificates hold them, so both end at the same instant.
            let now = UNIX_EPOCH + Duration::from_secs(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs());
            let options = IssuanceOptions::default();
            let request = |profile, subject: &str, issuer| CertificateRequest {
                profile,
                subject: subject.parse().unwrap(),
                public_key: key.public_key().clone(),
                serial: SerialNumber::random(),
                not_before: now - DAY,
                not_after: now + DAY,
                issuer,
                options: &options,
            };
            let ca = issue(&request(Profile::Root, "CN=OCSP Test CA,C=CN", None), key).unwrap();
            let responder =
                issue(&request(Profile::OcspSigner, "CN=OCSP Test Responder,C=CN", Some(&ca)), key).unwrap();
            (ca, responder)
        })
    }

    fn extension(oid: const_oid::ObjectIdentifier, critical: bool, value: &[u8]) -> Vec<u8> {
        let critical: &[u8] = if critical { &[0x01, 0x01, 0xff] } else { &[] };
        tlv(tag::SEQUENCE, &[&tlv(OID, &[oid.as_bytes()]), critical, &tlv(tag::OCTET_STRING, &[value])])
    }

    /// An OCSPRequest for `ids` with `extensions` (encoded Extension TLVs) and, if `signed`, a
    /// (meaningless) optionalSignature.
    fn request(ids: &[CertId], extensions: &[Vec<u8>], signed: bool) -> Vec<u8> {
        let list: Vec<Vec<u8>> = ids.iter().map(|id| tlv(tag::SEQUENCE, &[&id.to_der()])).collect();
        let list: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        let exts: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
        let exts = if exts.is_empty() { Vec::new() } else { tlv(CONTEXT_2, &[&tlv(tag::SEQUENCE, &exts)]) };
        let tbs = tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &list), &exts]);
        let signature = if signed {
            let sig_alg = Algorithm::P256.signature_algorithm().to_der().unwrap();
            tlv(tag::CONTEXT_0, &[&tlv(tag::SEQUENCE, &[&sig_alg, &bit_string(&[1, 2, 3])])])
        } else {
            Vec::new()
        };
        tlv(tag::SEQUENCE, &[&tbs, &signature])
    }

    fn nonce_ext(nonce: &[u8]) -> Vec<u8> {
        extension(oids::OCSP_NONCE, false, &tlv(tag::OCTET_STRING, &[nonce]))
    }

    /// A request by OpenSSL 3.0 (`openssl ocsp -issuer ca.pem -cert ee.pem -reqout req.der`,
    /// with its default nonce) and that `ca.pem`, a P-256 self-signed CA: captured once so the
    /// unit tests need no openssl.
    const OPENSSL_REQUEST: &str = "\
        30763074304d304b3049300906052b0e03021a05000414bd976c0bad242f6d358944d305a664c3339e0c65041446b06b\
        46d554b204185278d176e2d467980685d4021049b2bad0a04f2a3ae7e2f6e8d74f1f0aa2233021301f06092b06010505\
        073001020412041089f3d9f682720e15fd67a2e59c27509e";
    const OPENSSL_REQUEST_CA: &str = "\
        3082017f30820125a003020102021413f0f8711d7a15201c9cfacd0c7e6af246321c99300a06082a8648ce3d04030230\
        153113301106035504030c0a43617074757265204341301e170d3236313132353230353532355a170d32363131323632\
        30353532355a30153113301106035504030c0a436170747572652043413059301306072a8648ce3d020106082a8648ce\
        3d0301070342000480fe32648a3f064d0072f188cbb73b64477afa8447cd7eaf0334d34b738b8b41c2baae0c2bded940\
        35a9168c3292bd8e841b15301e227153b46dbf51597e7b8ca3533051301d0603551d0e0416041446b06b46d554b20418\
        5278d176e2d467980685d4301f0603551d2304183016801446b06b46d554b204185278d176e2d467980685d4300f0603\
        551d130101ff040530030101ff300a06082a8648ce3d04030203480030450220625b9de79f437a43870de65443fb50a3\
        a1cbfb0511cf0cb806e19680ec4bf144022100c8dfaf6e114b439e3e81e3ba0e5ea0eb6e668a21697f8e8ab20208b87d\
        f16c7b";

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        s.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
    }

    #[test]
    fn precomputed_issuer_hashes_agree_with_is_issued_by() {
        let (ca, responder) = fixtures();
        let hashes = IssuerHashes::of(ca);
        for hash in CertIdHash::ALL {
            let ours = CertId::for_serial(hash, ca, &SerialNumber::random());
            let theirs = CertId::for_serial(hash, responder, &SerialNumber::random());
            assert!(hashes.issued(&ours) && ours.is_issued_by(ca));
            assert!(!hashes.issued(&theirs) && !theirs.is_issued_by(ca));
            let mut other_key = ours.clone();
            other_key.issuer_key_hash[0] ^= 1;
            assert!(!hashes.issued(&other_key));
        }
    }

    #[test]
    fn a_single_request_is_what_the_general_builder_makes_without_extensions() {
        let (ca, _) = fixtures();
        let id = CertId::for_serial(CertIdHash::Sha1, ca, &SerialNumber::random());
        assert_eq!(id.request_der(), request(std::slice::from_ref(&id), &[], false));
        let parsed = parse_ocsp_request(&id.request_der()).unwrap();
        assert_eq!((parsed.cert_ids, parsed.nonce), (vec![id], None));
    }

    #[test]
    fn requests_round_trip_with_both_hashes_and_a_nonce() {
        let (ca, _) = fixtures();
        for hash in [CertIdHash::Sha1, CertIdHash::Sha256] {
            let ids: Vec<CertId> = (0..3).map(|_| CertId::for_serial(hash, ca, &SerialNumber::random())).collect();
            let nonce = tlv(tag::OCTET_STRING, &[&[7u8; 16]]);
            for signed in [false, true] {
                let der = request(&ids, &[extension(oids::OCSP_NONCE, false, &nonce)], signed);
                let parsed = parse_ocsp_request(&der).unwrap();
                assert_eq!(parsed.cert_ids, ids);
                assert_eq!(parsed.nonce.as_deref(), Some(nonce.as_slice()));
            }
            let parsed = parse_ocsp_request(&request(&ids[..1], &[], false)).unwrap();
            assert_eq!(parsed, OcspRequest { cert_ids: ids[..1].to_vec(), nonce: None });
        }
    }

    #[test]
    fn cert_id_matches_its_issuer_only() {
        let (ca, responder) = fixtures();
        let serial = SerialNumber::random();
        for (hash, len) in [(CertIdHash::Sha1, 20), (CertIdHash::Sha256, 32)] {
            let id = CertId::for_serial(hash, ca, &serial);
            assert_eq!((id.issuer_name_hash.len(), id.issuer_key_hash.len()), (len, len));
            assert!(id.is_issued_by(ca));
            // Same key, other name: no match.
            assert!(!id.is_issued_by(responder));
            let mut other_key = id.clone();
            other_key.issuer_key_hash[0] ^= 1;
            assert!(!other_key.is_issued_by(ca));
            // The name hash is over the DER subject, the key hash over the key bits.
            let subject = ca.tbs_certificate().subject().to_der().unwrap();
            assert_eq!(id.issuer_name_hash, hash.digest(&subject));
            assert_eq!(
                id.issuer_key_hash,
                hash.digest(ca.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes())
            );
        }
        // SHA-1 key hash = the key identifier (SKI) of the CA.
        assert_eq!(
            CertId::for_serial(CertIdHash::Sha1, ca, &serial).issuer_key_hash,
            crate::profile::subject_key_identifier(ca).unwrap()
        );
    }

    #[test]
    fn an_openssl_request_parses_and_names_its_ca() {
        let parsed = parse_ocsp_request(&unhex(OPENSSL_REQUEST)).unwrap();
        assert_eq!(parsed.cert_ids.len(), 1);
        let id = &parsed.cert_ids[0];
        assert_eq!(id.hash, CertIdHash::Sha1);
        assert_eq!(id.serial.to_hex(), "49B2BAD0A04F2A3AE7E2F6E8D74F1F0A");
        let ca = Certificate::from_der(&unhex(OPENSSL_REQUEST_CA)).unwrap();
        assert!(id.is_issued_by(&ca));
        assert!(!id.is_issued_by(&fixtures().0));
        assert_eq!(&CertId::for_serial(CertIdHash::Sha1, &ca, &id.serial), id);
        // The extnValue contents: OCTET STRING { 16 random octets }.
        let nonce = parsed.nonce.unwrap();
        assert_eq!((nonce.len(), &nonce[..2]), (18, &[0x04, 0x10][..]));
        assert_eq!(nonce, unhex("041089f3d9f682720e15fd67a2e59c27509e"));
    }

    #[test]
    fn garbage_truncated_oversized_and_empty_requests_give_typed_errors() {
        let (ca, _) = fixtures();
        let good = request(
            &[CertId::for_serial(CertIdHash::Sha1, ca, &SerialNumber::random())],
            &[nonce_ext(&[1; 16])],
            false,
        );
        assert!(parse_ocsp_request(&good).is_ok());
        for cut in 0..good.len() {
            assert!(matches!(parse_ocsp_request(&good[..cut]), Err(PkiError::Malformed(_))), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(parse_ocsp_request(&trailing), Err(PkiError::Malformed(_))));
        assert!(matches!(parse_ocsp_request(b"GET / HTTP/1.1\r\n"), Err(PkiError::Malformed(_))));
        assert!(matches!(parse_ocsp_request(&[0x30, 0x80, 0x00, 0x00]), Err(PkiError::Malformed(_))));
        let huge = vec![0x30; MAX_OCSP_REQUEST_SIZE + 1];
        assert_eq!(
            parse_ocsp_request(&huge),
            Err(PkiError::TooLarge { size: huge.len(), limit: MAX_OCSP_REQUEST_SIZE })
        );
        let message = parse_ocsp_request(&request(&[], &[], false)).unwrap_err().to_string();
        assert_eq!(message, "malformed input: OCSP request: the request list is empty");
    }

    #[test]
    fn unsupported_hashes_bad_serials_and_bad_lengths_are_refused() {
        let (ca, _) = fixtures();
        let id = CertId::for_serial(CertIdHash::Sha256, ca, &SerialNumber::random());
        let der = request(std::slice::from_ref(&id), &[], false);
        // SHA-256's OID ends in .1; .2 is SHA-384.
        let sha256 = oids::SHA256.as_bytes();
        let at = der.windows(sha256.len()).position(|w| w == sha256).unwrap() + sha256.len() - 1;
        let mut sha384 = der.clone();
        sha384[at] = 2;
        assert!(matches!(parse_ocsp_request(&sha384), Err(PkiError::UnsupportedAlgorithm(_))));

        let mut short = id.clone();
        short.issuer_key_hash.pop();
        assert!(matches!(parse_ocsp_request(&request(&[short], &[], false)), Err(PkiError::Malformed(_))));

        // Serial 0 and a negative serial (the INTEGER is the CertID's last TLV).
        for serial in [[0x02u8, 1, 0x00], [0x02, 1, 0xff]] {
            let mut cert_id = CertId { serial: SerialNumber::from_bytes(&[1]).unwrap(), ..id.clone() }.to_der();
            let n = cert_id.len();
            cert_id[n - 3..].copy_from_slice(&serial);
            let list = tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&cert_id])]);
            let der = tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&list])]);
            assert!(matches!(parse_ocsp_request(&der), Err(PkiError::Malformed(_))), "{serial:02x?}");
        }
        // A 21-octet serial.
        let mut cert_id = CertId { serial: SerialNumber::from_bytes(&[1]).unwrap(), ..id }.to_der();
        cert_id.truncate(cert_id.len() - 3);
        let cert_id = tlv(tag::SEQUENCE, &[&cert_id[2..], &tlv(tag::INTEGER, &[&[0x11; 21]])]);
        let der =
            tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&tlv(tag::SEQUENCE, &[&cert_id])])])]);
        assert!(matches!(parse_ocsp_request(&der), Err(PkiError::Malformed(_))));
    }

    #[test]
    fn extensions_and_nonces() {
        let (ca, _) = fixtures();
        let ids = [CertId::for_serial(CertIdHash::Sha1, ca, &SerialNumber::random())];
        let unknown = "1.3.6.1.4.1.32473.9".parse().unwrap();
        // Unknown non-critical extensions are ignored, critical ones refused.
        let ok = request(&ids, &[extension(unknown, false, &[5, 0])], false);
        assert_eq!(parse_ocsp_request(&ok).unwrap().nonce, None);
        let critical = request(&ids, &[extension(unknown, true, &[5, 0])], false);
        let message = parse_ocsp_request(&critical).unwrap_err().to_string();
        assert!(message.contains("critical extension 1.3.6.1.4.1.32473.9"), "{message}");
        // A critical acceptable-responses extension naming the basic type is fine.
        let basic = tlv(tag::SEQUENCE, &[&tlv(OID, &[oids::OCSP_BASIC.as_bytes()])]);
        assert!(parse_ocsp_request(&request(&ids, &[extension(oids::OCSP_RESPONSE, true, &basic)], false)).is_ok());
        let other = tlv(tag::SEQUENCE, &[&tlv(OID, &[unknown.as_bytes()])]);
        assert!(parse_ocsp_request(&request(&ids, &[extension(oids::OCSP_RESPONSE, true, &other)], false)).is_err());
        // Nonces: 1..=32 octets, wrapped or not; a critical nonce is understood; no repeats.
        for len in [1, 16, 32] {
            let parsed = parse_ocsp_request(&request(&ids, &[nonce_ext(&vec![9; len])], false)).unwrap();
            assert_eq!(parsed.nonce.unwrap().len(), len + 2);
        }
        let raw = request(&ids, &[extension(oids::OCSP_NONCE, true, &[1, 2, 3, 4])], false);
        assert_eq!(parse_ocsp_request(&raw).unwrap().nonce.unwrap(), [1, 2, 3, 4]);
        for bad in [
            vec![nonce_ext(&[])],
            vec![nonce_ext(&[9; 33])],
            vec![extension(oids::OCSP_NONCE, false, &[])],
            vec![nonce_ext(&[1; 16]), nonce_ext(&[2; 16])],
        ] {
            assert!(matches!(parse_ocsp_request(&request(&ids, &bad, false)), Err(PkiError::Malformed(_))));
        }
    }

    /// Splits a DER SEQUENCE into the TLVs it contains.
    fn elements(der: &[u8]) -> Vec<&[u8]> {
        let mut outer = SliceReader::new(der).unwrap();
        let header = Header::decode(&mut outer).unwrap();
        let body = outer.read_slice(header.length()).unwrap();
        let mut reader = SliceReader::new(body).unwrap();
        let mut out = Vec::new();
        while !reader.is_finished() {
            out.push(reader.tlv_bytes().unwrap());
        }
        out
    }

    #[test]
    fn responses_have_the_rfc_6960_shape_and_verify() {
        let (ca, responder) = fixtures();
        let key = test_key(Algorithm::P256);
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_750);
        let id = |hash| CertId::for_serial(hash, ca, &SerialNumber::random());
        let single =
            |cert_id, status| SingleResponse { cert_id, status, this_update: now, next_update: Some(now + DAY) };
        let responses = [
            single(id(CertIdHash::Sha1), CertStatus::Good),
            single(
                id(CertIdHash::Sha256),
                CertStatus::Revoked { at: now - DAY, reason: Some(RevocationReason::CertificateHold) },
            ),
            single(id(CertIdHash::Sha1), CertStatus::Revoked { at: now, reason: Some(RevocationReason::Unspecified) }),
            SingleResponse { next_update: None, ..single(id(CertIdHash::Sha1), CertStatus::Unknown) },
        ];
        let nonce = tlv(tag::OCTET_STRING, &[&[0xab; 16]]);
        let der = build_ocsp_response(responder, key, now, &responses, Some(&nonce), true).unwrap();

        // OCSPResponse { successful, [0] { id-pkix-ocsp-basic, OCTET STRING { basic } } }
        let top = elements(&der);
        assert_eq!(top[0], [0x0a, 1, 0]);
        let response_bytes = elements(top[1]);
        let response_bytes = elements(response_bytes[0]);
        assert_eq!(response_bytes[0], tlv(OID, &[oids::OCSP_BASIC.as_bytes()]));
        let basic = <&OctetStringRef>::from_der(response_bytes[1]).unwrap().as_bytes();
        let [tbs, sig_alg, signature, certs] = elements(basic)[..] else { panic!("four parts") };
        assert_eq!(sig_alg, Algorithm::P256.signature_algorithm().to_der().unwrap());
        let signature = der::asn1::BitStringRef::from_der(signature).unwrap();
        verify(key.public_key(), Algorithm::P256, tbs, signature.raw_bytes(), DEFAULT_SM2_DISTID).unwrap();
        assert_eq!(elements(elements(certs)[0])[0], responder.to_der().unwrap());

        // ResponseData: no version, byKey, producedAt whole seconds, 4 responses, the nonce.
        let [responder_id, produced_at, singles, extensions] = elements(tbs)[..] else { panic!("four parts") };
        let key_hash = key_identifier(responder.tbs_certificate().subject_public_key_info());
        assert_eq!(responder_id, tlv(CONTEXT_2, &[&tlv(tag::OCTET_STRING, &[&key_hash])]));
        assert_eq!(produced_at, b"\x18\x0f20231114221320Z");
        let singles = elements(singles);
        assert_eq!(singles.len(), 4);
        assert_eq!(elements(singles[0])[1], STATUS_GOOD);
        assert_eq!(elements(singles[0])[0], responses[0].cert_id.to_der());
        let held = elements(singles[1]);
        assert_eq!(held[1], b"\xa1\x16\x18\x0f20231113221320Z\xa0\x03\x0a\x01\x06");
        assert_eq!(&held[0][2..17], &tlv(tag::SEQUENCE, &[&tlv(OID, &[oids::SHA256.as_bytes()]), &NULL])[..]);
        assert_eq!(elements(singles[2])[1], b"\xa1\x11\x18\x0f20231114221320Z");
        assert_eq!(
            elements(singles[3]),
            [&responses[3].cert_id.to_der()[..], &STATUS_UNKNOWN, b"\x18\x0f20231114221320Z"]
        );
        assert_eq!(extensions, tlv(CONTEXT_1, &[&tlv(tag::SEQUENCE, &[&nonce_ext(&[0xab; 16])])]));

        // Without nonce and certificate: neither appears.
        let der = build_ocsp_response(responder, key, now, &responses[..1], None, false).unwrap();
        let basic = elements(elements(elements(&der)[1])[0])[1].to_vec();
        let basic = <&OctetStringRef>::from_der(&basic).unwrap().as_bytes().to_vec();
        assert_eq!(elements(&basic).len(), 3);
        assert_eq!(elements(elements(&basic)[0]).len(), 3);
    }

    #[test]
    fn bad_response_requests_are_refused() {
        let (ca, responder) = fixtures();
        let now = SystemTime::now();
        let single = SingleResponse {
            cert_id: CertId::for_serial(CertIdHash::Sha1, ca, &SerialNumber::random()),
            status: CertStatus::Good,
            this_update: now,
            next_update: Some(now + DAY),
        };
        let key = test_key(Algorithm::P256);
        let refused = |r: Result<Vec<u8>, PkiError>| matches!(r, Err(PkiError::InvalidRequest(_)));
        assert!(refused(build_ocsp_response(
            responder,
            test_key(Algorithm::Sm2),
            now,
            std::slice::from_ref(&single),
            None,
            true
        )));
        assert!(refused(build_ocsp_response(responder, key, now, &[], None, true)));
        let stale = SingleResponse { next_update: Some(now), ..single.clone() };
        assert!(refused(build_ocsp_response(responder, key, now, &[stale], None, true)));
        let remove = SingleResponse {
            status: CertStatus::Revoked { at: now, reason: Some(RevocationReason::RemoveFromCrl) },
            ..single.clone()
        };
        assert!(refused(build_ocsp_response(responder, key, now, &[remove], None, true)));
        let ancient = SingleResponse { status: CertStatus::Revoked { at: UNIX_EPOCH - DAY, reason: None }, ..single };
        assert!(refused(build_ocsp_response(responder, key, now, &[ancient], None, true)));
    }

    #[test]
    fn error_responses() {
        assert_eq!(ocsp_error_response(OcspErrorStatus::MalformedRequest), [0x30, 3, 0x0a, 1, 1]);
        assert_eq!(ocsp_error_response(OcspErrorStatus::InternalError), [0x30, 3, 0x0a, 1, 2]);
        assert_eq!(ocsp_error_response(OcspErrorStatus::TryLater), [0x30, 3, 0x0a, 1, 3]);
        assert_eq!(ocsp_error_response(OcspErrorStatus::Unauthorized), [0x30, 3, 0x0a, 1, 6]);
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_ocsp_request(&bytes);
        }

        #[test]
        fn parsing_mutated_requests_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let (ca, _) = fixtures();
            let ids = [
                CertId::for_serial(CertIdHash::Sha1, ca, &SerialNumber::random()),
                CertId::for_serial(CertIdHash::Sha256, ca, &SerialNumber::random()),
            ];
            let mut der = request(&ids, &[nonce_ext(&[3; 16])], true);
            for (at, byte) in edits {
                let at = at % der.len();
                der[at] = byte;
            }
            der.truncate(cut % (der.len() + 1));
            let _ = parse_ocsp_request(&der);
        }
    }
}
