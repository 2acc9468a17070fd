//! Orders, their history (the applicant's status timeline), their materials (sealed), and
//! liveness challenges.

use crate::{StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use yiqian_domain::{ApplicantId, Checklist, Fen, Order, OrderEvent, OrderId, OrderState, PaymentId};

/// An order with what the store keeps around the domain's [`Order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The domain order.
    pub order: Order,
    /// Whose order it is.
    pub applicant: ApplicantId,
    /// Which product.
    pub product_code: String,
    /// The agreement version accepted.
    pub agreement_version: String,
    /// When the agreement was accepted.
    pub agreement_accepted_at: DateTime<Utc>,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped by every update.
    pub version: i64,
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Position in the order's history, from 1.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`applicant`, `system`, `staff:NAME`, `gateway:NAME`).
    pub actor: String,
    /// The event.
    pub event: OrderEvent,
    /// The order's state after it.
    pub state_after: OrderState,
}

macro_rules! order_columns {
    () => {
        "id, applicant_id, product_code, price_fen, state, checklist, paid_by, pay_deadline, \
         agreement_version, agreement_accepted_at, created_at, updated_at, version"
    };
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("order column {what} holds an unknown value"))
}

fn order_id_from_row(row: &AnyRow) -> Result<OrderId, StoreError> {
    let id: String = row.try_get("id")?;
    OrderId::parse(&id).ok_or_else(|| corrupt("id"))
}

fn order_from_row(row: &AnyRow) -> Result<OrderRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let paid_by: Option<String> = row.try_get("paid_by")?;
    let checklist: i64 = row.try_get("checklist")?;
    let applicant: String = row.try_get("applicant_id")?;
    let price: i64 = row.try_get("price_fen")?;
    Ok(OrderRecord {
        order: Order {
            id: OrderId::parse(&id).ok_or_else(|| corrupt("id"))?,
            price: Fen(u64::try_from(price).map_err(|_| corrupt("price_fen"))?),
            state: OrderState::from_code(&state).ok_or_else(|| corrupt("state"))?,
            checklist: Checklist::from_bits(u8::try_from(checklist).map_err(|_| corrupt("checklist"))?),
            paid_by: paid_by.map(|p| PaymentId::parse(&p).ok_or_else(|| corrupt("paid_by"))).transpose()?,
            pay_deadline: from_millis(row.try_get("pay_deadline")?),
        },
        applicant: ApplicantId::parse(&applicant).ok_or_else(|| corrupt("applicant_id"))?,
        product_code: row.try_get("product_code")?,
        agreement_version: row.try_get("agreement_version")?,
        agreement_accepted_at: from_millis(row.try_get("agreement_accepted_at")?),
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
        version: row.try_get("version")?,
    })
}

