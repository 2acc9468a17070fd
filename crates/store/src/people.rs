//! Applicant accounts (found by a keyed hash of their phone number) and login sessions
//! (stored as hashes of the session token).

use crate::{StoreError, Tx, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use yiqian_domain::ApplicantId;
use yiqian_domain::identity::MobileNumber;

impl Tx {
    /// The applicant with this phone number, created with `new_id` if there is none.
    pub async fn applicant_by_phone(
        &mut self,
        phone: &MobileNumber,
        new_id: &ApplicantId,
        now: DateTime<Utc>,
    ) -> Result<ApplicantId, StoreError> {
        let hash = self.vault().lookup_hash("phone", phone.as_str());
        // Two first logins of one phone at once: the second waits for the first and keeps
        // its account, without an error that would abandon the unit of work.
        let sealed = self.vault().seal_text(phone.as_str(), &format!("applicant:{new_id}:phone"));
        sqlx::query(
            "INSERT INTO applicants (id, phone_hash, phone_sealed, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (phone_hash) DO NOTHING",
        )
        .bind(new_id.as_str())
        .bind(&hash)
        .bind(sealed)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        let r =
            sqlx::query("SELECT id FROM applicants WHERE phone_hash = $1").bind(&hash).fetch_one(self.conn()).await?;
        let id: String = r.try_get("id")?;
        ApplicantId::parse(&id).ok_or_else(|| StoreError::Corrupt("applicant id".into()))
    }

    /// The applicant who logs in with this phone number, if any (never creates one).
    pub async fn applicant_with_phone(&mut self, phone: &MobileNumber) -> Result<Option<ApplicantId>, StoreError> {
        let hash = self.vault().lookup_hash("phone", phone.as_str());
        let row = sqlx::query("SELECT id FROM applicants WHERE phone_hash = $1")
            .bind(&hash)
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| {
            let id: String = r.try_get("id")?;
            ApplicantId::parse(&id).ok_or_else(|| StoreError::Corrupt("applicant id".into()))
        })
        .transpose()
    }

    /// The applicant's login phone number.
    pub async fn applicant_phone(&mut self, id: &ApplicantId) -> Result<MobileNumber, StoreError> {
        let r = sqlx::query("SELECT phone_sealed FROM applicants WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound("applicant"))?;
        let sealed: String = r.try_get("phone_sealed")?;
        let phone = self.vault().open_text(&sealed, &format!("applicant:{id}:phone"))?;
        MobileNumber::parse(&phone).map_err(|_| StoreError::Corrupt("applicant phone".into()))
    }

    /// Records a session; only the token's hash is kept.
    pub async fn insert_session(
        &mut self,
        token_hash: &str,
        applicant: &ApplicantId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sessions (token_hash, applicant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(applicant.as_str())
            .bind(millis(now))
            .bind(millis(expires_at))
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The applicant of a live session.
    pub async fn session(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<ApplicantId>, StoreError> {
        let r = sqlx::query("SELECT applicant_id FROM sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(millis(now))
            .fetch_optional(self.conn())
            .await?;
        match r {
            None => Ok(None),
            Some(r) => {
                let id: String = r.try_get("applicant_id")?;
                Ok(Some(ApplicantId::parse(&id).ok_or_else(|| StoreError::Corrupt("session applicant".into()))?))
            }
        }
    }

    /// Ends a session.
    pub async fn delete_session(&mut self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(self.conn()).await?;
        Ok(())
    }
}
