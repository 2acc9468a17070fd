//! Deleting an order's personal data for good: its materials' sealed values are overwritten
//! (each held its own wrapped data key, so nothing of it can be opened again — crypto-shredding),
//! its blobs are given up and then removed from the blob store, its bound phone and ID-number
//! hash are cleared, and one `erasures` row records why, what kinds of data and when — never the
//! data. Which orders are due, and whether a deletion is lawful, is the application's rule;
//! here are the writes and the queries that find candidates.

use crate::{Store, StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use yiqian_domain::OrderId;

/// What one erasure removed: the material keys (steps, drafts) and the blobs (id and kind).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Erased {
    /// The material keys whose sealed values were overwritten.
    pub materials: Vec<String>,
    /// The blobs given up (to be removed from the blob store).
    pub blobs: Vec<(String, String)>,
    /// Whether a bound phone number was cleared from the order.
    pub phone: bool,
}

impl Erased {
    /// The kinds of data that went, for the audit trail and the operator (`id_card`,
    /// `blob:liveness_video`, `phone`), sorted and without repeats.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.materials.clone();
        kinds.extend(self.blobs.iter().map(|(_, kind)| format!("blob:{kind}")));
        if self.phone {
            kinds.push("phone".into());
        }
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// The record of an order's erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// Why (`closed_order`, `certificate_retention`, `applicant_request`).
    pub reason: String,
    /// The kinds of data that went, comma-separated.
    pub kinds: String,
    /// How many blobs.
    pub blobs: i64,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// Who (`system`, or `staff:NAME`).
    pub erased_by: String,
}

impl Tx {
    /// Erases the personal data of `order` (see the module comment) and records it; `reason`
    /// and `by` go into the record. Invoices stay (tax records have their own retention), as do
    /// certificates (public, and the CA's record of what it issued).
    pub async fn erase_order_personal_data(
        &mut self,
        order: &OrderId,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let materials: Vec<String> =
            sqlx::query("SELECT step FROM materials WHERE order_id = $1 AND erased_at IS NULL ORDER BY step")
                .bind(order.as_str())
                .fetch_all(self.conn())
                .await?
                .iter()
                .map(|r| r.try_get("step"))
                .collect::<Result<_, _>>()?;
        sqlx::query("UPDATE materials SET sealed = '', erased_at = $1 WHERE order_id = $2 AND erased_at IS NULL")
            .bind(millis(now))
            .bind(order.as_str())
            .execute(self.conn())
            .await?;
        let blobs: Vec<(String, String)> = sqlx::query(
            "SELECT id, kind FROM blobs WHERE order_id = $1 AND erased_at IS NULL AND kind <> 'invoice_pdf' ORDER BY id",
        )
        .bind(order.as_str())
        .fetch_all(self.conn())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("kind")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        sqlx::query(
            "UPDATE blobs SET erased_at = $1 WHERE order_id = $2 AND erased_at IS NULL AND kind <> 'invoice_pdf'",
        )
        .bind(millis(now))
        .bind(order.as_str())
        .execute(self.conn())
        .await?;
        let phone = sqlx::query("SELECT phone_sealed FROM orders WHERE id = $1")
            .bind(order.as_str())
            .fetch_one(self.conn())
            .await?
            .try_get::<Option<String>, _>("phone_sealed")?
            .is_some();
        sqlx::query("UPDATE orders SET phone_sealed = NULL, id_number_hash = NULL WHERE id = $1")
            .bind(order.as_str())
            .execute(self.conn())
            .await?;
        let erased = Erased { materials, blobs, phone };
        sqlx::query(
            "INSERT INTO erasures (order_id, reason, kinds, blobs, erased_at, erased_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order.as_str())
        .bind(reason)
        .bind(erased.kinds().join(","))
        .bind(erased.blobs.len() as i64)
        .bind(millis(now))
        .bind(by)
        .execute(self.conn())
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Duplicate => StoreError::Conflict,
            other => other,
        })?;
        Ok(erased)
    }

    /// The record of the order's erasure, if its personal data was deleted.
    pub async fn erasure(&mut self, order: &OrderId) -> Result<Option<Erasure>, StoreError> {
        let row = sqlx::query("SELECT reason, kinds, blobs, erased_at, erased_by FROM erasures WHERE order_id = $1")
            .bind(order.as_str())
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| erasure_from_row(&r)).transpose()
    }
}

