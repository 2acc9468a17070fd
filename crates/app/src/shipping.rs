//! Shipping (发货): the parcel papers (per applicant, the business confirmation form 业务确认单
//! in two copies and the user guide 《个人数字证书使用说明》; printable one order or a batch at a
//! time), the courier hand-over that makes an order 已发货 — booked with the connected courier
//! (SF Express), or a waybill entered by hand —, the parcel's route for the order page, and the
//! return of the signed copy.

use crate::review::{parse_order_id, staff_order};
use crate::staff::StaffMember;
use crate::{App, AppError, china_time, in_tx};
use serde_json::json;
use std::sync::Arc;
use yiqian_documents::{ConfirmationForm, DocumentRenderer};
use yiqian_domain::applicant::ShippingAddress;
use yiqian_domain::staff::Permission;
use yiqian_domain::{ApplicantId, Command, OrderId, OrderState, Step};
use yiqian_providers::courier::{RouteEvent, ShipmentRequest};
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::fulfilment::{FulfilmentRecord, Shipment};
use yiqian_store::orders::OrderRecord;

/// The couriers staff choose from when entering a waybill by hand.
pub const COURIERS: [&str; 5] = ["顺丰速运", "中国邮政EMS", "京东物流", "圆通速递", "中通快递"];

/// The three lists of the fulfilment desk (制证发货).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskList {
    /// 待制证: approved orders, longest waiting first.
    ToIssue,
    /// 待发货: orders whose key is made, longest waiting first.
    ToShip,
    /// 已发货: orders handed to the courier, whatever happened since, latest shipment first.
    Shipped,
}

/// An order as the fulfilment desk lists it.
#[derive(Debug, Clone)]
pub struct DeskOrder {
    /// The order.
    pub record: OrderRecord,
    /// The applicant's name as confirmed on the ID card (it ties key, form and parcel together).
    pub applicant_name: String,
    /// Key, shipment and returned form, once approved.
    pub fulfilment: Option<FulfilmentRecord>,
}

/// Checks a waybill number: 8–30 letters and digits.
fn check_tracking_no(tracking_no: &str) -> Result<String, AppError> {
    let t = tracking_no.trim().to_ascii_uppercase();
    if (8..=30).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(t)
    } else {
        Err(AppError::invalid("invalid_tracking_no", "运单号应为8至30位字母或数字"))
    }
}

impl App {
    fn documents(&self) -> Result<Arc<DocumentRenderer>, AppError> {
        if let Some(r) = self.inner.documents.get() {
            return Ok(r.clone());
        }
        let renderer = Arc::new(DocumentRenderer::new().map_err(|e| AppError::Internal(format!("documents: {e}")))?);
        Ok(self.inner.documents.get_or_init(|| renderer).clone())
    }

    /// The activation link printed as a QR code on the confirmation form (and in full in the
    /// user guide).
    pub fn activation_url(&self, code: &str) -> String {
        format!("{}/activate/{code}", self.config().public_url.trim_end_matches('/'))
    }

