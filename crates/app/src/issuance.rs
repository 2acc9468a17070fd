//! Issuance onto the key (制证): for an approved order, a blank key is initialised with a
//! random SO PIN, given a random 8-digit user PIN, a key pair is generated on it, the CSR is
//! signed on it, the certificate is issued on hold and written back to it with the CA chain
//! (issuing CA, root). The PINs go into
//! escrow, sealed with the PIN-escrow key, and nobody sees them. Fulfilment staff start
//! batches; each order is personalised by the outbox worker, so a batch survives a restart
//! and its progress can be watched.

use crate::apply::{Actor, PERSONALISE};
use crate::authority::IssueRequest;
use crate::fulfilment::transient;
use crate::review::staff_order;
use crate::staff::StaffMember;
use crate::{App, AppError, in_tx, new_id};
use chrono::{DateTime, Utc};
use serde_json::json;
use yiqian_domain::staff::Permission;
use yiqian_domain::{Command, OrderId, OrderState, Step};
use yiqian_pki::RevocationReason;
use yiqian_providers::ProviderError;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::CertificateRecord;
use yiqian_store::fulfilment::{BatchRecord, PersonalisedAt, PinKind, TokenRecord, TokenState};
use yiqian_token::{Pin, TokenError};

/// Digits of the user PIN.
pub const USER_PIN_DIGITS: usize = 8;
/// Digits of the SO PIN.
pub const SO_PIN_DIGITS: usize = 16;
/// Most orders in one batch.
pub const MAX_BATCH: usize = 200;

/// Where one order of a batch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchItemState {
    /// Waiting for the worker.
    Queued,
    /// Personalised (or further along).
    Done,
    /// Failed; the message says why. Failed items can be started again in a new batch.
    Failed(String),
    /// The order left the approved state another way (e.g. refunded).
    Skipped,
    /// A personalisation station (named) is making its key now.
    AtStation(String),
}

/// A batch and its progress.
#[derive(Debug, Clone)]
pub struct BatchProgress {
    /// The batch id.
    pub id: String,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Each order and where it is.
    pub items: Vec<(OrderId, BatchItemState)>,
    /// Where its keys are personalised.
    pub personalised_at: PersonalisedAt,
}

impl BatchProgress {
    /// Orders finished (done, failed or skipped).
    pub fn finished(&self) -> usize {
        self.items.iter().filter(|(_, s)| !matches!(s, BatchItemState::Queued | BatchItemState::AtStation(_))).count()
    }

    /// Whether every order is finished.
    pub fn is_complete(&self) -> bool {
        self.finished() == self.items.len()
    }
}

/// What a finished personalisation produced, before it is recorded.
pub(crate) struct Personalised {
    pub token: TokenRecord,
    pub user_pin: Pin,
    pub so_pin: Pin,
}

fn token_failure(e: TokenError) -> AppError {
    match e {
        TokenError::NotPresent(_) | TokenError::Io(_) => AppError::Unavailable(format!("key reader: {e}")),
        other => AppError::Internal(format!("key personalisation: {other}")),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TokenError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("key personalisation task: {e}")))?
        .map_err(token_failure)
}

