//! Stand-in for Tencent Cloud API 3.0: SMS `SendSms`, OCR `IDCardOCR`, FaceID `GetLiveCode`
//! and `LivenessCompare`, all at `POST /` and dispatched on `X-TC-Action`, as one endpoint
//! for every service.
//!
//! Like Tencent it verifies the TC3-HMAC-SHA256 signature from the request as received
//! ([`auth`]), answers HTTP 200 with the `{"Response":{…,"RequestId":…}}` envelope for
//! success and error alike, and reports business results the way the real services do
//! (per-number `Code` in `SendStatusSet`, `Result`/`Sim` of `LivenessCompare`, `WarnInfos`
//! inside the `AdvancedInfo` JSON string of `IDCardOCR`).
//!
//! Test controls: [`TencentSim`]'s methods, and under `/sim/tencent/…`:
//! `GET sms` (messages sent), `POST sms-failure` `{"phone","code"}`, `POST liveness`
//! `{"code","sim"}`, `PUT id-card` ([`SimIdCard`]), `POST ocr-warnings` `{"side","codes"}`,
//! `POST ocr-failure` `{"side","code"}`.

pub mod auth;

use crate::Sim;
use crate::accounts::TencentAccount;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use yiqian_providers::identity::CardSide;

/// Largest request body Tencent Cloud API 3.0 takes.
pub const REQUEST_LIMIT: usize = 10 * 1024 * 1024;
/// Largest `VideoBase64` of `LivenessCompare`.
pub const VIDEO_BASE64_LIMIT: usize = 8 * 1024 * 1024;
/// Largest `ImageBase64` of `LivenessCompare`.
pub const IMAGE_BASE64_LIMIT: usize = 3 * 1024 * 1024;
/// The similarity `LivenessCompare` answers unless told otherwise.
pub const DEFAULT_SIMILARITY: f64 = 88.5;
/// How many issued live codes are remembered.
const LIVE_CODES_KEPT: usize = 10_000;

/// An error answer: `Response.Error.Code` and `.Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The error code, e.g. `AuthFailure.SignatureFailure`.
    pub code: String,
    /// The message.
    pub message: String,
}

impl ApiFailure {
    /// An error answer with `code` and `message`.
    pub fn new(code: &str, message: &str) -> ApiFailure {
        ApiFailure { code: code.to_owned(), message: message.to_owned() }
    }
}

/// An SMS the stand-in accepted for one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentSms {
    /// The number as sent (E.164, `+86…`).
    pub phone_number: String,
    /// `SmsSdkAppId`.
    pub sms_sdk_app_id: String,
    /// `SignName`.
    pub sign_name: String,
    /// `TemplateId`.
    pub template_id: String,
    /// `TemplateParamSet`.
    pub template_params: Vec<String>,
    /// `SessionContext` (empty if none).
    pub session_context: String,
    /// The `SerialNo` answered.
    pub serial_no: String,
}

/// The ID card `IDCardOCR` reads, in Tencent's output formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimIdCard {
    /// `Name`.
    pub name: String,
    /// `Sex` (男 / 女).
    pub sex: String,
    /// `Nation`, e.g. 汉.
    pub nation: String,
    /// `Birth`, e.g. `1949/12/31`.
    pub birth: String,
    /// `Address`.
    pub address: String,
    /// `IdNum`.
    pub id_num: String,
    /// `Authority`.
    pub authority: String,
    /// `ValidDate`, e.g. `2015.08.01-2035.08.01`.
    pub valid_date: String,
}

impl Default for SimIdCard {
    /// A consistent sample: the number's birth date and sex digit match `Birth` and `Sex`.
    fn default() -> SimIdCard {
        SimIdCard {
            name: "张三".into(),
            sex: "女".into(),
            nation: "汉".into(),
            birth: "1949/12/31".into(),
            address: "北京市朝阳区建国路88号".into(),
            id_num: "11010519491231002X".into(),
            authority: "北京市公安局朝阳分局".into(),
            valid_date: "2015.08.01-2035.08.01".into(),
        }
    }
}

/// One `IDCardOCR` request the stand-in answered (after its checks).
#[derive(Debug, Clone, PartialEq)]
pub struct OcrRequest {
    /// `CardSide` as sent (`FRONT`, `BACK`, or empty).
    pub card_side: String,
    /// `Config`, parsed from its JSON string (`Null` if none).
    pub config: Value,
    /// The decoded image.
    pub image: Vec<u8>,
}

