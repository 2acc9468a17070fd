//! Personalisation stations (制证工作站): workstations with a hub of UKEYs, often far from the
//! server, that personalise keys over the station API.
//!
//! - **Enrolment**: a member of staff whose role issues keys (or serves the counter) signs in
//!   once with password and one-time code ([`App::station_enrol_password`] then
//!   [`App::station_enrol_code`], with the console's lockout); the station gets a bearer
//!   credential good for [`policy::STATION_CREDENTIAL_DAYS`] days, kept here only as a hash.
//!   Administrators list and revoke stations. Every station action is audited as the member of
//!   staff, with the station's name.
//! - **A key, step by step** (one lease per key): the station draws the key's SO and user PINs
//!   itself and seals them to [`App::escrow_public_key`] before it touches the key;
//!   [`App::station_claim`] takes the next order of a station batch for that key and keeps the
//!   sealed PINs; [`App::station_certify`] issues the certificate on hold from the CSR the key
//!   signed; [`App::station_complete`] records the key against the order (issued). The server
//!   never opens those PINs until the one SMS is sent.
//! - **Nothing half-done is lost**: a lease the station gives up, a station that restarts, or
//!   a lease left [`policy::STATION_LEASE_MINUTES`] without a word is abandoned — the order
//!   stays approved for another key, a certificate issued for the lease is revoked
//!   (superseded) — and the key it left half-personalised can be re-initialised:
//!   [`App::station_recover_key`] re-seals that key's SO PIN to a one-time key of the station.

use crate::authority::IssueRequest;
use crate::staff::{StaffMember, token_hash};
use crate::{App, AppError, in_tx, new_id};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use yiqian_domain::staff::{Permission, policy};
use yiqian_domain::{Command, OrderId, OrderState, Step};
use yiqian_pki::{Algorithm, RevocationReason};
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::{PersonalisedAt, PinKind, TokenRecord, TokenState};
use yiqian_store::stations::{LeaseRecord, LeaseService, LeaseState, NewStation, StationRecord};
use yiqian_token::escrow::{EscrowKeyPair, EscrowPublicKey, PinRole};

/// Longest station name, in characters.
pub const MAX_STATION_NAME_CHARS: usize = 40;
/// The duties a station serves: a member of staff with neither cannot enrol or use one.
const STATION_DUTIES: [Permission; 2] = [Permission::IssueTokens, Permission::CounterService];
/// The key readers a station may report.
pub const STATION_READERS: &[&str] = &["pkcs11", "skf", "software"];

/// A station's new credential, shown once.
pub struct StationCredential {
    /// The bearer token.
    pub token: String,
    /// The station's id.
    pub station_id: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Debug without the token.
impl std::fmt::Debug for StationCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationCredential")
            .field("station_id", &self.station_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An authenticated station: who enrolled it, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    /// Station id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The member of staff it acts for (their role decides what it may do).
    pub member: StaffMember,
    /// When its credential ends.
    pub expires_at: DateTime<Utc>,
}

impl Station {
    pub(crate) fn actor(&self) -> String {
        self.member.actor().label()
    }
}

/// What a station learns when it starts.
#[derive(Debug, Clone)]
pub struct StationStart {
    /// The station.
    pub station: Station,
    /// The public key it seals PINs to.
    pub escrow_public_key: EscrowPublicKey,
    /// The key algorithm the CA issues for.
    pub algorithm: Algorithm,
    /// The keys (serials) of the leases of an earlier run that were abandoned now.
    pub abandoned: Vec<String>,
}

/// An order taken for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The lease id.
    pub lease: String,
    /// The order; the key's label.
    pub order: OrderId,
    /// The key algorithm to generate.
    pub algorithm: Algorithm,
    /// When the lease lapses unless the station carries on.
    pub expires_at: DateTime<Utc>,
}

/// A certificate issued for a lease, with the chain to write beside it.
#[derive(Debug, Clone)]
pub struct StationCertificate {
    /// The holder's certificate (DER), on hold until activation.
    pub certificate: Vec<u8>,
    /// The issuing CA, then the root (DER).
    pub chain: Vec<Vec<u8>>,
    /// Its serial (hex).
    pub serial: String,
}

