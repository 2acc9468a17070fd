//! Tencent Cloud identity checks behind [`IdentityVerifier`]: `IDCardOCR` (`ocr`, 2018-11-19)
//! reads both sides of the card with every photo warning switched on, and FaceID (`faceid`,
//! 2018-03-01) `GetLiveCode` + `LivenessCompare` in `LIP` mode checks that the applicant
//! reads the digits and matches the card's photo.
//!
//! Tencent reports many business results as error codes. An OCR failure of one side (not a
//! card, unreadable) becomes a [`IdPhotoProblem::NotRecognised`] warning for that side, not an
//! error; a liveness failure becomes a [`LivenessVerdict`] (`Fail` with a reason in the
//! applicant's words where retrying can help, `NeedsReview` otherwise). Only Tencent's own
//! trouble and refusals of our request are errors.

use super::{ApiError, CallError, PROVIDER, TencentCloud, code_is_transient, request_id};
use crate::ProviderError;
use crate::identity::{CardSide, IdCardReading, IdPhotoProblem, IdPhotoWarning, IdentityVerifier, LivenessVerdict};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

/// The OCR API's version.
pub const OCR_VERSION: &str = "2018-11-19";
/// The FaceID API's version.
pub const FACEID_VERSION: &str = "2018-03-01";
/// Largest Base64 text of an OCR image Tencent takes.
pub const OCR_IMAGE_BASE64_LIMIT: usize = 10 * 1024 * 1024;
/// Largest Base64 text of a liveness video Tencent takes.
pub const VIDEO_BASE64_LIMIT: usize = 8 * 1024 * 1024;
/// Largest Base64 text of a comparison photo Tencent takes.
pub const IMAGE_BASE64_LIMIT: usize = 3 * 1024 * 1024;
/// Similarity from which FaceID considers two faces the same person.
pub const SAME_PERSON_SIMILARITY: f32 = 70.0;

/// The `Config` of every `IDCardOCR` call: all warnings that make a photo unusable as evidence.
const OCR_CONFIG: &str = r#"{"CopyWarn":true,"BorderCheckWarn":true,"ReshootWarn":true,"DetectPsWarn":true,"TempIdWarn":true,"InvalidDateWarn":true,"ReflectWarn":true}"#;

/// Reads ID cards and checks face videos with Tencent Cloud.
#[derive(Debug, Clone)]
pub struct TencentIdentity {
    cloud: TencentCloud,
}

impl TencentIdentity {
    /// Identity checks through `cloud`.
    pub fn new(cloud: TencentCloud) -> TencentIdentity {
        TencentIdentity { cloud }
    }