    /// Renders the parcel papers of issued orders as one PDF, applicant after applicant: the
    /// confirmation form's two copies, then the user guide (three A4 pages per order, to print
    /// single-sided); and records that the forms were printed.
    pub async fn confirmation_forms(&self, staff: &StaffMember, orders: &[String]) -> Result<Vec<u8>, AppError> {
        staff.require(Permission::PrintForms)?;
        if orders.is_empty() {
            return Err(AppError::invalid("batch_empty", "请选择要打印的订单"));
        }
        let mut forms = Vec::with_capacity(orders.len());
        let mut ids: Vec<OrderId> = Vec::with_capacity(orders.len());
        for o in orders {
            let id = parse_order_id(o)?;
            let d = self.dossier(staff, id.as_str()).await?;
            if !matches!(d.record.order.state, OrderState::Issued | OrderState::Shipped) {
                return Err(AppError::Conflict {
                    code: "not_issued",
                    message: format!("订单{id}尚未制证,不能打印业务确认单"),
                });
            }
            let missing = |what: &str| AppError::Internal(format!("issued order {id} has no {what}"));
            let card = d.id_card.as_ref().ok_or_else(|| missing("ID card"))?;
            let address = d.address.as_ref().ok_or_else(|| missing("address"))?;
            let fulfilment = d.fulfilment.as_ref().ok_or_else(|| missing("fulfilment"))?;
            let token_serial = fulfilment.token_serial.clone().ok_or_else(|| missing("key"))?;
            let token = d.tokens.iter().find(|t| t.serial == token_serial).ok_or_else(|| missing("key record"))?;
            let signature = d.signature_blob.as_deref().ok_or_else(|| missing("signature"))?;
            let (_, signature_png) = self.store().get_blob(signature).await?;
            let product = &self.config().product;
            forms.push(ConfirmationForm {
                order_no: id.to_string(),
                applicant_name: card.card.name.clone(),
                id_number_masked: card.card.id_number.masked(),
                mobile_masked: d.phone.as_ref().map(|p| p.masked()).unwrap_or_default(),
                recipient: format!("{} {}", address.recipient, address.phone.masked()),
                address: format!("{}{}{}{}", address.province, address.city, address.district, address.street),
                product: product.name.clone(),
                validity: format!("{}年", product.validity_years),
                certificate_serial: token.certificate_serial.clone(),
                token_serial: token.serial.clone(),
                issued_on: token.created_at.with_timezone(&china_time()).format("%Y年%m月%d日").to_string(),
                signature_png,
                activation_url: self.activation_url(&fulfilment.activation_code),
                ca_name: self.config().ca_display_name.clone(),
                customer_service: self.config().customer_service.clone(),
            });
            ids.push(id);
        }
        let renderer = self.documents()?;
        let pdf = tokio::task::spawn_blocking(move || renderer.shipping_documents(&forms))
            .await
            .map_err(|e| AppError::Internal(format!("rendering task: {e}")))?
            .map_err(|e| AppError::Internal(format!("rendering the confirmation forms and user guides: {e}")))?;
        let actor = staff.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            for id in &ids {
                tx.set_form_printed(id, now).await?;
                tx.audit(
                    NewAuditEntry {
                        actor: &actor,
                        action: "form.printed",
                        subject: &format!("order:{id}"),
                        detail: json!({}),
                    },
                    now,
                )
                .await?;
            }
            Ok(())
        })?;
        Ok(pdf)
    }

    /// Hands an issued order to the courier: records the waybill and makes the order 已发货
    /// (the applicant gets an SMS with the waybill number).
    pub async fn ship_order(
        &self,
        staff: &StaffMember,
        order_id: &str,
        courier: &str,
        tracking_no: &str,
    ) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ShipOrders)?;
        let id = parse_order_id(order_id)?;
        let courier = courier.trim();
        if !COURIERS.contains(&courier) {
            return Err(AppError::invalid("invalid_courier", "请选择快递公司"));
        }
        let tracking_no = check_tracking_no(tracking_no)?;
        let actor = staff.actor();
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = staff_order(&mut tx, &id).await?;
            let shipment = Shipment {
                courier: courier.to_owned(),
                tracking_no: tracking_no.clone(),
                shipped_at: now,
                shipped_by: actor.label(),
            };
            let command = Command::Ship { courier: courier.to_owned(), tracking_no: tracking_no.clone() };
            // Check the transition before touching the shipment record.
            rec.order.execute(command.clone())?;
            tx.set_shipment(&id, &shipment).await?;
            let (rec, _) = self.apply(&mut tx, &rec, &actor, command).await?;
            Ok(rec)
        })
    }

    /// Books the parcel with the configured courier (SF Express) and ships the order under the
    /// waybill it returns. Booking is idempotent at the courier (keyed by the order number), so
    /// a retry after a failure between booking and recording ships under the same waybill.
    pub async fn book_and_ship(&self, staff: &StaffMember, order_id: &str) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ShipOrders)?;
        let Some(courier) = self.providers().courier.clone() else {
            return Err(AppError::Conflict {
                code: "no_courier", message: "未接入快递公司,请手工填写运单号".into()
            });
        };
        let id = parse_order_id(order_id)?;
        let address = {
            let mut tx = self.store().read().await?;
            let rec = staff_order(&mut tx, &id).await?;
            if rec.order.state != OrderState::Issued {
                return Err(AppError::Conflict {
                    code: "not_issued", message: "订单尚未制证,不能发货".into()
                });
            }
            tx.material(&id, Step::Address.code()).await?
        };
        let to: ShippingAddress = address
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| AppError::Conflict { code: "no_address", message: "订单缺少收件地址".into() })?;
        let request = ShipmentRequest { order: id.clone(), to, cargo: "数字证书UKEY及业务确认单".into() };
        let booked = courier.create_shipment(&request).await.map_err(|e| AppError::Conflict {
            code: "courier_refused",
            message: format!("{}下单失败,请稍后重试或手工填写运单号:{e}", courier.display_name()),
        })?;
        self.ship_order(staff, order_id, &booked.courier, &booked.tracking_no).await
    }

    /// The connected courier's name (e.g. `顺丰速运`), if one is connected.
    pub fn courier_name(&self) -> Option<&'static str> {
        self.providers().courier.as_ref().map(|c| c.display_name())
    }

    /// The parcel's route as the courier reports it, oldest first, for the applicant's order
    /// page; empty when no courier is connected, the order went with another courier, or the
    /// courier cannot be reached (the page still shows the waybill).
    pub async fn parcel_route(&self, applicant: &ApplicantId, order_id: &str) -> Result<Vec<RouteEvent>, AppError> {
        let Some(courier) = self.providers().courier.clone() else { return Ok(Vec::new()) };
        let (shipment, phone) = {
            let mut tx = self.store().read().await?;
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            let shipment = tx.fulfilment(&rec.order.id).await?.and_then(|f| f.shipment);
            let address: Option<ShippingAddress> =
                tx.material(&rec.order.id, Step::Address.code()).await?.and_then(|v| serde_json::from_value(v).ok());
            (shipment, address.map(|a| a.phone))
        };
        let (Some(shipment), Some(phone)) = (shipment, phone) else { return Ok(Vec::new()) };
        if shipment.courier != courier.display_name() {
            return Ok(Vec::new());
        }
        let last4 = &phone.as_str()[phone.as_str().len() - 4..];
        match courier.route(&shipment.tracking_no, last4).await {
            Ok(route) => Ok(route),
            Err(e) => {
                tracing::warn!(courier = courier.name(), error = %e, "parcel route unavailable");
                Ok(Vec::new())
            }
        }
    }

    /// Records that the applicant's signed copy of the confirmation form came back.
    pub async fn record_form_returned(&self, staff: &StaffMember, order_id: &str) -> Result<(), AppError> {
        staff.require(Permission::RecordFormReturns)?;
        let id = parse_order_id(order_id)?;
        let actor = staff.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            let f = tx.fulfilment(&id).await?.ok_or(AppError::NotFound("订单"))?;
            if f.shipment.is_none() {
                return Err(AppError::Conflict {
                    code: "not_shipped", message: "订单尚未发货,不能登记回寄".into()
                });
            }
            if f.form_returned.is_some() {
                return Ok(());
            }
            tx.set_form_returned(&id, &actor, now).await?;
            tx.audit(
                NewAuditEntry {
                    actor: &actor,
                    action: "form.returned",
                    subject: &format!("order:{id}"),
                    detail: json!({}),
                },
                now,
            )
            .await?;
            Ok(())
        })
    }
}

