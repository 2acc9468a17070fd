//! The one place where an order changes: apply a domain command, save the order, record its
//! history and audit entries, and queue the side effects its events call for (SMS, refunds).

use crate::{App, AppError, new_id};
use chrono::{DateTime, Utc};
use serde_json::json;
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::order::ActivationVerdict;
use yiqian_domain::payment::GatewayState;
use yiqian_domain::{ApplicantId, Command, OrderEvent, PaymentId, RefundId, RefundReason, Step};
use yiqian_providers::sms::{SmsMessage, SmsTemplate};
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::orders::OrderRecord;
use yiqian_store::payments::RefundRecord;

/// Who caused a change, as recorded in history and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The applicant, from the pages or the API.
    Applicant(ApplicantId),
    /// A payment gateway's notification.
    Gateway(&'static str),
    /// A member of the CA's staff, by login name.
    Staff(String),
    /// yiqian itself (expiry, scheduled work).
    System,
}

impl Actor {
    /// The label stored in history and audit.
    pub fn label(&self) -> String {
        match self {
            Actor::Applicant(id) => format!("applicant:{id}"),
            Actor::Gateway(name) => format!("gateway:{name}"),
            Actor::Staff(name) => format!("staff:{name}"),
            Actor::System => "system".into(),
        }
    }
}

/// Outbox message kinds.
pub(crate) const SMS: &str = "sms";
pub(crate) const REFUND: &str = "refund";
/// Personalise a key for an approved order.
pub(crate) const PERSONALISE: &str = "personalise";
/// Deliver a PIN from escrow by SMS, once.
pub(crate) const PIN: &str = "pin";
/// Re-publish the CRL and pre-signed OCSP answers after a status change.
pub(crate) const PKI_REFRESH: &str = "pki_refresh";
/// Ask the e-invoicing service for an invoice and follow it until issued.
pub(crate) const INVOICE: &str = "invoice";
/// Close an unpaid trade at its gateway so it can no longer be paid.
pub(crate) const CLOSE_PAYMENT: &str = "close_payment";

impl App {
    /// Applies `command` to the order in `rec` within `tx`. A command that changes nothing
    /// (a replay) writes nothing. Call it as the last step of a unit of work: it appends to
    /// the audit chain, whose head stays locked until commit.
    pub(crate) async fn apply(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        actor: &Actor,
        command: Command,
    ) -> Result<(OrderRecord, Vec<OrderEvent>), AppError> {
        let transition = rec.order.execute(command)?;
        if transition.events.is_empty() {
            return Ok((rec.clone(), transition.events));
        }
        let now = self.now();
        let updated = tx.update_order(&OrderRecord { order: transition.order, ..rec.clone() }, now).await?;
        if updated.order.state != rec.order.state {
            crate::metrics::order_transition(rec.order.state, updated.order.state);
        }
        let label = actor.label();
        tx.append_history(&updated.order, &label, &transition.events, now).await?;
        for event in &transition.events {
            self.queue_effects(tx, &updated, event, now).await?;
        }
        let subject = format!("order:{}", updated.order.id);
        for event in &transition.events {
            let action = format!("order.{}", event.code());
            let mut detail = serde_json::to_value(event).map_err(|e| AppError::Internal(e.to_string()))?;
            detail["state_after"] = json!(updated.order.state.code());
            tx.audit(NewAuditEntry { actor: &label, action: &action, subject: &subject, detail }, now).await?;
        }
        Ok((updated, transition.events))
    }

    /// Queues the closing, at their gateways, of the order's unpaid trades (all of them, or all
    /// but `except`), so none can be paid after the order is closed or paid.
    async fn close_open_trades(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        except: Option<&PaymentId>,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        for p in tx.payments_of(&rec.order.id).await? {
            if p.state == GatewayState::Pending && Some(&p.id) != except {
                let payload = json!({"payment": p.id, "channel": p.channel});
                tx.enqueue(&new_id("OB", 20), CLOSE_PAYMENT, &format!("close:{}", p.id), &payload, now).await?;
                self.wake_outbox();
            }
        }
        Ok(())
    }

