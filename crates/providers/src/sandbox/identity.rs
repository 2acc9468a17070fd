//! The sandbox identity provider: no OCR (the applicant types the card's fields and
//! confirms them over the photos) and no automatic face decision (every video goes to a
//! reviewer). It never silently passes anyone.

use crate::ProviderError;
use crate::identity::{IdCardReading, IdentityVerifier, LivenessVerdict};
use async_trait::async_trait;

/// Reads nothing, decides nothing.
#[derive(Debug, Default, Clone)]
pub struct SandboxIdentity;

#[async_trait]
impl IdentityVerifier for SandboxIdentity {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn read_id_card(&self, _front: &[u8], _back: &[u8]) -> Result<IdCardReading, ProviderError> {
        Ok(IdCardReading::default())
    }

    async fn check_liveness(
        &self,
        _video: &[u8],
        _digits: &str,
        _id_photo: &[u8],
    ) -> Result<LivenessVerdict, ProviderError> {
        Ok(LivenessVerdict::NeedsReview {
            reason: "沙箱环境不做自动人脸比对,由受理员人工审核".into()
        })
    }
}
