//! Review (受理审核): the queue of submitted applications, oldest first; everything a
//! reviewer looks at side by side (the dossier); and the three decisions — approve, send one
//! step back with a reason, reject with a reason (the refund starts). Also the review of
//! activations that automatic verification left open. Every decision is an audit event naming
//! the staff member, and each opening of a photo or video is logged.

use crate::staff::StaffMember;
use crate::{App, AppError, in_tx};
use serde_json::json;
use yiqian_domain::applicant::{ConfirmedIdCard, ShippingAddress};
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::staff::Permission;
use yiqian_domain::{Command, OrderId, OrderState, Step};
use yiqian_providers::identity::{IdCardReading, LivenessVerdict};
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::blobs::BlobReader;
use yiqian_store::fulfilment::{CounterServiceRecord, FulfilmentRecord, InvoiceRecord, TokenRecord};
use yiqian_store::orders::{HistoryEntry, OrderRecord};

/// The ID card as confirmed by the applicant, with its photos and what OCR read.
#[derive(Debug, Clone)]
pub struct IdCardEvidence {
    /// The confirmed fields.
    pub card: ConfirmedIdCard,
    /// Blob id of the photo side.
    pub front_blob: String,
    /// Blob id of the emblem side.
    pub back_blob: String,
    /// What the OCR provider read (empty in the sandbox).
    pub ocr: IdCardReading,
    /// Which provider read it.
    pub ocr_provider: String,
}

/// A face video and its verdict.
#[derive(Debug, Clone)]
pub struct LivenessEvidence {
    /// The digits the applicant was asked to read.
    pub digits: String,
    /// Blob id of the video.
    pub video_blob: String,
    /// Which provider checked it.
    pub provider: String,
    /// What it concluded.
    pub verdict: LivenessVerdict,
}

/// Everything staff see about one order.
#[derive(Debug, Clone)]
pub struct Dossier {
    /// The order.
    pub record: OrderRecord,
    /// Its timeline.
    pub history: Vec<HistoryEntry>,
    /// The bound phone.
    pub phone: Option<MobileNumber>,
    /// The ID card.
    pub id_card: Option<IdCardEvidence>,
    /// The face video of the application.
    pub liveness: Option<LivenessEvidence>,
    /// Blob id of the handwritten signature (PNG).
    pub signature_blob: Option<String>,
    /// The shipping address.
    pub address: Option<ShippingAddress>,
    /// The face video of the activation, once submitted.
    pub activation: Option<LivenessEvidence>,
    /// Fulfilment, once approved.
    pub fulfilment: Option<FulfilmentRecord>,
    /// Keys made for the order.
    pub tokens: Vec<TokenRecord>,
    /// The invoice, if requested.
    pub invoice: Option<InvoiceRecord>,
    /// Counter services done for the order.
    pub counter_services: Vec<CounterServiceRecord>,
    /// When and why its personal data was deleted, if it was.
    pub erasure: Option<yiqian_store::erasure::Erasure>,
}

impl Dossier {
    /// The applicant's name as confirmed on the ID card.
    pub fn applicant_name(&self) -> Option<&str> {
        self.id_card.as_ref().map(|c| c.card.name.as_str())
    }
}

fn liveness_evidence(v: &serde_json::Value) -> Option<LivenessEvidence> {
    Some(LivenessEvidence {
        digits: v["digits"].as_str()?.to_owned(),
        video_blob: v["video"].as_str()?.to_owned(),
        provider: v["provider"].as_str().unwrap_or_default().to_owned(),
        verdict: serde_json::from_value(v["verdict"].clone()).ok()?,
    })
}

/// A reason typed by staff: required, at most 200 characters.
pub(crate) fn staff_reason(reason: &str) -> Result<String, AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AppError::invalid("reason_required", "请填写原因(不超过200字)"));
    }
    Ok(reason.to_owned())
}

pub(crate) fn parse_order_id(id: &str) -> Result<OrderId, AppError> {
    OrderId::parse(id.trim()).ok_or(AppError::NotFound("订单"))
}