    async fn queue_effects(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        event: &OrderEvent,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let order = rec.order.id.to_string();
        let yuan = rec.order.price.yuan();
        let template = match event {
            OrderEvent::Paid { .. } => Some(SmsTemplate::Paid { order }),
            OrderEvent::Submitted => Some(SmsTemplate::Submitted { order }),
            OrderEvent::Approved => {
                tx.insert_fulfilment(&rec.order.id, &new_id("", 24), now).await?;
                Some(SmsTemplate::Approved { order })
            }
            OrderEvent::SentBack { step, reason } => {
                Some(SmsTemplate::SentBack { order, step: step.title().into(), reason: reason.clone() })
            }
            OrderEvent::Rejected { reason } => Some(SmsTemplate::Rejected { order, reason: reason.clone(), yuan }),
            OrderEvent::Shipped { courier, tracking_no } => {
                Some(SmsTemplate::Shipped { order, courier: courier.clone(), tracking_no: tracking_no.clone() })
            }
            OrderEvent::ActivationSubmitted { verdict: ActivationVerdict::NeedsReview } => {
                Some(SmsTemplate::ActivationPending { order })
            }
            OrderEvent::ActivationRejected { reason } => {
                Some(SmsTemplate::ActivationRejected { order, reason: reason.clone() })
            }
            OrderEvent::Activated => {
                self.activate_key(tx, rec, now).await?;
                None
            }
            OrderEvent::RefundRequested { reason } => {
                let payment =
                    rec.order.paid_by.clone().ok_or_else(|| AppError::Internal("refund of an unpaid order".into()))?;
                self.start_refund(tx, rec, &payment, *reason, now).await?;
                // A rejection's own message already says the money goes back.
                (*reason != RefundReason::Rejected).then_some(SmsTemplate::RefundStarted { order, yuan })
            }
            OrderEvent::DuplicatePayment { payment, .. } => {
                self.start_refund(tx, rec, payment, RefundReason::DuplicatePayment, now).await?;
                None
            }
            OrderEvent::Refunded => Some(SmsTemplate::Refunded { order, yuan }),
            OrderEvent::Expired | OrderEvent::Cancelled => {
                self.close_open_trades(tx, rec, None, now).await?;
                None
            }
            _ => None,
        };
        if let OrderEvent::Paid { .. } = event {
            // Other cashiers the applicant opened for this order can no longer be paid.
            self.close_open_trades(tx, rec, rec.order.paid_by.as_ref(), now).await?;
        }
        if let Some(template) = template {
            let key = format!("sms:{}:{}:{}", rec.order.id, event.code(), rec.version);
            self.queue_sms(tx, rec, template, &key, now).await?;
        }
        Ok(())
    }

    /// Queues an SMS to the order's notification phone, once per `key`.
    pub(crate) async fn queue_sms(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        template: SmsTemplate,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let to = self.notification_phone(tx, rec).await?;
        let message =
            serde_json::to_value(SmsMessage { to, template }).map_err(|e| AppError::Internal(e.to_string()))?;
        tx.enqueue(&new_id("OB", 20), SMS, key, &message, now).await?;
        self.wake_outbox();
        Ok(())
    }

    /// Queues any other outbox message and wakes the worker.
    pub(crate) async fn queue(
        &self,
        tx: &mut Tx,
        kind: &str,
        key: &str,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        tx.enqueue(&new_id("OB", 20), kind, key, payload, now).await?;
        self.wake_outbox();
        Ok(())
    }

    /// Records a refund of `payment` and queues the request to the gateway. A payment is
    /// refunded at most once (the store enforces it).
    async fn start_refund(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        payment: &PaymentId,
        reason: RefundReason,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let paid = tx.payment(payment).await?;
        let refund = RefundRecord {
            id: RefundId::parse(&new_id("RF", 20)).expect("generated ids are valid"),
            order: rec.order.id.clone(),
            payment: payment.clone(),
            amount: paid.amount,
            reason,
            state: GatewayState::Pending,
            created_at: now,
        };
        match tx.insert_refund(&refund).await {
            Ok(()) => {}
            // The payment is being refunded already.
            Err(yiqian_store::StoreError::Duplicate) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let payload = json!({
            "refund": refund.id, "payment": payment, "amount": refund.amount, "channel": paid.channel,
            "payment_amount": paid.amount, "reason": reason.words(),
        });
        tx.enqueue(&new_id("OB", 20), REFUND, &format!("refund:{}", refund.id), &payload, now).await?;
        self.wake_outbox();
        Ok(())
    }

    /// Where the order's notifications go: the bound phone once bound, else the login phone.
    pub(crate) async fn notification_phone(&self, tx: &mut Tx, rec: &OrderRecord) -> Result<MobileNumber, AppError> {
        let bound = tx.material(&rec.order.id, Step::Phone.code()).await?;
        match bound.as_ref().and_then(|b| b["phone"].as_str()).map(MobileNumber::parse) {
            Some(Ok(phone)) => Ok(phone),
            _ => Ok(tx.applicant_phone(&rec.applicant).await?),
        }
    }
}
