//! Identity verification seams: reading an ID card from its photos (OCR) and checking a face
//! video (liveness, and comparison with the ID holder).

use crate::ProviderError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Fields read from the two sides of an ID card; `None` where nothing was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCardReading {
    /// 姓名.
    pub name: Option<String>,
    /// 性别.
    pub sex: Option<String>,
    /// 民族.
    pub ethnicity: Option<String>,
    /// 出生, as `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// 住址.
    pub address: Option<String>,
    /// 公民身份号码.
    pub id_number: Option<String>,
    /// 签发机关.
    pub authority: Option<String>,
    /// 有效期限, as printed.
    pub validity: Option<String>,
}

/// What the face check concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum LivenessVerdict {
    /// A live person, reading the digits, matching the ID holder.
    Pass {
        /// Similarity score with the ID photo, 0–100, kept as evidence.
        similarity: f32,
    },
    /// Clearly not acceptable; the applicant should try again.
    Fail {
        /// Why, in words for the applicant.
        reason: String,
    },
    /// No automatic decision; a reviewer looks at the video.
    NeedsReview {
        /// Why.
        reason: String,
    },
}

/// Reads ID cards and checks face videos.
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    /// The provider's name, recorded with its verdicts.
    fn name(&self) -> &'static str;
    /// Reads the card from its front (photo side) and back (national emblem side) images.
    async fn read_id_card(&self, front: &[u8], back: &[u8]) -> Result<IdCardReading, ProviderError>;
    /// Checks that `video` shows a live person reading `digits` who matches `id_photo`.
    async fn check_liveness(
        &self,
        video: &[u8],
        digits: &str,
        id_photo: &[u8],
    ) -> Result<LivenessVerdict, ProviderError>;
}
