//! 导出我的个人资料: an applicant's copy of the personal data yiqian holds about them (PIPL
//! art. 45) — their login phone, and for each order what the order page shows plus the
//! materials they gave (ID card, phone, address, the face-check and signature records), the
//! photos and videos on file (listed by kind and size; their copies are given by the CA on
//! request), the certificates issued to them, and whether anything was deleted. Every export
//! is in the audit trail.

use crate::orders::OrderView;
use crate::{App, AppError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::{ApplicantId, Step};
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::blobs::BlobInfo;
use yiqian_store::certificates::CertificateRecord;
use yiqian_store::erasure::Erasure;

/// Material keys beyond the steps that hold what the applicant gave.
const OTHER_MATERIALS: &[&str] = &[crate::activation::ACTIVATION];

/// The personal data of one applicant.
pub struct PersonalDataExport {
    /// When it was made.
    pub exported_at: DateTime<Utc>,
    /// The phone they log in with.
    pub phone: MobileNumber,
    /// Each of their orders, newest first.
    pub orders: Vec<OrderExport>,
}

/// One order's part of an export.
pub struct OrderExport {
    /// What the order page shows.
    pub view: OrderView,
    /// The materials on file, by key (`phone`, `id_card`, `liveness`, …), as given.
    pub materials: Vec<(String, Value)>,
    /// The photos, videos and signature images on file.
    pub media: Vec<BlobInfo>,
    /// The certificates issued for the order.
    pub certificates: Vec<CertificateRecord>,
    /// When and why its personal data was deleted, if it was.
    pub erasure: Option<Erasure>,
}

impl App {
    /// Gathers the applicant's personal data for them to download, and records the export.
    pub async fn export_personal_data(&self, applicant: &ApplicantId) -> Result<PersonalDataExport, AppError> {
        let (phone, records) = {
            let mut tx = self.store().read().await?;
            (tx.applicant_phone(applicant).await?, tx.orders_of(applicant).await?)
        };
        let mut orders = Vec::with_capacity(records.len());
        for rec in records {
            let view = self.order_view(applicant, rec.order.id.as_str()).await?;
            let id = rec.order.id.clone();
            let mut tx = self.store().read().await?;
            let mut materials = Vec::new();
            for key in Step::ALL.iter().map(|s| s.code()).chain(OTHER_MATERIALS.iter().copied()) {
                if let Some(value) = tx.material(&id, key).await? {
                    materials.push((key.to_owned(), value));
                }
            }
            let erasure = tx.erasure(&id).await?;
            let serials: Vec<String> = tx.tokens_of(&id).await?.into_iter().map(|t| t.certificate_serial).collect();
            drop(tx);
            let mut certificates = Vec::new();
            for serial in serials {
                certificates.extend(self.store().certificate(&serial).await?);
            }
            let media = self.store().blobs_of(&id).await?;
            orders.push(OrderExport { view, materials, media, certificates, erasure });
        }
        let now = self.now();
        let subject = format!("applicant:{applicant}");
        let detail = json!({"orders": orders.len()});
        crate::in_tx!(self, |tx| {
            tx.audit(
                NewAuditEntry {
                    actor: &subject,
                    action: "applicant.data_exported",
                    subject: &subject,
                    detail: detail.clone(),
                },
                now,
            )
            .await?;
            Ok(())
        })?;
        Ok(PersonalDataExport { exported_at: now, phone, orders })
    }
}
