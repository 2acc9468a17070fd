//! The certificate authority's use cases: create the CA (root and issuing key), issue a
//! personal certificate from a CSR (on hold until activation), release, revoke, and keep the
//! CRL current. The PKI engine (`yiqian-pki`) does the encoding and signing; this module
//! decides what is signed, records it with its audit entry, and republishes the CRL after
//! every change.

use crate::{App, AppError, in_tx, new_id};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::SystemTime;
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::zeroize::Zeroizing;
use yiqian_pki::{
    Algorithm, CertificateRequest, IdNumberPolicy, IssuanceOptions, Pkcs11Config, Pkcs11Key, PkiError, Profile,
    RevocationReason, RevokedEntry, SerialNumber, Signer, SoftwareKey,
};
use yiqian_store::StoreError;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::{CaKeyRecord, CertificateRecord, CertificateStatus};

/// How the CA issues.
#[derive(Debug, Clone)]
pub struct CaConfig {
    /// Algorithm of a CA created by `ca init` or on first start.
    pub algorithm: Algorithm,
    /// SM2 distinguishing ID the CA signs and verifies with.
    pub sm2_distid: String,
    /// URLs and policy written into issued certificates.
    pub options: IssuanceOptions,
    /// How the resident ID number appears in personal certificates.
    pub id_policy: IdNumberPolicy,
    /// How long a CRL is valid (its nextUpdate); it is rebuilt after half of that.
    pub crl_validity: Duration,
    /// Where new CA keys are made and kept: a PKCS#11 token, or (None) software keys sealed
    /// in the store.
    pub hsm: Option<HsmConfig>,
}

/// A PKCS#11 token holding the CA's keys.
#[derive(Clone)]
pub struct HsmConfig {
    /// The vendor's PKCS#11 module.
    pub module: std::path::PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for HsmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmConfig")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .finish_non_exhaustive()
    }
}

impl HsmConfig {
    fn key(&self, key_label: &str) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin: self.pin.clone(),
            key_label: key_label.to_owned(),
        }
    }
}

/// A key just made for the CA: in software (sealed into the store) or in the token.
enum NewKey {
    Software(SoftwareKey),
    Token(Pkcs11Key),
}

impl NewKey {
    fn generate(config: &CaConfig, algorithm: Algorithm, label: &str) -> Result<NewKey, AppError> {
        Ok(match &config.hsm {
            None => NewKey::Software(
                SoftwareKey::generate(algorithm).map_err(internal)?.with_sm2_distid(&config.sm2_distid),
            ),
            Some(hsm) => NewKey::Token(Pkcs11Key::generate(&hsm.key(label), algorithm).map_err(pki("hsm"))?),
        })
    }

    fn signer(&self) -> &dyn Signer {
        match self {
            NewKey::Software(k) => k,
            NewKey::Token(k) => k,
        }
    }

    /// How the store refers to the key, and its PKCS#8 (to be sealed) when it is a software key.
    fn storage(&self) -> Result<(String, Option<Vec<u8>>), AppError> {
        match self {
            NewKey::Software(k) => Ok(("software".into(), Some(k.to_pkcs8_der().map_err(internal)?.to_vec()))),
            NewKey::Token(k) => Ok((format!("pkcs11:token={};object={}", k.token_label(), k.key_label()), None)),
        }
    }
}

impl CaConfig {
    /// The defaults for a service reachable at `public_url`: SM2, the standard
    /// distinguishing ID, CRL/OCSP/issuer URLs under `/pki`, masked ID numbers, daily CRLs.
    pub fn for_public_url(public_url: &str) -> CaConfig {
        CaConfig {
            algorithm: Algorithm::Sm2,
            sm2_distid: yiqian_pki::DEFAULT_SM2_DISTID.into(),
            options: IssuanceOptions {
                crl_url: Some(format!("{public_url}/pki/crl")),
                ocsp_url: Some(format!("{public_url}/pki/ocsp")),
                ca_issuers_url: Some(format!("{public_url}/pki/ca.crt")),
                policy_oid: None,
            },
            id_policy: IdNumberPolicy::Masked,
            crl_validity: Duration::days(1),
            hsm: None,
        }
    }
}