/// What a station reports when a lease's key is done.
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The key pair's id on the key (hex): the new one of a personalisation, a renewal or a
    /// re-issue; none for a PIN unlock.
    pub key_id: Option<&'a str>,
    /// The key's interface (one of [`STATION_READERS`]).
    pub reader: &'a str,
    /// The identity check made at the counter (counter services only; checked again).
    pub identity: Option<&'a crate::counter::IdentityCheck>,
}

/// A station as administrators see it.
#[derive(Debug, Clone)]
pub struct StationSummary {
    /// The record.
    pub record: StationRecord,
    /// The enrolling member of staff's name.
    pub staff_name: String,
    /// Orders it holds now.
    pub live_leases: usize,
}

impl StationSummary {
    /// Whether its credential works now.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.record.revoked.is_none() && self.record.expires_at > now
    }
}

fn bad_station_name() -> AppError {
    AppError::invalid("invalid_station_name", format!("工作站名称须为1至{MAX_STATION_NAME_CHARS}个字符"))
}

/// A station's name as typed: trimmed, 1–40 characters, no control characters.
fn station_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_STATION_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(bad_station_name());
    }
    Ok(name.to_owned())
}

/// A key serial as a station reports it: 1–64 printable ASCII characters.
pub(crate) fn key_serial(serial: &str) -> Result<&str, AppError> {
    if serial.is_empty() || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid("invalid_key_serial", "UKEY序列号格式不正确"));
    }
    Ok(serial)
}

pub(crate) fn lease_gone() -> AppError {
    AppError::Conflict {
        code: "lease_ended",
        message: "该UKEY的制证任务已结束(已放弃或超时),订单已退回待制证;请重新开始".into(),
    }
}

fn store_duplicate_is_taken(e: yiqian_store::StoreError) -> AppError {
    match e {
        yiqian_store::StoreError::Duplicate => AppError::Retry,
        other => other.into(),
    }
}

/// What a station's member of staff must be allowed to do a lease's service.
pub(crate) fn service_permission(service: LeaseService) -> Permission {
    match service {
        LeaseService::Issue => Permission::IssueTokens,
        LeaseService::UnlockPin | LeaseService::Renew | LeaseService::Reissue => Permission::CounterService,
    }
}

