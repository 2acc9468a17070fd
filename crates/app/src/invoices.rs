//! E-invoices (电子发票, PRODUCT.md §1.12): after activation the applicant asks for one
//! (company or personal 抬头). With an e-invoicing service configured (Nuonuo), the outbox asks
//! it, follows the asynchronous issuance with backoff (a callback from the service only makes
//! it look at once) and stores the PDF; without one, or when the service fails, finance makes
//! the invoice in the tax system and uploads its PDF here. Either way the applicant is told by
//! SMS and downloads it from 已购记录.

use crate::apply::INVOICE;
use crate::review::{parse_order_id, staff_order};
use crate::staff::StaffMember;
use crate::{App, AppError, in_tx, new_id};
use serde_json::json;
use yiqian_domain::ApplicantId;
use yiqian_domain::OrderId;
use yiqian_domain::invoice::{InvoiceError, InvoiceForm, InvoiceState, check_invoice};
use yiqian_domain::staff::Permission;
use yiqian_providers::ProviderError;
use yiqian_providers::invoice::{InvoiceIssuer, InvoiceRequest as IssuerRequest, InvoiceStatus};
use yiqian_providers::sms::SmsTemplate;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::blobs::BlobInfo;
use yiqian_store::blobs::BlobReader;
use yiqian_store::fulfilment::InvoiceRecord;

/// Largest invoice PDF accepted.
pub const MAX_INVOICE_PDF: usize = 5 * 1024 * 1024;

impl From<InvoiceError> for AppError {
    fn from(e: InvoiceError) -> Self {
        match e {
            InvoiceError::NotActivated => AppError::Conflict { code: "not_activated", message: e.to_string() },
            InvoiceError::AlreadyRequested => AppError::Conflict { code: "invoice_requested", message: e.to_string() },
            other => AppError::invalid("invalid_invoice", other.to_string()),
        }
    }
}

fn check_invoice_no(no: &str) -> Result<String, AppError> {
    let no = no.trim();
    if (8..=30).contains(&no.len()) && no.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(no.to_owned())
    } else {
        Err(AppError::invalid("invalid_invoice_no", "发票号码应为8至30位数字或字母"))
    }
}