impl Tx {
    /// Inserts a new order.
    pub async fn insert_order(&mut self, r: &OrderRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO orders (",
            order_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(r.order.id.as_str())
        .bind(r.applicant.as_str())
        .bind(&r.product_code)
        .bind(r.order.price.0 as i64)
        .bind(r.order.state.code())
        .bind(i64::from(r.order.checklist.bits()))
        .bind(r.order.paid_by.as_ref().map(|p| p.as_str().to_owned()))
        .bind(millis(r.order.pay_deadline))
        .bind(&r.agreement_version)
        .bind(millis(r.agreement_accepted_at))
        .bind(millis(r.created_at))
        .bind(millis(r.updated_at))
        .bind(r.version)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Loads an order, or `NotFound`.
    pub async fn load_order(&mut self, id: &OrderId) -> Result<OrderRecord, StoreError> {
        let row = sqlx::query(concat!("SELECT ", order_columns!(), " FROM orders WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound("order"))?;
        order_from_row(&row)
    }

    /// Saves the domain part of `r` if nobody changed the order since it was loaded
    /// (its `version`); otherwise `Conflict`. Returns the record with its new version.
    pub async fn update_order(&mut self, r: &OrderRecord, now: DateTime<Utc>) -> Result<OrderRecord, StoreError> {
        let done = sqlx::query(
            "UPDATE orders SET state = $1, checklist = $2, paid_by = $3, updated_at = $4, version = version + 1 \
             WHERE id = $5 AND version = $6",
        )
        .bind(r.order.state.code())
        .bind(i64::from(r.order.checklist.bits()))
        .bind(r.order.paid_by.as_ref().map(|p| p.as_str().to_owned()))
        .bind(millis(now))
        .bind(r.order.id.as_str())
        .bind(r.version)
        .execute(self.conn())
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        Ok(OrderRecord { updated_at: now, version: r.version + 1, ..r.clone() })
    }

    /// The applicant's orders, newest first.
    pub async fn orders_of(&mut self, applicant: &ApplicantId) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE applicant_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(applicant.as_str())
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Orders in `state`, longest waiting first (by their last change), at most `limit`.
    pub async fn orders_in_state(&mut self, state: OrderState, limit: i64) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE state = $1 ORDER BY updated_at, id LIMIT $2"
        ))
        .bind(state.code())
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Unpaid orders whose payment deadline is at or before `now`, oldest first.
    pub async fn overdue_unpaid_orders(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OrderId>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM orders WHERE state = $1 AND pay_deadline <= $2 ORDER BY pay_deadline LIMIT $3")
                .bind(OrderState::Created.code())
                .bind(millis(now))
                .bind(limit)
                .fetch_all(self.conn())
                .await?;
        rows.iter().map(order_id_from_row).collect()
    }

    /// Appends events to the order's history, after the order row was updated in this
    /// transaction (which serialises writers of one order).
    pub async fn append_history(
        &mut self,
        order: &Order,
        actor: &str,
        events: &[OrderEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM order_events WHERE order_id = $1")
            .bind(order.id.as_str())
            .fetch_one(self.conn())
            .await?;
        let mut seq: i64 = row.try_get("last")?;
        for e in events {
            seq += 1;
            let detail = serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO order_events (order_id, seq, at, actor, kind, state_after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(order.id.as_str())
            .bind(seq)
            .bind(millis(now))
            .bind(actor)
            .bind(e.code())
            .bind(order.state.code())
            .bind(detail)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// The order's history, oldest first.
    pub async fn history(&mut self, order: &OrderId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, state_after, detail FROM order_events WHERE order_id = $1 ORDER BY seq",
        )
        .bind(order.as_str())
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                let state: String = r.try_get("state_after")?;
                Ok(HistoryEntry {
                    seq: r.try_get("seq")?,
                    at: from_millis(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    event: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    state_after: OrderState::from_code(&state).ok_or_else(|| corrupt("state_after"))?,
                })
            })
            .collect()
    }

    /// Stores a piece of evidence (any JSON) under `key` — a step's code, or a draft such as
    /// photos not yet confirmed — sealed, replacing an earlier one.
    pub async fn save_material(
        &mut self,
        order: &OrderId,
        key: &str,
        value: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sealed = self.vault().seal_text(&value.to_string(), &material_context(order, key));
        sqlx::query(
            "INSERT INTO materials (order_id, step, sealed, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (order_id, step) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(order.as_str())
        .bind(key)
        .bind(sealed)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The evidence stored under `key`, if any: `None` too when it was erased (see
    /// [`Tx::erasure`] for when and why).
    pub async fn material(&mut self, order: &OrderId, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT sealed, erased_at FROM materials WHERE order_id = $1 AND step = $2")
            .bind(order.as_str())
            .bind(key)
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        if row.try_get::<Option<i64>, _>("erased_at")?.is_some() {
            return Ok(None);
        }
        let sealed: String = row.try_get("sealed")?;
        let text = self.vault().open_text(&sealed, &material_context(order, key))?;
        serde_json::from_str(&text).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Records the keyed hash of the order's confirmed ID number (for duplicate checks).
    pub async fn set_order_id_number_hash(&mut self, order: &OrderId, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET id_number_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(order.as_str())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Orders other than `except` in a live state (not refunded or cancelled) for the same ID number.
    pub async fn live_orders_with_id_number(
        &mut self,
        hash: &str,
        except: &OrderId,
    ) -> Result<Vec<OrderId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM orders WHERE id_number_hash = $1 AND id <> $2 AND state NOT IN ('refunding', 'refunded', 'cancelled')",
        )
        .bind(hash)
        .bind(except.as_str())
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(order_id_from_row).collect()
    }

    /// Records a new liveness challenge (the digits to read aloud).
    pub async fn insert_challenge(&mut self, c: &Challenge) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO liveness_challenges (id, order_id, digits, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&c.id)
        .bind(c.order.as_str())
        .bind(&c.digits)
        .bind(millis(c.created_at))
        .bind(millis(c.expires_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Loads a challenge.
    pub async fn challenge(&mut self, id: &str) -> Result<Challenge, StoreError> {
        let r = sqlx::query(
            "SELECT id, order_id, digits, created_at, expires_at, used_at FROM liveness_challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?
        .ok_or(StoreError::NotFound("challenge"))?;
        let order: String = r.try_get("order_id")?;
        let used: Option<i64> = r.try_get("used_at")?;
        Ok(Challenge {
            id: r.try_get("id")?,
            order: OrderId::parse(&order).ok_or_else(|| corrupt("order_id"))?,
            digits: r.try_get("digits")?,
            created_at: from_millis(r.try_get("created_at")?),
            expires_at: from_millis(r.try_get("expires_at")?),
            used_at: used.map(from_millis),
        })
    }

    /// Marks a challenge used, once; `Conflict` if it already was.
    pub async fn use_challenge(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE liveness_challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Number of challenges issued for an order since `since` (to limit retries).
    pub async fn challenges_since(&mut self, order: &OrderId, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM liveness_challenges WHERE order_id = $1 AND created_at >= $2")
            .bind(order.as_str())
            .bind(millis(since))
            .fetch_one(self.conn())
            .await?;
        Ok(r.try_get("n")?)
    }
}

fn material_context(order: &OrderId, key: &str) -> String {
    format!("material:{order}:{key}")
}

/// Digits an applicant must read aloud in a face video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The challenge id.
    pub id: String,
    /// For which order.
    pub order: OrderId,
    /// The digits.
    pub digits: String,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// Until when it can be answered.
    pub expires_at: DateTime<Utc>,
    /// When answered, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

impl crate::Store {
    /// How many orders are in each state (by state code); states without orders are absent.
    pub async fn count_orders_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut tx = self.read().await?;
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state").fetch_all(tx.conn()).await?;
        rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
    }
}
