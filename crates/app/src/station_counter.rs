//! Counter services with the key in hand (柜台业务 at a station): PIN unlock, renewal on the same
//! key and re-issue onto a new key, for an activated order, after the identity check the
//! console asks for (the ID number read off the original card). The station's member of staff
//! must serve the counter.
//!
//! Each is one lease, like a personalisation: [`App::station_counter_start`] checks the
//! identity, keeps the PINs the station drew (sealed to the escrow key) and, for a key that
//! exists, hands the station its SO PIN re-sealed to a one-time key of the station; a renewal
//! or re-issue then has its certificate issued (active at once: the holder is at the counter)
//! through [`App::station_certify`]; [`App::station_complete`] checks the identity again and
//! records the service in one unit of work — the new PIN into escrow and its SMS queued, the
//! superseded certificate revoked, the counter service recorded with the station's name.

use crate::counter::{CounterService, IdentityCheck};
use crate::station::{Completion, Station, key_serial, lease_gone, service_permission};
use crate::{App, AppError, in_tx, new_id};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use yiqian_domain::staff::policy;
use yiqian_pki::{Algorithm, RevocationReason};
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::{PinKind, TokenRecord, TokenState};
use yiqian_store::stations::{LeaseRecord, LeaseService, LeaseState};
use yiqian_token::escrow::{EscrowKeyPair, EscrowPublicKey, PinRole};

/// What a station brings to start a counter service.
#[derive(Debug, Clone, Copy)]
pub struct CounterStart<'a> {
    /// The service.
    pub service: LeaseService,
    /// The identity check made at the counter.
    pub identity: &'a IdentityCheck,
    /// The key in hand: the order's key (unlock, renewal) or a blank one (re-issue).
    pub key_serial: &'a str,
    /// A re-issue's new SO PIN, sealed at the station.
    pub so_pin_sealed: Option<&'a str>,
    /// The new user PIN, sealed at the station.
    pub user_pin_sealed: &'a str,
    /// The station's one-time key, for the key's current SO PIN.
    pub station_key: &'a EscrowPublicKey,
}

/// What the station needs for the key operations.
#[derive(Debug, Clone)]
pub struct CounterStarted {
    /// The lease id.
    pub lease: String,
    /// The key algorithm of a new key pair.
    pub algorithm: Algorithm,
    /// The key's current SO PIN sealed to the station's one-time key (unlock, renewal).
    pub so_pin_sealed: Option<String>,
    /// The key pair now on the key (hex), which a renewal replaces.
    pub key_id: Option<String>,
}

fn check_sealed(sealed: &str) -> Result<(), AppError> {
    if EscrowKeyPair::is_sealed_pin(sealed) && sealed.len() <= 512 {
        Ok(())
    } else {
        Err(AppError::invalid("invalid_sealed_pin", "PIN码须在工作站加密后提交"))
    }
}

fn counter_service(service: LeaseService) -> Result<CounterService, AppError> {
    match service {
        LeaseService::UnlockPin => Ok(CounterService::UnlockPin),
        LeaseService::Renew => Ok(CounterService::Renew),
        LeaseService::Reissue => Ok(CounterService::Reissue),
        LeaseService::Issue => Err(AppError::invalid("invalid_service", "请选择柜台业务")),
    }
}

impl App {
    /// Starts a counter service at a station for an activated order (see the module docs).
    pub async fn station_counter_start(
        &self,
        station: &Station,
        order_id: &str,
        start: &CounterStart<'_>,
    ) -> Result<CounterStarted, AppError> {
        let kind = counter_service(start.service)?;
        station.member.require(service_permission(start.service))?;
        let order = crate::review::parse_order_id(order_id)?;
        let serial = key_serial(start.key_serial)?;
        check_sealed(start.user_pin_sealed)?;
        if start.service == LeaseService::Reissue {
            check_sealed(
                start
                    .so_pin_sealed
                    .ok_or_else(|| AppError::invalid("invalid_sealed_pin", "补办须提交新UKEY的SO PIN"))?,
            )?;
        }
        let actor = station.actor();
        let algorithm = self.config().ca.algorithm;
        let (lease, current) = in_tx!(self, |tx| {
            let now = self.now();
            let rec = crate::review::staff_order(&mut tx, &order).await?;
            Self::require_activated(&rec)?;
            self.check_identity(&mut tx, &order, start.identity).await?;
            let current = self.current_token(&mut tx, &order).await?;
            let so_pin_sealed = match start.service {
                LeaseService::Reissue => {
                    if serial == current.serial {
                        return Err(AppError::invalid("same_key", "补办须插入一个新的空白UKEY"));
                    }
                    if tx.token(serial).await?.is_some() {
                        return Err(AppError::Conflict {
                            code: "key_personalised",
                            message: "此UKEY已有制证记录,补办须使用新的空白UKEY".into(),
                        });
                    }
                    start.so_pin_sealed.unwrap_or_default().to_owned()
                }
                _ => {
                    if serial != current.serial {
                        return Err(AppError::invalid("wrong_key", "插入的UKEY不是该订单的UKEY,请核对UKEY序列号"));
                    }
                    let escrowed = tx.escrowed_pin(serial, PinKind::So).await?.and_then(|e| e.sealed);
                    escrowed.ok_or_else(|| AppError::Internal(format!("key {serial} has no SO PIN in escrow")))?
                }
            };
            let lease = LeaseRecord {
                id: new_id("LS", 20),
                station_id: station.id.clone(),
                service: start.service,
                batch_id: None,
                order: order.clone(),
                token_serial: serial.to_owned(),
                so_pin_sealed,
                user_pin_sealed: start.user_pin_sealed.to_owned(),
                state: LeaseState::Claimed,
                certificate_serial: None,
                outcome: None,
                expires_at: now + Duration::minutes(policy::STATION_LEASE_MINUTES),
                created_at: now,
                updated_at: now,
            };
            tx.insert_lease(&lease).await.map_err(|e| match e {
                yiqian_store::StoreError::Duplicate => AppError::Conflict {
                    code: "order_in_service",
                    message: "该订单或UKEY正在办理其他业务,请稍后再试".into(),
                },
                other => other.into(),
            })?;
            let detail = json!({"station": station.name, "service": kind.code(), "key": serial, "lease": lease.id});
            let subject = format!("order:{order}");
            tx.audit(
                NewAuditEntry { actor: &actor, action: "station.counter_started", subject: &subject, detail },
                now,
            )
            .await?;
            Ok((lease, current))
        })?;
        let so_pin_sealed = match start.service {
            LeaseService::Reissue => None,
            _ => {
                let so_pin = self.open_pin(serial, PinKind::So, &lease.so_pin_sealed)?;
                let sealed = start
                    .station_key
                    .seal(&so_pin, serial, PinRole::So)
                    .map_err(|e| AppError::Internal(format!("re-sealing an SO PIN: {e}")))?;
                Some(sealed)
            }
        };
        Ok(CounterStarted {
            lease: lease.id,
            algorithm,
            so_pin_sealed,
            key_id: (start.service == LeaseService::Renew).then_some(current.key_id),
        })
    }

