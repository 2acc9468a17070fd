//! The certificate authority's records: its own keys and certificates (private keys sealed,
//! or a reference to an HSM key), every certificate it issued with its status (on hold,
//! active, revoked), and the CRLs it published. Certificates are stored as DER, sealed,
//! because a personal certificate names a person.

use crate::{Store, StoreError, Tx, from_millis, millis};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One of the CA's own keys with its certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct CaKeyRecord {
    /// Id of this key.
    pub id: String,
    /// `root`, `issuing` or `ocsp`.
    pub role: String,
    /// `sm2`, `p256` or `rsa3072`.
    pub algorithm: String,
    /// The key's certificate (DER).
    pub certificate_der: Vec<u8>,
    /// Where the private key is: `software` (sealed below) or a PKCS#11 URI.
    pub key_ref: String,
    /// PKCS#8 DER of a software key (opened; sealed at rest).
    pub pkcs8: Option<Vec<u8>>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Whether this key is the one in use for its role.
    pub active: bool,
}

impl std::fmt::Debug for CaKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaKeyRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Where an issued certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Issued on hold (listed as certificateHold) until the applicant activates it.
    Hold,
    /// In use.
    Active,
    /// Revoked for good.
    Revoked,
}

impl CertificateStatus {
    /// Stable code used in storage.
    pub fn code(self) -> &'static str {
        match self {
            CertificateStatus::Hold => "hold",
            CertificateStatus::Active => "active",
            CertificateStatus::Revoked => "revoked",
        }
    }

    /// Parses a [`CertificateStatus::code`].
    pub fn from_code(code: &str) -> Option<CertificateStatus> {
        match code {
            "hold" => Some(CertificateStatus::Hold),
            "active" => Some(CertificateStatus::Active),
            "revoked" => Some(CertificateStatus::Revoked),
            _ => None,
        }
    }
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial, upper-case hex.
    pub serial: String,
    /// The CA key that signed it.
    pub issuer_id: String,
    /// The order it was issued for, if any.
    pub order_id: Option<String>,
    /// Profile name (`personal`, `ocsp`, …).
    pub profile: String,
    /// Status.
    pub status: CertificateStatus,
    /// Revocation reason code (RFC 5280 name) when revoked or on hold.
    pub reason: Option<String>,
    /// When the status last changed.
    pub status_changed_at: DateTime<Utc>,
    /// Validity start.
    pub not_before: DateTime<Utc>,
    /// Validity end.
    pub not_after: DateTime<Utc>,
    /// The certificate (DER).
    pub der: Vec<u8>,
}

/// Where a certificate stands, without its (sealed) body: what OCSP needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStamp {
    /// Status.
    pub status: CertificateStatus,
    /// Revocation reason code, when revoked.
    pub reason: Option<String>,
    /// When the status last changed: a response signed for an older stamp is out of date.
    pub changed_at: DateTime<Utc>,
}

/// A certificate that belongs on the CRL: revoked, or on hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// Serial, upper-case hex.
    pub serial: String,
    /// When it became unusable.
    pub since: DateTime<Utc>,
    /// The reason code (`certificate_hold` for held certificates).
    pub reason: String,
}

fn ca_context(id: &str) -> String {
    format!("ca-key:{id}")
}

fn cert_context(serial: &str) -> String {
    format!("certificate:{serial}")
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("certificate column {what} holds an unknown value"))
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, StoreError> {
    B64.decode(text).map_err(|_| corrupt(what))
}

