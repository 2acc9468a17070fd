//! The OCSP responder (RFC 6960), built for throughput the way large CAs run theirs: a
//! delegated OCSP-signing key answers for the issuing CA; responses without a nonce are
//! signed once, kept in memory, served from there and signed again when half of their
//! validity has passed (only those asked for since; the others leave the cache, so it holds
//! what relying parties ask about, not every certificate issued) or the certificate's status
//! changed (changes made here evict at once; an indexed read at most every
//! [`STATUS_RECHECK`] catches changes made by another process). A request with a nonce is
//! signed on the spot, echoing it.

use crate::{App, AppError, in_tx, new_id};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::ocsp::{
    CertId, CertIdHash, CertStatus, OcspErrorStatus, SingleResponse, build_ocsp_response, ocsp_error_response,
    parse_ocsp_request,
};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{CertificateRequest, Profile, RevocationReason, SerialNumber, Signer, SoftwareKey};
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::{CaKeyRecord, CertificateStatus, StatusStamp};

/// How long a pre-signed response is valid (its nextUpdate).
pub const RESPONSE_VALIDITY: Duration = Duration::hours(4);

/// The delegated OCSP signer of the issuing CA.
pub struct OcspResponder {
    /// Its certificate, issued by the issuing CA with id-kp-OCSPSigning.
    pub certificate: Certificate,
    /// What signs.
    pub signer: Arc<dyn Signer>,
}

/// How long a cached response's status check holds: within this window a pre-signed
/// response is served from memory alone; after it, one indexed read confirms the status is
/// still the one signed for. Changes made in this process evict at once; a change made by
/// another process (`yiqian ca revoke`) shows within this window.
pub const STATUS_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// A pre-signed response: its bytes, when it was signed, the certificate's status stamp it
/// was signed for (`None`: unknown serial) and when that stamp was last confirmed.
#[derive(Clone)]
struct Signed {
    bytes: Arc<Vec<u8>>,
    /// The first 16 bytes of the response's SHA-256, computed once (an HTTP entity tag).
    tag: [u8; 16],
    signed_at: DateTime<Utc>,
    stamp: Option<StatusStamp>,
    checked_at: Instant,
    /// Whether it was served since it was signed: only those are signed again when they
    /// age, so the cache holds what relying parties ask about, not every certificate ever
    /// issued.
    served: bool,
}

impl Signed {
    fn new(bytes: Arc<Vec<u8>>, signed_at: DateTime<Utc>, stamp: Option<StatusStamp>) -> Signed {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(bytes.as_slice());
        let tag = digest[..16].try_into().expect("SHA-256 is 32 bytes");
        Signed { bytes, tag, signed_at, stamp, checked_at: Instant::now(), served: false }
    }
}

/// What the cache has for a request.
enum Lookup {
    /// Fresh and recently confirmed: serve it.
    Serve(OcspAnswer),
    /// Fresh, but the status must be confirmed against this stamp first.
    Confirm(Option<StatusStamp>, OcspAnswer),
    /// Nothing usable.
    Miss,
}

/// What the responder answers: the DER response and, for a response signed ahead for any
/// requester (no nonce, one certificate), when it was signed — its thisUpdate; it is valid until
/// [`OcspAnswer::next_update`] — so that HTTP caches may keep it (RFC 5019 §6.2).
#[derive(Clone)]
pub struct OcspAnswer {
    /// The DER-encoded OCSPResponse.
    pub der: Arc<Vec<u8>>,
    /// When a cacheable response was signed; `None` for answers made for one requester (with a
    /// nonce, several certificates) and error answers.
    pub this_update: Option<DateTime<Utc>>,
    /// For a cacheable response, the first 16 bytes of its SHA-256 (an HTTP entity tag),
    /// computed once when it was signed.
    pub tag: Option<[u8; 16]>,
}

impl OcspAnswer {
    /// The response's nextUpdate, for a cacheable answer.
    pub fn next_update(&self) -> Option<DateTime<Utc>> {
        self.this_update.map(|t| t + RESPONSE_VALIDITY)
    }

    fn cacheable(s: &Signed) -> OcspAnswer {
        OcspAnswer { der: s.bytes.clone(), this_update: Some(s.signed_at), tag: Some(s.tag) }
    }