/// One `LivenessCompare` request the stand-in answered (after its checks).
#[derive(Debug, Clone, PartialEq)]
pub struct LivenessRequest {
    /// `LivenessType`.
    pub liveness_type: String,
    /// `ValidateData`.
    pub validate_data: String,
    /// The decoded video.
    pub video: Vec<u8>,
    /// The decoded comparison photo.
    pub image: Vec<u8>,
}

/// The next `LivenessCompare` outcome, as scripted by a test.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LivenessScript {
    /// A `FailedOperation.*` code for `Result` (`None`: decided by the similarity).
    #[serde(default)]
    pub code: Option<String>,
    /// The similarity (`None`: [`DEFAULT_SIMILARITY`], or 0 with a failure code).
    #[serde(default)]
    pub sim: Option<f64>,
}

#[derive(Default)]
struct Inner {
    sent_sms: Vec<SentSms>,
    sms_failures: HashMap<String, String>,
    live_codes: VecDeque<String>,
    liveness_script: Option<LivenessScript>,
    liveness_requests: Vec<LivenessRequest>,
    id_card: SimIdCard,
    ocr_warnings: [Vec<i64>; 2],
    ocr_failures: [Option<String>; 2],
    ocr_requests: Vec<OcrRequest>,
}

/// The Tencent Cloud stand-in's state.
pub struct TencentSim {
    account: TencentAccount,
    state: Mutex<Inner>,
}

