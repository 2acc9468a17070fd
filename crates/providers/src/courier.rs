//! The courier seam: book a shipment (get the waybill number) and read its route. Without a
//! configured courier, staff enter the waybill by hand at the fulfilment desk.

use crate::ProviderError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use yiqian_domain::OrderId;
use yiqian_domain::applicant::ShippingAddress;

/// A parcel to book: one UKEY and its confirmation forms, for one order.
#[derive(Debug, Clone)]
pub struct ShipmentRequest {
    /// Our order (the courier's `orderId`; booking it twice returns the same waybill).
    pub order: OrderId,
    /// Where it goes.
    pub to: ShippingAddress,
    /// What is inside, e.g. `数字证书UKEY`.
    pub cargo: String,
}

/// A booked shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The courier's name as the applicant knows it, e.g. `顺丰速运`.
    pub courier: String,
    /// The waybill number.
    pub tracking_no: String,
}

/// One scan on the parcel's way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEvent {
    /// When, as the courier reports it (`YYYY-MM-DD HH:MM:SS`, Beijing time).
    pub at: String,
    /// Where.
    pub place: String,
    /// What happened, in the courier's words.
    pub remark: String,
    /// The courier's operation code (e.g. SF `80` = delivered).
    pub op_code: String,
}

/// A courier company's API.
#[async_trait]
pub trait Courier: Send + Sync {
    /// The provider's name, e.g. `sf`.
    fn name(&self) -> &'static str;
    /// The courier's name as the applicant knows it.
    fn display_name(&self) -> &'static str;
    /// Books a shipment and returns its waybill; booking the same order again returns the
    /// same waybill.
    async fn create_shipment(&self, request: &ShipmentRequest) -> Result<Shipment, ProviderError>;
    /// The parcel's route so far, oldest first. `phone_last4` is the recipient's phone's last
    /// four digits (some couriers ask for it).
    async fn route(&self, tracking_no: &str, phone_last4: &str) -> Result<Vec<RouteEvent>, ProviderError>;
}