/// Loads an order for staff work within a unit of work; an unknown number is "not found".
pub(crate) async fn staff_order(tx: &mut yiqian_store::Tx, id: &OrderId) -> Result<OrderRecord, AppError> {
    match tx.load_order(id).await {
        Ok(r) => Ok(r),
        Err(yiqian_store::StoreError::NotFound(_)) => Err(AppError::NotFound("订单")),
        Err(e) => Err(e.into()),
    }
}

impl App {
    /// Submitted applications, longest waiting first.
    pub async fn review_queue(&self, staff: &StaffMember, limit: i64) -> Result<Vec<OrderRecord>, AppError> {
        staff.require(Permission::ReviewApplications)?;
        Ok(self.store().read().await?.orders_in_state(OrderState::Submitted, limit).await?)
    }

    /// Activations waiting for a reviewer, longest waiting first.
    pub async fn activation_queue(&self, staff: &StaffMember, limit: i64) -> Result<Vec<OrderRecord>, AppError> {
        staff.require(Permission::ReviewActivations)?;
        Ok(self.store().read().await?.orders_in_state(OrderState::ActivationReview, limit).await?)
    }

    /// Orders in `state`, for the staff whose work they are.
    pub async fn orders_in_state(
        &self,
        staff: &StaffMember,
        state: OrderState,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, AppError> {
        let permission = match state {
            OrderState::Submitted => Permission::ReviewApplications,
            OrderState::ActivationReview => Permission::ReviewActivations,
            OrderState::Approved | OrderState::Issued | OrderState::Shipped => Permission::IssueTokens,
            _ => Permission::CounterService,
        };
        staff.require(permission)?;
        Ok(self.store().read().await?.orders_in_state(state, limit).await?)
    }

    /// Everything about one order, for any staff role that works on orders. The reading is
    /// audited: the dossier holds personal data.
    pub async fn dossier(&self, staff: &StaffMember, order_id: &str) -> Result<Dossier, AppError> {
        staff.require_any(&[
            Permission::ReviewApplications,
            Permission::ReviewActivations,
            Permission::IssueTokens,
            Permission::CounterService,
            Permission::ManageInvoices,
        ])?;
        let id = parse_order_id(order_id)?;
        let dossier = {
            let mut tx = self.store().read().await?;
            let record = staff_order(&mut tx, &id).await?;
            let phone = tx
                .material(&id, Step::Phone.code())
                .await?
                .and_then(|v| v["phone"].as_str().and_then(|p| MobileNumber::parse(p).ok()));
            let id_card = tx.material(&id, Step::IdCard.code()).await?.and_then(|v| {
                Some(IdCardEvidence {
                    card: serde_json::from_value(v["card"].clone()).ok()?,
                    front_blob: v["photos"]["front"].as_str()?.to_owned(),
                    back_blob: v["photos"]["back"].as_str()?.to_owned(),
                    ocr: serde_json::from_value(v["photos"]["ocr"].clone()).unwrap_or_default(),
                    ocr_provider: v["photos"]["ocr_provider"].as_str().unwrap_or_default().to_owned(),
                })
            });
            let liveness = tx.material(&id, Step::Liveness.code()).await?.as_ref().and_then(liveness_evidence);
            let signature_blob =
                tx.material(&id, Step::Signature.code()).await?.and_then(|v| v["image"].as_str().map(str::to_owned));
            let address = tx.material(&id, Step::Address.code()).await?.and_then(|v| serde_json::from_value(v).ok());
            let activation =
                tx.material(&id, crate::activation::ACTIVATION).await?.as_ref().and_then(liveness_evidence);
            Dossier {
                history: tx.history(&id).await?,
                phone,
                id_card,
                liveness,
                signature_blob,
                address,
                activation,
                fulfilment: tx.fulfilment(&id).await?,
                tokens: tx.tokens_of(&id).await?,
                invoice: tx.invoice(&id).await?,
                counter_services: tx.counter_services_of(&id).await?,
                erasure: tx.erasure(&id).await?,
                record,
            }
        };
        self.audit_staff_read(staff, &format!("order:{id}"), "order.dossier_viewed", json!({})).await?;
        Ok(dossier)
    }

    /// Opens a photo, video or signature of an order for staff, to read in ranges; the access
    /// is audited.
    pub async fn staff_blob(&self, staff: &StaffMember, order_id: &str, blob_id: &str) -> Result<BlobReader, AppError> {
        staff.require_any(&[
            Permission::ReviewApplications,
            Permission::ReviewActivations,
            Permission::IssueTokens,
            Permission::CounterService,
            Permission::ManageInvoices,
        ])?;
        let id = parse_order_id(order_id)?;
        let reader = match self.store().blob_reader(blob_id).await {
            Ok(found) => found,
            Err(yiqian_store::StoreError::NotFound(_)) => return Err(AppError::NotFound("文件")),
            Err(e) => return Err(e.into()),
        };
        let info = &reader.info;
        if info.order_id != id.as_str() {
            return Err(AppError::NotFound("文件"));
        }
        self.audit_staff_read(
            staff,
            &format!("order:{id}"),
            "blob.viewed",
            json!({"blob": info.id, "kind": info.kind}),
        )
        .await?;
        Ok(reader)
    }

    async fn audit_staff_read(
        &self,
        staff: &StaffMember,
        subject: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let actor = staff.actor().label();
        in_tx!(self, |tx| {
            tx.audit(NewAuditEntry { actor: &actor, action, subject, detail: detail.clone() }, self.now()).await?;
            Ok(())
        })
    }

    /// Approves a submitted application (审核通过): the order goes to 待发货 and the
    /// applicant gets an SMS.
    pub async fn approve_application(&self, staff: &StaffMember, order_id: &str) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ReviewApplications)?;
        self.staff_command(staff, order_id, Command::Approve).await
    }

    /// Sends one step back for correction; the applicant gets an SMS and the step reopens.
    pub async fn send_back_application(
        &self,
        staff: &StaffMember,
        order_id: &str,
        step: &str,
        reason: &str,
    ) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ReviewApplications)?;
        let step = Step::from_code(step).ok_or_else(|| AppError::invalid("invalid_step", "请选择需要补正的步骤"))?;
        let reason = staff_reason(reason)?;
        self.staff_command(staff, order_id, Command::SendBack { step, reason }).await
    }

    /// Rejects an application; the refund starts through the original channel.
    pub async fn reject_application(
        &self,
        staff: &StaffMember,
        order_id: &str,
        reason: &str,
    ) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ReviewApplications)?;
        let reason = staff_reason(reason)?;
        self.staff_command(staff, order_id, Command::Reject { reason }).await
    }

    /// Accepts an activation that was left for review: the certificate is released and the
    /// PIN is sent.
    pub async fn approve_activation(&self, staff: &StaffMember, order_id: &str) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ReviewActivations)?;
        self.staff_command(staff, order_id, Command::ApproveActivation).await
    }

    /// Refuses an activation video; the applicant verifies again.
    pub async fn reject_activation(
        &self,
        staff: &StaffMember,
        order_id: &str,
        reason: &str,
    ) -> Result<OrderRecord, AppError> {
        staff.require(Permission::ReviewActivations)?;
        let reason = staff_reason(reason)?;
        self.staff_command(staff, order_id, Command::RejectActivation { reason }).await
    }

    /// Applies a staff member's command to an order in one unit of work.
    pub(crate) async fn staff_command(
        &self,
        staff: &StaffMember,
        order_id: &str,
        command: Command,
    ) -> Result<OrderRecord, AppError> {
        let id = parse_order_id(order_id)?;
        let actor = staff.actor();
        in_tx!(self, |tx| {
            let rec = staff_order(&mut tx, &id).await?;
            let (rec, _) = self.apply(&mut tx, &rec, &actor, command.clone()).await?;
            Ok(rec)
        })
    }
}
