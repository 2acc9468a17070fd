//! Seeding a sandbox deployment with many orders, to measure how the service's cost grows
//! with its data (docs/benchmarks.md). A seeded order is what a journey leaves behind, made
//! through the same domain rules and store writes as a real one: an applicant (a phone number
//! in the 199 range, sealed), the order driven through the domain's state machine with its
//! history, the ID card and address confirmed by the same checks the applicant's form goes
//! through (sealed), a payment the gateway confirmed, and for orders that reached the key a
//! certificate signed by the issuing CA, a key record and a fulfilment with its waybill.
//!
//! What a seeded order does not have: photos, videos and signatures (no blobs), and a key of
//! its own: every seeded certificate certifies one public key generated for the run, whose
//! private key is thrown away. Most orders end activated; some wait for review, some expired
//! unpaid, and one in a hundred activated certificates is revoked, so status lookups see every
//! answer. Only a deployment on sandbox providers may be seeded (the command checks).

use crate::apply::Actor;
use crate::{App, AppError, in_tx, new_id};
use chrono::{Duration, NaiveDate};
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use yiqian_domain::applicant::{AddressForm, IdCardForm, check_address, confirm_id_card};
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::order::ActivationVerdict;
use yiqian_domain::payment::{Channel, GatewayState};
use yiqian_domain::{ApplicantId, Command, Order, OrderEvent, OrderId, PaymentId, Step};
use yiqian_pki::{CertId, CertIdHash, RevocationReason, SerialNumber, Signer, SoftwareKey};
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::{Shipment, TokenRecord, TokenState};
use yiqian_store::orders::OrderRecord;
use yiqian_store::payments::PaymentRecord;

/// Orders written per unit of work.
pub const BATCH: usize = 200;

/// Units of work written at once.
const WRITERS: usize = 4;

/// One seeded order picked for the benchmark to ask about: the applicant's session, the order
/// and, for an order with a certificate, an OCSP request for it (DER, SHA-1 CertID, no nonce).
#[derive(Debug, Clone)]
pub struct SeedSample {
    /// A login session of the order's applicant (bearer token).
    pub session_token: String,
    /// The order number.
    pub order_id: String,
    /// The certificate's serial, for an order that has one.
    pub serial: Option<String>,
    /// The OCSP request for that certificate.
    pub ocsp_request: Option<Vec<u8>>,
}

/// What a seeding run wrote.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Orders written.
    pub orders: usize,
    /// Certificates among them.
    pub certificates: usize,
    /// The orders picked for the benchmark, each with a session.
    pub sample: Vec<SeedSample>,
}

/// How one seeded order ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Activated; its certificate is active, or revoked for one in a hundred.
    Activated { revoked: bool },
    /// Submitted, waiting for the CA's review.
    Submitted,
    /// Never paid; expired.
    Expired,
}

impl Ending {
    fn of(n: usize) -> Ending {
        match n % 100 {
            0..=4 => Ending::Submitted,
            5..=9 => Ending::Expired,
            10 => Ending::Activated { revoked: true },
            _ => Ending::Activated { revoked: false },
        }
    }
}

const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const GIVEN: [&str; 10] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰"];

/// The `n`-th applicant's mobile number: 199 and eight digits.
fn seeded_phone(n: usize) -> MobileNumber {
    MobileNumber::parse(&format!("199{:08}", n % 100_000_000)).expect("199 numbers are mobile numbers")
}

/// The `n`-th applicant's ID card, made valid by the applicant's own checks: born on one of
/// 14,000 days from 1962 on (so any today finds them of age), in Xicheng, Beijing (the journeys of the tests are born in Dongcheng), with a
/// sequence number and the check digit; the sex follows the sequence as on a real card.
fn seeded_id_card(n: usize, today: NaiveDate) -> Result<yiqian_domain::applicant::ConfirmedIdCard, AppError> {
    let birth = NaiveDate::from_ymd_opt(1962, 1, 1).expect("a date") + Duration::days((n % 14_000) as i64);
    let sequence = (n / 14_000) % 1000;
    let body = format!("110102{}{sequence:03}", birth.format("%Y%m%d"));
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    let male = sequence % 2 == 1;
    let form = IdCardForm {
        name: format!("{}{}{}", SURNAMES[n % 10], GIVEN[(n / 10) % 10], GIVEN[(n / 100) % 10]),
        sex: if male { "男" } else { "女" }.into(),
        ethnicity: "汉".into(),
        birth_date: birth.format("%Y-%m-%d").to_string(),
        address: "北京市东城区景山前街4号".into(),
        id_number: format!("{body}{check}"),
        authority: "北京市公安局东城分局".into(),
        validity: "2020.01.01-长期".into(),
    };
    confirm_id_card(&form, today).map_err(|e| AppError::Internal(format!("seeded ID card {n}: {e}")))
}