/// The issuing CA, loaded once: its certificate, its signer and the root above it.
pub struct IssuingCa {
    /// Id of the issuing key record.
    pub id: String,
    /// The issuing CA certificate.
    pub certificate: Certificate,
    /// Its DER.
    pub certificate_der: Vec<u8>,
    /// The root certificate (DER).
    pub root_der: Vec<u8>,
    /// What signs for it.
    pub signer: Arc<dyn Signer>,
    /// Its name and key hashes, which OCSP requests name it by.
    pub ocsp_hashes: yiqian_pki::IssuerHashes,
}

/// What `ca init` did.
#[derive(Debug, Clone)]
pub struct CaInit {
    /// Whether a new CA was created (false: one existed).
    pub created: bool,
    /// Its algorithm.
    pub algorithm: Algorithm,
}

/// A certificate to issue from a CSR.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The PKCS#10 request (DER or PEM).
    pub csr: Vec<u8>,
    /// The approved applicant's name; the CSR's CN must match it (unless `csr_common_name`
    /// says otherwise). `None`: take the CSR's CN.
    pub name: Option<String>,
    /// What the CSR's CN must be instead of `name`: a personalisation station's CSR names the
    /// order, because the station is not told whom the key is for. The certificate still
    /// names `name`.
    pub csr_common_name: Option<String>,
    /// The resident ID number for the identity extension.
    pub id_number: String,
    /// Issue on hold (certificateHold) until activation.
    pub hold: bool,
    /// The order it is issued for.
    pub order: Option<String>,
    /// Who asked (`staff:NAME`, `operator`, `system`).
    pub actor: String,
}