impl App {
    /// One list of the fulfilment desk, at most `limit` orders. Lists carry the applicant's
    /// name only; the full dossier is read (and audited) through [`App::dossier`].
    pub async fn fulfilment_desk(
        &self,
        staff: &StaffMember,
        list: DeskList,
        limit: i64,
    ) -> Result<Vec<DeskOrder>, AppError> {
        staff.require_any(&[
            Permission::IssueTokens,
            Permission::PrintForms,
            Permission::ShipOrders,
            Permission::RecordFormReturns,
        ])?;
        let mut tx = self.store().read().await?;
        let mut orders = Vec::new();
        match list {
            DeskList::ToIssue | DeskList::ToShip => {
                let state = if list == DeskList::ToIssue { OrderState::Approved } else { OrderState::Issued };
                for record in tx.orders_in_state(state, limit).await? {
                    let fulfilment = tx.fulfilment(&record.order.id).await?;
                    orders.push((record, fulfilment));
                }
            }
            DeskList::Shipped => {
                for fulfilment in tx.shipped_fulfilments(limit).await? {
                    orders.push((tx.load_order(&fulfilment.order).await?, Some(fulfilment)));
                }
            }
        }
        let mut out = Vec::with_capacity(orders.len());
        for (record, fulfilment) in orders {
            let card = tx.material(&record.order.id, Step::IdCard.code()).await?;
            let applicant_name = card.as_ref().and_then(|c| c["card"]["name"].as_str()).unwrap_or_default().to_owned();
            out.push(DeskOrder { record, applicant_name, fulfilment });
        }
        Ok(out)
    }
}