/// Everything one seeded order writes, made before its unit of work starts.
struct SeededOrder {
    phone: MobileNumber,
    /// The order, with the applicant id to create the account under.
    record: OrderRecord,
    events: Vec<OrderEvent>,
    materials: Vec<(&'static str, serde_json::Value)>,
    id_hash: Option<String>,
    payment: Option<PaymentRecord>,
    /// For an order that reached its key: the certificate on it and the parcel it went in.
    on_key: Option<(yiqian_store::certificates::CertificateRecord, Shipment)>,
}

impl App {
    /// Seeds `count` orders (see the module comment), `sample` of them (spread over the run)
    /// with a login session, reporting the orders written so far to `progress` after every
    /// unit of work. Numbers continue after the applicants already in the database, so a
    /// database can be seeded more than once.
    pub async fn seed_orders(
        &self,
        count: usize,
        sample: usize,
        progress: impl Fn(usize) + Send + Sync + 'static,
    ) -> Result<SeedReport, AppError> {
        let ca = self.issuing_ca().await?;
        let algorithm: yiqian_pki::Algorithm = ca.signer.algorithm();
        let subject_key = SoftwareKey::generate(algorithm).map_err(|e| AppError::Internal(e.to_string()))?;
        let public_key = subject_key.public_key().clone();
        drop(subject_key);
        let first = self.store().count_applicants().await? as usize;
        let every = count.checked_div(sample).map_or(usize::MAX, |n| n.max(1));
        let written = Arc::new(AtomicUsize::new(0));
        let progress = Arc::new(progress);
        let next = Arc::new(AtomicUsize::new(0));
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..WRITERS {
            let (app, ca, public_key) = (self.clone(), ca.clone(), public_key.clone());
            let (written, progress, next) = (written.clone(), progress.clone(), next.clone());
            writers.spawn(async move {
                let mut report = SeedReport::default();
                loop {
                    let start = next.fetch_add(BATCH, Ordering::Relaxed);
                    if start >= count {
                        return Ok::<_, AppError>(report);
                    }
                    let numbers = start..(start + BATCH).min(count);
                    let batch = numbers
                        .clone()
                        .map(|i| app.seeded_order(first + i, &ca, &public_key))
                        .collect::<Result<Vec<_>, _>>()?;
                    let sampled: Vec<usize> = numbers.clone().filter(|&i| is_sampled(i, every, sample)).collect();
                    let picked =
                        app.write_seeded(&batch, &sampled.iter().map(|i| i - start).collect::<Vec<_>>(), &ca).await?;
                    report.orders += batch.len();
                    report.certificates += batch.iter().filter(|o| o.on_key.is_some()).count();
                    report.sample.extend(picked);
                    progress(written.fetch_add(batch.len(), Ordering::Relaxed) + batch.len());
                }
            });
        }
        let mut report = SeedReport::default();
        while let Some(done) = writers.join_next().await {
            let part = done.map_err(|e| AppError::Internal(format!("seeding task: {e}")))??;
            report.orders += part.orders;
            report.certificates += part.certificates;
            report.sample.extend(part.sample);
        }
        let now = self.now();
        in_tx!(self, |tx| {
            let detail =
                json!({"orders": report.orders, "certificates": report.certificates, "sessions": report.sample.len()});
            tx.audit(NewAuditEntry { actor: "operator", action: "db.seeded", subject: "deployment", detail }, now)
                .await?;
            Ok(())
        })?;
        Ok(report)
    }