    fn for_one_requester(der: Vec<u8>) -> OcspAnswer {
        OcspAnswer { der: Arc::new(der), this_update: None, tag: None }
    }
}

/// Pre-signed responses by (serial, CertID hash). An entry is served while it is less than
/// half-way through its validity and the certificate's status is the one it was signed for.
#[derive(Default)]
pub(crate) struct ResponseCache {
    entries: Mutex<HashMap<(String, CertIdHash), Signed>>,
}

impl ResponseCache {
    fn lookup(&self, serial: &str, hash: CertIdHash, now: DateTime<Utc>) -> Lookup {
        let mut entries = self.entries.lock().expect("OCSP cache lock");
        match entries.get_mut(&(serial.to_owned(), hash)) {
            Some(e) if now < e.signed_at + RESPONSE_VALIDITY / 2 => {
                e.served = true;
                if e.checked_at.elapsed() < STATUS_RECHECK {
                    Lookup::Serve(OcspAnswer::cacheable(e))
                } else {
                    Lookup::Confirm(e.stamp.clone(), OcspAnswer::cacheable(e))
                }
            }
            _ => Lookup::Miss,
        }
    }

    /// Records that the entry's status was confirmed just now.
    fn confirmed(&self, serial: &str, hash: CertIdHash) {
        if let Some(e) = self.entries.lock().expect("OCSP cache lock").get_mut(&(serial.to_owned(), hash)) {
            e.checked_at = Instant::now();
        }
    }

    fn put(&self, serial: &str, hash: CertIdHash, entry: Signed) {
        self.entries.lock().expect("OCSP cache lock").insert((serial.to_owned(), hash), entry);
    }

    /// Forgets the responses of a certificate whose status changed (one lookup per CertID
    /// hash, whatever the size of the cache).
    pub(crate) fn forget(&self, serial: &str) {
        let mut entries = self.entries.lock().expect("OCSP cache lock");
        for hash in CertIdHash::ALL {
            entries.remove(&(serial.to_owned(), hash));
        }
    }

    /// The entries signed before `before` that were served since, due for re-signing; the
    /// ones nobody asked for are dropped (signed again on the next request).
    fn stale(&self, before: DateTime<Utc>) -> Vec<(String, CertIdHash)> {
        let mut entries = self.entries.lock().expect("OCSP cache lock");
        entries.retain(|_, e| e.signed_at >= before || e.served);
        entries.iter().filter(|(_, e)| e.signed_at < before).map(|(k, _)| k.clone()).collect()
    }

    /// How many responses are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("OCSP cache lock").len()
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

impl App {
    /// The delegated OCSP signer, created (and recorded) the first time it is needed.
    pub async fn ocsp_responder(&self) -> Result<Arc<OcspResponder>, AppError> {
        if let Some(r) = self.inner.ocsp_responder.read().await.as_ref() {
            return Ok(r.clone());
        }
        let mut slot = self.inner.ocsp_responder.write().await;
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let ca = self.issuing_ca().await?;
        let record = match self.store().active_ca_key("ocsp").await? {
            Some(r) => r,
            None => match self.create_ocsp_signer(&ca.certificate, ca.signer.as_ref()).await {
                Ok(r) => r,
                // Another node created the signer meanwhile (one active key per role).
                Err(e) => self.store().active_ca_key("ocsp").await?.ok_or(e)?,
            },
        };
        let responder = Arc::new(OcspResponder {
            certificate: Certificate::from_der(&record.certificate_der).map_err(internal)?,
            signer: self.load_signer(&record)?,
        });
        *slot = Some(responder.clone());
        Ok(responder)
    }