impl App {
    /// The first stage of a station's enrolment: the member of staff's name and password. The
    /// role must be one that works at a station (issuing keys, or the counter).
    pub async fn station_enrol_password(
        &self,
        name: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<String, AppError> {
        let stage = self.staff_login_password(name, password, client_ip).await?;
        let pending = stage.pending_token().to_owned();
        let record = self.pending_staff_member(&pending).await?;
        if record.require_any(&STATION_DUTIES).is_err() {
            self.staff_logout(&pending).await?;
            return Err(AppError::Forbidden);
        }
        if matches!(stage, crate::staff::StaffLoginStage::NeedsEnrolment { .. }) {
            self.staff_logout(&pending).await?;
            return Err(AppError::invalid("staff_totp_not_enrolled", "请先在管理台登录一次并绑定动态验证码"));
        }
        Ok(pending)
    }

    /// The second stage of a station's enrolment: the one-time code; the station is named and
    /// gets its credential.
    pub async fn station_enrol_code(
        &self,
        pending_token: &str,
        code: &str,
        client_ip: &str,
        name: &str,
    ) -> Result<StationCredential, AppError> {
        let name = station_name(name)?;
        let member = self.pending_staff_member(pending_token).await?;
        member.require_any(&STATION_DUTIES)?;
        self.staff_enrol_station(pending_token, code, client_ip, &name).await
    }

    /// Records an enrolled station inside the login's unit of work; returns its id.
    #[allow(clippy::too_many_arguments, reason = "the login's unit of work hands over what it checked")]
    pub(crate) async fn insert_station(
        &self,
        tx: &mut Tx,
        record: &yiqian_store::staff::StaffRecord,
        name: &str,
        credential_hash: &str,
        client_ip: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, AppError> {
        let id = new_id("WS", 16);
        tx.insert_station(&NewStation { id: &id, name, staff_id: &record.id, credential_hash, expires_at }, now)
            .await?;
        let actor = format!("staff:{}", record.name);
        let detail = json!({"station": name, "ip": client_ip, "role": record.role.code(), "expires_ms": expires_at.timestamp_millis()});
        tx.audit(
            NewAuditEntry { actor: &actor, action: "station.enrolled", subject: &format!("station:{id}"), detail },
            now,
        )
        .await?;
        Ok(id)
    }

    /// The station a bearer credential belongs to: enrolled, not revoked, not expired, and its
    /// member of staff's account still enabled.
    pub async fn station_authenticate(&self, credential: &str) -> Result<Station, AppError> {
        let now = self.now();
        let (record, staff) = {
            let mut tx = self.store().read().await?;
            let record = tx.station_by_credential(&token_hash(credential)).await?.ok_or(AppError::Unauthorized)?;
            let staff = tx.staff_by_id(&record.staff_id).await?.ok_or(AppError::Unauthorized)?;
            (record, staff)
        };
        if record.revoked.is_some() || record.expires_at <= now || staff.disabled {
            return Err(AppError::Unauthorized);
        }
        if now - record.last_seen >= Duration::seconds(policy::LAST_SEEN_RESOLUTION_SECONDS) {
            in_tx!(self, |tx| {
                tx.touch_station(&record.id, now).await?;
                Ok(())
            })?;
        }
        Ok(Station {
            id: record.id,
            name: record.name,
            member: StaffMember { id: staff.id, name: staff.name, role: staff.role },
            expires_at: record.expires_at,
        })
    }

    /// Every station, the newest first (administrators).
    pub async fn list_stations(&self, by: &StaffMember) -> Result<Vec<StationSummary>, AppError> {
        by.require(Permission::ManageStaff)?;
        let mut tx = self.store().read().await?;
        let live = tx.live_leases(None).await?;
        let mut out = Vec::new();
        for record in tx.all_stations().await? {
            let staff_name = tx.staff_by_id(&record.staff_id).await?.map(|s| s.name.to_string()).unwrap_or_default();
            let live_leases = live.iter().filter(|l| l.station_id == record.id).count();
            out.push(StationSummary { record, staff_name, live_leases });
        }
        Ok(out)
    }

    /// Revokes a station's credential (administrators); the orders it holds go back to the
    /// queue and their certificates, if any, are revoked.
    pub async fn revoke_station(&self, by: &StaffMember, station_id: &str) -> Result<(), AppError> {
        by.require(Permission::ManageStaff)?;
        let actor = by.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            let station = tx.station(station_id).await?.ok_or(AppError::NotFound("工作站"))?;
            if !tx.revoke_station(&station.id, &actor, now).await? {
                return Ok(());
            }
            for lease in tx.live_leases(Some(&station.id)).await? {
                self.abandon_lease(&mut tx, &lease, "station revoked", &actor, now).await?;
            }
            let detail = json!({"station": station.name});
            let subject = format!("station:{}", station.id);
            tx.audit(NewAuditEntry { actor: &actor, action: "station.revoked", subject: &subject, detail }, now)
                .await?;
            Ok(())
        })
    }

    /// A station starts a run: the leases of its earlier run are abandoned (a station keeps
    /// no lease across a restart), and it learns what to seal PINs to.
    pub async fn station_start(&self, station: &Station) -> Result<StationStart, AppError> {
        station.member.require_any(&STATION_DUTIES)?;
        let actor = station.actor();
        let abandoned = in_tx!(self, |tx| {
            let now = self.now();
            let leases = tx.live_leases(Some(&station.id)).await?;
            for lease in &leases {
                self.abandon_lease(&mut tx, lease, "station restarted", &actor, now).await?;
            }
            let detail = json!({"station": station.name, "abandoned": leases.len()});
            let subject = format!("station:{}", station.id);
            tx.audit(NewAuditEntry { actor: &actor, action: "station.started", subject: &subject, detail }, now)
                .await?;
            Ok(leases.into_iter().map(|l| l.token_serial).collect())
        })?;
        Ok(StationStart {
            station: station.clone(),
            escrow_public_key: self.escrow_public_key().clone(),
            algorithm: self.config().ca.algorithm,
            abandoned,
        })
    }