    /// One side's OCR: its fields and warnings, or a `NotRecognised` warning.
    async fn ocr_side(&self, side: CardSide, image: &[u8]) -> Result<IdCardReading, ProviderError> {
        let not_recognised = || IdCardReading {
            warnings: vec![IdPhotoWarning { side, problem: IdPhotoProblem::NotRecognised }],
            ..IdCardReading::default()
        };
        if base64_len(image.len()) > OCR_IMAGE_BASE64_LIMIT || image.is_empty() {
            tracing::info!(side = ?side, bytes = image.len(), "ID card photo not sent to OCR: empty or over the size limit");
            return Ok(not_recognised());
        }
        let body = json!({
            "ImageBase64": BASE64.encode(image),
            "CardSide": match side { CardSide::Front => "FRONT", CardSide::Back => "BACK" },
            "Config": OCR_CONFIG,
        });
        match self.cloud.try_call("ocr", OCR_VERSION, "IDCardOCR", &body).await {
            Ok(response) => Ok(reading_of(side, &response)),
            Err(CallError::Api(e)) if ocr_not_recognised(&e.code) => {
                tracing::info!(side = ?side, code = %e.code, request_id = %e.request_id, "ID card side not recognised");
                Ok(not_recognised())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The length of the Base64 text of `n` bytes.
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// OCR error codes that mean "this photo is not a readable ID card side": a retake, not an error.
pub fn ocr_not_recognised(code: &str) -> bool {
    matches!(
        code,
        "FailedOperation.OcrFailed"
            | "FailedOperation.IdCardInfoIllegal"
            | "FailedOperation.NoIdCard"
            | "FailedOperation.ImageNoIdCard"
            | "FailedOperation.ImageNoText"
            | "FailedOperation.ImageNoSpecifiedCard"
            | "FailedOperation.CardSideError"
            | "FailedOperation.IdCardTooSmall"
            | "FailedOperation.ImageBlur"
            | "FailedOperation.ImageDecodeFailed"
            | "FailedOperation.EmptyImageError"
            | "FailedOperation.ImageSizeTooLarge"
            | "FailedOperation.MultiCardError"
            | "InvalidParameter.EngineImageDecodeFailed"
            | "LimitExceeded.TooLargeFileError"
    )
}

/// The problem an `AdvancedInfo.WarnInfos` code stands for; `None` for a code we do not know.
pub fn warning_problem(code: i64) -> Option<IdPhotoProblem> {
    Some(match code {
        -9101 => IdPhotoProblem::Incomplete,
        -9102 | -9108 => IdPhotoProblem::Photocopy,
        -9103 => IdPhotoProblem::Reshoot,
        -9104 => IdPhotoProblem::TemporaryCard,
        -9105 => IdPhotoProblem::Occluded,
        -9106 => IdPhotoProblem::Edited,
        -9107 => IdPhotoProblem::Glare,
        // 有效日期不合法; -9100 is the code older SDK versions document for the same warning.
        -9100 | -9109 => IdPhotoProblem::InvalidValidity,
        -9110 | -9111 => IdPhotoProblem::NotOriginal,
        _ => return None,
    })
}

/// `Birth` as printed by the OCR (`1990/3/7`) in the `YYYY-MM-DD` form; `None` if it is not
/// a real date.
pub fn birth_date(birth: &str) -> Option<String> {
    let parts: Vec<&str> = birth.trim().split(['/', '-', '.']).collect();
    let [y, m, d] = parts[..] else { return None };
    let number = |s: &str| {
        if !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    let date = chrono::NaiveDate::from_ymd_opt(number(y)? as i32, number(m)?, number(d)?)?;
    (y.len() == 4).then(|| date.format("%Y-%m-%d").to_string())
}

/// The warning codes in `AdvancedInfo` (itself a JSON string).
fn warn_infos(response: &Value) -> Vec<i64> {
    let advanced = match response.get("AdvancedInfo") {
        Some(Value::String(s)) if !s.trim().is_empty() => serde_json::from_str::<Value>(s).ok(),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        _ => None,
    };
    advanced
        .as_ref()
        .and_then(|a| a.get("WarnInfos"))
        .and_then(Value::as_array)
        .map(|codes| {
            codes.iter().filter_map(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok()))).collect()
        })
        .unwrap_or_default()
}

/// What one side's `IDCardOCR` answer says.
fn reading_of(side: CardSide, response: &Value) -> IdCardReading {
    let field = |name: &str| {
        response.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let mut reading = IdCardReading::default();
    match side {
        CardSide::Front => {
            reading.name = field("Name");
            reading.sex = field("Sex");
            reading.ethnicity = field("Nation");
            reading.birth_date = field("Birth").and_then(|b| birth_date(&b));
            reading.address = field("Address");
            reading.id_number = field("IdNum");
        }
        CardSide::Back => {
            reading.authority = field("Authority");
            reading.validity = field("ValidDate");
        }
    }
    for code in warn_infos(response) {
        match warning_problem(code) {
            Some(problem) => {
                if !reading.warnings.iter().any(|w| w.problem == problem) {
                    reading.warnings.push(IdPhotoWarning { side, problem });
                }
            }
            None => tracing::warn!(code, request_id = %request_id(response), "unknown IDCardOCR warning code ignored"),
        }
    }
    reading
}

/// Both sides' readings in one.
fn merge(front: IdCardReading, back: IdCardReading) -> IdCardReading {
    let mut warnings = front.warnings;
    warnings.extend(back.warnings);
    IdCardReading { authority: back.authority, validity: back.validity, warnings, ..front }
}

/// What a liveness result means for the applicant; `None` when Tencent's own trouble left no
/// result (retry later).
pub fn liveness_verdict(result: &str, similarity: Option<f32>) -> Option<LivenessVerdict> {
    if result == "Success" {
        return Some(match similarity {
            Some(s) if s >= SAME_PERSON_SIMILARITY => LivenessVerdict::Pass { similarity: s },
            Some(s) => LivenessVerdict::Fail { reason: LOW_SIMILARITY.into(), similarity: Some(s) },
            None => LivenessVerdict::NeedsReview {
                reason: "人脸核身未返回相似度,需人工审核".into(), similarity: None
            },
        });
    }
    if result == "FailedOperation.CompareLowSimilarity" {
        return Some(LivenessVerdict::Fail { reason: LOW_SIMILARITY.into(), similarity });
    }
    if code_is_transient(result) {
        return None;
    }
    if let Some(reason) = retry_reason(result) {
        return Some(LivenessVerdict::Fail { reason: reason.into(), similarity });
    }
    Some(LivenessVerdict::NeedsReview {
        reason: format!("人脸核身未能自动判定({result}),需人工审核视频"), similarity
    })
}

/// The applicant's reason for a low similarity.
const LOW_SIMILARITY: &str = "视频中的人脸与身份证照片不一致,请持证本人重新录制";

/// The retry advice for a failure the applicant can fix by recording again.
pub fn retry_reason(code: &str) -> Option<&'static str> {
    Some(match code.strip_prefix("FailedOperation.")? {
        "LipFaceIncomplete" => "脸部未完整露出,请将整张脸保持在取景框内重新录制",
        "LipMoveSmall" => "嘴唇动作幅度过小,请逐个清晰地读出数字后重新录制",
        "LipNetFailed" => "视频处理失败,请检查网络后重新录制",
        "LipSizeError" => "视频时长不合适,请将录制时长控制在6秒左右",
        "LipVideoInvalid" => "视频格式有误,请重新录制",
        "LipVideoQuaility" => "视频画面不清晰,请在光线充足的地方重新录制",
        "LipVoiceDetect" => "未检测到声音,请允许使用麦克风并大声读出数字",
        "LipVoiceLow" => "声音太小,请在安静的环境中大声读出数字",
        "LipVoiceRecognize" => "未能识别您读出的数字,请按屏幕上的数字逐个清晰朗读",
        "SilentPictureLiveFail" => "疑似翻拍,请本人直接面对摄像头重新录制",
        "SilentMultiFaceFail" => "画面中有多张人脸,请确保只有本人出镜后重新录制",
        "SilentFaceWithMaskFail" => "检测到佩戴口罩,请摘下口罩后重新录制",
        "SilentTooShort" => "视频录制时间过短,请完整读出数字后再结束录制",
        "SilentFaceDetectFail" => "视频中未检测到人脸,请正对摄像头重新录制",
        "SilentFaceQualityFail" => "视频中的人脸不清晰,请在光线充足的地方正对摄像头重新录制",
        _ => return None,
    })
}

/// Whether `video` is in a container FaceID takes (MP4, AVI, FLV).
fn faceid_video_format(video: &[u8]) -> bool {
    (video.len() >= 8 && &video[4..8] == b"ftyp")
        || (video.len() >= 12 && &video[..4] == b"RIFF" && &video[8..12] == b"AVI ")
        || video.starts_with(b"FLV")
}

#[async_trait]
impl IdentityVerifier for TencentIdentity {
    fn name(&self) -> &'static str {
        "tencent"
    }

    async fn live_code(&self) -> Result<String, ProviderError> {
        let response = self.cloud.call("faceid", FACEID_VERSION, "GetLiveCode", &json!({})).await?;
        match response.get("LiveCode").and_then(Value::as_str) {
            Some(code) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => Ok(code.to_owned()),
            _ => Err(ProviderError::transport(
                PROVIDER,
                format!("GetLiveCode answered no digits (RequestId {})", request_id(&response)),
            )),
        }
    }

    async fn read_id_card(&self, front: &[u8], back: &[u8]) -> Result<IdCardReading, ProviderError> {
        let (front, back) = tokio::join!(self.ocr_side(CardSide::Front, front), self.ocr_side(CardSide::Back, back));
        Ok(merge(front?, back?))
    }

    async fn check_liveness(
        &self,
        video: &[u8],
        digits: &str,
        id_photo: &[u8],
    ) -> Result<LivenessVerdict, ProviderError> {
        if base64_len(video.len()) > VIDEO_BASE64_LIMIT {
            tracing::info!(bytes = video.len(), "face video over FaceID's size limit; left to a reviewer");
            return Ok(LivenessVerdict::NeedsReview {
                reason: "视频超过腾讯云人脸核身的大小上限(Base64 8 MB),未做自动核验,需人工审核".into(),
                similarity: None,
            });
        }
        if !faceid_video_format(video) {
            tracing::info!(bytes = video.len(), "face video not MP4/AVI/FLV; left to a reviewer");
            return Ok(LivenessVerdict::NeedsReview {
                reason: "视频格式不是腾讯云人脸核身支持的 MP4/AVI/FLV,未做自动核验,需人工审核".into(),
                similarity: None,
            });
        }
        if base64_len(id_photo.len()) > IMAGE_BASE64_LIMIT {
            tracing::info!(bytes = id_photo.len(), "ID photo over FaceID's size limit; left to a reviewer");
            return Ok(LivenessVerdict::NeedsReview {
                reason: "身份证照片超过腾讯云人脸比对的大小上限(Base64 3 MB),未做自动核验,需人工审核".into(),
                similarity: None,
            });
        }
        let body = json!({
            "ImageBase64": BASE64.encode(id_photo),
            "VideoBase64": BASE64.encode(video),
            "LivenessType": "LIP",
            "ValidateData": digits,
        });
        let (result, similarity, rid) =
            match self.cloud.try_call("faceid", FACEID_VERSION, "LivenessCompare", &body).await {
                Ok(response) => {
                    let result = response.get("Result").and_then(Value::as_str).unwrap_or("").to_owned();
                    let sim = response.get("Sim").and_then(Value::as_f64).map(|s| s as f32);
                    // FaceID sends Sim 0 when it never got to compare; only a real score is evidence.
                    let compared = result == "Success" || result == "FailedOperation.CompareLowSimilarity";
                    let sim = sim.filter(|s| compared || *s > 0.0);
                    (result, sim, request_id(&response).to_owned())
                }
                // Some FaceID deployments report the business failure as the error itself.
                Err(CallError::Api(ApiError { code, request_id, .. })) if code.starts_with("FailedOperation.") => {
                    (code, None, request_id)
                }
                Err(e) => return Err(e.into()),
            };
        if result.is_empty() {
            return Err(ProviderError::transport(
                PROVIDER,
                format!("LivenessCompare answered no Result (RequestId {rid})"),
            ));
        }
        match liveness_verdict(&result, similarity) {
            Some(verdict) => {
                tracing::info!(result = %result, request_id = %rid, similarity, "LivenessCompare verdict");
                Ok(verdict)
            }
            None => {
                tracing::warn!(result = %result, request_id = %rid, "LivenessCompare failed at Tencent");
                Err(ProviderError::Transient {
                    provider: PROVIDER,
                    detail: format!("LivenessCompare answered {result} (RequestId {rid})"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_are_normalised() {
        assert_eq!(birth_date("1990/3/7").as_deref(), Some("1990-03-07"));
        assert_eq!(birth_date("1949/12/31").as_deref(), Some("1949-12-31"));
        assert_eq!(birth_date(" 2000/01/01 ").as_deref(), Some("2000-01-01"));
        assert_eq!(birth_date("1990/2/30"), None);
        assert_eq!(birth_date("90/3/7"), None);
        assert_eq!(birth_date("1990/3"), None);
        assert_eq!(birth_date("1990年3月7日"), None);
        assert_eq!(birth_date(""), None);
    }

    #[test]
    fn warning_codes_map_to_problems() {
        use IdPhotoProblem::*;
        let expected = [
            (-9101, Incomplete),
            (-9102, Photocopy),
            (-9103, Reshoot),
            (-9104, TemporaryCard),
            (-9105, Occluded),
            (-9106, Edited),
            (-9107, Glare),
            (-9108, Photocopy),
            (-9100, InvalidValidity),
            (-9109, InvalidValidity),
            (-9110, NotOriginal),
            (-9111, NotOriginal),
        ];
        for (code, problem) in expected {
            assert_eq!(warning_problem(code), Some(problem), "{code}");
        }
        assert_eq!(warning_problem(-9112), None);
        assert_eq!(warning_problem(0), None);
    }

    #[test]
    fn an_answer_maps_to_fields_and_warnings_of_its_side() {
        let front = json!({
            "Name": "李四", "Sex": "女", "Nation": "汉", "Birth": "1990/3/7", "Address": "上海市", "IdNum": "X",
            "Authority": "", "ValidDate": "",
            "AdvancedInfo": "{\"WarnInfos\":[-9102,-9108,-9107,-9999]}", "RequestId": "r"
        });
        let r = reading_of(CardSide::Front, &front);
        assert_eq!(r.birth_date.as_deref(), Some("1990-03-07"));
        assert_eq!((r.name.as_deref(), r.ethnicity.as_deref()), (Some("李四"), Some("汉")));
        assert_eq!((&r.authority, &r.validity), (&None, &None));
        let problems: Vec<_> = r.warnings.iter().map(|w| (w.side, w.problem)).collect();
        assert_eq!(problems, [(CardSide::Front, IdPhotoProblem::Photocopy), (CardSide::Front, IdPhotoProblem::Glare)]);

        let back = json!({"Name": "", "Authority": "上海市公安局", "ValidDate": "2015.08.01-2035.08.01", "AdvancedInfo": "{}"});
        let b = reading_of(CardSide::Back, &back);
        assert_eq!(b.validity.as_deref(), Some("2015.08.01-2035.08.01"));
        assert!(b.warnings.is_empty() && b.name.is_none());
        let merged = merge(r, b);
        assert_eq!(merged.authority.as_deref(), Some("上海市公安局"));
        assert_eq!(merged.id_number.as_deref(), Some("X"));
        assert_eq!(merged.warnings.len(), 2);
    }

    #[test]
    fn ocr_business_failures_are_retakes() {
        for code in ["FailedOperation.OcrFailed", "FailedOperation.IdCardInfoIllegal", "FailedOperation.NoIdCard"] {
            assert!(ocr_not_recognised(code), "{code}");
        }
        for code in ["FailedOperation.UnOpenError", "AuthFailure.SignatureFailure", "InternalError"] {
            assert!(!ocr_not_recognised(code), "{code}");
        }
    }

    #[test]
    fn liveness_results_map_to_verdicts() {
        assert_eq!(liveness_verdict("Success", Some(88.5)), Some(LivenessVerdict::Pass { similarity: 88.5 }));
        assert_eq!(liveness_verdict("Success", Some(70.0)), Some(LivenessVerdict::Pass { similarity: 70.0 }));
        assert!(matches!(
            liveness_verdict("Success", Some(69.9)),
            Some(LivenessVerdict::Fail { similarity: Some(s), .. }) if s == 69.9
        ));
        assert!(matches!(
            liveness_verdict("FailedOperation.CompareLowSimilarity", Some(41.0)),
            Some(LivenessVerdict::Fail { similarity: Some(s), .. }) if s == 41.0
        ));
        assert_eq!(
            liveness_verdict("FailedOperation.LipVoiceLow", None),
            Some(LivenessVerdict::Fail {
                reason: "声音太小,请在安静的环境中大声读出数字".into(), similarity: None
            })
        );
        for code in [
            "LipFaceIncomplete",
            "LipMoveSmall",
            "LipNetFailed",
            "LipSizeError",
            "LipVideoInvalid",
            "LipVideoQuaility",
            "LipVoiceDetect",
            "LipVoiceRecognize",
            "SilentPictureLiveFail",
            "SilentMultiFaceFail",
        ] {
            let verdict = liveness_verdict(&format!("FailedOperation.{code}"), None).unwrap();
            let LivenessVerdict::Fail { reason, .. } = verdict else { panic!("{code}: {verdict:?}") };
            assert!(reason.contains('请'), "{code}: {reason}");
        }
        assert!(matches!(
            liveness_verdict("FailedOperation.LivessDetectFake", Some(80.0)),
            Some(LivenessVerdict::NeedsReview { similarity: Some(_), .. })
        ));
        assert!(matches!(liveness_verdict("Success", None), Some(LivenessVerdict::NeedsReview { .. })));
        assert_eq!(liveness_verdict("FailedOperation.LivessSystemError", None), None);
        assert_eq!(liveness_verdict("InternalError", None), None);
    }

    #[test]
    fn video_containers_are_recognised() {
        assert!(faceid_video_format(b"\0\0\0\x18ftypmp42rest"));
        assert!(faceid_video_format(b"RIFF\0\0\0\0AVI LIST"));
        assert!(faceid_video_format(b"FLV\x01"));
        assert!(!faceid_video_format(b"\x1aE\xdf\xa3webm"));
        assert!(!faceid_video_format(b""));
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
    }
}
