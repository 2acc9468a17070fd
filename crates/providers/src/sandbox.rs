//! Sandbox implementations of every provider, for the embedded default and for tests. They
//! behave like the real services where it matters (signed asynchronous notifications,
//! idempotency, verdicts that never silently pass) and need no network.

pub mod gateway;
pub mod identity;
pub mod sms;

pub use gateway::SandboxGateway;
pub use identity::SandboxIdentity;
pub use sms::{SandboxInbox, SandboxSms};