    /// What a station is and seals PINs to, without starting a run (counter services).
    pub async fn station_info(&self, station: &Station) -> Result<StationStart, AppError> {
        station.member.require_any(&STATION_DUTIES)?;
        Ok(StationStart {
            station: station.clone(),
            escrow_public_key: self.escrow_public_key().clone(),
            algorithm: self.config().ca.algorithm,
            abandoned: Vec::new(),
        })
    }

    /// Takes the next order of a station batch for the key `serial`, keeping the PINs the
    /// station sealed for it; `None` when every order of the batch is done or taken.
    pub async fn station_claim(
        &self,
        station: &Station,
        batch: &str,
        serial: &str,
        so_pin_sealed: &str,
        user_pin_sealed: &str,
    ) -> Result<Option<Claim>, AppError> {
        station.member.require(Permission::IssueTokens)?;
        let serial = key_serial(serial)?;
        for sealed in [so_pin_sealed, user_pin_sealed] {
            if !EscrowKeyPair::is_sealed_pin(sealed) || sealed.len() > 512 {
                return Err(AppError::invalid("invalid_sealed_pin", "PIN码须在工作站加密后提交"));
            }
        }
        let actor = station.actor();
        let algorithm = self.config().ca.algorithm;
        in_tx!(self, |tx| {
            let now = self.now();
            self.expire_leases(&mut tx, now).await?;
            let record = tx.batch(batch).await?.ok_or(AppError::NotFound("批次"))?;
            if record.personalised_at != PersonalisedAt::Station {
                return Err(AppError::Conflict {
                    code: "batch_not_for_stations",
                    message: "该批次由服务器制证,不能在工作站领取".into(),
                });
            }
            if let Some(token) = tx.token(serial).await?
                && token.state != TokenState::Retired
            {
                return Err(AppError::Conflict {
                    code: "key_personalised",
                    message: format!("此UKEY已为订单{}制证,请取下并换一个空白UKEY", token.order),
                });
            }
            let live = tx.live_leases(None).await?;
            if live.iter().any(|l| l.token_serial == serial) {
                return Err(AppError::Conflict { code: "key_in_use", message: "此UKEY正在制证中".into() });
            }
            let mut next = None;
            for order in &record.orders {
                if live.iter().any(|l| &l.order == order) {
                    continue;
                }
                if tx.load_order(order).await?.order.state == OrderState::Approved {
                    next = Some(order.clone());
                    break;
                }
            }
            let Some(order) = next else { return Ok(None) };
            let expires_at = now + Duration::minutes(policy::STATION_LEASE_MINUTES);
            let lease = LeaseRecord {
                id: new_id("LS", 20),
                station_id: station.id.clone(),
                service: LeaseService::Issue,
                batch_id: Some(record.id.clone()),
                order: order.clone(),
                token_serial: serial.to_owned(),
                so_pin_sealed: so_pin_sealed.to_owned(),
                user_pin_sealed: user_pin_sealed.to_owned(),
                state: LeaseState::Claimed,
                certificate_serial: None,
                outcome: None,
                expires_at,
                created_at: now,
                updated_at: now,
            };
            // Another station taking the same order meanwhile: the unit of work is retried.
            tx.insert_lease(&lease).await.map_err(store_duplicate_is_taken)?;
            let detail = json!({"station": station.name, "batch": record.id, "key": serial, "lease": lease.id});
            let subject = format!("order:{order}");
            tx.audit(NewAuditEntry { actor: &actor, action: "station.claimed", subject: &subject, detail }, now)
                .await?;
            Ok(Some(Claim { lease: lease.id, order, algorithm, expires_at }))
        })
    }

    /// A lease of this station whose service the station's role may do, or why not.
    pub(crate) async fn own_lease(&self, tx: &mut Tx, station: &Station, lease: &str) -> Result<LeaseRecord, AppError> {
        let lease = tx.lease(lease).await?.ok_or(AppError::NotFound("制证任务"))?;
        if lease.station_id != station.id {
            return Err(AppError::NotFound("制证任务"));
        }
        station.member.require(service_permission(lease.service))?;
        Ok(lease)
    }

