//! What happens to a personalised key around its order: its PINs, sealed with the
//! PIN-escrow key and delivered by SMS exactly once; its activation (the certificate released
//! from hold, in the same unit of work as the order's change); and the re-publication of the
//! CRL and OCSP answers afterwards. Also what staff and applicant read about it.

use crate::apply::{PIN, PKI_REFRESH};
use crate::{App, AppError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use yiqian_domain::OrderId;
use yiqian_domain::identity::MobileNumber;
use yiqian_providers::ProviderError;
use yiqian_providers::sms::{SmsMessage, SmsTemplate};
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::{PinKind, TokenState};
use yiqian_store::orders::OrderRecord;
use yiqian_token::Pin;
use yiqian_token::escrow::{EscrowKeyPair, EscrowPublicKey, PinRole};

/// A PIN delivery waiting in the outbox. It names the escrow entry, never the PIN.
#[derive(Debug, Serialize, Deserialize)]
struct PinDelivery {
    order: OrderId,
    token: String,
    generation: i64,
    to: MobileNumber,
}

fn pin_context(token: &str, kind: PinKind) -> String {
    format!("pin:{token}:{}", if kind == PinKind::User { "user" } else { "so" })
}

pub(crate) fn transient(e: AppError) -> ProviderError {
    match e {
        AppError::Busy | AppError::Retry | AppError::Unavailable(_) => {
            ProviderError::Transient { provider: "yiqian", detail: e.to_string() }
        }
        AppError::Internal(detail) => ProviderError::Transient { provider: "yiqian", detail },
        other => ProviderError::Rejected { provider: "yiqian", detail: format!("{}: {other}", other.code()) },
    }
}

impl App {
    /// Seals a PIN for escrow.
    pub(crate) fn seal_pin(&self, token: &str, kind: PinKind, pin: &Pin) -> String {
        self.inner.pin_escrow.seal_text(pin.expose(), &pin_context(token, kind))
    }

    /// Opens a PIN from escrow: sealed here by [`App::seal_pin`], or at a personalisation
    /// station to [`App::escrow_public_key`].
    pub(crate) fn open_pin(&self, token: &str, kind: PinKind, sealed: &str) -> Result<Pin, AppError> {
        if EscrowKeyPair::is_sealed_pin(sealed) {
            let role = if kind == PinKind::User { PinRole::User } else { PinRole::So };
            return self
                .inner
                .escrow_pair
                .open(sealed, token, role)
                .map_err(|e| AppError::Internal(format!("escrowed PIN of {token}: {e}")));
        }
        let text = self.inner.pin_escrow.open_text(sealed, &pin_context(token, kind))?;
        Pin::parse(&text).map_err(|e| AppError::Internal(format!("escrowed PIN of {token}: {e}")))
    }

    /// The public key personalisation stations seal the PINs they draw to (HPKE, RFC 9180).
    pub fn escrow_public_key(&self) -> &EscrowPublicKey {
        self.inner.escrow_pair.public_key()
    }

    /// The order's activation effect, within the unit of work that activated it: the
    /// certificate leaves hold, the key becomes active, its PIN is queued for delivery, and the
    /// CRL and OCSP answers are queued for re-publication.
    pub(crate) async fn activate_key(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let missing = |what: &str| AppError::Internal(format!("order {} activated without {what}", rec.order.id));
        let fulfilment = tx.fulfilment(&rec.order.id).await?.ok_or_else(|| missing("a fulfilment record"))?;
        let serial = fulfilment.token_serial.ok_or_else(|| missing("a key"))?;
        let token = tx.token(&serial).await?.ok_or_else(|| missing("a key record"))?;
        self.set_certificate_status(tx, &token.certificate_serial, CertificateStatus::Active, None, "system", now)
            .await?;
        tx.set_token_state(&serial, TokenState::Active, now).await?;
        self.queue_pin_delivery(tx, rec, &serial, now).await?;
        Ok(())
    }

    /// Changes a certificate's status inside a unit of work (with its audit entry) and queues
    /// the CRL/OCSP re-publication.
    pub(crate) async fn set_certificate_status(
        &self,
        tx: &mut Tx,
        serial: &str,
        to: CertificateStatus,
        reason: Option<yiqian_pki::RevocationReason>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let current = tx.certificate_in_tx(serial).await?.ok_or(AppError::NotFound("证书"))?;
        if current == to {
            return Ok(());
        }
        let reason_text = reason.map(|r| r.to_string());
        tx.change_certificate_status(serial, current, to, reason_text.as_deref(), now).await?;
        crate::metrics::certificate_status_changed(to.code());
        let action = match to {
            CertificateStatus::Active => "certificate.released",
            CertificateStatus::Revoked => "certificate.revoked",
            CertificateStatus::Hold => "certificate.held",
        };
        let subject = format!("certificate:{serial}");
        let detail = json!({"from": current.code(), "reason": reason_text});
        tx.audit(NewAuditEntry { actor, action, subject: &subject, detail }, now).await?;
        let key = format!("pki:{serial}:{}", to.code());
        self.queue(tx, PKI_REFRESH, &key, &json!({"serial": serial}), now).await
    }

    /// Queues the SMS that delivers the key's current user PIN from escrow.
    pub(crate) async fn queue_pin_delivery(
        &self,
        tx: &mut Tx,
        rec: &OrderRecord,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let escrowed = tx
            .escrowed_pin(token, PinKind::User)
            .await?
            .ok_or_else(|| AppError::Internal(format!("key {token} has no PIN in escrow")))?;
        let to = self.notification_phone(tx, rec).await?;
        let delivery =
            PinDelivery { order: rec.order.id.clone(), token: token.to_owned(), generation: escrowed.generation, to };
        let payload = serde_json::to_value(&delivery).map_err(|e| AppError::Internal(e.to_string()))?;
        self.queue(tx, PIN, &format!("pin:{token}:{}", escrowed.generation), &payload, now).await
    }

    /// Outbox: sends a PIN from escrow and destroys the escrow copy. The SMS carries the
    /// message's idempotency key, so a retry after a crash between sending and destroying is
    /// not sent twice by the provider; once destroyed, nothing can send it again.
    pub(crate) async fn deliver_pin(&self, payload: &serde_json::Value, key: &str) -> Result<(), ProviderError> {
        let d: PinDelivery = serde_json::from_value(payload.clone()).map_err(|e| ProviderError::Rejected {
            provider: "outbox",
            detail: format!("malformed PIN delivery: {e}"),
        })?;
        let escrowed = async {
            let mut tx = self.store().read().await?;
            Ok::<_, AppError>(tx.escrowed_pin(&d.token, PinKind::User).await?)
        }
        .await
        .map_err(transient)?;
        let sealed = match escrowed {
            Some(e) if e.generation == d.generation => match e.sealed {
                Some(sealed) => sealed,
                // Delivered and destroyed already.
                None => return Ok(()),
            },
            // A newer PIN replaced this one; its own message delivers it.
            _ => return Ok(()),
        };
        let pin = self.open_pin(&d.token, PinKind::User, &sealed).map_err(transient)?;
        let message = SmsMessage {
            to: d.to.clone(),
            template: SmsTemplate::Pin { order: d.order.to_string(), pin: pin.expose().into() },
        };
        self.providers().sms.send(&message, key).await?;
        drop(message);
        self.destroy_escrowed_pin(&d).await.map_err(transient)
    }

    async fn destroy_escrowed_pin(&self, d: &PinDelivery) -> Result<(), AppError> {
        crate::in_tx!(self, |tx| {
            let now = self.now();
            if tx.release_pin(&d.token, PinKind::User, d.generation, now).await? {
                let subject = format!("order:{}", d.order);
                let detail = json!({"token": d.token, "generation": d.generation});
                tx.audit(NewAuditEntry { actor: "system", action: "pin.delivered", subject: &subject, detail }, now)
                    .await?;
            }
            Ok(())
        })
    }

    /// Outbox: re-publishes the CRL and the pre-signed OCSP answer after a status change.
    pub(crate) async fn deliver_pki_refresh(&self, payload: &serde_json::Value) -> Result<(), ProviderError> {
        let serial = payload["serial"].as_str().unwrap_or_default().to_owned();
        self.regenerate_crl().await.map_err(transient)?;
        self.presign_ocsp(&serial).await;
        Ok(())
    }
}