    /// The `n`-th seeded order, made in memory: its days spread over the last year.
    fn seeded_order(
        &self,
        n: usize,
        ca: &crate::authority::IssuingCa,
        public_key: &yiqian_pki::spki::SubjectPublicKeyInfoOwned,
    ) -> Result<SeededOrder, AppError> {
        let now = self.now();
        let created = now - Duration::minutes(rand::thread_rng().gen_range(60..365 * 24 * 60));
        let product = &self.config().product;
        let applicant = ApplicantId::parse(&new_id("AP", 20)).expect("generated ids are valid");
        let id = OrderId::parse(&format!("YQ{}{}", created.format("%Y%m%d"), new_id("", 8)))
            .expect("generated ids are valid");
        let phone = seeded_phone(n);
        let ending = Ending::of(n);
        let mut order = Order::new(id.clone(), product.price, created + self.config().pay_ttl);
        let mut events = vec![OrderEvent::Created { agreement_version: product.agreement_version.clone() }];
        let mut run = |order: &mut Order, command: Command| -> Result<(), AppError> {
            let t = order.execute(command).map_err(|e| AppError::Internal(format!("seeded order {n}: {e}")))?;
            *order = t.order;
            events.extend(t.events);
            Ok(())
        };
        let (mut materials, mut id_hash, mut payment_record, mut on_key) = (Vec::new(), None, None, None);
        if ending == Ending::Expired {
            run(&mut order, Command::Expire { now: created + self.config().pay_ttl + Duration::seconds(1) })?;
        } else {
            let payment = PaymentId::parse(&new_id("PY", 20)).expect("generated ids are valid");
            run(&mut order, Command::ConfirmPayment { payment: payment.clone(), amount: product.price })?;
            payment_record = Some(PaymentRecord {
                id: payment,
                order: id.clone(),
                channel: if n.is_multiple_of(3) { Channel::Alipay } else { Channel::Wechat },
                amount: product.price,
                state: GatewayState::Succeeded,
                gateway_txn: Some(new_id("SEED", 24)),
                created_at: created,
            });
            let card = seeded_id_card(n, now.date_naive())?;
            let address = check_address(&AddressForm {
                recipient: card.name.clone(),
                phone: phone.as_str().into(),
                province_code: "110000".into(),
                city_code: "110100".into(),
                district_code: "110101".into(),
                street: format!("景山前街{}号", n % 500 + 1),
            })
            .map_err(|e| AppError::Internal(format!("seeded address {n}: {e}")))?;
            id_hash = Some(self.store().vault().lookup_hash("resident-id", card.id_number.as_str()));
            materials.push((Step::Phone.code(), json!({"phone": phone.as_str(), "proof": "login"})));
            materials.push((Step::IdCard.code(), json!({"card": card})));
            materials.push((Step::Address.code(), serde_json::to_value(&address).map_err(internal)?));
            for step in Step::ALL {
                run(&mut order, Command::CompleteStep(step))?;
            }
            run(&mut order, Command::Submit)?;
            if let Ending::Activated { revoked } = ending {
                run(&mut order, Command::Approve)?;
                run(&mut order, Command::MarkIssued)?;
                let shipment = Shipment {
                    courier: "顺丰速运".into(),
                    tracking_no: format!("SF{:012}", n),
                    shipped_at: created + Duration::days(2),
                    shipped_by: "staff:seed".into(),
                };
                run(
                    &mut order,
                    Command::Ship { courier: shipment.courier.clone(), tracking_no: shipment.tracking_no.clone() },
                )?;
                run(&mut order, Command::SubmitActivation { verdict: ActivationVerdict::Pass })?;
                let issued = created + Duration::days(1);
                let mut certificate =
                    self.sign_personal(ca, &card.name, card.id_number.as_str(), public_key.clone(), false, issued)?;
                certificate.order_id = Some(id.to_string());
                if revoked {
                    certificate.status = CertificateStatus::Revoked;
                    certificate.reason = Some(RevocationReason::KeyCompromise.to_string());
                    certificate.status_changed_at = created + Duration::days(30).min(now - created);
                }
                on_key = Some((certificate, shipment));
            }
        }
        Ok(SeededOrder {
            phone,
            record: OrderRecord {
                order,
                applicant,
                product_code: product.code.clone(),
                agreement_version: product.agreement_version.clone(),
                agreement_accepted_at: created,
                created_at: created,
                updated_at: created + Duration::days(3).min(now - created),
                version: 1,
            },
            events,
            materials,
            id_hash,
            payment: payment_record,
            on_key,
        })
    }