    /// Issues the certificate (on hold) for a claimed key from the CSR the key signed; its
    /// CN must be the order number. Returns it with the CA chain to write beside it.
    pub async fn station_certify(
        &self,
        station: &Station,
        lease_id: &str,
        csr: &[u8],
    ) -> Result<StationCertificate, AppError> {
        // Issuing and recording run to the end even when the station hangs up (it may be
        // killed mid-request): a certificate is never left issued but unrecorded.
        let (app, station, lease_id, csr) = (self.clone(), station.clone(), lease_id.to_owned(), csr.to_vec());
        tokio::spawn(async move { app.certify_lease(&station, &lease_id, &csr).await })
            .await
            .map_err(|e| AppError::Internal(format!("certificate task: {e}")))?
    }

    async fn certify_lease(
        &self,
        station: &Station,
        lease_id: &str,
        csr: &[u8],
    ) -> Result<StationCertificate, AppError> {
        let (lease, name, id_number) = {
            let mut tx = self.store().read().await?;
            let lease = self.own_lease(&mut tx, station, lease_id).await?;
            if lease.service == LeaseService::UnlockPin {
                return Err(AppError::invalid("no_certificate", "解锁PIN码不签发新证书"));
            }
            if lease.state != LeaseState::Claimed || lease.expires_at <= self.now() {
                return Err(lease_gone());
            }
            let card = tx
                .material(&lease.order, Step::IdCard.code())
                .await?
                .ok_or_else(|| AppError::Internal(format!("approved order {} has no ID card", lease.order)))?;
            let name = card["card"]["name"].as_str().unwrap_or_default().to_owned();
            let id_number = card["card"]["id_number"].as_str().unwrap_or_default().to_owned();
            (lease, name, id_number)
        };
        let ca = self.issuing_ca().await?;
        let chain = vec![ca.certificate_der.clone(), ca.root_der.clone()];
        let certificate = self
            .issue_certificate(&IssueRequest {
                csr: csr.to_vec(),
                csr_common_name: Some(lease.order.to_string()),
                name: Some(name),
                id_number,
                // A new key waits for activation; at the counter the holder is present.
                hold: lease.service == LeaseService::Issue,
                order: Some(lease.order.to_string()),
                actor: station.actor(),
            })
            .await?;
        let recorded = in_tx!(self, |tx| {
            let now = self.now();
            let expires = now + Duration::minutes(policy::STATION_LEASE_MINUTES);
            let moved = tx
                .advance_lease(
                    &lease.id,
                    LeaseState::Claimed,
                    LeaseState::Certified,
                    Some(&certificate.serial),
                    None,
                    expires,
                    now,
                )
                .await?;
            Ok(moved)
        });
        match recorded {
            Ok(true) => Ok(StationCertificate { certificate: certificate.der, chain, serial: certificate.serial }),
            other => {
                // The lease ended meanwhile: the certificate names a key nobody will receive.
                let _ = self.revoke_certificate(&certificate.serial, RevocationReason::Superseded, "system").await;
                Err(other.err().unwrap_or_else(lease_gone))
            }
        }
    }

