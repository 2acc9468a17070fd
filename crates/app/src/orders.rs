//! Creating orders, reading them back (status, timeline, checklist) and closing unpaid ones.

use crate::apply::Actor;
use crate::{App, AppError, in_tx, new_id};
use yiqian_domain::{ApplicantId, Command, Order, OrderEvent, OrderId, OrderState, Step};
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::fulfilment::{InvoiceRecord, Shipment};
use yiqian_store::orders::{HistoryEntry, OrderRecord};
use yiqian_store::payments::{PaymentRecord, RefundRecord};

/// Everything the applicant's order page shows.
#[derive(Debug, Clone)]
pub struct OrderView {
    /// The order.
    pub record: OrderRecord,
    /// Its timeline, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Its payments.
    pub payments: Vec<PaymentRecord>,
    /// Its refunds.
    pub refunds: Vec<RefundRecord>,
    /// The step to do next, while materials are open.
    pub next_step: Option<Step>,
    /// Why a step was sent back, while the order is returned.
    pub returned_reason: Option<String>,
    /// Courier and waybill, once shipped.
    pub shipment: Option<Shipment>,
    /// The e-invoice, once requested.
    pub invoice: Option<InvoiceRecord>,
}

impl OrderView {
    /// Whether the refund button applies.
    pub fn can_refund(&self) -> bool {
        self.record.order.state.refund_allowed()
    }

    /// Whether 申请开票 applies: activated and no invoice requested yet.
    pub fn can_request_invoice(&self) -> bool {
        self.invoice.is_none()
            && matches!(self.record.order.state, OrderState::Activated | OrderState::ActivationReview)
    }
}

/// An order in 已购记录: the order, and where its e-invoice is (none requested yet: `None`).
#[derive(Debug, Clone)]
pub struct PurchasedOrder {
    /// The order.
    pub record: OrderRecord,
    /// Its invoice's state, once one was requested.
    pub invoice: Option<yiqian_domain::invoice::InvoiceState>,
}

impl App {
    /// Loads an order of `applicant` inside a unit of work; someone else's order is
    /// "not found", never "forbidden", so order numbers cannot be probed.
    pub(crate) async fn own_order(
        &self,
        tx: &mut Tx,
        applicant: &ApplicantId,
        id: &str,
    ) -> Result<OrderRecord, AppError> {
        let id = OrderId::parse(id).ok_or(AppError::NotFound("订单"))?;
        match tx.load_order(&id).await {
            Ok(rec) if &rec.applicant == applicant => Ok(rec),
            Ok(_) | Err(yiqian_store::StoreError::NotFound(_)) => Err(AppError::NotFound("订单")),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an order after the applicant accepted the agreement (办理). A second tap while
    /// an unpaid order is open returns that order instead of a new one.
    pub async fn create_order(
        &self,
        applicant: &ApplicantId,
        agreement_version: &str,
        accepted: bool,
    ) -> Result<OrderRecord, AppError> {
        let product = &self.config().product;
        if !accepted {
            return Err(AppError::invalid("agreement_not_accepted", "请阅读并勾选同意申请协议"));
        }
        if agreement_version != product.agreement_version {
            return Err(AppError::invalid("agreement_outdated", "申请协议已更新,请重新阅读并同意"));
        }
        let ttl = self.config().pay_ttl;
        in_tx!(self, |tx| {
            let now = self.now();
            if let Some(open) = tx.orders_of(applicant).await?.into_iter().find(|r| {
                r.order.state == OrderState::Created && r.order.pay_deadline > now && r.product_code == product.code
            }) {
                return Ok(open);
            }
            let id = OrderId::parse(&format!("YQ{}{}", now.format("%Y%m%d"), new_id("", 8)))
                .expect("generated ids are valid");
            let record = OrderRecord {
                order: Order::new(id.clone(), product.price, now + ttl),
                applicant: applicant.clone(),
                product_code: product.code.clone(),
                agreement_version: product.agreement_version.clone(),
                agreement_accepted_at: now,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            tx.insert_order(&record).await?;
            let event = OrderEvent::Created { agreement_version: product.agreement_version.clone() };
            let actor = Actor::Applicant(applicant.clone()).label();
            tx.append_history(&record.order, &actor, std::slice::from_ref(&event), now).await?;
            let subject = format!("order:{id}");
            let detail =
                serde_json::json!({"agreement_version": product.agreement_version, "price_fen": product.price});
            tx.audit(NewAuditEntry { actor: &actor, action: "order.created", subject: &subject, detail }, now).await?;
            Ok(record)
        })
    }

    /// The applicant's order with its timeline.
    pub async fn order_view(&self, applicant: &ApplicantId, id: &str) -> Result<OrderView, AppError> {
        let mut tx = self.store().read().await?;
        let record = self.own_order(&mut tx, applicant, id).await?;
        let history = tx.history(&record.order.id).await?;
        let payments = tx.payments_of(&record.order.id).await?;
        let refunds = tx.refunds_of(&record.order.id).await?;
        let next_step = record.order.state.accepts_materials().then(|| record.order.checklist.next_open()).flatten();
        let returned_reason = (record.order.state == OrderState::Returned)
            .then(|| {
                history.iter().rev().find_map(|h| match &h.event {
                    OrderEvent::SentBack { step, reason } => Some(format!("{}:{reason}", step.title())),
                    _ => None,
                })
            })
            .flatten();
        let shipment = tx.fulfilment(&record.order.id).await?.and_then(|f| f.shipment);
        let invoice = tx.invoice(&record.order.id).await?;
        Ok(OrderView { record, history, payments, refunds, next_step, returned_reason, shipment, invoice })
    }

    /// The applicant's orders, newest first (已购记录), each with its e-invoice's state.
    pub async fn list_orders(&self, applicant: &ApplicantId) -> Result<Vec<PurchasedOrder>, AppError> {
        let mut tx = self.store().read().await?;
        let mut out = Vec::new();
        for record in tx.orders_of(applicant).await? {
            let invoice = tx.invoice(&record.order.id).await?.map(|i| i.state);
            out.push(PurchasedOrder { record, invoice });
        }
        Ok(out)
    }

    /// Closes an unpaid order at the applicant's request.
    pub async fn cancel_order(&self, applicant: &ApplicantId, id: &str) -> Result<OrderRecord, AppError> {
        in_tx!(self, |tx| {
            let rec = self.own_order(&mut tx, applicant, id).await?;
            let (rec, _) = self.apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), Command::Cancel).await?;
            Ok(rec)
        })
    }

    /// Cancels every unpaid order past its payment deadline; returns how many.
    pub async fn expire_overdue_orders(&self) -> Result<usize, AppError> {
        let overdue = {
            let mut tx = self.store().read().await?;
            tx.overdue_unpaid_orders(self.now(), 500).await?
        };
        let mut expired = 0;
        for id in overdue {
            let done = in_tx!(self, |tx| {
                let rec = tx.load_order(&id).await?;
                match self.apply(&mut tx, &rec, &Actor::System, Command::Expire { now: self.now() }).await {
                    Ok((_, events)) => Ok(!events.is_empty()),
                    // Paid meanwhile, or not due after all: nothing to do.
                    Err(AppError::Conflict { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            })?;
            expired += usize::from(done);
        }
        Ok(expired)
    }
}
