//! The e-invoice seam: ask the invoicing service for a 数电票, learn its result (issuance is
//! asynchronous), fetch the PDF. Without a configured service, finance staff upload the
//! invoice issued in the tax system by hand.

use crate::ProviderError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use yiqian_domain::Fen;
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::invoice::InvoiceBuyer;

/// An invoice to issue for one paid order.
#[derive(Debug, Clone)]
pub struct InvoiceRequest {
    /// Our reference, unique per seller, at most 20 characters (the order number).
    pub order_no: String,
    /// 单位 or 个人.
    pub buyer: InvoiceBuyer,
    /// The buyer's phone, for the service's own delivery (not used when it pushes nothing).
    pub buyer_phone: Option<MobileNumber>,
    /// Amount including tax.
    pub amount: Fen,
    /// What was sold, e.g. `个人数字证书`.
    pub goods_name: String,
    /// When the order was paid (`YYYY-MM-DD HH:MM:SS`, Beijing time), the invoice date.
    pub invoice_date: String,
}

/// Where an issuance stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Still being issued or signed; ask again later.
    InProgress,
    /// Issued.
    Issued {
        /// The 20-digit 数电票 number.
        number: String,
        /// When, as the service reports it.
        issued_at: String,
        /// Where the PDF can be fetched.
        pdf_url: String,
    },
    /// Failed; finance staff must act.
    Failed {
        /// The service's reason (no personal data).
        reason: String,
    },
}

/// An e-invoicing service.
#[async_trait]
pub trait InvoiceIssuer: Send + Sync {
    /// The provider's name, e.g. `nuonuo`.
    fn name(&self) -> &'static str;
    /// Asks for an invoice; returns the service's serial number for it. Asking again with
    /// the same `order_no` does not issue a second invoice.
    async fn request_invoice(&self, request: &InvoiceRequest) -> Result<String, ProviderError>;
    /// The result of an earlier request.
    async fn invoice_status(&self, serial: &str) -> Result<InvoiceStatus, ProviderError>;
    /// Downloads an issued invoice's PDF.
    async fn fetch_pdf(&self, pdf_url: &str) -> Result<Vec<u8>, ProviderError>;
}
