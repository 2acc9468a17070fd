//! After-sales at the counter (柜台业务, PRODUCT.md §4): finding the applicant's order, and
//! revocation, re-issue onto a new key, renewal, PIN unlock and activation in person. Each
//! starts with an identity check — the staff member reads the ID number off the original
//! card, which must match the order's — and is recorded (sealed) with the check.

use crate::apply::Actor;
use crate::issuance::{Personalised, USER_PIN_DIGITS};
use crate::review::{Dossier, parse_order_id, staff_order};
use crate::staff::StaffMember;
use crate::{App, AppError, in_tx, new_id};
use chrono::{DateTime, Utc};
use serde_json::json;
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::staff::Permission;
use yiqian_domain::{Command, OrderId, OrderState, Step};
use yiqian_pki::RevocationReason;
use yiqian_providers::sms::SmsTemplate;
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::{CertificateStatus, StatusStamp};
use yiqian_store::fulfilment::{CounterServiceRecord, PinKind, TokenRecord, TokenState};
use yiqian_store::orders::OrderRecord;
use yiqian_token::Pin;

/// An order as the counter sees it: the dossier, and where each of its keys' certificates
/// stands (the certificate's status is not part of the dossier).
#[derive(Debug, Clone)]
pub struct CounterOrder {
    /// Everything about the order.
    pub dossier: Dossier,
    /// The status of the certificate of each key in `dossier.tokens`, by certificate serial.
    pub certificates: Vec<(String, Option<StatusStamp>)>,
}

/// How the applicant proved who they are at the counter.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct IdentityCheck {
    /// The ID number read off the original card.
    pub id_number: String,
    /// What was checked, e.g. `居民身份证原件`.
    pub document: String,
    /// Anything else worth keeping.
    #[serde(default)]
    pub note: String,
}

/// The after-sales services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterService {
    /// 注销: revoke the certificate for good.
    Revoke,
    /// 补办: a new key and certificate; the old ones are revoked.
    Reissue,
    /// 续期: a new key pair and certificate on the same key, with a new PIN.
    Renew,
    /// 解锁: a new PIN set with the SO PIN.
    UnlockPin,
    /// 柜台激活: activation after an identity check in person.
    Activate,
}

impl CounterService {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            CounterService::Revoke => "revoke",
            CounterService::Reissue => "reissue",
            CounterService::Renew => "renew",
            CounterService::UnlockPin => "unlock_pin",
            CounterService::Activate => "activate",
        }
    }

    /// The service's name at the counter.
    pub fn title(self) -> &'static str {
        match self {
            CounterService::Revoke => "证书注销",
            CounterService::Reissue => "证书补办(新UKEY)",
            CounterService::Renew => "证书续期",
            CounterService::UnlockPin => "PIN码解锁",
            CounterService::Activate => "柜台激活",
        }
    }
}

fn token_error(e: yiqian_token::TokenError) -> AppError {
    AppError::Internal(format!("key at the counter: {e}"))
}

impl App {
    /// Finds orders by order number, the applicant's phone number or ID number.
    pub async fn counter_search(&self, staff: &StaffMember, query: &str) -> Result<Vec<OrderRecord>, AppError> {
        staff.require(Permission::CounterService)?;
        let q = query.trim();
        let mut tx = self.store().read().await?;
        if let Some(id) = OrderId::parse(q)
            && let Ok(rec) = tx.load_order(&id).await
        {
            return Ok(vec![rec]);
        }
        if let Ok(phone) = MobileNumber::parse(q) {
            return Ok(match tx.applicant_with_phone(&phone).await? {
                Some(applicant) => tx.orders_of(&applicant).await?,
                None => Vec::new(),
            });
        }
        if q.len() == 18 {
            let hash = self.store().vault().lookup_hash("resident-id", &q.to_ascii_uppercase());
            let none = OrderId::parse("YQ0").expect("a valid order id");
            let mut found = Vec::new();
            for id in tx.live_orders_with_id_number(&hash, &none).await? {
                found.push(tx.load_order(&id).await?);
            }
            return Ok(found);
        }
        Err(AppError::invalid("invalid_query", "请输入订单号、手机号或身份证号"))
    }

    /// The order for the counter's page: its dossier (the reading is audited) and the status
    /// of its keys' certificates.
    pub async fn counter_order(&self, staff: &StaffMember, order_id: &str) -> Result<CounterOrder, AppError> {
        staff.require(Permission::CounterService)?;
        let dossier = self.dossier(staff, order_id).await?;
        let mut certificates = Vec::with_capacity(dossier.tokens.len());
        for t in &dossier.tokens {
            certificates
                .push((t.certificate_serial.clone(), self.store().certificate_status(&t.certificate_serial).await?));
        }
        Ok(CounterOrder { dossier, certificates })
    }