fn pki(code: &'static str) -> impl Fn(PkiError) -> AppError {
    move |e| AppError::invalid(code, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn system_time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}

impl App {
    /// Creates the CA — a root and an issuing CA under it, keys sealed in the store — unless
    /// one exists.
    pub async fn ca_init(&self, algorithm: Algorithm, actor: &str) -> Result<CaInit, AppError> {
        if let Some(existing) = self.store().active_ca_key("issuing").await? {
            let algorithm = existing.algorithm.parse().map_err(internal)?;
            return Ok(CaInit { created: false, algorithm });
        }
        let config = &self.config().ca;
        let now = self.now();
        let stamp = now.format("%Y%m%d%H%M%S");
        let root_key = NewKey::generate(config, algorithm, &format!("yiqian-root-{stamp}"))?;
        let issuing_key = NewKey::generate(config, algorithm, &format!("yiqian-issuing-{stamp}"))?;
        let no_urls = IssuanceOptions { policy_oid: config.options.policy_oid, ..IssuanceOptions::default() };
        let root = yiqian_pki::issue(
            &CertificateRequest {
                profile: Profile::Root,
                subject: ca_name("yiqian Root CA")?,
                public_key: root_key.signer().public_key().clone(),
                serial: SerialNumber::random(),
                not_before: system_time(now),
                not_after: system_time(now + Duration::days(365 * 20)),
                issuer: None,
                options: &no_urls,
            },
            root_key.signer(),
        )
        .map_err(internal)?;
        let issuing = yiqian_pki::issue(
            &CertificateRequest {
                profile: Profile::IssuingCa,
                subject: ca_name("yiqian Personal CA")?,
                public_key: issuing_key.signer().public_key().clone(),
                serial: SerialNumber::random(),
                not_before: system_time(now),
                not_after: system_time(now + Duration::days(365 * 10)),
                issuer: Some(&root),
                options: &no_urls,
            },
            root_key.signer(),
        )
        .map_err(internal)?;
        let record = |role: &str, cert: &Certificate, key: &NewKey| -> Result<CaKeyRecord, AppError> {
            let (key_ref, pkcs8) = key.storage()?;
            Ok(CaKeyRecord {
                id: new_id("CA", 16),
                role: role.into(),
                algorithm: algorithm.to_string(),
                certificate_der: cert.to_der().map_err(internal)?,
                key_ref,
                pkcs8,
                created_at: now,
                active: true,
            })
        };
        let root_record = record("root", &root, &root_key)?;
        let issuing_record = record("issuing", &issuing, &issuing_key)?;
        let recorded: Result<(), AppError> = in_tx!(self, |tx| {
            tx.insert_ca_key(&root_record).await?;
            tx.insert_ca_key(&issuing_record).await?;
            let detail =
                json!({"algorithm": algorithm.to_string(), "root": root_record.id, "issuing": issuing_record.id});
            tx.audit(NewAuditEntry { actor, action: "ca.initialised", subject: "ca", detail }, now).await?;
            Ok(())
        });
        if let Err(e) = recorded {
            // Another node created the CA meanwhile (one active key per role): use theirs.
            return match self.store().active_ca_key("issuing").await? {
                Some(theirs) => Ok(CaInit { created: false, algorithm: theirs.algorithm.parse().map_err(internal)? }),
                None => Err(e),
            };
        }
        *self.inner.issuing_ca.write().await = None;
        self.regenerate_crl().await?;
        Ok(CaInit { created: true, algorithm })
    }

    /// The issuing CA, loaded from the store on first use.
    pub async fn issuing_ca(&self) -> Result<Arc<IssuingCa>, AppError> {
        if let Some(ca) = self.inner.issuing_ca.read().await.as_ref() {
            return Ok(ca.clone());
        }
        let missing = || AppError::Conflict { code: "ca_missing", message: "no CA yet: run `yiqian ca init`".into() };
        let issuing = self.store().active_ca_key("issuing").await?.ok_or_else(missing)?;
        let root = self.store().active_ca_key("root").await?.ok_or_else(missing)?;
        let signer = self.load_signer(&issuing)?;
        let certificate = Certificate::from_der(&issuing.certificate_der).map_err(internal)?;
        let ca = Arc::new(IssuingCa {
            ocsp_hashes: yiqian_pki::IssuerHashes::of(&certificate),
            certificate,
            certificate_der: issuing.certificate_der,
            root_der: root.certificate_der,
            signer,
            id: issuing.id,
        });
        *self.inner.issuing_ca.write().await = Some(ca.clone());
        Ok(ca)
    }

    /// The signer of a stored CA key: the sealed software key, or the key in the token.
    pub(crate) fn load_signer(&self, record: &CaKeyRecord) -> Result<Arc<dyn Signer>, AppError> {
        let config = &self.config().ca;
        let algorithm: Algorithm = record.algorithm.parse().map_err(internal)?;
        if let Some(reference) = record.key_ref.strip_prefix("pkcs11:") {
            let hsm = config.hsm.as_ref().ok_or_else(|| {
                internal(format!("CA key {} is in a PKCS#11 token, but no HSM is configured", record.id))
            })?;
            let object = reference.split(';').find_map(|p| p.strip_prefix("object=")).unwrap_or_default();
            return Ok(Arc::new(Pkcs11Key::open(&hsm.key(object)).map_err(pki("hsm"))?));
        }
        let pkcs8 =
            record.pkcs8.as_deref().ok_or_else(|| internal(format!("CA key {} has no key material", record.id)))?;
        let key = SoftwareKey::from_pkcs8_der(algorithm, pkcs8).map_err(internal)?;
        Ok(Arc::new(key.with_sm2_distid(&config.sm2_distid)))
    }

    /// Issues a personal certificate from a CSR whose signature (proof of possession),
    /// algorithm and key size are checked, and whose subject must name the approved applicant.
    pub async fn issue_certificate(&self, request: &IssueRequest) -> Result<CertificateRecord, AppError> {
        let ca = self.issuing_ca().await?;
        let csr = yiqian_pki::verify_csr(&request.csr, &self.config().ca.sm2_distid).map_err(pki("invalid_csr"))?;
        let cn = yiqian_pki::common_name(&csr.subject);
        let name = match (&request.csr_common_name, &request.name, cn) {
            (Some(expected), Some(name), Some(cn)) if expected.trim() == cn.trim() => name.trim().to_owned(),
            (Some(expected), _, cn) => {
                return Err(AppError::invalid(
                    "csr_subject_mismatch",
                    format!("the CSR names {:?}, not {expected:?}", cn.unwrap_or_default()),
                ));
            }
            (None, name, cn) => Self::holder_name(name, cn)?,
        };
        let now = self.now();
        let record = self.sign_personal(&ca, &name, &request.id_number, csr.public_key, request.hold, now)?;
        let record = CertificateRecord { order_id: request.order.clone(), ..record };
        in_tx!(self, |tx| {
            tx.insert_certificate(&record).await?;
            let subject = format!("certificate:{}", record.serial);
            let detail = json!({"profile": "personal", "hold": request.hold, "order": request.order, "algorithm": csr.algorithm.to_string()});
            tx.audit(
                NewAuditEntry { actor: &request.actor, action: "certificate.issued", subject: &subject, detail },
                now,
            )
            .await?;
            Ok(())
        })?;
        crate::metrics::certificate_issued(&csr.algorithm.to_string());
        if request.hold {
            self.regenerate_crl().await?;
        }
        self.presign_ocsp(&record.serial).await;
        Ok(record)
    }

    /// Signs a personal certificate for `name` over `public_key` as the product's profile says
    /// (validity, identity extension, policy), active or on hold from `now`: the record to
    /// store, not stored yet. The one place a personal certificate's content is decided.
    pub(crate) fn sign_personal(
        &self,
        ca: &IssuingCa,
        name: &str,
        id_number: &str,
        public_key: yiqian_pki::spki::SubjectPublicKeyInfoOwned,
        hold: bool,
        now: DateTime<Utc>,
    ) -> Result<CertificateRecord, AppError> {
        let not_after = now + Duration::days(365 * i64::from(self.config().product.validity_years));
        let profile = Profile::Personal {
            name: name.to_owned(),
            id_number: id_number.to_owned(),
            id_policy: self.config().ca.id_policy,
        };
        let serial = SerialNumber::random();
        let certificate = yiqian_pki::issue(
            &CertificateRequest {
                profile,
                subject: yiqian_pki::personal_subject(name).map_err(pki("invalid_name"))?,
                public_key,
                serial: serial.clone(),
                not_before: system_time(now),
                not_after: system_time(not_after),
                issuer: Some(&ca.certificate),
                options: &self.config().ca.options,
            },
            ca.signer.as_ref(),
        )
        .map_err(pki("invalid_request"))?;
        Ok(CertificateRecord {
            serial: serial.to_hex(),
            issuer_id: ca.id.clone(),
            order_id: None,
            profile: "personal".into(),
            status: if hold { CertificateStatus::Hold } else { CertificateStatus::Active },
            reason: hold.then(|| RevocationReason::CertificateHold.to_string()),
            status_changed_at: now,
            not_before: now,
            not_after,
            der: certificate.to_der().map_err(internal)?,
        })
    }

    /// The holder's name from the request and the CSR's CN, which must agree.
    fn holder_name(name: &Option<String>, cn: Option<String>) -> Result<String, AppError> {
        Ok(match (name, cn) {
            (Some(expected), Some(cn)) if expected.trim() == cn.trim() => expected.trim().to_owned(),
            (Some(expected), cn) => {
                return Err(AppError::invalid(
                    "csr_subject_mismatch",
                    format!("the CSR names {:?}, not the approved applicant {expected:?}", cn.unwrap_or_default()),
                ));
            }
            (None, Some(cn)) => cn,
            (None, None) => return Err(AppError::invalid("csr_subject_mismatch", "the CSR has no common name")),
        })
    }

    /// Releases a certificate issued on hold (activation).
    pub async fn release_certificate(&self, serial: &str, actor: &str) -> Result<CertificateRecord, AppError> {
        self.change_status(serial, actor, CertificateStatus::Active, None).await
    }

    /// Revokes a certificate for good, with an RFC 5280 reason.
    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: RevocationReason,
        actor: &str,
    ) -> Result<CertificateRecord, AppError> {
        if matches!(reason, RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl) {
            return Err(AppError::invalid("invalid_reason", format!("{reason} is not a reason to revoke for good")));
        }
        self.change_status(serial, actor, CertificateStatus::Revoked, Some(reason)).await
    }

    async fn change_status(
        &self,
        serial: &str,
        actor: &str,
        to: CertificateStatus,
        reason: Option<RevocationReason>,
    ) -> Result<CertificateRecord, AppError> {
        let serial = SerialNumber::from_hex(serial).map_err(pki("invalid_serial"))?.to_hex();
        let not_found = || AppError::NotFound("证书");
        let current = self.store().certificate(&serial).await?.ok_or_else(not_found)?;
        let allowed = match to {
            CertificateStatus::Active => current.status == CertificateStatus::Hold,
            CertificateStatus::Revoked => current.status != CertificateStatus::Revoked,
            CertificateStatus::Hold => false,
        };
        if !allowed {
            return Err(AppError::Conflict {
                code: "certificate_state",
                message: format!("certificate {serial} is {}; it cannot become {}", current.status.code(), to.code()),
            });
        }
        let reason_text = reason.map(|r| r.to_string());
        in_tx!(self, |tx| {
            let now = self.now();
            tx.change_certificate_status(&serial, current.status, to, reason_text.as_deref(), now).await?;
            let subject = format!("certificate:{serial}");
            let action = if to == CertificateStatus::Active { "certificate.released" } else { "certificate.revoked" };
            let detail = json!({"from": current.status.code(), "reason": reason_text});
            tx.audit(NewAuditEntry { actor, action, subject: &subject, detail }, now).await?;
            Ok(())
        })?;
        crate::metrics::certificate_status_changed(to.code());
        self.regenerate_crl().await?;
        self.presign_ocsp(&serial).await;
        self.store().certificate(&serial).await?.ok_or_else(not_found)
    }

    /// The current CRL (DER): the latest one while it is less than half-way to its
    /// nextUpdate, else a new one.
    pub async fn current_crl(&self) -> Result<Vec<u8>, AppError> {
        let ca = self.issuing_ca().await?;
        let latest = self.store().latest_crl(&ca.id).await?;
        if let Some((_, this_update, next_update, der)) = latest
            && self.now() < this_update + (next_update - this_update) / 2
        {
            return Ok(der);
        }
        self.regenerate_crl().await
    }

    /// When the latest published CRL says the next is due; `None` before the first.
    pub async fn crl_next_update(&self) -> Result<Option<DateTime<Utc>>, AppError> {
        let ca = self.issuing_ca().await?;
        Ok(self.store().latest_crl(&ca.id).await?.map(|(_, _, next_update, _)| next_update))
    }

    /// Builds, signs and records a new full CRL listing every revoked and held certificate.
    pub async fn regenerate_crl(&self) -> Result<Vec<u8>, AppError> {
        let ca = self.issuing_ca().await?;
        let now = self.now();
        let mut entries = Vec::new();
        for u in self.store().unusable_certificates(&ca.id, now).await? {
            entries.push(RevokedEntry {
                serial: SerialNumber::from_hex(&u.serial).map_err(internal)?,
                revoked_at: system_time(u.since),
                reason: u.reason.parse().map_err(internal)?,
            });
        }
        let number = self.store().latest_crl(&ca.id).await?.map(|(n, ..)| n + 1).unwrap_or(1);
        let next_update = now + self.config().ca.crl_validity;
        let der = yiqian_pki::build_crl(
            &ca.certificate,
            ca.signer.as_ref(),
            u64::try_from(number).map_err(internal)?,
            system_time(now),
            system_time(next_update),
            &entries,
        )
        .map_err(internal)?;
        let mut tx = self.store().begin().await?;
        match tx.insert_crl(&ca.id, number, now, next_update, &der).await {
            Ok(()) => tx.commit().await?,
            // Another node (or change) published this number first: serve theirs, so that no
            // two different CRLs ever carry the same number.
            Err(StoreError::Duplicate) => {
                drop(tx);
                if let Some((_, _, _, published)) = self.store().latest_crl(&ca.id).await? {
                    return Ok(published);
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(der)
    }

    /// Issued certificates, newest first.
    pub async fn list_certificates(&self, limit: i64) -> Result<Vec<CertificateRecord>, AppError> {
        Ok(self.store().certificates(limit).await?)
    }
}

fn ca_name(cn: &str) -> Result<yiqian_pki::x509_cert::name::Name, AppError> {
    use std::str::FromStr;
    yiqian_pki::x509_cert::name::Name::from_str(&format!("CN={cn},O=yiqian,C=CN")).map_err(internal)
}