impl Store {
    /// Cancelled and refunded orders that closed at or before `cutoff`, never had a
    /// certificate, and hold personal data not yet erased (an order cancelled unpaid holds
    /// none); oldest first, at most `limit`.
    pub async fn closed_orders_to_erase(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(OrderId, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.updated_at FROM orders o WHERE o.state IN ('cancelled', 'refunded') AND o.updated_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.order_id = o.id) \
             AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.order_id = o.id) \
             AND (o.phone_sealed IS NOT NULL \
                  OR EXISTS (SELECT 1 FROM materials m WHERE m.order_id = o.id AND m.erased_at IS NULL) \
                  OR EXISTS (SELECT 1 FROM blobs b WHERE b.order_id = o.id AND b.erased_at IS NULL AND b.kind <> 'invoice_pdf')) \
             ORDER BY o.updated_at LIMIT $2",
        )
        .bind(millis(cutoff))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        order_times(&rows, "updated_at")
    }

    /// Orders whose every certificate expired at or before `cutoff` and whose personal data is
    /// not yet erased, with their last certificate's expiry; earliest first, at most `limit`.
    pub async fn certified_orders_to_erase(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(OrderId, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.order_id AS id, MAX(c.not_after) AS last_expiry FROM certificates c \
             WHERE c.order_id IS NOT NULL AND c.not_after <= $1 \
             AND NOT EXISTS (SELECT 1 FROM certificates later WHERE later.order_id = c.order_id AND later.not_after > $1) \
             AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.order_id = c.order_id) \
             GROUP BY c.order_id ORDER BY MAX(c.not_after) LIMIT $2",
        )
        .bind(millis(cutoff))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        order_times(&rows, "last_expiry")
    }

    /// The latest erasures, newest first, at most `limit`.
    pub async fn recent_erasures(&self, limit: i64) -> Result<Vec<(OrderId, Erasure)>, StoreError> {
        let rows = sqlx::query(
            "SELECT order_id AS id, reason, kinds, blobs, erased_at, erased_by FROM erasures ORDER BY erased_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((order_id(r)?, erasure_from_row(r)?))).collect()
    }

    /// When the last certificate of `order` expires; `None` when it never had one.
    pub async fn last_certificate_expiry(&self, order: &OrderId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT MAX(not_after) AS last_expiry FROM certificates WHERE order_id = $1")
            .bind(order.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<Option<i64>, _>("last_expiry")?.map(from_millis))
    }

    /// Removes from the blob store the bytes of blobs given up by an erasure and not removed
    /// yet (at most `limit`); returns how many went. A blob whose removal fails stays listed
    /// for the next run.
    pub async fn purge_erased_blobs(&self, now: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM blobs WHERE erased_at IS NOT NULL AND purged_at IS NULL ORDER BY erased_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut purged = 0;
        for id in &ids {
            if let Err(e) = self.blob_store().delete(id).await {
                tracing::warn!(blob = %id, error = %e, "an erased blob could not be removed; tried again next run");
                continue;
            }
            sqlx::query("UPDATE blobs SET purged_at = $1 WHERE id = $2")
                .bind(millis(now))
                .bind(id)
                .execute(self.pool())
                .await?;
            purged += 1;
        }
        Ok(purged)
    }
}

/// Each row's order id and the time in its column `time`.
fn order_times(rows: &[sqlx::any::AnyRow], time: &str) -> Result<Vec<(OrderId, DateTime<Utc>)>, StoreError> {
    rows.iter().map(|r| Ok((order_id(r)?, from_millis(r.try_get(time)?)))).collect()
}

fn order_id(row: &sqlx::any::AnyRow) -> Result<OrderId, StoreError> {
    let id: String = row.try_get("id")?;
    OrderId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("order id {id} is not an order id")))
}

fn erasure_from_row(r: &sqlx::any::AnyRow) -> Result<Erasure, StoreError> {
    Ok(Erasure {
        reason: r.try_get("reason")?,
        kinds: r.try_get("kinds")?,
        blobs: r.try_get("blobs")?,
        erased_at: from_millis(r.try_get("erased_at")?),
        erased_by: r.try_get("erased_by")?,
    })
}