    /// Checks the ID number read at the counter against the order's; returns what is kept.
    pub(crate) async fn check_identity(
        &self,
        tx: &mut Tx,
        order: &OrderId,
        check: &IdentityCheck,
    ) -> Result<serde_json::Value, AppError> {
        let card = tx.material(order, Step::IdCard.code()).await?.ok_or(AppError::NotFound("订单"))?;
        let on_file = card["card"]["id_number"].as_str().unwrap_or_default();
        let typed = check.id_number.trim().to_ascii_uppercase();
        if typed.is_empty() || typed != on_file {
            return Err(AppError::invalid("identity_mismatch", "身份证号码与订单申请人不一致,不能办理"));
        }
        let document = if check.document.trim().is_empty() { "居民身份证原件" } else { check.document.trim() };
        Ok(json!({
            "document": document,
            "id_number": format!("{}**********{}", &typed[..4], &typed[14..]),
            "matched": true,
            "note": check.note.trim(),
        }))
    }

    pub(crate) async fn record_counter_service(
        &self,
        tx: &mut Tx,
        staff: &StaffMember,
        order: &OrderId,
        service: CounterService,
        record: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let label = staff.actor().label();
        tx.insert_counter_service(&CounterServiceRecord {
            id: new_id("CS", 20),
            order: order.clone(),
            kind: service.code().into(),
            staff: label.clone(),
            record,
            created_at: now,
        })
        .await?;
        tx.audit(
            NewAuditEntry {
                actor: &label,
                action: &format!("counter.{}", service.code()),
                subject: &format!("order:{order}"),
                detail: json!({"identity_checked": true}),
            },
            now,
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn current_token(&self, tx: &mut Tx, order: &OrderId) -> Result<TokenRecord, AppError> {
        let f = tx.fulfilment(order).await?.ok_or(AppError::NotFound("UKEY"))?;
        let serial = f.token_serial.ok_or(AppError::NotFound("UKEY"))?;
        tx.token(&serial).await?.ok_or(AppError::NotFound("UKEY"))
    }

    pub(crate) fn require_activated(rec: &OrderRecord) -> Result<(), AppError> {
        if rec.order.state == OrderState::Activated {
            Ok(())
        } else {
            Err(AppError::Conflict {
                code: "not_activated",
                message: format!("订单当前状态为“{}”,激活后才能办理此业务", rec.order.state.applicant_word()),
            })
        }
    }

    async fn load_for_counter(
        &self,
        staff: &StaffMember,
        order_id: &str,
    ) -> Result<(OrderRecord, TokenRecord), AppError> {
        staff.require(Permission::CounterService)?;
        let id = parse_order_id(order_id)?;
        let mut tx = self.store().read().await?;
        let rec = staff_order(&mut tx, &id).await?;
        let token = self.current_token(&mut tx, &id).await?;
        Ok((rec, token))
    }

    /// Revokes the order's certificate for good (注销); the key is retired.
    pub async fn counter_revoke(
        &self,
        staff: &StaffMember,
        order_id: &str,
        check: &IdentityCheck,
        reason: &str,
    ) -> Result<(), AppError> {
        let (rec, token) = self.load_for_counter(staff, order_id).await?;
        let reason: RevocationReason =
            reason.parse().map_err(|_| AppError::invalid("invalid_reason", "请选择注销原因"))?;
        if matches!(reason, RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl) {
            return Err(AppError::invalid("invalid_reason", "请选择注销原因"));
        }
        let label = staff.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            let mut record = self.check_identity(&mut tx, &rec.order.id, check).await?;
            if tx.certificate_in_tx(&token.certificate_serial).await? == Some(CertificateStatus::Revoked) {
                return Err(AppError::Conflict { code: "already_revoked", message: "该证书已注销".into() });
            }
            self.set_certificate_status(
                &mut tx,
                &token.certificate_serial,
                CertificateStatus::Revoked,
                Some(reason),
                &label,
                now,
            )
            .await?;
            tx.set_token_state(&token.serial, TokenState::Retired, now).await?;
            record["certificate"] = json!(token.certificate_serial);
            record["reason"] = json!(reason.to_string());
            self.record_counter_service(&mut tx, staff, &rec.order.id, CounterService::Revoke, record, now).await?;
            let key = format!("sms:{}:revoked:{}", rec.order.id, token.certificate_serial);
            self.queue_sms(
                &mut tx,
                &rec,
                SmsTemplate::CertificateRevoked { order: rec.order.id.to_string() },
                &key,
                now,
            )
            .await?;
            Ok(())
        })
    }

