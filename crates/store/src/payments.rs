//! Payments and refunds as sent to the gateway, and the gateway notifications already
//! accepted (so that replays are recognised).

use crate::{StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use yiqian_domain::payment::{Channel, GatewayState};
use yiqian_domain::{Fen, OrderId, PaymentId, RefundId, RefundReason};

/// A payment we asked the gateway for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Our out-trade-number.
    pub id: PaymentId,
    /// The order paid for.
    pub order: OrderId,
    /// WeChat Pay or Alipay.
    pub channel: Channel,
    /// The amount asked for.
    pub amount: Fen,
    /// Where it is at the gateway.
    pub state: GatewayState,
    /// The gateway's transaction id, once confirmed.
    pub gateway_txn: Option<String>,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// A refund we asked the gateway for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// Our out-refund-number.
    pub id: RefundId,
    /// The order refunded.
    pub order: OrderId,
    /// The payment refunded (at most one refund per payment).
    pub payment: PaymentId,
    /// The amount.
    pub amount: Fen,
    /// Why.
    pub reason: RefundReason,
    /// Where it is at the gateway.
    pub state: GatewayState,
    /// When created.
    pub created_at: DateTime<Utc>,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("payment column {what} holds an unknown value"))
}

fn fen(v: i64) -> Result<Fen, StoreError> {
    u64::try_from(v).map(Fen).map_err(|_| corrupt("amount"))
}

fn payment_from_row(r: &AnyRow) -> Result<PaymentRecord, StoreError> {
    let id: String = r.try_get("id")?;
    let order: String = r.try_get("order_id")?;
    let channel: String = r.try_get("channel")?;
    let state: String = r.try_get("state")?;
    Ok(PaymentRecord {
        id: PaymentId::parse(&id).ok_or_else(|| corrupt("id"))?,
        order: OrderId::parse(&order).ok_or_else(|| corrupt("order_id"))?,
        channel: Channel::from_code(&channel).ok_or_else(|| corrupt("channel"))?,
        amount: fen(r.try_get("amount_fen")?)?,
        state: GatewayState::from_code(&state).ok_or_else(|| corrupt("state"))?,
        gateway_txn: r.try_get("gateway_txn")?,
        created_at: from_millis(r.try_get("created_at")?),
    })
}

fn refund_from_row(r: &AnyRow) -> Result<RefundRecord, StoreError> {
    let id: String = r.try_get("id")?;
    let order: String = r.try_get("order_id")?;
    let payment: String = r.try_get("payment_id")?;
    let reason: String = r.try_get("reason")?;
    let state: String = r.try_get("state")?;
    Ok(RefundRecord {
        id: RefundId::parse(&id).ok_or_else(|| corrupt("id"))?,
        order: OrderId::parse(&order).ok_or_else(|| corrupt("order_id"))?,
        payment: PaymentId::parse(&payment).ok_or_else(|| corrupt("payment_id"))?,
        amount: fen(r.try_get("amount_fen")?)?,
        reason: RefundReason::from_code(&reason).ok_or_else(|| corrupt("reason"))?,
        state: GatewayState::from_code(&state).ok_or_else(|| corrupt("state"))?,
        created_at: from_millis(r.try_get("created_at")?),
    })
}

impl Tx {
    /// Records a payment sent to the gateway.
    pub async fn insert_payment(&mut self, p: &PaymentRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payments (id, order_id, channel, amount_fen, state, gateway_txn, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(p.id.as_str())
        .bind(p.order.as_str())
        .bind(p.channel.code())
        .bind(p.amount.0 as i64)
        .bind(p.state.code())
        .bind(p.gateway_txn.clone())
        .bind(millis(p.created_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Loads a payment, or `NotFound`.
    pub async fn payment(&mut self, id: &PaymentId) -> Result<PaymentRecord, StoreError> {
        let r = sqlx::query("SELECT * FROM payments WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound("payment"))?;
        payment_from_row(&r)
    }

    /// The payments started in `[from, to)`, oldest first (for reconciliation).
    pub async fn payments_created_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM payments WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id")
                .bind(millis(from))
                .bind(millis(to))
                .fetch_all(self.conn())
                .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// The payments of an order, oldest first.
    pub async fn payments_of(&mut self, order: &OrderId) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM payments WHERE order_id = $1 ORDER BY created_at, id")
            .bind(order.as_str())
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Marks a payment confirmed by the gateway, once; `Conflict` if it already was.
    pub async fn confirm_payment(
        &mut self,
        id: &PaymentId,
        gateway_txn: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE payments SET state = $1, gateway_txn = $2, succeeded_at = $3 WHERE id = $4 AND state = $5",
        )
        .bind(GatewayState::Succeeded.code())
        .bind(gateway_txn)
        .bind(millis(now))
        .bind(id.as_str())
        .bind(GatewayState::Pending.code())
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Records a refund; `Duplicate` if the payment already has one (the unit of work stays
    /// usable: the conflict is absorbed, not raised, by the database).
    pub async fn insert_refund(&mut self, r: &RefundRecord) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO refunds (id, order_id, payment_id, amount_fen, reason, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (payment_id) DO NOTHING",
        )
        .bind(r.id.as_str())
        .bind(r.order.as_str())
        .bind(r.payment.as_str())
        .bind(r.amount.0 as i64)
        .bind(r.reason.code())
        .bind(r.state.code())
        .bind(millis(r.created_at))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Duplicate) }
    }

    /// Loads a refund, or `NotFound`.
    pub async fn refund(&mut self, id: &RefundId) -> Result<RefundRecord, StoreError> {
        let r = sqlx::query("SELECT * FROM refunds WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound("refund"))?;
        refund_from_row(&r)
    }

    /// The refunds of an order, oldest first.
    pub async fn refunds_of(&mut self, order: &OrderId) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM refunds WHERE order_id = $1 ORDER BY created_at, id")
            .bind(order.as_str())
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(refund_from_row).collect()
    }

    /// Marks a refund confirmed by the gateway, once; `Conflict` if it already was.
    pub async fn confirm_refund(&mut self, id: &RefundId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE refunds SET state = $1, succeeded_at = $2 WHERE id = $3 AND state = $4")
            .bind(GatewayState::Succeeded.code())
            .bind(millis(now))
            .bind(id.as_str())
            .bind(GatewayState::Pending.code())
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Remembers a gateway notification id; `Duplicate` if it was seen before (a replay).
    /// A concurrent copy waits for the first and then reads as a duplicate; the unit of work
    /// stays usable either way.
    pub async fn record_notification(&mut self, id: &str, kind: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO gateway_notifications (id, kind, received_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Duplicate) }
    }
}