    /// Records a certified key against its order (已制证): the key, its PINs as the station
    /// sealed them, the order issued. Repeating a completed lease is answered the same.
    pub async fn station_complete(
        &self,
        station: &Station,
        lease_id: &str,
        completion: &Completion<'_>,
    ) -> Result<OrderId, AppError> {
        let reader = completion.reader;
        if !STATION_READERS.contains(&reader) {
            return Err(AppError::invalid("invalid_reader", "未知的UKEY接口类型"));
        }
        if let Some(key_id) = completion.key_id
            && (key_id.is_empty() || key_id.len() > 64 || hex::decode(key_id).is_err())
        {
            return Err(AppError::invalid("invalid_key_id", "密钥标识格式不正确"));
        }
        let actor = station.actor();
        let completed: Result<OrderId, AppError> = in_tx!(self, |tx| {
            let now = self.now();
            let lease = self.own_lease(&mut tx, station, lease_id).await?;
            let ready =
                if lease.service == LeaseService::UnlockPin { LeaseState::Claimed } else { LeaseState::Certified };
            match lease.state {
                LeaseState::Completed => return Ok(lease.order),
                s if s == ready && lease.expires_at > now => {}
                _ => return Err(lease_gone()),
            }
            if lease.service != LeaseService::Issue {
                self.complete_counter_lease(&mut tx, station, &lease, completion, now).await?;
                return Ok(lease.order);
            }
            let key_id_hex = completion.key_id.ok_or_else(|| AppError::invalid("invalid_key_id", "缺少密钥标识"))?;
            let certificate_serial = lease
                .certificate_serial
                .clone()
                .ok_or_else(|| AppError::Internal("certified lease without a certificate".into()))?;
            let rec = tx.load_order(&lease.order).await?;
            tx.insert_token(&TokenRecord {
                serial: lease.token_serial.clone(),
                reader: reader.to_owned(),
                order: lease.order.clone(),
                key_id: key_id_hex.to_ascii_lowercase(),
                certificate_serial: certificate_serial.clone(),
                state: TokenState::Personalised,
                created_at: now,
            })
            .await
            .map_err(|e| match e {
                yiqian_store::StoreError::Duplicate => AppError::Conflict {
                    code: "key_personalised",
                    message: "此UKEY已有制证记录,不能重复登记".into(),
                },
                other => other.into(),
            })?;
            tx.escrow_pin(&lease.token_serial, PinKind::User, &lease.user_pin_sealed, now).await?;
            tx.escrow_pin(&lease.token_serial, PinKind::So, &lease.so_pin_sealed, now).await?;
            tx.set_fulfilment_token(&lease.order, &lease.token_serial, now).await?;
            self.apply(&mut tx, &rec, &station.member.actor(), Command::MarkIssued).await?;
            if !tx
                .advance_lease(
                    &lease.id,
                    LeaseState::Certified,
                    LeaseState::Completed,
                    None,
                    Some("completed"),
                    now,
                    now,
                )
                .await?
            {
                return Err(AppError::Retry);
            }
            let detail = json!({
                "reader": reader,
                "certificate": certificate_serial,
                "station": station.name,
                "key": lease.token_serial,
            });
            let subject = format!("order:{}", lease.order);
            tx.audit(NewAuditEntry { actor: &actor, action: "token.personalised", subject: &subject, detail }, now)
                .await?;
            Ok(lease.order)
        });
        if completed.is_ok() {
            crate::metrics::personalisation("station", "done");
        }
        completed
    }

    /// The station gives a lease up (a key pulled out, a key that failed): the order goes back
    /// to the queue and a certificate issued for the key is revoked. Giving up an ended lease
    /// is not an error.
    pub async fn station_abandon(&self, station: &Station, lease_id: &str, reason: &str) -> Result<(), AppError> {
        let reason: String = reason.trim().chars().filter(|c| !c.is_control()).take(200).collect();
        let actor = station.actor();
        let abandoned: bool = in_tx!(self, |tx| {
            let now = self.now();
            let lease = self.own_lease(&mut tx, station, lease_id).await?;
            if !lease.state.is_live() {
                return Ok(false);
            }
            let outcome = if reason.is_empty() { "abandoned at the station" } else { reason.as_str() };
            self.abandon_lease(&mut tx, &lease, outcome, &actor, now).await?;
            Ok(true)
        })?;
        if abandoned {
            crate::metrics::personalisation("station", "abandoned");
        }
        Ok(())
    }

