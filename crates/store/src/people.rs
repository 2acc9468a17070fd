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

    /// Binds a WeChat openid (of our official account) to an applicant; a later binding of the
    /// same openid moves it. `openid_hash` is the vault's lookup hash of the openid.
    pub async fn bind_wechat_openid(
        &mut self,
        applicant: &ApplicantId,
        openid_hash: &str,
        openid: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sealed = self.vault().seal_text(openid, &format!("wechat-openid:{openid_hash}"));
        sqlx::query(
            "INSERT INTO wechat_identities (openid_hash, applicant_id, openid_sealed, bound_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (openid_hash) DO UPDATE SET applicant_id = excluded.applicant_id, bound_at = excluded.bound_at",
        )
        .bind(openid_hash)
        .bind(applicant.as_str())
        .bind(sealed)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The applicant an openid is bound to.
    pub async fn applicant_by_openid(&mut self, openid_hash: &str) -> Result<Option<ApplicantId>, StoreError> {
        let r = sqlx::query("SELECT applicant_id FROM wechat_identities WHERE openid_hash = $1")
            .bind(openid_hash)
            .fetch_optional(self.conn())
            .await?;
        r.map(|r| {
            let id: String = r.try_get("applicant_id")?;
            ApplicantId::parse(&id).ok_or_else(|| StoreError::Corrupt("wechat identity applicant".into()))
        })
        .transpose()
    }

    /// The openid most recently bound to an applicant.
    pub async fn wechat_openid_of(&mut self, applicant: &ApplicantId) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(
            "SELECT openid_hash, openid_sealed FROM wechat_identities WHERE applicant_id = $1 \
             ORDER BY bound_at DESC LIMIT 1",
        )
        .bind(applicant.as_str())
        .fetch_optional(self.conn())
        .await?;
        r.map(|r| {
            let hash: String = r.try_get("openid_hash")?;
            self.vault().open_text(&r.try_get::<String, _>("openid_sealed")?, &format!("wechat-openid:{hash}"))
        })
        .transpose()
    }
}

impl crate::Store {
    /// How many applicants have an account.
    pub async fn count_applicants(&self) -> Result<i64, StoreError> {
        let mut tx = self.read().await?;
        let r = sqlx::query("SELECT COUNT(*) AS n FROM applicants").fetch_one(tx.conn()).await?;
        Ok(r.try_get("n")?)
    }
}