    async fn create_ocsp_signer(
        &self,
        issuer: &Certificate,
        issuer_signer: &dyn Signer,
    ) -> Result<CaKeyRecord, AppError> {
        let algorithm = issuer_signer.algorithm();
        let key = SoftwareKey::generate(algorithm).map_err(internal)?.with_sm2_distid(&self.config().ca.sm2_distid);
        let now = self.now();
        let issuer_end: SystemTime = issuer.tbs_certificate().validity().not_after.to_system_time();
        let not_after = SystemTime::from(now + Duration::days(365)).min(issuer_end);
        let cert = yiqian_pki::issue(
            &CertificateRequest {
                profile: Profile::OcspSigner,
                subject: ocsp_name()?,
                public_key: key.public_key().clone(),
                serial: SerialNumber::random(),
                not_before: SystemTime::from(now),
                not_after,
                issuer: Some(issuer),
                options: &yiqian_pki::IssuanceOptions::default(),
            },
            issuer_signer,
        )
        .map_err(internal)?;
        let record = CaKeyRecord {
            id: new_id("CA", 16),
            role: "ocsp".into(),
            algorithm: algorithm.to_string(),
            certificate_der: cert.to_der().map_err(internal)?,
            key_ref: "software".into(),
            pkcs8: Some(key.to_pkcs8_der().map_err(internal)?.to_vec()),
            created_at: now,
            active: true,
        };
        in_tx!(self, |tx| {
            tx.insert_ca_key(&record).await?;
            let detail = json!({"algorithm": algorithm.to_string(), "key": record.id});
            tx.audit(NewAuditEntry { actor: "system", action: "ca.ocsp_signer_created", subject: "ca", detail }, now)
                .await?;
            Ok(())
        })?;
        Ok(record)
    }

    /// Answers an OCSP request (DER). Malformed input gets `malformedRequest`, a request for
    /// another CA `unauthorized`; never an HTTP error.
    pub async fn ocsp(&self, request: &[u8]) -> OcspAnswer {
        match self.answer_ocsp(request).await {
            Ok(answer) => answer,
            Err(status) => {
                crate::metrics::ocsp_answer(match status {
                    OcspErrorStatus::MalformedRequest => "malformed",
                    OcspErrorStatus::Unauthorized => "unauthorized",
                    _ => "internal_error",
                });
                OcspAnswer::for_one_requester(ocsp_error_response(status))
            }
        }
    }

    async fn answer_ocsp(&self, request: &[u8]) -> Result<OcspAnswer, OcspErrorStatus> {
        let request = parse_ocsp_request(request).map_err(|_| OcspErrorStatus::MalformedRequest)?;
        let failed = |e: AppError| {
            tracing::error!(error = %e, "OCSP responder");
            OcspErrorStatus::InternalError
        };
        let ca = self.issuing_ca().await.map_err(failed)?;
        if !request.cert_ids.iter().all(|id| ca.ocsp_hashes.issued(id)) {
            return Err(OcspErrorStatus::Unauthorized);
        }
        let now = self.now();
        if let ([one], None) = (request.cert_ids.as_slice(), &request.nonce) {
            let serial = one.serial.to_hex();
            let cache = &self.inner.ocsp_cache;
            let stamp = match cache.lookup(&serial, one.hash, now) {
                Lookup::Serve(answer) => {
                    crate::metrics::ocsp_answer("cached");
                    return Ok(answer);
                }
                Lookup::Confirm(signed_for, answer) => {
                    let stamp = self.store().certificate_status(&serial).await.map_err(|e| failed(e.into()))?;
                    if stamp == signed_for {
                        cache.confirmed(&serial, one.hash);
                        crate::metrics::ocsp_answer("confirmed");
                        return Ok(answer);
                    }
                    stamp
                }
                Lookup::Miss => self.store().certificate_status(&serial).await.map_err(|e| failed(e.into()))?,
            };
            let bytes = Arc::new(self.sign_ocsp(std::slice::from_ref(one), None, now).await.map_err(failed)?);
            let signed = Signed::new(bytes, now, stamp);
            cache.put(&serial, one.hash, signed.clone());
            crate::metrics::ocsp_answer("signed");
            return Ok(OcspAnswer::cacheable(&signed));
        }
        let der = self.sign_ocsp(&request.cert_ids, request.nonce.as_deref(), now).await.map_err(failed)?;
        crate::metrics::ocsp_answer("signed_for_requester");
        Ok(OcspAnswer::for_one_requester(der))
    }

    /// Signs the response for `serial` (SHA-1 CertID, what most clients send) ahead of the
    /// first request, after an issuance or a status change.
    pub(crate) async fn presign_ocsp(&self, serial: &str) {
        self.inner.ocsp_cache.forget(serial);
        if let Err(e) = self.resign(serial, CertIdHash::Sha1).await {
            tracing::warn!(error = %e, "OCSP pre-signing failed; the response will be signed on request");
        }
    }

