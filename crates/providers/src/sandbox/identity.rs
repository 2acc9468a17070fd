//! The sandbox identity provider: no OCR (the applicant types the card's fields and
//! confirms them over the photos) and, by default, no automatic face decision (every video
//! goes to a reviewer). A demonstration deployment may ask it to pass every face video
//! instead ([`SandboxIdentity::passing`]); it then says so in the verdict it records.

use crate::ProviderError;
use crate::identity::{IdCardReading, IdentityVerifier, LivenessVerdict};
use async_trait::async_trait;

/// Reads nothing; decides nothing unless told to pass every face video.
#[derive(Debug, Default, Clone)]
pub struct SandboxIdentity {
    pass_face_checks: bool,
}

impl SandboxIdentity {
    /// Leaves every face video to a reviewer (the default).
    pub fn reviewing() -> SandboxIdentity {
        SandboxIdentity { pass_face_checks: false }
    }

    /// Passes every face video, as a real provider would pass a good one (for demonstrations
    /// and tests of the automatic path; never for a production deployment).
    pub fn passing() -> SandboxIdentity {
        SandboxIdentity { pass_face_checks: true }
    }
}

#[async_trait]
impl IdentityVerifier for SandboxIdentity {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn live_code(&self) -> Result<String, ProviderError> {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        Ok((0..4).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect())
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
        if self.pass_face_checks {
            return Ok(LivenessVerdict::Pass { similarity: 100.0 });
        }
        Ok(LivenessVerdict::NeedsReview {
            reason: "沙箱环境不做自动人脸比对,由受理员人工审核".into(),
            similarity: None,
        })
    }
}