fn side_index(side: CardSide) -> usize {
    match side {
        CardSide::Front => 0,
        CardSide::Back => 1,
    }
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl TencentSim {
    /// A stand-in for `account`.
    pub fn new(account: &TencentAccount) -> TencentSim {
        TencentSim { account: account.clone(), state: Mutex::new(Inner::default()) }
    }

    fn state(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every SMS accepted so far, in order.
    pub fn sent_sms(&self) -> Vec<SentSms> {
        self.state().sent_sms.clone()
    }

    /// From now on, `SendSms` to `phone` (E.164, e.g. `+8613800138000`) answers `code`
    /// (e.g. `FailedOperation.PhoneNumberInBlacklist`) for that number and sends nothing.
    pub fn fail_sms_to(&self, phone: &str, code: &str) {
        self.state().sms_failures.insert(phone.to_owned(), code.to_owned());
    }

    /// The live codes `GetLiveCode` issued, oldest first.
    pub fn issued_live_codes(&self) -> Vec<String> {
        self.state().live_codes.iter().cloned().collect()
    }

    /// Sets the outcome of the next `LivenessCompare`: a `FailedOperation.*` `Result` code
    /// and/or a similarity (below 70 without a code answers `CompareLowSimilarity`).
    pub fn script_liveness(&self, code: Option<&str>, sim: Option<f64>) {
        self.state().liveness_script = Some(LivenessScript { code: code.map(str::to_owned), sim });
    }

    /// The `LivenessCompare` requests answered so far.
    pub fn liveness_requests(&self) -> Vec<LivenessRequest> {
        self.state().liveness_requests.clone()
    }

    /// The card `IDCardOCR` reads from now on.
    pub fn set_id_card(&self, card: SimIdCard) {
        self.state().id_card = card;
    }

    /// Adds `codes` to `AdvancedInfo.WarnInfos` of the next `IDCardOCR` of `side` (each
    /// reported only if the request's `Config` enables its warning, as Tencent does).
    pub fn script_ocr_warnings(&self, side: CardSide, codes: &[i64]) {
        self.state().ocr_warnings[side_index(side)].extend_from_slice(codes);
    }

    /// Makes the next `IDCardOCR` of `side` fail with `code` (e.g. `FailedOperation.OcrFailed`).
    pub fn script_ocr_failure(&self, side: CardSide, code: &str) {
        self.state().ocr_failures[side_index(side)] = Some(code.to_owned());
    }

    /// The `IDCardOCR` requests answered so far.
    pub fn ocr_requests(&self) -> Vec<OcrRequest> {
        self.state().ocr_requests.clone()
    }

    /// Answers one API request: the `Response` object, error or not, with its `RequestId`.
    pub fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Value {
        let mut response = match self.dispatch(headers, body) {
            Ok(fields) => fields,
            Err(e) => {
                tracing::info!(code = %e.code, "Tencent Cloud stand-in answers an error");
                let mut m = Map::new();
                m.insert("Error".into(), json!({"Code": e.code, "Message": e.message}));
                m
            }
        };
        response.insert("RequestId".into(), Value::String(request_id()));
        json!({ "Response": response })
    }

    fn dispatch(&self, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiFailure> {
        if body.len() > REQUEST_LIMIT {
            return Err(ApiFailure::new("RequestSizeLimitExceeded", "The request body exceeds 10 MB."));
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let action = header("x-tc-action")
            .ok_or_else(|| ApiFailure::new("MissingParameter", "The request is missing the header X-TC-Action."))?;
        let (service, version) = match action {
            "SendSms" => ("sms", "2021-01-11"),
            "GetLiveCode" | "LivenessCompare" => ("faceid", "2018-03-01"),
            "IDCardOCR" => ("ocr", "2018-11-19"),
            _ => return Err(ApiFailure::new("InvalidAction", "The action is not found.")),
        };
        auth::verify(&self.account, headers, body, service, chrono::Utc::now().timestamp())?;
        match header("x-tc-version") {
            None => return Err(ApiFailure::new("MissingParameter", "The request is missing the header X-TC-Version.")),
            Some(v) if v != version => return Err(ApiFailure::new("NoSuchVersion", "The API version does not exist.")),
            Some(_) => {}
        }
        match header("x-tc-region") {
            None | Some("") => {
                return Err(ApiFailure::new("MissingParameter", "The request is missing the header X-TC-Region."));
            }
            Some(r) if !REGIONS.contains(&r) => {
                return Err(ApiFailure::new("UnsupportedRegion", "The action does not support this region."));
            }
            Some(_) => {}
        }
        if !header("content-type").is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("application/json"))
        {
            return Err(ApiFailure::new("InvalidParameter", "This stand-in takes application/json bodies only."));
        }
        let Ok(Value::Object(params)) = serde_json::from_slice::<Value>(body) else {
            return Err(ApiFailure::new("InvalidParameter", "The body is not a JSON object."));
        };
        match action {
            "SendSms" => self.send_sms(&params),
            "GetLiveCode" => Ok(self.get_live_code()),
            "LivenessCompare" => self.liveness_compare(&params),
            _ => self.id_card_ocr(&params),
        }
    }

    fn send_sms(&self, p: &Map<String, Value>) -> Result<Map<String, Value>, ApiFailure> {
        let strings = |name: &str| -> Result<Vec<String>, ApiFailure> {
            match p.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => {
                    items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                        ApiFailure::new("InvalidParameter", &format!("{name} must be an array of strings."))
                    })
                }
                Some(_) => Err(ApiFailure::new("InvalidParameter", &format!("{name} must be an array of strings."))),
            }
        };
        let string = |name: &str| p.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        let phones = strings("PhoneNumberSet")?;
        let params = strings("TemplateParamSet")?;
        if phones.is_empty() {
            return Err(ApiFailure::new("MissingParameter.EmptyPhoneNumberSet", "The PhoneNumberSet is empty."));
        }
        if phones.len() > 200 {
            return Err(ApiFailure::new(
                "LimitExceeded.PhoneNumberCountLimit",
                "More than 200 numbers in one request.",
            ));
        }
        let sdk_app_id = string("SmsSdkAppId");
        if sdk_app_id != self.account.sms_sdk_app_id {
            return Err(ApiFailure::new("InvalidParameterValue.SdkAppIdNotExist", "The SdkAppId does not exist."));
        }
        let sign_name = string("SignName");
        if sign_name != self.account.sms_sign_name {
            return Err(ApiFailure::new(
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "The signature is not approved or its format is wrong.",
            ));
        }
        let template_id = string("TemplateId");
        if template_id.is_empty() || !template_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiFailure::new(
                "FailedOperation.TemplateIncorrectOrUnapproved",
                "The template is not approved or its content does not match.",
            ));
        }
        let session_context = string("SessionContext");
        if session_context.len() >= 512 {
            return Err(ApiFailure::new("InvalidParameter", "SessionContext must be shorter than 512 bytes."));
        }
        // Mainland and international numbers cannot go in one request. (The stand-in then
        // insists on the E.164 form for each mainland number.)
        let international = phones.iter().filter(|n| n.starts_with('+') && !n.starts_with("+86")).count();
        if international != 0 && international != phones.len() {
            return Err(ApiFailure::new(
                "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
                "The request mixes mainland and international numbers.",
            ));
        }
        let mut state = self.state();
        let mut statuses = Vec::with_capacity(phones.len());
        for phone in phones {
            let (code, message) = if !is_mainland_e164(&phone) {
                ("InvalidParameterValue.IncorrectPhoneNumber".to_owned(), "incorrect phone number")
            } else if let Some(code) = state.sms_failures.get(&phone) {
                (code.clone(), "scripted failure")
            } else {
                ("Ok".to_owned(), "send success")
            };
            let ok = code == "Ok";
            let serial_no = if ok { format!("2640:{}", rand::random::<u64>()) } else { String::new() };
            if ok {
                state.sent_sms.push(SentSms {
                    phone_number: phone.clone(),
                    sms_sdk_app_id: sdk_app_id.clone(),
                    sign_name: sign_name.clone(),
                    template_id: template_id.clone(),
                    template_params: params.clone(),
                    session_context: session_context.clone(),
                    serial_no: serial_no.clone(),
                });
            }
            statuses.push(json!({
                "SerialNo": serial_no,
                "PhoneNumber": phone,
                "Fee": u32::from(ok),
                "SessionContext": session_context,
                "Code": code,
                "Message": message,
                "IsoCode": "CN",
            }));
        }
        Ok(object(json!({ "SendStatusSet": statuses })))
    }

    fn get_live_code(&self) -> Map<String, Value> {
        let mut rng = rand::thread_rng();
        let code: String = (0..4).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
        let mut state = self.state();
        if state.live_codes.len() >= LIVE_CODES_KEPT {
            state.live_codes.pop_front();
        }
        state.live_codes.push_back(code.clone());
        object(json!({ "LiveCode": code }))
    }

    fn liveness_compare(&self, p: &Map<String, Value>) -> Result<Map<String, Value>, ApiFailure> {
        let string = |name: &str| p.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        let liveness_type = string("LivenessType");
        let validate_data = string("ValidateData");
        match liveness_type.as_str() {
            "LIP" => {
                if !self.state().live_codes.contains(&validate_data) {
                    return Err(ApiFailure::new(
                        "InvalidParameterValue",
                        "ValidateData is not a LiveCode issued by GetLiveCode.",
                    ));
                }
            }
            "SILENT" => {}
            "ACTION" => {
                return Err(ApiFailure::new("InvalidParameterValue", "ValidateData is not an issued action sequence."));
            }
            _ => return Err(ApiFailure::new("InvalidParameterValue", "LivenessType must be LIP, ACTION or SILENT.")),
        }
        let result = |code: &str| Ok(liveness_answer(code, 0.0));
        let (video_b64, image_b64) = (string("VideoBase64"), string("ImageBase64"));
        if video_b64.is_empty() {
            if p.contains_key("VideoUrl") {
                return result("FailedOperation.DownLoadError");
            }
            return Err(ApiFailure::new("InvalidParameter", "VideoBase64 or VideoUrl is required."));
        }
        if image_b64.is_empty() {
            if p.contains_key("ImageUrl") {
                return result("FailedOperation.DownLoadError");
            }
            return Err(ApiFailure::new("InvalidParameter", "ImageBase64 or ImageUrl is required."));
        }
        let video = BASE64
            .decode(&video_b64)
            .map_err(|_| ApiFailure::new("InvalidParameterValue", "VideoBase64 is not valid Base64."))?;
        let image = BASE64
            .decode(&image_b64)
            .map_err(|_| ApiFailure::new("InvalidParameterValue", "ImageBase64 is not valid Base64."))?;
        if video_b64.len() > VIDEO_BASE64_LIMIT || video.is_empty() {
            return result("FailedOperation.LipSizeError");
        }
        if !is_video(&video) {
            return result("FailedOperation.LipVideoInvalid");
        }
        if image_b64.len() > IMAGE_BASE64_LIMIT {
            return result("FailedOperation.ImageSizeTooLarge");
        }
        if !is_image(&image, false) {
            return result("FailedOperation.ImageDecodeFailed");
        }
        let mut state = self.state();
        state.liveness_requests.push(LivenessRequest { liveness_type, validate_data, video, image });
        let script = state.liveness_script.take().unwrap_or_default();
        Ok(match (script.code, script.sim) {
            (Some(code), sim) => liveness_answer(&code, sim.unwrap_or(0.0)),
            (None, Some(sim)) if sim < 70.0 => liveness_answer("FailedOperation.CompareLowSimilarity", sim),
            (None, sim) => liveness_answer("Success", sim.unwrap_or(DEFAULT_SIMILARITY)),
        })
    }

    fn id_card_ocr(&self, p: &Map<String, Value>) -> Result<Map<String, Value>, ApiFailure> {
        let config = match p.get("Config") {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err(ApiFailure::new("InvalidParameter.ConfigFormatError", "Config is not valid JSON.")),
            },
            Some(_) => {
                return Err(ApiFailure::new("InvalidParameter.ConfigFormatError", "Config must be a JSON string."));
            }
        };
        let card_side = p.get("CardSide").and_then(Value::as_str).unwrap_or("").to_owned();
        let side = match card_side.as_str() {
            "FRONT" | "" => CardSide::Front,
            "BACK" => CardSide::Back,
            _ => return Err(ApiFailure::new("FailedOperation.CardSideError", "CardSide must be FRONT or BACK.")),
        };
        let image_b64 = p.get("ImageBase64").and_then(Value::as_str).unwrap_or("");
        if p.get("ImageUrl").and_then(Value::as_str).is_some_and(|u| !u.is_empty()) {
            // ImageUrl wins over ImageBase64; the stand-in fetches nothing.
            return Err(ApiFailure::new("FailedOperation.DownLoadError", "The file could not be downloaded."));
        }
        if image_b64.is_empty() {
            return Err(ApiFailure::new("FailedOperation.EmptyImageError", "The image is empty."));
        }
        let image = BASE64
            .decode(image_b64)
            .map_err(|_| ApiFailure::new("FailedOperation.ImageDecodeFailed", "The image could not be decoded."))?;
        if !is_image(&image, true) {
            return Err(ApiFailure::new("FailedOperation.ImageDecodeFailed", "The image could not be decoded."));
        }
        let mut state = self.state();
        let i = side_index(side);
        state.ocr_requests.push(OcrRequest { card_side, config: config.clone(), image });
        let warnings = std::mem::take(&mut state.ocr_warnings[i]);
        if let Some(code) = state.ocr_failures[i].take() {
            return Err(ApiFailure::new(&code, "scripted OCR failure"));
        }
        let enabled = |flag: &str| config.get(flag).and_then(Value::as_bool).unwrap_or(false);
        let warn_infos: Vec<i64> = warnings.into_iter().filter(|c| warning_flag(*c).is_none_or(&enabled)).collect();
        let card = &state.id_card;
        let front = side == CardSide::Front;
        let pick = |v: &str, on_side: bool| if on_side { v.to_owned() } else { String::new() };
        let advanced = json!({ "WarnInfos": warn_infos, "Quality": 90 }).to_string();
        Ok(object(json!({
            "Name": pick(&card.name, front),
            "Sex": pick(&card.sex, front),
            "Nation": pick(&card.nation, front),
            "Birth": pick(&card.birth, front),
            "Address": pick(&card.address, front),
            "IdNum": pick(&card.id_num, front),
            "Authority": pick(&card.authority, !front),
            "ValidDate": pick(&card.valid_date, !front),
            "AdvancedInfo": advanced,
            "ReflectDetailInfos": [],
        })))
    }
}