impl Tx {
    /// Records one of the CA's keys. The PKCS#8 of a software key is sealed.
    pub async fn insert_ca_key(&mut self, k: &CaKeyRecord) -> Result<(), StoreError> {
        let sealed = k.pkcs8.as_ref().map(|p| self.vault().seal_text(&B64.encode(p), &ca_context(&k.id)));
        sqlx::query(
            "INSERT INTO ca_keys (id, role, algorithm, certificate_der, key_ref, key_sealed, created_at, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(&k.role)
        .bind(&k.algorithm)
        .bind(B64.encode(&k.certificate_der))
        .bind(&k.key_ref)
        .bind(sealed)
        .bind(millis(k.created_at))
        .bind(i64::from(k.active))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records an issued certificate; `Duplicate` if the serial was ever used.
    pub async fn insert_certificate(&mut self, c: &CertificateRecord) -> Result<(), StoreError> {
        let sealed = self.vault().seal_text(&B64.encode(&c.der), &cert_context(&c.serial));
        sqlx::query(
            "INSERT INTO certificates (serial, issuer_id, order_id, profile, status, reason, status_changed_at, \
             not_before, not_after, der_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $7)",
        )
        .bind(&c.serial)
        .bind(&c.issuer_id)
        .bind(c.order_id.clone())
        .bind(&c.profile)
        .bind(c.status.code())
        .bind(c.reason.clone())
        .bind(millis(c.status_changed_at))
        .bind(millis(c.not_before))
        .bind(millis(c.not_after))
        .bind(sealed)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A certificate's status, read within this unit of work.
    pub async fn certificate_in_tx(&mut self, serial: &str) -> Result<Option<CertificateStatus>, StoreError> {
        let row = sqlx::query("SELECT status FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| {
            let code: String = r.try_get("status")?;
            CertificateStatus::from_code(&code)
                .ok_or_else(|| StoreError::Corrupt(format!("certificate status {code:?}")))
        })
        .transpose()
    }

    /// The serials of an order's certificates that are not revoked, issued at or after `since`.
    pub async fn unrevoked_certificates_of_order_since(
        &mut self,
        order: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial FROM certificates WHERE order_id = $1 AND created_at >= $2 AND status <> 'revoked'",
        )
        .bind(order)
        .bind(crate::millis(since))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }

    /// Moves a certificate from `from` to `to` (with a reason), once; `Conflict` if it was
    /// not in `from` any more.
    pub async fn change_certificate_status(
        &mut self,
        serial: &str,
        from: CertificateStatus,
        to: CertificateStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE certificates SET status = $1, reason = $2, status_changed_at = $3 WHERE serial = $4 AND status = $5",
        )
        .bind(to.code())
        .bind(reason)
        .bind(millis(now))
        .bind(serial)
        .bind(from.code())
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Records a CRL just built.
    pub async fn insert_crl(
        &mut self,
        issuer_id: &str,
        crl_number: i64,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
        der: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO crls (issuer_id, crl_number, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(issuer_id)
        .bind(crl_number)
        .bind(millis(this_update))
        .bind(millis(next_update))
        .bind(B64.encode(der))
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl Store {
    /// The active key for `role`, if the CA has one.
    pub async fn active_ca_key(&self, role: &str) -> Result<Option<CaKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM ca_keys WHERE role = $1 AND active = 1 ORDER BY created_at DESC LIMIT 1")
            .bind(role)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| self.ca_key_from_row(&r)).transpose()
    }

    fn ca_key_from_row(&self, r: &AnyRow) -> Result<CaKeyRecord, StoreError> {
        let id: String = r.try_get("id")?;
        let sealed: Option<String> = r.try_get("key_sealed")?;
        let pkcs8 = match sealed {
            Some(s) => Some(b64(&self.vault().open_text(&s, &ca_context(&id))?, "key_sealed")?),
            None => None,
        };
        let active: i64 = r.try_get("active")?;
        Ok(CaKeyRecord {
            role: r.try_get("role")?,
            algorithm: r.try_get("algorithm")?,
            certificate_der: b64(&r.try_get::<String, _>("certificate_der")?, "certificate_der")?,
            key_ref: r.try_get("key_ref")?,
            pkcs8,
            created_at: from_millis(r.try_get("created_at")?),
            active: active != 0,
            id,
        })
    }

    /// An issued certificate by serial (upper-case hex).
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| self.certificate_from_row(&r)).transpose()
    }

    /// The status of a certificate by serial, reading no sealed data (cheap enough for every
    /// OCSP request).
    pub async fn certificate_status(&self, serial: &str) -> Result<Option<StatusStamp>, StoreError> {
        let row = sqlx::query("SELECT status, reason, status_changed_at FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let status: String = r.try_get("status")?;
            Ok(StatusStamp {
                status: CertificateStatus::from_code(&status).ok_or_else(|| corrupt("status"))?,
                reason: r.try_get("reason")?,
                changed_at: from_millis(r.try_get("status_changed_at")?),
            })
        })
        .transpose()
    }

    /// Issued certificates, newest first.
    pub async fn certificates(&self, limit: i64) -> Result<Vec<CertificateRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM certificates ORDER BY created_at DESC, serial LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| self.certificate_from_row(r)).collect()
    }

    fn certificate_from_row(&self, r: &AnyRow) -> Result<CertificateRecord, StoreError> {
        let serial: String = r.try_get("serial")?;
        let status: String = r.try_get("status")?;
        let sealed: String = r.try_get("der_sealed")?;
        let der = b64(&self.vault().open_text(&sealed, &cert_context(&serial))?, "der_sealed")?;
        Ok(CertificateRecord {
            issuer_id: r.try_get("issuer_id")?,
            order_id: r.try_get("order_id")?,
            profile: r.try_get("profile")?,
            status: CertificateStatus::from_code(&status).ok_or_else(|| corrupt("status"))?,
            reason: r.try_get("reason")?,
            status_changed_at: from_millis(r.try_get("status_changed_at")?),
            not_before: from_millis(r.try_get("not_before")?),
            not_after: from_millis(r.try_get("not_after")?),
            der,
            serial,
        })
    }

    /// Everything of `issuer_id` that belongs on its CRL (revoked or on hold, not expired),
    /// in serial order. Reads only the columns a CRL needs, so a million entries stay cheap.
    pub async fn unusable_certificates(
        &self,
        issuer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Unusable>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, status, reason, status_changed_at FROM certificates \
             WHERE issuer_id = $1 AND status IN ('hold', 'revoked') AND not_after > $2 ORDER BY serial",
        )
        .bind(issuer_id)
        .bind(millis(now))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let reason: Option<String> = r.try_get("reason")?;
                Ok(Unusable {
                    serial: r.try_get("serial")?,
                    since: from_millis(r.try_get("status_changed_at")?),
                    reason: match status.as_str() {
                        "hold" => "certificate_hold".to_owned(),
                        _ => reason.unwrap_or_else(|| "unspecified".to_owned()),
                    },
                })
            })
            .collect()
    }

    /// The newest CRL of an issuer: (number, this update, next update, DER).
    pub async fn latest_crl(
        &self,
        issuer_id: &str,
    ) -> Result<Option<(i64, DateTime<Utc>, DateTime<Utc>, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT * FROM crls WHERE issuer_id = $1 ORDER BY crl_number DESC LIMIT 1")
            .bind(issuer_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let der: String = r.try_get("der")?;
            Ok((
                r.try_get("crl_number")?,
                from_millis(r.try_get("this_update")?),
                from_millis(r.try_get("next_update")?),
                b64(&der, "der")?,
            ))
        })
        .transpose()
    }
}
