//! The outbox worker: delivers queued side effects (SMS, refund requests, closing unpaid
//! trades, key personalisation, PIN delivery, e-invoices, CRL/OCSP re-publication) with retries and
//! exponential backoff, passing each message's idempotency key to the provider so a retry
//! never sends twice. Also the periodic expiry of unpaid orders.

use crate::apply::Actor;
use crate::apply::{CLOSE_PAYMENT, INVOICE, PERSONALISE, PIN, PKI_REFRESH, REFUND, SMS};
use crate::schedule::Job;
use crate::{App, AppError, in_tx};
use chrono::Duration;
use yiqian_domain::payment::Channel;
use yiqian_domain::{Fen, PaymentId, RefundId};
use yiqian_providers::ProviderError;
use yiqian_providers::payment::{RefundOutcome, RefundRequest};
use yiqian_providers::sms::SmsMessage;
use yiqian_store::outbox::OutboxMessage;

/// Attempts before a message is given up (and left for an operator).
const MAX_DELIVERIES: i64 = 12;
/// How long a worker holds a claimed message before another may retry it.
const LEASE_SECONDS: i64 = 120;
/// Messages claimed at a time: one, so that a node killed mid-delivery strands only the
/// message it was delivering until its lease runs out, not a batch behind it.
const CLAIM: i64 = 1;

#[derive(serde::Deserialize)]
struct RefundPayload {
    refund: RefundId,
    payment: PaymentId,
    amount: Fen,
    channel: Channel,
    /// Absent in messages queued before it was recorded: refunds are whole, so the amount.
    #[serde(default)]
    payment_amount: Option<Fen>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct ClosePayload {
    payment: PaymentId,
    channel: Channel,
}

impl App {
    /// Delivers every message due now; returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, AppError> {
        let mut delivered = 0;
        loop {
            let now = self.now();
            let batch = self.store().claim_outbox(now, now + Duration::seconds(LEASE_SECONDS), CLAIM).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            for message in batch {
                self.worker_seen();
                match self.deliver(&message).await {
                    Ok(()) => {
                        self.store().outbox_done(&message.id, self.now()).await?;
                        crate::metrics::outbox_delivery(&message.kind, "delivered");
                        delivered += 1;
                    }
                    Err(e) => {
                        let retry = (e.is_transient() && message.attempts < MAX_DELIVERIES)
                            .then(|| self.now() + Duration::seconds(2i64.pow(message.attempts.clamp(0, 11) as u32)));
                        tracing::warn!(message = %message.id, kind = %message.kind, attempts = message.attempts, error = %e, gave_up = retry.is_none(), "outbox delivery failed");
                        self.store().outbox_failed(&message.id, &e.to_string(), retry).await?;
                        crate::metrics::outbox_delivery(
                            &message.kind,
                            if retry.is_some() { "retrying" } else { "dead" },
                        );
                    }
                }
            }
        }
    }

    async fn deliver(&self, message: &OutboxMessage) -> Result<(), ProviderError> {
        let malformed = |e: serde_json::Error| ProviderError::Rejected {
            provider: "outbox",
            detail: format!("malformed payload: {e}"),
        };
        match message.kind.as_str() {
            SMS => {
                let sms: SmsMessage = serde_json::from_value(message.payload.clone()).map_err(malformed)?;
                self.providers().sms.send(&sms, &message.idempotency_key).await
            }
            REFUND => {
                let r: RefundPayload = serde_json::from_value(message.payload.clone()).map_err(malformed)?;
                self.deliver_refund(r).await
            }
            PERSONALISE => self.deliver_personalisation(&message.payload).await,
            PIN => self.deliver_pin(&message.payload, &message.idempotency_key).await,
            PKI_REFRESH => self.deliver_pki_refresh(&message.payload).await,
            INVOICE => self.deliver_invoice(&message.payload).await,
            CLOSE_PAYMENT => {
                let c: ClosePayload = serde_json::from_value(message.payload.clone()).map_err(malformed)?;
                self.providers().payments.for_channel(c.channel).close_payment(&c.payment).await
            }
            other => {
                Err(ProviderError::Rejected { provider: "outbox", detail: format!("unknown message kind {other}") })
            }
        }
    }

    /// Asks the channel's gateway for a refund; a gateway that settles at once (Alipay) is
    /// confirmed here, the others by their notification.
    async fn deliver_refund(&self, r: RefundPayload) -> Result<(), ProviderError> {
        let request = RefundRequest {
            refund: r.refund,
            payment: r.payment,
            amount: r.amount,
            payment_amount: r.payment_amount.unwrap_or(r.amount),
            channel: r.channel,
            reason: r.reason.unwrap_or_else(|| "订单退款".into()),
        };
        let gateway = self.providers().payments.for_channel(r.channel).clone();
        let outcome = gateway.refund(&request).await?;
        crate::metrics::refund(gateway.name(), "requested");
        match outcome {
            RefundOutcome::Pending => Ok(()),
            RefundOutcome::Succeeded { .. } => {
                let actor = Actor::Gateway(gateway.name());
                let refund = request.refund.clone();
                let confirm = async { in_tx!(self, |tx| self.confirm_refund_in(&mut tx, &refund, &actor).await) };
                let confirmed: Result<bool, AppError> = confirm.await;
                if let Ok(true) = confirmed {
                    crate::metrics::refund(gateway.name(), "succeeded");
                }
                confirmed.map(|_| ()).map_err(|e| ProviderError::Transient {
                    provider: "outbox",
                    detail: format!("refund settled at the gateway but not recorded yet: {e}"),
                })
            }
        }
    }

    /// Runs the background work until `shutdown` resolves: outbox delivery (woken at once
    /// when a unit of work queues a message, and every second for retries); every 30
    /// seconds, the expiry of unpaid orders; every 5 minutes, the CRL's refresh, the
    /// reconciliation of the previous day's payments once it is due, the deletion of personal
    /// data past its retention (once an hour), and this node's pre-signed OCSP responses'
    /// refresh before they go stale. The first four are shared jobs
    /// ([`crate::schedule`]): they run once per period across the deployment's nodes.
    pub async fn run_workers(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut expiry = tokio::time::interval(std::time::Duration::from_secs(30));
        let mut pki = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            self.worker_seen();
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "outbox worker");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.outbox_wakeup.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = expiry.tick() => self.run_job_logged(Job::ExpireUnpaid).await,
                _ = pki.tick() => {
                    self.run_job_logged(Job::Reconciliation).await;
                    self.run_job_logged(Job::CrlRefresh).await;
                    self.run_job_logged(Job::Retention).await;
                    if let Err(e) = self.refresh_ocsp().await {
                        tracing::error!(error = %e, "OCSP refresh");
                    }
                }
            }
        }
    }
}
