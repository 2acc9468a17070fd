//! SMS verification codes (stored as keyed hashes, with their attempt counters) and the
//! sandbox SMS inbox: the messages the development SMS provider "delivered".

use crate::{Store, StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

/// A verification code as stored: never the code itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsCodeRecord {
    /// Id of this code.
    pub id: String,
    /// Keyed hash of the phone number.
    pub phone_hash: String,
    /// What the code proves (`login`, `bind_phone`).
    pub purpose: String,
    /// Keyed hash of phone, purpose and code.
    pub code_hash: String,
    /// The requesting client's address, for per-IP limits.
    pub client_ip: String,
    /// When sent.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Wrong tries so far.
    pub attempts: i64,
    /// When it was used, if it was.
    pub consumed_at: Option<DateTime<Utc>>,
}

/// A message in the sandbox SMS inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxSms {
    /// Message id.
    pub id: String,
    /// Recipient, 11 digits.
    pub phone: String,
    /// Template name.
    pub template: String,
    /// The full text as the phone would show it.
    pub text: String,
    /// When delivered (RFC 3339).
    pub at: DateTime<Utc>,
}

impl Tx {
    /// Records a code just sent.
    pub async fn insert_sms_code(&mut self, c: &SmsCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sms_codes (id, phone_hash, purpose, code_hash, client_ip, created_at, expires_at, attempts, consumed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(&c.id)
        .bind(&c.phone_hash)
        .bind(&c.purpose)
        .bind(&c.code_hash)
        .bind(&c.client_ip)
        .bind(millis(c.created_at))
        .bind(millis(c.expires_at))
        .bind(c.attempts)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The newest code sent to a phone for a purpose.
    pub async fn latest_sms_code(
        &mut self,
        phone_hash: &str,
        purpose: &str,
    ) -> Result<Option<SmsCodeRecord>, StoreError> {
        let r = sqlx::query(
            "SELECT * FROM sms_codes WHERE phone_hash = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(phone_hash)
        .bind(purpose)
        .fetch_optional(self.conn())
        .await?;
        let Some(r) = r else { return Ok(None) };
        let consumed: Option<i64> = r.try_get("consumed_at")?;
        Ok(Some(SmsCodeRecord {
            id: r.try_get("id")?,
            phone_hash: r.try_get("phone_hash")?,
            purpose: r.try_get("purpose")?,
            code_hash: r.try_get("code_hash")?,
            client_ip: r.try_get("client_ip")?,
            created_at: from_millis(r.try_get("created_at")?),
            expires_at: from_millis(r.try_get("expires_at")?),
            attempts: r.try_get("attempts")?,
            consumed_at: consumed.map(from_millis),
        }))
    }

    /// Counts one wrong try.
    pub async fn count_sms_attempt(&mut self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sms_codes SET attempts = attempts + 1 WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(())
    }

    /// Uses a code up, once; `Conflict` if it was already used.
    pub async fn consume_sms_code(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE sms_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Codes sent to a phone since `since` (all purposes).
    pub async fn sms_codes_to_phone_since(
        &mut self,
        phone_hash: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM sms_codes WHERE phone_hash = $1 AND created_at >= $2")
            .bind(phone_hash)
            .bind(millis(since))
            .fetch_one(self.conn())
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Codes requested from a client address since `since`.
    pub async fn sms_codes_from_ip_since(&mut self, client_ip: &str, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM sms_codes WHERE client_ip = $1 AND created_at >= $2")
            .bind(client_ip)
            .bind(millis(since))
            .fetch_one(self.conn())
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Delivers a message to the sandbox inbox once per idempotency key; a repeat is ignored.
    /// Returns whether it was new.
    pub async fn deliver_sandbox_sms(&mut self, key: &str, m: &SandboxSms) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sandbox_sms (id, idempotency_key, phone, template, text, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&m.id)
        .bind(key)
        .bind(&m.phone)
        .bind(&m.template)
        .bind(&m.text)
        .bind(millis(m.at))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// The sandbox inbox, newest first, optionally for one phone.
    pub async fn sandbox_sms(&self, phone: Option<&str>, limit: i64) -> Result<Vec<SandboxSms>, StoreError> {
        let rows = match phone {
            Some(p) => {
                sqlx::query("SELECT * FROM sandbox_sms WHERE phone = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                    .bind(p)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM sandbox_sms ORDER BY created_at DESC, id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(SandboxSms {
                    id: r.try_get("id")?,
                    phone: r.try_get("phone")?,
                    template: r.try_get("template")?,
                    text: r.try_get("text")?,
                    at: from_millis(r.try_get("created_at")?),
                })
            })
            .collect()
    }
}