    /// Re-issues onto a new key (补办): the old certificate is revoked (superseded), the new
    /// one is active at once — the applicant is at the counter — and its PIN goes by SMS.
    pub async fn counter_reissue(
        &self,
        staff: &StaffMember,
        order_id: &str,
        check: &IdentityCheck,
    ) -> Result<TokenRecord, AppError> {
        let (rec, old) = self.load_for_counter(staff, order_id).await?;
        Self::require_activated(&rec)?;
        let (name, id_number) = self.verified_holder(&rec.order.id, check).await?;
        let label = staff.actor().label();
        let mut made: Personalised = self.personalise_key(&rec.order.id, &name, &id_number, false, &label).await?;
        made.token.state = TokenState::Active;
        let new_serial = made.token.serial.clone();
        let done = in_tx!(self, |tx| {
            let now = self.now();
            let mut record = self.check_identity(&mut tx, &rec.order.id, check).await?;
            self.record_key(&mut tx, &made, now).await?;
            tx.set_fulfilment_token(&rec.order.id, &made.token.serial, now).await?;
            if tx.certificate_in_tx(&old.certificate_serial).await? != Some(CertificateStatus::Revoked) {
                self.set_certificate_status(
                    &mut tx,
                    &old.certificate_serial,
                    CertificateStatus::Revoked,
                    Some(RevocationReason::Superseded),
                    &label,
                    now,
                )
                .await?;
            }
            tx.set_token_state(&old.serial, TokenState::Retired, now).await?;
            self.queue_pin_delivery(&mut tx, &rec, &made.token.serial, now).await?;
            record["old_key"] = json!(old.serial);
            record["new_key"] = json!(made.token.serial);
            record["certificate"] = json!(made.token.certificate_serial);
            self.record_counter_service(&mut tx, staff, &rec.order.id, CounterService::Reissue, record, now).await?;
            Ok(())
        });
        if let Err(e) = done {
            let _ =
                self.revoke_certificate(&made.token.certificate_serial, RevocationReason::Superseded, "system").await;
            return Err(e);
        }
        let mut tx = self.store().read().await?;
        tx.token(&new_serial).await?.ok_or_else(|| AppError::Internal("new key vanished".into()))
    }