impl App {
    /// Starts personalising keys for approved orders, by the server's key reader or at a
    /// personalisation station; returns the batch id.
    pub async fn start_issuance_batch(
        &self,
        staff: &StaffMember,
        orders: &[String],
        at: PersonalisedAt,
    ) -> Result<String, AppError> {
        staff.require(Permission::IssueTokens)?;
        if orders.is_empty() {
            return Err(AppError::invalid("batch_empty", "请选择要制证的订单"));
        }
        if orders.len() > MAX_BATCH {
            return Err(AppError::invalid("batch_too_large", format!("一批最多{MAX_BATCH}个订单")));
        }
        let mut ids = Vec::with_capacity(orders.len());
        for o in orders {
            let id = crate::review::parse_order_id(o)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let batch = new_id("BT", 16);
        let actor = staff.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            for id in &ids {
                let rec = staff_order(&mut tx, id).await?;
                if rec.order.state != OrderState::Approved {
                    return Err(AppError::Conflict {
                        code: "not_approved",
                        message: format!("订单{id}当前状态为“{}”,不能制证", rec.order.state.applicant_word()),
                    });
                }
                if at == PersonalisedAt::Server {
                    let payload = json!({"order": id, "batch": batch, "actor": actor});
                    // A new key for a new attempt; a repeat within the batch is one message.
                    self.queue(&mut tx, PERSONALISE, &format!("personalise:{id}:{batch}"), &payload, now).await?;
                }
            }
            let record = BatchRecord {
                id: batch.clone(),
                created_by: actor.clone(),
                orders: ids.clone(),
                created_at: now,
                personalised_at: at,
            };
            tx.insert_batch(&record).await?;
            let detail = json!({"orders": ids.len(), "at": at.code()});
            tx.audit(
                NewAuditEntry {
                    actor: &actor,
                    action: "issuance.batch_started",
                    subject: &format!("batch:{batch}"),
                    detail,
                },
                now,
            )
            .await?;
            Ok(())
        })?;
        Ok(batch)
    }

    /// A batch's progress.
    pub async fn batch_progress(&self, staff: &StaffMember, batch: &str) -> Result<BatchProgress, AppError> {
        staff.require(Permission::IssueTokens)?;
        let mut tx = self.store().read().await?;
        let record = tx.batch(batch).await?.ok_or(AppError::NotFound("批次"))?;
        let leases = tx.leases_of_batch(batch).await?;
        let mut items = Vec::with_capacity(record.orders.len());
        for id in record.orders {
            let state = tx.load_order(&id).await?.order.state;
            let live = leases.iter().find(|l| l.order == id && l.state.is_live());
            let item = match state {
                OrderState::Approved if record.personalised_at == PersonalisedAt::Station => match live {
                    Some(lease) => {
                        let name = tx.station(&lease.station_id).await?.map(|s| s.name).unwrap_or_default();
                        BatchItemState::AtStation(name)
                    }
                    None => BatchItemState::Queued,
                },
                OrderState::Approved => match self.store().outbox_status(&format!("personalise:{id}:{batch}")).await? {
                    Some((s, _, error)) if s == "dead" => {
                        BatchItemState::Failed(error.unwrap_or_else(|| "制证失败".into()))
                    }
                    Some((s, _, _)) if s == "done" => BatchItemState::Skipped,
                    _ => BatchItemState::Queued,
                },
                OrderState::Issued | OrderState::Shipped | OrderState::ActivationReview | OrderState::Activated => {
                    BatchItemState::Done
                }
                _ => BatchItemState::Skipped,
            };
            items.push((id, item));
        }
        Ok(BatchProgress {
            id: record.id,
            created_by: record.created_by,
            created_at: record.created_at,
            items,
            personalised_at: record.personalised_at,
        })
    }

    /// Outbox: personalises the key of one approved order.
    pub(crate) async fn deliver_personalisation(&self, payload: &serde_json::Value) -> Result<(), ProviderError> {
        let order = payload["order"].as_str().and_then(OrderId::parse).ok_or_else(|| ProviderError::Rejected {
            provider: "outbox",
            detail: "personalisation without an order".into(),
        })?;
        let actor = payload["actor"].as_str().unwrap_or("system").to_owned();
        let result = self.personalise_order(&order, &actor).await;
        match &result {
            Ok(true) => crate::metrics::personalisation("server", "done"),
            Ok(false) => {}
            Err(_) => crate::metrics::personalisation("server", "failed"),
        }
        result.map(|_| ()).map_err(transient)
    }

    /// Personalises the key of an approved order; `false` when there was nothing to do (done
    /// already, or the order went another way).
    async fn personalise_order(&self, order: &OrderId, actor: &str) -> Result<bool, AppError> {
        let (rec, card) = {
            let mut tx = self.store().read().await?;
            let rec = tx.load_order(order).await?;
            if rec.order.state != OrderState::Approved {
                // Done already, or the order went another way.
                return Ok(false);
            }
            let card = tx
                .material(order, Step::IdCard.code())
                .await?
                .ok_or_else(|| AppError::Internal(format!("approved order {order} has no ID card")))?;
            (rec, card)
        };
        let name = card["card"]["name"].as_str().unwrap_or_default().to_owned();
        let id_number = card["card"]["id_number"].as_str().unwrap_or_default().to_owned();
        let made = self.personalise_key(order, &name, &id_number, true, actor).await?;
        let cert = made.token.certificate_serial.clone();
        let recorded = in_tx!(self, |tx| {
            let now = self.now();
            let rec = tx.load_order(&rec.order.id).await?;
            self.record_key(&mut tx, &made, now).await?;
            tx.set_fulfilment_token(order, &made.token.serial, now).await?;
            self.apply(
                &mut tx,
                &rec,
                &Actor::Staff(actor.trim_start_matches("staff:").to_owned()),
                Command::MarkIssued,
            )
            .await?;
            Ok(())
        });
        if let Err(e) = recorded {
            // The certificate names a key nobody will receive.
            let _ = self.revoke_certificate(&cert, RevocationReason::Superseded, "system").await;
            return Err(e);
        }
        Ok(true)
    }

    /// Personalises a blank key: PINs, key pair, CSR on the key, certificate (on hold when
    /// `hold`) written back. Nothing is recorded yet; see [`App::record_key`].
    pub(crate) async fn personalise_key(
        &self,
        order: &OrderId,
        name: &str,
        id_number: &str,
        hold: bool,
        actor: &str,
    ) -> Result<Personalised, AppError> {
        let reader = self.providers().tokens.clone();
        let algorithm = self.config().ca.algorithm;
        let user_pin = Pin::random(USER_PIN_DIGITS);
        let so_pin = Pin::random(SO_PIN_DIGITS);
        let key_id = rand::random::<[u8; 8]>().to_vec();
        let subject = yiqian_pki::personal_subject(name)
            .map_err(|e| AppError::Internal(format!("certificate subject for {order}: {e}")))?;
        let label = order.to_string();
        let (serial, csr) = {
            let (user_pin, so_pin, key_id) = (user_pin.clone(), so_pin.clone(), key_id.clone());
            blocking(move || {
                let mut token = reader.blank_token()?;
                token.initialise(None, &so_pin, &label)?;
                token.init_user_pin(&so_pin, &user_pin)?;
                token.generate_key_pair(&user_pin, algorithm, &key_id)?;
                let signer = token.signer(&user_pin, &key_id)?;
                let csr = yiqian_pki::build_csr(&subject, signer.as_ref())?;
                Ok((token.info()?.serial, csr))
            })
            .await?
        };
        let certificate: CertificateRecord = self
            .issue_certificate(&IssueRequest {
                csr,
                csr_common_name: None,
                name: Some(name.to_owned()),
                id_number: id_number.to_owned(),
                hold,
                order: Some(order.to_string()),
                actor: actor.to_owned(),
            })
            .await?;
        let reader = self.providers().tokens.clone();
        let chain = match self.issuing_ca().await {
            Ok(ca) => vec![ca.certificate_der.clone(), ca.root_der.clone()],
            Err(e) => {
                let _ = self.revoke_certificate(&certificate.serial, RevocationReason::Superseded, "system").await;
                return Err(e);
            }
        };
        let written = {
            let (user_pin, key_id, serial, der) =
                (user_pin.clone(), key_id.clone(), serial.clone(), certificate.der.clone());
            blocking(move || {
                let mut token = reader.open(&serial)?;
                token.write_certificate(&user_pin, &key_id, &der)?;
                token.write_ca_certificates(&user_pin, &chain)
            })
            .await
        };
        if let Err(e) = written {
            let _ = self.revoke_certificate(&certificate.serial, RevocationReason::Superseded, "system").await;
            return Err(e);
        }
        Ok(Personalised {
            token: TokenRecord {
                serial,
                reader: self.providers().tokens.name().to_owned(),
                order: order.clone(),
                key_id: hex::encode(&key_id),
                certificate_serial: certificate.serial,
                state: TokenState::Personalised,
                created_at: self.now(),
            },
            user_pin,
            so_pin,
        })
    }

    /// Records a personalised key and puts its PINs in escrow.
    pub(crate) async fn record_key(
        &self,
        tx: &mut yiqian_store::Tx,
        made: &Personalised,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        tx.insert_token(&made.token).await?;
        let serial = &made.token.serial;
        tx.escrow_pin(serial, PinKind::User, &self.seal_pin(serial, PinKind::User, &made.user_pin), now).await?;
        tx.escrow_pin(serial, PinKind::So, &self.seal_pin(serial, PinKind::So, &made.so_pin), now).await?;
        let detail = json!({"reader": made.token.reader, "certificate": made.token.certificate_serial});
        tx.audit(
            NewAuditEntry {
                actor: "system",
                action: "token.personalised",
                subject: &format!("order:{}", made.token.order),
                detail,
            },
            now,
        )
        .await?;
        Ok(())
    }
}