impl App {
    /// Asks for an e-invoice for the applicant's activated order (申请开票).
    pub async fn request_invoice(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        form: &InvoiceForm,
    ) -> Result<InvoiceRecord, AppError> {
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            let request = check_invoice(rec.order.state, form)?;
            match tx.insert_invoice(&rec.order.id, &request, rec.order.price.0 as i64, now).await {
                Ok(()) => {}
                Err(yiqian_store::StoreError::Duplicate) => return Err(InvoiceError::AlreadyRequested.into()),
                Err(e) => return Err(e.into()),
            }
            if self.providers().invoices.is_some() {
                let payload = json!({"order": rec.order.id});
                tx.enqueue(&new_id("OB", 20), INVOICE, &format!("invoice:{}", rec.order.id), &payload, now).await?;
                self.wake_outbox();
            }
            let actor = crate::apply::Actor::Applicant(applicant.clone()).label();
            let detail = json!({"buyer_kind": request.buyer.kind_word()});
            tx.audit(
                NewAuditEntry {
                    actor: &actor,
                    action: "invoice.requested",
                    subject: &format!("order:{}", rec.order.id),
                    detail,
                },
                now,
            )
            .await?;
            Ok(())
        })?;
        self.invoice_of(applicant, order_id).await?.ok_or_else(|| AppError::Internal("invoice vanished".into()))
    }

    /// The invoice of the applicant's order, if one was requested.
    pub async fn invoice_of(&self, applicant: &ApplicantId, order_id: &str) -> Result<Option<InvoiceRecord>, AppError> {
        let mut tx = self.store().read().await?;
        let rec = self.own_order(&mut tx, applicant, order_id).await?;
        Ok(tx.invoice(&rec.order.id).await?)
    }

    /// The issued invoice's PDF, for the applicant: opened piece by piece as it is read.
    pub async fn invoice_pdf(&self, applicant: &ApplicantId, order_id: &str) -> Result<BlobReader, AppError> {
        let invoice = self.invoice_of(applicant, order_id).await?.ok_or(AppError::NotFound("发票"))?;
        self.invoice_file(&invoice).await
    }

    async fn invoice_file(&self, invoice: &InvoiceRecord) -> Result<BlobReader, AppError> {
        match (&invoice.state, &invoice.pdf_blob) {
            (InvoiceState::Issued, Some(blob)) => Ok(self.store().blob_reader(blob).await?),
            _ => Err(AppError::Conflict {
                code: "invoice_pending", message: "发票尚在开具中,请稍后查看".into()
            }),
        }
    }

    /// Invoices in `state`, oldest request first, for finance.
    pub async fn invoice_queue(
        &self,
        staff: &StaffMember,
        state: InvoiceState,
        limit: i64,
    ) -> Result<Vec<InvoiceRecord>, AppError> {
        staff.require(Permission::ManageInvoices)?;
        Ok(self.store().read().await?.invoices_in_state(state, limit).await?)
    }

    /// An issued invoice's PDF, for finance: opened piece by piece as it is read.
    pub async fn staff_invoice_pdf(&self, staff: &StaffMember, order_id: &str) -> Result<BlobReader, AppError> {
        staff.require(Permission::ManageInvoices)?;
        let id = parse_order_id(order_id)?;
        let invoice = self.store().read().await?.invoice(&id).await?.ok_or(AppError::NotFound("发票"))?;
        self.invoice_file(&invoice).await
    }

    /// Records an invoice made in the tax system: its number and PDF. The applicant gets an
    /// SMS and can download it.
    pub async fn issue_invoice(
        &self,
        staff: &StaffMember,
        order_id: &str,
        invoice_no: &str,
        pdf: &[u8],
    ) -> Result<InvoiceRecord, AppError> {
        staff.require(Permission::ManageInvoices)?;
        let id = parse_order_id(order_id)?;
        let invoice_no = check_invoice_no(invoice_no)?;
        if !pdf.starts_with(b"%PDF-") {
            return Err(AppError::invalid("invalid_upload", "请上传PDF格式的电子发票"));
        }
        if pdf.len() > MAX_INVOICE_PDF {
            return Err(AppError::invalid("invalid_upload", "发票文件不能超过5MB"));
        }
        self.record_issued_invoice(&staff.actor().label(), &id, &invoice_no, pdf).await?;
        self.store().read().await?.invoice(&id).await?.ok_or_else(|| AppError::Internal("invoice vanished".into()))
    }

    /// Stores an issued invoice's PDF, marks the invoice issued and tells the applicant, once.
    /// `Conflict` when it was issued already.
    async fn record_issued_invoice(
        &self,
        actor: &str,
        id: &OrderId,
        invoice_no: &str,
        pdf: &[u8],
    ) -> Result<(), AppError> {
        let blob = BlobInfo {
            id: new_id("BL", 24),
            order_id: id.to_string(),
            kind: "invoice".into(),
            content_type: "application/pdf".into(),
            size: pdf.len() as i64,
        };
        self.store().put_blob(&blob, pdf).await?;
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = staff_order(&mut tx, id).await?;
            match tx.invoice(id).await? {
                None => return Err(AppError::NotFound("发票申请")),
                Some(i) if i.state == InvoiceState::Issued => {
                    return Err(AppError::Conflict { code: "invoice_issued", message: "该发票已开具".into() });
                }
                Some(_) => {}
            }
            tx.insert_blob(&blob, now).await?;
            tx.set_invoice_issued(id, invoice_no, &blob.id, actor, now).await?;
            tx.audit(
                NewAuditEntry {
                    actor,
                    action: "invoice.issued",
                    subject: &format!("order:{id}"),
                    detail: json!({"invoice_no": invoice_no}),
                },
                now,
            )
            .await?;
            self.queue_sms(
                &mut tx,
                &rec,
                SmsTemplate::InvoiceIssued { order: id.to_string() },
                &format!("sms:{id}:invoice"),
                now,
            )
            .await?;
            Ok(())
        })
    }

    /// Outbox work for an invoice requested while a service is configured: submit it (once;
    /// the service refuses a second invoice for the same order number), then look at its
    /// status. Still in progress → a transient error, so the outbox looks again later with
    /// backoff; issued → the PDF is fetched and stored; failed → the reason is kept for finance.
    pub(crate) async fn deliver_invoice(&self, payload: &serde_json::Value) -> Result<(), ProviderError> {
        let internal = |e: AppError| ProviderError::Transient { provider: "invoice", detail: e.to_string() };
        let Some(issuer) = self.providers().invoices.clone() else {
            return Err(ProviderError::Rejected {
                provider: "invoice",
                detail: "no e-invoicing service is configured".into(),
            });
        };
        let order = payload["order"]
            .as_str()
            .and_then(OrderId::parse)
            .ok_or_else(|| ProviderError::Rejected { provider: "invoice", detail: "malformed payload".into() })?;
        let invoice = async { Ok::<_, AppError>(self.store().read().await?.invoice(&order).await?) };
        let Some(invoice) = invoice.await.map_err(internal)? else { return Ok(()) };
        if invoice.state == InvoiceState::Issued || invoice.failure.is_some() {
            return Ok(());
        }
        let serial = match &invoice.submitted {
            Some((_, serial)) => serial.clone(),
            None => {
                let request = IssuerRequest {
                    order_no: order.to_string(),
                    buyer: invoice.request.buyer.clone(),
                    buyer_phone: None,
                    amount: yiqian_domain::Fen(invoice.amount_fen as u64),
                    goods_name: self.config().product.name.clone(),
                    invoice_date: invoice
                        .requested_at
                        .with_timezone(&crate::china_time())
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                };
                let serial = issuer.request_invoice(&request).await?;
                self.mark_invoice_submitted(&order, issuer.name(), &serial).await.map_err(internal)?;
                serial
            }
        };
        self.follow_invoice(issuer.as_ref(), &order, &serial).await
    }

    async fn follow_invoice(
        &self,
        issuer: &dyn InvoiceIssuer,
        order: &OrderId,
        serial: &str,
    ) -> Result<(), ProviderError> {
        let internal = |e: AppError| ProviderError::Transient { provider: "invoice", detail: e.to_string() };
        match issuer.invoice_status(serial).await? {
            InvoiceStatus::InProgress => Err(ProviderError::Transient {
                provider: issuer.name(),
                detail: "the invoice is still being issued".into(),
            }),
            InvoiceStatus::Issued { number, pdf_url, .. } => {
                let pdf = issuer.fetch_pdf(&pdf_url).await?;
                if !pdf.starts_with(b"%PDF-") || pdf.len() > MAX_INVOICE_PDF {
                    return Err(ProviderError::Transient {
                        provider: issuer.name(),
                        detail: "the invoice PDF is not usable yet".into(),
                    });
                }
                match self.record_issued_invoice(&format!("provider:{}", issuer.name()), order, &number, &pdf).await {
                    Ok(()) | Err(AppError::Conflict { .. }) => Ok(()),
                    Err(e) => Err(internal(e)),
                }
            }
            InvoiceStatus::Failed { reason } => {
                tracing::warn!(order = %order, provider = issuer.name(), "e-invoice failed; finance must issue it by hand");
                self.mark_invoice_failed(order, issuer.name(), &reason).await.map_err(internal)
            }
        }
    }

    async fn mark_invoice_submitted(&self, order: &OrderId, provider: &str, serial: &str) -> Result<(), AppError> {
        in_tx!(self, |tx| {
            tx.set_invoice_submitted(order, provider, serial).await?;
            Ok(())
        })
    }

    async fn mark_invoice_failed(&self, order: &OrderId, provider: &str, reason: &str) -> Result<(), AppError> {
        in_tx!(self, |tx| {
            let now = self.now();
            tx.set_invoice_failure(order, reason).await?;
            tx.audit(
                NewAuditEntry {
                    actor: &format!("provider:{provider}"),
                    action: "invoice.failed",
                    subject: &format!("order:{order}"),
                    detail: json!({"reason": reason}),
                },
                now,
            )
            .await?;
            Ok(())
        })
    }

    /// The e-invoicing service says an order's invoice changed (its callback, a hint only):
    /// look at it now. Unknown orders and invoices not submitted to a service are ignored.
    pub async fn invoice_hint(&self, order_no: &str) -> Result<(), AppError> {
        let Some(order) = OrderId::parse(order_no) else { return Ok(()) };
        let Some(issuer) = self.providers().invoices.clone() else { return Ok(()) };
        let invoice = self.store().read().await?.invoice(&order).await?;
        let Some(invoice) = invoice else { return Ok(()) };
        let Some((_, serial)) = invoice.submitted.filter(|_| invoice.state == InvoiceState::Requested) else {
            return Ok(());
        };
        match self.follow_invoice(issuer.as_ref(), &order, &serial).await {
            Ok(()) => Ok(()),
            // Still in progress, or the service is unreachable: the outbox keeps looking.
            Err(e) if e.is_transient() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
