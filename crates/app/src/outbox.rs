//! The outbox worker: delivers queued side effects (SMS, refund requests, key personalisation,
//! PIN delivery, CRL/OCSP re-publication) with retries and
//! exponential backoff, passing each message's idempotency key to the provider so a retry
//! never sends twice. Also the periodic expiry of unpaid orders.

use crate::apply::{PERSONALISE, PIN, PKI_REFRESH, REFUND, SMS};
use crate::{App, AppError};
use chrono::Duration;
use yiqian_domain::payment::Channel;
use yiqian_domain::{Fen, PaymentId, RefundId};
use yiqian_providers::ProviderError;
use yiqian_providers::payment::RefundRequest;
use yiqian_providers::sms::SmsMessage;
use yiqian_store::outbox::OutboxMessage;

/// Attempts before a message is given up (and left for an operator).
const MAX_DELIVERIES: i64 = 12;
/// How long a worker holds a claimed message before another may retry it.
const LEASE_SECONDS: i64 = 120;

#[derive(serde::Deserialize)]
struct RefundPayload {
    refund: RefundId,
    payment: PaymentId,
    amount: Fen,
    channel: Channel,
}

impl App {
    /// Delivers every message due now; returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, AppError> {
        let mut delivered = 0;
        loop {
            let now = self.now();
            let batch = self.store().claim_outbox(now, now + Duration::seconds(LEASE_SECONDS), 20).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            for message in batch {
                match self.deliver(&message).await {
                    Ok(()) => {
                        self.store().outbox_done(&message.id, self.now()).await?;
                        delivered += 1;
                    }
                    Err(e) => {
                        let retry = (e.is_transient() && message.attempts < MAX_DELIVERIES)
                            .then(|| self.now() + Duration::seconds(2i64.pow(message.attempts.clamp(0, 11) as u32)));
                        tracing::warn!(message = %message.id, kind = %message.kind, attempts = message.attempts, error = %e, gave_up = retry.is_none(), "outbox delivery failed");
                        self.store().outbox_failed(&message.id, &e.to_string(), retry).await?;
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
                let request =
                    RefundRequest { refund: r.refund, payment: r.payment, amount: r.amount, channel: r.channel };
                self.providers().gateway.refund(&request).await
            }
            PERSONALISE => self.deliver_personalisation(&message.payload).await,
            PIN => self.deliver_pin(&message.payload, &message.idempotency_key).await,
            PKI_REFRESH => self.deliver_pki_refresh(&message.payload).await,
            other => {
                Err(ProviderError::Rejected { provider: "outbox", detail: format!("unknown message kind {other}") })
            }
        }
    }

    /// Runs the background work until `shutdown` resolves: outbox delivery (woken at once
    /// when a unit of work queues a message, and every second for retries); every 30
    /// seconds, the expiry of unpaid orders; every 5 minutes, the CRL's and the pre-signed
    /// OCSP responses' refresh before they go stale.
    pub async fn run_workers(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut expiry = tokio::time::interval(std::time::Duration::from_secs(30));
        let mut pki = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "outbox worker");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.outbox_wakeup.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = expiry.tick() => match self.expire_overdue_orders().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "unpaid orders expired"),
                    Err(e) => tracing::error!(error = %e, "order expiry"),
                },
                _ = pki.tick() => {
                    if let Err(e) = self.current_crl().await {
                        tracing::error!(error = %e, "CRL refresh");
                    }
                    if let Err(e) = self.refresh_ocsp().await {
                        tracing::error!(error = %e, "OCSP refresh");
                    }
                }
            }
        }
    }
}