    async fn resign(&self, serial: &str, hash: CertIdHash) -> Result<(), AppError> {
        let ca = self.issuing_ca().await?;
        let serial_number = SerialNumber::from_hex(serial).map_err(internal)?;
        let id = CertId::for_serial(hash, &ca.certificate, &serial_number);
        let now = self.now();
        let stamp = self.store().certificate_status(serial).await?;
        let bytes = Arc::new(self.sign_ocsp(std::slice::from_ref(&id), None, now).await?);
        self.inner.ocsp_cache.put(serial, hash, Signed::new(bytes, now, stamp));
        Ok(())
    }

    /// Re-signs every cached response past half of its validity, so requests keep being
    /// served from memory; returns how many.
    pub async fn refresh_ocsp(&self) -> Result<usize, AppError> {
        let stale = self.inner.ocsp_cache.stale(self.now() - RESPONSE_VALIDITY / 2);
        for (serial, hash) in &stale {
            self.resign(serial, *hash).await?;
        }
        Ok(stale.len())
    }

    async fn sign_ocsp(&self, ids: &[CertId], nonce: Option<&[u8]>, now: DateTime<Utc>) -> Result<Vec<u8>, AppError> {
        let responder = self.ocsp_responder().await?;
        let mut responses = Vec::with_capacity(ids.len());
        for id in ids {
            let status = match self.store().certificate_status(&id.serial.to_hex()).await? {
                None => CertStatus::Unknown,
                Some(c) => match c.status {
                    CertificateStatus::Active => CertStatus::Good,
                    CertificateStatus::Hold => CertStatus::Revoked {
                        at: SystemTime::from(c.changed_at),
                        reason: Some(RevocationReason::CertificateHold),
                    },
                    CertificateStatus::Revoked => CertStatus::Revoked {
                        at: SystemTime::from(c.changed_at),
                        reason: c.reason.as_deref().and_then(|r| r.parse().ok()),
                    },
                },
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                status,
                this_update: SystemTime::from(now),
                next_update: Some(SystemTime::from(now + RESPONSE_VALIDITY)),
            });
        }
        build_ocsp_response(
            &responder.certificate,
            responder.signer.as_ref(),
            SystemTime::from(now),
            &responses,
            nonce,
            true,
        )
        .map_err(internal)
    }
}

fn ocsp_name() -> Result<yiqian_pki::x509_cert::name::Name, AppError> {
    use std::str::FromStr;
    yiqian_pki::x509_cert::name::Name::from_str("CN=yiqian OCSP Responder,O=yiqian,C=CN").map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(at: DateTime<Utc>) -> Signed {
        Signed::new(Arc::new(vec![0x30, 0x03, 0x0a, 0x01, 0x00]), at, None)
    }

    #[test]
    fn aging_responses_nobody_asked_for_are_dropped_and_the_asked_ones_kept_for_resigning() {
        let cache = ResponseCache::default();
        let now = Utc::now();
        let old = now - RESPONSE_VALIDITY / 2 - Duration::minutes(1);
        for serial in ["01", "02", "03"] {
            cache.put(serial, CertIdHash::Sha1, signed(old + Duration::minutes(2)));
        }
        cache.put("03", CertIdHash::Sha256, signed(now));
        // "01" is asked for while fresh; "02" never is.
        assert!(matches!(cache.lookup("01", CertIdHash::Sha1, now), Lookup::Serve(_)));
        // An hour later both SHA-1 entries of "01" and "02" are past half their validity.
        let later = now + Duration::hours(1);
        let mut due = cache.stale(later - RESPONSE_VALIDITY / 2);
        due.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(due, vec![("01".to_owned(), CertIdHash::Sha1)]);
        assert_eq!(cache.len(), 2, "02 and 03/SHA-1 dropped, 01/SHA-1 kept for re-signing, 03/SHA-256 fresh");
        cache.forget("03");
        assert_eq!(cache.len(), 1);
        assert!(matches!(cache.lookup("03", CertIdHash::Sha256, now), Lookup::Miss));
    }
}
