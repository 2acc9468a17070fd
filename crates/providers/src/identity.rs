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
    /// What the reader found wrong with the photos; a non-empty list means retake.
    #[serde(default)]
    pub warnings: Vec<IdPhotoWarning>,
}

/// A side of the ID card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardSide {
    /// 人像面.
    Front,
    /// 国徽面.
    Back,
}

impl CardSide {
    /// The side's name on our pages.
    pub fn title(self) -> &'static str {
        match self {
            CardSide::Front => "人像面",
            CardSide::Back => "国徽面",
        }
    }

    /// The side's name in uploads and answers (`front`, `back`).
    pub fn code(self) -> &'static str {
        match self {
            CardSide::Front => "front",
            CardSide::Back => "back",
        }
    }
}

/// Something wrong with an ID card photo that makes it unusable as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdPhotoWarning {
    /// Which photo.
    pub side: CardSide,
    /// What is wrong.
    pub problem: IdPhotoProblem,
}

/// What can be wrong with an ID card photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdPhotoProblem {
    /// The card's border is cut off.
    Incomplete,
    /// A photocopy, not the card.
    Photocopy,
    /// A photo of a screen.
    Reshoot,
    /// A temporary ID card.
    TemporaryCard,
    /// Something covers the card.
    Occluded,
    /// The image was edited.
    Edited,
    /// Glare hides part of the card.
    Glare,
    /// The validity dates on the back are not a valid pattern (Tencent's 有效日期不合法): often
    /// a blurred or covered 有效期限 line, sometimes an expired or altered card. (Stored as
    /// `expired` before it was named for what it is.)
    #[serde(alias = "expired")]
    InvalidValidity,
    /// Not the physical card (an electronic ID, a watermark).
    NotOriginal,
    /// Not an ID card side at all, or the wrong side.
    NotRecognised,
}

impl IdPhotoProblem {
    /// What the applicant should do, in their words.
    pub fn retake_message(self) -> &'static str {
        match self {
            IdPhotoProblem::Incomplete => "照片未拍全身份证边框,请将证件完整放入取景框后重拍",
            IdPhotoProblem::Photocopy => "检测到复印件,请拍摄身份证原件",
            IdPhotoProblem::Reshoot => "检测到翻拍屏幕,请直接拍摄身份证原件",
            IdPhotoProblem::TemporaryCard => "临时身份证不能办理,请使用正式居民身份证",
            IdPhotoProblem::Occluded => "证件有遮挡,请移开手指或物品后重拍",
            IdPhotoProblem::Edited => "照片疑似经过编辑,请直接拍摄身份证原件",
            IdPhotoProblem::Glare => "证件反光,请避开灯光后重拍",
            IdPhotoProblem::InvalidValidity => {
                "国徽面的有效期限未能识别为有效日期,请将有效期限一栏拍清楚后重拍;如证件已过期,请使用有效期内的身份证"
            }
            IdPhotoProblem::NotOriginal => "请拍摄实体身份证原件",
            IdPhotoProblem::NotRecognised => "未能识别身份证,请确认拍摄的是对应的一面并重拍",
        }
    }
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
        /// The similarity score, when the provider computed one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        similarity: Option<f32>,
    },
    /// No automatic decision; a reviewer looks at the video.
    NeedsReview {
        /// Why.
        reason: String,
        /// The similarity score, when the provider computed one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        similarity: Option<f32>,
    },
}

/// Reads ID cards and checks face videos.
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    /// The provider's name, recorded with its verdicts.
    fn name(&self) -> &'static str;
    /// The digits the applicant reads aloud in the face video (four to six of them).
    async fn live_code(&self) -> Result<String, ProviderError>;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_stored_under_their_old_name_still_read() {
        let old: IdPhotoProblem = serde_json::from_str("\"expired\"").unwrap();
        assert_eq!(old, IdPhotoProblem::InvalidValidity);
        assert_eq!(serde_json::to_string(&old).unwrap(), "\"invalid_validity\"");
        assert!(old.retake_message().contains("有效期限"), "it says which line to retake");
    }
}