/// Regions the stand-in accepts in `X-TC-Region`.
const REGIONS: [&str; 7] =
    ["ap-guangzhou", "ap-beijing", "ap-shanghai", "ap-nanjing", "ap-chengdu", "ap-chongqing", "ap-hongkong"];

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `+86` and an 11-digit mainland mobile number.
fn is_mainland_e164(phone: &str) -> bool {
    phone.strip_prefix("+86").is_some_and(|n| {
        let b = n.as_bytes();
        b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
    })
}

/// MP4, AVI or FLV, by their magic bytes.
fn is_video(v: &[u8]) -> bool {
    (v.len() >= 8 && &v[4..8] == b"ftyp")
        || (v.len() >= 12 && &v[..4] == b"RIFF" && &v[8..12] == b"AVI ")
        || v.starts_with(b"FLV")
}

/// JPEG or PNG (and BMP where `bmp`), by their magic bytes.
fn is_image(v: &[u8], bmp: bool) -> bool {
    v.starts_with(&[0xFF, 0xD8, 0xFF]) || v.starts_with(b"\x89PNG\r\n\x1a\n") || (bmp && v.starts_with(b"BM"))
}

/// The `Config` switch that makes `IDCardOCR` report a warning code (`None`: always reported).
fn warning_flag(code: i64) -> Option<&'static str> {
    match code {
        -9101 | -9105 => Some("BorderCheckWarn"),
        -9102 | -9108 => Some("CopyWarn"),
        -9103 => Some("ReshootWarn"),
        -9104 => Some("TempIdWarn"),
        -9106 => Some("DetectPsWarn"),
        -9107 => Some("ReflectWarn"),
        -9109 => Some("InvalidDateWarn"),
        _ => None,
    }
}

