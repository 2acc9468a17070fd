//! The pure domain model of yiqian: what an order is, which step comes next, when a refund is
//! allowed, and how Chinese identifiers are validated.
//!
//! Nothing here performs I/O, reads the clock or draws random numbers: time and identifiers
//! are passed in, so every rule can be property-tested. Each transition is a function from
//! (state, command) to (new state, events) or a typed error whose `Display` is the Chinese
//! sentence shown to the applicant.

pub mod applicant;
pub mod catalogue;
pub mod identity;
pub mod ids;
pub mod invoice;
pub mod materials;
pub mod media;
pub mod money;
pub mod order;
pub mod payment;
pub mod regions;
pub mod staff;

pub use catalogue::Product;
pub use ids::{ApplicantId, OrderId, PaymentId, RefundId};
pub use materials::{Checklist, Step};
pub use money::Fen;
pub use order::{Command, Order, OrderError, OrderEvent, OrderState, RefundReason};