    /// Writes a batch of seeded orders in one unit of work; the orders at `sampled` positions
    /// get a login session each, returned.
    async fn write_seeded(
        &self,
        batch: &[SeededOrder],
        sampled: &[usize],
        ca: &crate::authority::IssuingCa,
    ) -> Result<Vec<SeedSample>, AppError> {
        in_tx!(self, |tx| {
            let mut picked = Vec::new();
            for (i, o) in batch.iter().enumerate() {
                let created = o.record.created_at;
                let applicant = tx.applicant_by_phone(&o.phone, &o.record.applicant, created).await?;
                let record = OrderRecord { applicant: applicant.clone(), ..o.record.clone() };
                tx.insert_order(&record).await?;
                tx.append_history(
                    &record.order,
                    &Actor::Applicant(applicant.clone()).label(),
                    &o.events,
                    record.updated_at,
                )
                .await?;
                for (key, value) in &o.materials {
                    tx.save_material(&record.order.id, key, value, created).await?;
                }
                if let Some(hash) = &o.id_hash {
                    tx.set_order_id_number_hash(&record.order.id, hash).await?;
                }
                if let Some(p) = &o.payment {
                    tx.insert_payment(&PaymentRecord { state: GatewayState::Pending, ..p.clone() }).await?;
                    tx.confirm_payment(&p.id, p.gateway_txn.as_deref().unwrap_or_default(), created).await?;
                }
                if let Some((c, s)) = &o.on_key {
                    tx.insert_certificate(c).await?;
                    tx.insert_fulfilment(&record.order.id, &new_id("", 24), created).await?;
                    let token = format!("SEED{}", new_id("", 12));
                    tx.insert_token(&TokenRecord {
                        serial: token.clone(),
                        reader: "seed".into(),
                        order: record.order.id.clone(),
                        key_id: new_id("", 16),
                        certificate_serial: c.serial.clone(),
                        state: TokenState::Active,
                        created_at: c.not_before,
                    })
                    .await?;
                    tx.set_fulfilment_token(&record.order.id, &token, created).await?;
                    tx.set_shipment(&record.order.id, s).await?;
                }
                if sampled.contains(&i) {
                    let session = self.open_session(&mut tx, applicant, "seed", self.now()).await?;
                    let certificate = o.on_key.as_ref().map(|(c, _)| c);
                    let ocsp_request = certificate.map(|c| {
                        let serial = SerialNumber::from_hex(&c.serial).expect("serials we made are hex");
                        CertId::for_serial(CertIdHash::Sha1, &ca.certificate, &serial).request_der()
                    });
                    picked.push(SeedSample {
                        session_token: session.token,
                        order_id: record.order.id.to_string(),
                        serial: certificate.map(|c| c.serial.clone()),
                        ocsp_request,
                    });
                }
            }
            Ok(picked)
        })
    }
}

/// Whether the `i`-th order is in the sample: one in every `every`, at a place within its
/// stretch that moves from stretch to stretch (so the sample has every ending).
fn is_sampled(i: usize, every: usize, sample: usize) -> bool {
    let stretch = i / every;
    stretch < sample && i % every == (stretch * 37 + 11) % every
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_id_cards_pass_the_applicants_checks_and_differ() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        let mut seen = std::collections::HashSet::new();
        for n in (0..2_000_000).step_by(997) {
            let card = seeded_id_card(n, today).unwrap();
            assert!(seen.insert(card.id_number.as_str().to_owned()), "ID number of {n} repeats");
        }
    }

    #[test]
    fn the_sample_has_the_size_asked_for_and_mostly_orders_with_certificates() {
        let (count, sample) = (100_000, 1000);
        let picked: Vec<usize> = (0..count).filter(|&i| is_sampled(i, count / sample, sample)).collect();
        assert_eq!(picked.len(), sample);
        let activated = picked.iter().filter(|&&i| matches!(Ending::of(i), Ending::Activated { .. })).count();
        assert!((850..=950).contains(&activated), "{activated} of {sample} sampled orders activated");
    }

    #[test]
    fn most_seeded_orders_end_activated_and_every_ending_occurs() {
        let endings: Vec<Ending> = (0..1000).map(Ending::of).collect();
        let activated = endings.iter().filter(|e| matches!(e, Ending::Activated { .. })).count();
        assert_eq!(activated, 900);
        assert!(endings.contains(&Ending::Activated { revoked: true }));
        assert!(endings.contains(&Ending::Submitted) && endings.contains(&Ending::Expired));
    }
}