    /// The SO PIN of a key a lease left half-personalised, re-sealed to the station's one-time
    /// key so that the station can initialise the key again. Refused for a key recorded
    /// against an order, and for a key this system never personalised.
    pub async fn station_recover_key(
        &self,
        station: &Station,
        serial: &str,
        station_key: &EscrowPublicKey,
    ) -> Result<String, AppError> {
        station.member.require(Permission::IssueTokens)?;
        let serial = key_serial(serial)?;
        let actor = station.actor();
        in_tx!(self, |tx| {
            let now = self.now();
            self.expire_leases(&mut tx, now).await?;
            if let Some(token) = tx.token(serial).await?
                && token.state != TokenState::Retired
            {
                return Err(AppError::Conflict {
                    code: "key_personalised",
                    message: format!("此UKEY已为订单{}制证,请取下", token.order),
                });
            }
            let lease = tx.latest_lease_of_key(serial).await?.ok_or_else(|| AppError::Conflict {
                code: "key_unknown",
                message: "此UKEY不是本系统制作的,不能自动重新初始化;请用厂商工具恢复出厂设置".into(),
            })?;
            if lease.state.is_live() {
                return Err(AppError::Conflict { code: "key_in_use", message: "此UKEY正在制证中".into() });
            }
            let so_pin = self
                .open_pin(serial, PinKind::So, &lease.so_pin_sealed)
                .map_err(|_| AppError::Internal(format!("the SO PIN of lease {} does not open", lease.id)))?;
            let sealed = station_key
                .seal(&so_pin, serial, PinRole::So)
                .map_err(|e| AppError::Internal(format!("re-sealing an SO PIN: {e}")))?;
            let detail = json!({"station": station.name, "key": serial, "lease": lease.id});
            let subject = format!("order:{}", lease.order);
            tx.audit(NewAuditEntry { actor: &actor, action: "station.key_recovered", subject: &subject, detail }, now)
                .await?;
            Ok(sealed)
        })
    }

    /// Abandons every live lease nobody spoke for within the lease time.
    async fn expire_leases(&self, tx: &mut Tx, now: DateTime<Utc>) -> Result<(), AppError> {
        for lease in tx.live_leases(None).await? {
            if lease.expires_at <= now {
                self.abandon_lease(tx, &lease, "expired", "system", now).await?;
            }
        }
        Ok(())
    }

    /// Ends a live lease: its certificate, if one was issued, revoked (superseded).
    async fn abandon_lease(
        &self,
        tx: &mut Tx,
        lease: &LeaseRecord,
        outcome: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        if !tx.advance_lease(&lease.id, lease.state, LeaseState::Abandoned, None, Some(outcome), now, now).await? {
            return Err(AppError::Retry);
        }
        let mut orphans: Vec<String> = lease.certificate_serial.iter().cloned().collect();
        if lease.service == LeaseService::Issue {
            // A certificate issued for the lease whose recording was cut short (the server
            // stopped between issuing and recording it): the order has no key yet, so every
            // certificate of it since the claim names a key nobody will receive.
            orphans.extend(tx.unrevoked_certificates_of_order_since(lease.order.as_str(), lease.created_at).await?);
        }
        orphans.sort();
        orphans.dedup();
        for serial in &orphans {
            if tx.certificate_in_tx(serial).await?.is_some_and(|s| s != CertificateStatus::Revoked) {
                let reason = Some(RevocationReason::Superseded);
                self.set_certificate_status(tx, serial, CertificateStatus::Revoked, reason, actor, now).await?;
            }
        }
        let detail = json!({"lease": lease.id, "key": lease.token_serial, "why": outcome, "certificate": lease.certificate_serial});
        let subject = format!("order:{}", lease.order);
        tx.audit(NewAuditEntry { actor, action: "station.abandoned", subject: &subject, detail }, now).await?;
        Ok(())
    }

    /// The member of staff of a pending login.
    async fn pending_staff_member(&self, pending_token: &str) -> Result<StaffMember, AppError> {
        let r = self.pending_staff(pending_token).await?;
        Ok(StaffMember { id: r.id, name: r.name, role: r.role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_names_and_key_serials_are_checked() {
        assert_eq!(station_name("  制证室-1 ").unwrap(), "制证室-1");
        assert!(station_name("").is_err());
        assert!(station_name(&"站".repeat(41)).is_err());
        assert!(station_name("a\nb").is_err());
        assert_eq!(key_serial("0123ABCD").unwrap(), "0123ABCD");
        assert!(key_serial("").is_err());
        assert!(key_serial("with space").is_err());
        assert!(key_serial(&"9".repeat(65)).is_err());
    }

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let c = StationCredential { token: "SECRET".into(), station_id: "WS1".into(), expires_at: Utc::now() };
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
