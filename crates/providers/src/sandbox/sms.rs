//! The sandbox SMS provider: instead of a phone network, messages go to an inbox kept in the
//! database (readable in the development page and with `yiqian sms outbox`).

use crate::ProviderError;
use crate::sms::{SmsMessage, SmsSender};
use async_trait::async_trait;
use std::sync::Arc;

/// Where sandbox messages are delivered: implemented over the store by the application.
#[async_trait]
pub trait SandboxInbox: Send + Sync {
    /// Keeps `text` for `phone` once per `idempotency_key`.
    async fn deliver(
        &self,
        idempotency_key: &str,
        phone: &str,
        template: &str,
        text: &str,
    ) -> Result<(), ProviderError>;
}

/// Sends into a [`SandboxInbox`].
#[derive(Clone)]
pub struct SandboxSms {
    inbox: Arc<dyn SandboxInbox>,
}

impl SandboxSms {
    /// A sender delivering into `inbox`.
    pub fn new(inbox: Arc<dyn SandboxInbox>) -> SandboxSms {
        SandboxSms { inbox }
    }
}

#[async_trait]
impl SmsSender for SandboxSms {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn send(&self, message: &SmsMessage, idempotency_key: &str) -> Result<(), ProviderError> {
        self.inbox
            .deliver(idempotency_key, message.to.as_str(), message.template.name(), &message.template.text())
            .await
    }
}
