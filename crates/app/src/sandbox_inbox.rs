//! The sandbox SMS provider's inbox, kept in the store: the development stand-in for the
//! applicants' phones.

use async_trait::async_trait;
use yiqian_providers::ProviderError;
use yiqian_providers::sandbox::SandboxInbox;
use yiqian_store::Store;
use yiqian_store::sms::SandboxSms;

/// Delivers sandbox SMS into the store's inbox table.
#[derive(Clone)]
pub struct StoreSmsInbox {
    store: Store,
}

impl StoreSmsInbox {
    /// An inbox in `store`.
    pub fn new(store: Store) -> StoreSmsInbox {
        StoreSmsInbox { store }
    }
}

#[async_trait]
impl SandboxInbox for StoreSmsInbox {
    async fn deliver(
        &self,
        idempotency_key: &str,
        phone: &str,
        template: &str,
        text: &str,
    ) -> Result<(), ProviderError> {
        let transient =
            |e: yiqian_store::StoreError| ProviderError::Transient { provider: "sandbox-sms", detail: e.to_string() };
        let mut tx = self.store.begin().await.map_err(transient)?;
        let message = SandboxSms {
            id: crate::new_id("SM", 20),
            phone: phone.into(),
            template: template.into(),
            text: text.into(),
            at: chrono::Utc::now(),
        };
        tx.deliver_sandbox_sms(idempotency_key, &message).await.map_err(transient)?;
        tx.commit().await.map_err(transient)
    }
}