    /// Renews on the same key (续期): a new key pair and certificate (fresh validity), the
    /// old certificate superseded, and a new PIN by SMS.
    pub async fn counter_renew(
        &self,
        staff: &StaffMember,
        order_id: &str,
        check: &IdentityCheck,
    ) -> Result<(), AppError> {
        let (rec, token) = self.load_for_counter(staff, order_id).await?;
        Self::require_activated(&rec)?;
        let (name, id_number) = self.verified_holder(&rec.order.id, check).await?;
        let label = staff.actor().label();
        let so_pin = self.escrowed_so_pin(&token.serial).await?;
        let new_pin = Pin::random(USER_PIN_DIGITS);
        let old_key_id = hex::decode(&token.key_id).map_err(|e| AppError::Internal(format!("key id: {e}")))?;
        let new_key_id = rand::random::<[u8; 8]>().to_vec();
        let subject = yiqian_pki::personal_subject(&name).map_err(|e| AppError::Internal(e.to_string()))?;
        let reader = self.providers().tokens.clone();
        let algorithm = self.config().ca.algorithm;
        let csr = {
            let (serial, so_pin, new_pin, new_key_id) =
                (token.serial.clone(), so_pin.clone(), new_pin.clone(), new_key_id.clone());
            tokio::task::spawn_blocking(move || {
                let mut t = reader.open(&serial)?;
                t.init_user_pin(&so_pin, &new_pin)?;
                t.generate_key_pair(&new_pin, algorithm, &new_key_id)?;
                let signer = t.signer(&new_pin, &new_key_id)?;
                Ok::<_, yiqian_token::TokenError>(yiqian_pki::build_csr(&subject, signer.as_ref())?)
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(token_error)?
        };
        let cert = self
            .issue_certificate(&crate::authority::IssueRequest {
                csr,
                csr_common_name: None,
                name: Some(name),
                id_number,
                hold: false,
                order: Some(rec.order.id.to_string()),
                actor: label.clone(),
            })
            .await?;
        let reader = self.providers().tokens.clone();
        {
            let (serial, new_pin, der) = (token.serial.clone(), new_pin.clone(), cert.der.clone());
            let key_id = new_key_id.clone();
            tokio::task::spawn_blocking(move || {
                let mut t = reader.open(&serial)?;
                t.write_certificate(&new_pin, &key_id, &der)?;
                t.destroy_key(&new_pin, &old_key_id)
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(token_error)?;
        }
        let sealed = self.seal_pin(&token.serial, PinKind::User, &new_pin);
        in_tx!(self, |tx| {
            let now = self.now();
            let mut record = self.check_identity(&mut tx, &rec.order.id, check).await?;
            self.set_certificate_status(
                &mut tx,
                &token.certificate_serial,
                CertificateStatus::Revoked,
                Some(RevocationReason::Superseded),
                &label,
                now,
            )
            .await?;
            tx.replace_token_key(&token.serial, &hex::encode(&new_key_id), &cert.serial, now).await?;
            tx.escrow_pin(&token.serial, PinKind::User, &sealed, now).await?;
            self.queue_pin_delivery(&mut tx, &rec, &token.serial, now).await?;
            record["certificate"] = json!(cert.serial);
            record["superseded"] = json!(token.certificate_serial);
            self.record_counter_service(&mut tx, staff, &rec.order.id, CounterService::Renew, record, now).await?;
            Ok(())
        })
    }

    /// Unblocks the PIN (解锁): a new random PIN set with the SO PIN from escrow, sent by SMS.
    pub async fn counter_unlock_pin(
        &self,
        staff: &StaffMember,
        order_id: &str,
        check: &IdentityCheck,
    ) -> Result<(), AppError> {
        let (rec, token) = self.load_for_counter(staff, order_id).await?;
        Self::require_activated(&rec)?;
        self.verified_holder(&rec.order.id, check).await?;
        let so_pin = self.escrowed_so_pin(&token.serial).await?;
        let new_pin = Pin::random(USER_PIN_DIGITS);
        let reader = self.providers().tokens.clone();
        {
            let (serial, new_pin) = (token.serial.clone(), new_pin.clone());
            tokio::task::spawn_blocking(move || reader.open(&serial)?.init_user_pin(&so_pin, &new_pin))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                .map_err(token_error)?;
        }
        let sealed = self.seal_pin(&token.serial, PinKind::User, &new_pin);
        in_tx!(self, |tx| {
            let now = self.now();
            let mut record = self.check_identity(&mut tx, &rec.order.id, check).await?;
            tx.escrow_pin(&token.serial, PinKind::User, &sealed, now).await?;
            self.queue_pin_delivery(&mut tx, &rec, &token.serial, now).await?;
            record["key"] = json!(token.serial);
            self.record_counter_service(&mut tx, staff, &rec.order.id, CounterService::UnlockPin, record, now).await?;
            Ok(())
        })
    }

    /// Activates in person (柜台激活) after online verification failed or is not possible.
    pub async fn counter_activate(
        &self,
        staff: &StaffMember,
        order_id: &str,
        check: &IdentityCheck,
    ) -> Result<OrderRecord, AppError> {
        staff.require(Permission::CounterService)?;
        let id = parse_order_id(order_id)?;
        let actor: Actor = staff.actor();
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = staff_order(&mut tx, &id).await?;
            let record = self.check_identity(&mut tx, &id, check).await?;
            self.record_counter_service(&mut tx, staff, &id, CounterService::Activate, record, now).await?;
            let (rec, _) = self.apply(&mut tx, &rec, &actor, Command::ActivateAtCounter).await?;
            Ok(rec)
        })
    }

    /// The holder's name and ID number, once the typed ID number matches them.
    pub(crate) async fn verified_holder(
        &self,
        order: &OrderId,
        check: &IdentityCheck,
    ) -> Result<(String, String), AppError> {
        let mut tx = self.store().read().await?;
        self.check_identity(&mut tx, order, check).await?;
        let card = tx.material(order, Step::IdCard.code()).await?.ok_or(AppError::NotFound("订单"))?;
        Ok((
            card["card"]["name"].as_str().unwrap_or_default().to_owned(),
            card["card"]["id_number"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    pub(crate) async fn escrowed_so_pin(&self, token: &str) -> Result<Pin, AppError> {
        let escrowed = self.store().read().await?.escrowed_pin(token, PinKind::So).await?;
        match escrowed.and_then(|e| e.sealed) {
            Some(sealed) => self.open_pin(token, PinKind::So, &sealed),
            None => Err(AppError::Internal(format!("key {token} has no SO PIN in escrow"))),
        }
    }
}