/// A `LivenessCompare` answer with `result` and similarity `sim`.
fn liveness_answer(result: &str, sim: f64) -> Map<String, Value> {
    let description = match result {
        "Success" => "成功",
        "FailedOperation.CompareLowSimilarity" => "比对相似度未达到通过标准",
        "FailedOperation.LipFaceIncomplete" => "脸部未完整露出",
        "FailedOperation.LipMoveSmall" => "嘴唇动作幅度过小",
        "FailedOperation.LipNetFailed" => "视频拉取失败,请重试",
        "FailedOperation.LipSizeError" => "视频为空,或大小不合适,请控制录制时长在6s左右",
        "FailedOperation.LipVideoInvalid" => "视频格式有误",
        "FailedOperation.LipVideoQuaility" => "视频像素太低",
        "FailedOperation.LipVoiceDetect" => "未检测到声音",
        "FailedOperation.LipVoiceLow" => "视频声音太小",
        "FailedOperation.LipVoiceRecognize" => "声音识别失败",
        "FailedOperation.SilentPictureLiveFail" => "疑似翻拍",
        "FailedOperation.SilentMultiFaceFail" => "视频检测中有多个人脸",
        "FailedOperation.ImageSizeTooLarge" => "图片尺寸过大",
        "FailedOperation.ImageDecodeFailed" => "图片解码失败",
        "FailedOperation.DownLoadError" => "文件下载失败",
        _ => "",
    };
    object(json!({
        "Result": result,
        "Description": description,
        "Sim": sim,
        "BestFrameBase64": null,
        "BestFrameList": null,
    }))
}