    /// Records a finished counter lease inside [`App::station_complete`]'s unit of work.
    pub(crate) async fn complete_counter_lease(
        &self,
        tx: &mut Tx,
        station: &Station,
        lease: &LeaseRecord,
        completion: &Completion<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let kind = counter_service(lease.service)?;
        let identity =
            completion.identity.ok_or_else(|| AppError::invalid("identity_mismatch", "缺少柜台身份核验信息"))?;
        let mut record = self.check_identity(tx, &lease.order, identity).await?;
        let rec = tx.load_order(&lease.order).await?;
        Self::require_activated(&rec)?;
        let current = self.current_token(tx, &lease.order).await?;
        let label = station.actor();
        let new_key_id = || {
            completion
                .key_id
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| AppError::invalid("invalid_key_id", "缺少新密钥的标识"))
        };
        let certificate = || lease.certificate_serial.clone().ok_or_else(lease_gone);
        match lease.service {
            LeaseService::UnlockPin => {
                if current.serial != lease.token_serial {
                    return Err(lease_gone());
                }
                tx.escrow_pin(&lease.token_serial, PinKind::User, &lease.user_pin_sealed, now).await?;
                record["key"] = json!(lease.token_serial);
            }
            LeaseService::Renew => {
                if current.serial != lease.token_serial {
                    return Err(lease_gone());
                }
                let certificate = certificate()?;
                self.supersede(tx, &current.certificate_serial, &label, now).await?;
                tx.replace_token_key(&lease.token_serial, &new_key_id()?, &certificate, now).await?;
                tx.escrow_pin(&lease.token_serial, PinKind::User, &lease.user_pin_sealed, now).await?;
                record["certificate"] = json!(certificate);
                record["superseded"] = json!(current.certificate_serial);
            }
            LeaseService::Reissue => {
                let certificate = certificate()?;
                tx.insert_token(&TokenRecord {
                    serial: lease.token_serial.clone(),
                    reader: completion.reader.to_owned(),
                    order: lease.order.clone(),
                    key_id: new_key_id()?,
                    certificate_serial: certificate.clone(),
                    state: TokenState::Active,
                    created_at: now,
                })
                .await?;
                tx.escrow_pin(&lease.token_serial, PinKind::User, &lease.user_pin_sealed, now).await?;
                tx.escrow_pin(&lease.token_serial, PinKind::So, &lease.so_pin_sealed, now).await?;
                tx.set_fulfilment_token(&lease.order, &lease.token_serial, now).await?;
                self.supersede(tx, &current.certificate_serial, &label, now).await?;
                tx.set_token_state(&current.serial, TokenState::Retired, now).await?;
                record["old_key"] = json!(current.serial);
                record["new_key"] = json!(lease.token_serial);
                record["certificate"] = json!(certificate);
            }
            LeaseService::Issue => return Err(AppError::Internal("an issuance lease at the counter".into())),
        }
        self.queue_pin_delivery(tx, &rec, &lease.token_serial, now).await?;
        record["station"] = json!(station.name);
        self.record_counter_service(tx, &station.member, &lease.order, kind, record, now).await?;
        let ready = if lease.service == LeaseService::UnlockPin { LeaseState::Claimed } else { LeaseState::Certified };
        if !tx.advance_lease(&lease.id, ready, LeaseState::Completed, None, Some("completed"), now, now).await? {
            return Err(AppError::Retry);
        }
        Ok(())
    }

    /// Revokes a certificate a counter service replaced (superseded), unless revoked already.
    async fn supersede(&self, tx: &mut Tx, serial: &str, actor: &str, now: DateTime<Utc>) -> Result<(), AppError> {
        if tx.certificate_in_tx(serial).await? != Some(CertificateStatus::Revoked) {
            let reason = Some(RevocationReason::Superseded);
            self.set_certificate_status(tx, serial, CertificateStatus::Revoked, reason, actor, now).await?;
        }
        Ok(())
    }
}
