//! The outbox: side effects (SMS, provider calls) recorded in the same transaction as the
//! state change that caused them, then delivered by a worker with retries. Each message has
//! an idempotency key: enqueuing the same key twice keeps one message, and providers are
//! given the key so a retried delivery is not sent twice.

use crate::{Store, StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A message waiting for, or past, delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Message id.
    pub id: String,
    /// What kind of side effect (`sms`, `refund`, …).
    pub kind: String,
    /// Unique per intended effect.
    pub idempotency_key: String,
    /// The message body (opened; sealed at rest because it may hold personal data).
    pub payload: serde_json::Value,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for (another) attempt.
    Pending,
    /// Being delivered by a worker.
    Sending,
    /// Delivered.
    Done,
    /// Given up after too many attempts; needs an operator.
    Dead,
}

impl OutboxState {
    fn code(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Done => "done",
            OutboxState::Dead => "dead",
        }
    }
}

fn context(id: &str) -> String {
    format!("outbox:{id}")
}

impl Tx {
    /// Queues a message; a second message with the same key is dropped. Returns whether it
    /// was queued.
    pub async fn enqueue(
        &mut self,
        id: &str,
        kind: &str,
        idempotency_key: &str,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sealed = self.vault().seal_text(&payload.to_string(), &context(id));
        let done = sqlx::query(
            "INSERT INTO outbox (id, kind, idempotency_key, payload_sealed, state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(idempotency_key)
        .bind(sealed)
        .bind(OutboxState::Pending.code())
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Claims up to `limit` due messages for delivery until `lease_until`; a message whose
    /// worker died is claimed again once its lease runs out.
    pub async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT id FROM outbox WHERE state IN ('pending', 'sending') AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(millis(now))
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
        let mut claimed = Vec::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            let row = sqlx::query(
                "UPDATE outbox SET state = 'sending', next_attempt_at = $1, attempts = attempts + 1 \
                 WHERE id = $2 AND state IN ('pending', 'sending') AND next_attempt_at <= $3 \
                 RETURNING id, kind, idempotency_key, payload_sealed, attempts, created_at",
            )
            .bind(millis(lease_until))
            .bind(&id)
            .bind(millis(now))
            .fetch_optional(tx.conn())
            .await?;
            let Some(row) = row else { continue };
            let sealed: String = row.try_get("payload_sealed")?;
            let payload = tx.vault().open_text(&sealed, &context(&id))?;
            claimed.push(OutboxMessage {
                id,
                kind: row.try_get("kind")?,
                idempotency_key: row.try_get("idempotency_key")?,
                payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                attempts: row.try_get("attempts")?,
                created_at: from_millis(row.try_get("created_at")?),
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Marks a message delivered.
    pub async fn outbox_done(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET state = $1, done_at = $2, last_error = NULL WHERE id = $3")
            .bind(OutboxState::Done.code())
            .bind(millis(now))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a failed attempt: retry at `retry_at`, or give up (`None`).
    pub async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let (state, next) = match retry_at {
            Some(t) => (OutboxState::Pending, millis(t)),
            None => (OutboxState::Dead, i64::MAX),
        };
        sqlx::query("UPDATE outbox SET state = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
            .bind(state.code())
            .bind(next)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The delivery state of the message with `idempotency_key`: `pending`, `sending`, `done`
    /// or `dead`, with its attempts and last error.
    pub async fn outbox_status(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<(String, i64, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT state, attempts, last_error FROM outbox WHERE idempotency_key = $1")
            .bind(idempotency_key)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((r.try_get("state")?, r.try_get("attempts")?, r.try_get("last_error")?))).transpose()
    }

    /// When the oldest message still waiting for delivery (pending or being sent) was queued;
    /// `None` when none waits.
    pub async fn oldest_waiting_outbox_message(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT MIN(created_at) AS oldest FROM outbox WHERE state IN ('pending', 'sending')")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<Option<i64>, _>("oldest")?.map(from_millis))
    }

    /// Counts messages per state, for health pages and tests.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
    }
}