async fn api(State(sim): State<Sim>, headers: HeaderMap, body: axum::body::Bytes) -> Json<Value> {
    Json(sim.tencent.answer(&headers, &body))
}

async fn sent_sms(State(sim): State<Sim>) -> Json<Vec<SentSms>> {
    Json(sim.tencent.sent_sms())
}

#[derive(Deserialize)]
struct SmsFailure {
    phone: String,
    code: String,
}

async fn sms_failure(State(sim): State<Sim>, Json(f): Json<SmsFailure>) -> Json<Value> {
    sim.tencent.fail_sms_to(&f.phone, &f.code);
    Json(json!({"ok": true}))
}

async fn liveness(State(sim): State<Sim>, Json(s): Json<LivenessScript>) -> Json<Value> {
    sim.tencent.script_liveness(s.code.as_deref(), s.sim);
    Json(json!({"ok": true}))
}

async fn id_card(State(sim): State<Sim>, Json(card): Json<SimIdCard>) -> Json<Value> {
    sim.tencent.set_id_card(card);
    Json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct OcrWarnings {
    side: CardSide,
    codes: Vec<i64>,
}

async fn ocr_warnings(State(sim): State<Sim>, Json(w): Json<OcrWarnings>) -> Json<Value> {
    sim.tencent.script_ocr_warnings(w.side, &w.codes);
    Json(json!({"ok": true}))
}

#[derive(Deserialize)]
struct OcrFailure {
    side: CardSide,
    code: String,
}

async fn ocr_failure(State(sim): State<Sim>, Json(f): Json<OcrFailure>) -> Json<Value> {
    sim.tencent.script_ocr_failure(f.side, &f.code);
    Json(json!({"ok": true}))
}

/// The Tencent Cloud routes: `POST /` (the API) and the controls under `/sim/tencent/`.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/", post(api))
        // Larger than Tencent's 10 MB so that an oversize body gets Tencent's own error answer.
        .layer(DefaultBodyLimit::max(2 * REQUEST_LIMIT))
        .route("/sim/tencent/sms", get(sent_sms))
        .route("/sim/tencent/sms-failure", post(sms_failure))
        .route("/sim/tencent/liveness", post(liveness))
        .route("/sim/tencent/id-card", put(id_card))
        .route("/sim/tencent/ocr-warnings", post(ocr_warnings))
        .route("/sim/tencent/ocr-failure", post(ocr_failure))
}
