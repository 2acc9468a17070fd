//! The real Tencent Cloud adapters (SMS, IDCardOCR, FaceID) against the local stand-in: the
//! stand-in verifies their TC3 signatures, and their answers map to yiqian's results.

use base64::Engine;
use serde_json::json;
use tokio::sync::OnceCell;
use yiqian_domain::identity::MobileNumber;
use yiqian_providers::ProviderError;
use yiqian_providers::identity::{CardSide, IdPhotoProblem, IdPhotoWarning, IdentityVerifier, LivenessVerdict};
use yiqian_providers::sms::{SmsMessage, SmsSender, SmsTemplate};
use yiqian_providers::tencent::{
    CallError, TencentCloud, TencentCloudConfig, TencentIdentity, TencentSms, TencentSmsConfig, tc3,
};
use yiqian_sim::RunningSim;
use yiqian_sim::accounts::SimAccounts;
use yiqian_sim::tencent::SimIdCard;

static ACCOUNTS: OnceCell<SimAccounts> = OnceCell::const_new();

async fn accounts() -> &'static SimAccounts {
    ACCOUNTS
        .get_or_init(|| async { tokio::task::spawn_blocking(|| SimAccounts::generate().unwrap()).await.unwrap() })
        .await
}

/// A running stand-in and a client of it with the account's credentials.
async fn start() -> (RunningSim, TencentCloud) {
    let accounts = accounts().await;
    let sim = RunningSim::start(accounts).await.unwrap();
    let t = &accounts.tencent;
    let config = TencentCloudConfig::new(&t.secret_id, &t.secret_key, None, Some(&sim.base_url())).unwrap();
    (sim, TencentCloud::new(config).unwrap())
}

fn template_ids() -> std::collections::BTreeMap<String, String> {
    SmsTemplate::NAMES.iter().enumerate().map(|(i, n)| (n.to_string(), (2_000_001 + i).to_string())).collect()
}

fn sms_config(accounts: &SimAccounts) -> TencentSmsConfig {
    TencentSmsConfig {
        sdk_app_id: accounts.tencent.sms_sdk_app_id.clone(),
        sign_name: accounts.tencent.sms_sign_name.clone(),
        templates: template_ids(),
    }
}

fn message(to: &str, template: SmsTemplate) -> SmsMessage {
    SmsMessage { to: MobileNumber::parse(to).unwrap(), template }
}

fn rejected_with(result: Result<impl std::fmt::Debug, ProviderError>, code: &str) {
    match result {
        Err(ProviderError::Rejected { detail, .. }) => assert!(detail.contains(code), "{detail} lacks {code}"),
        other => panic!("expected a refusal with {code}, got {other:?}"),
    }
}

const JPEG_FRONT: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF front side of the card";
const JPEG_BACK: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF back side of the card";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0isommp42 a face reading digits";

#[tokio::test]
async fn sms_are_sent_with_the_e164_number_template_id_and_params() {
    let (sim, cloud) = start().await;
    let accounts = accounts().await;
    let sms = TencentSms::new(cloud, sms_config(accounts)).unwrap();
    let ids = template_ids();
    let sent = [
        (message("13800138000", SmsTemplate::VerificationCode { code: "246810".into(), minutes: 5 }), "outbox-1"),
        (
            message(
                "+86 139-0000-1111",
                SmsTemplate::Shipped {
                    order: "YQ20250101".into(),
                    courier: "顺丰速运".into(),
                    tracking_no: "SF1234567890".into(),
                },
            ),
            "outbox-2",
        ),
        (message("15012345678", SmsTemplate::CertificateRevoked { order: "YQ20250102".into() }), "outbox-3"),
    ];
    for (m, key) in &sent {
        sms.send(m, key).await.unwrap();
    }
    let recorded = sim.sim.tencent.sent_sms();
    assert_eq!(recorded.len(), 3);
    for ((m, key), r) in sent.iter().zip(&recorded) {
        assert_eq!(r.phone_number, format!("+86{}", m.to.as_str()));
        assert_eq!(r.template_id, ids[m.template.name()]);
        assert_eq!(r.template_params, m.template.params());
        assert_eq!(r.session_context, *key);
        assert_eq!(r.sign_name, accounts.tencent.sms_sign_name);
        assert_eq!(r.sms_sdk_app_id, accounts.tencent.sms_sdk_app_id);
    }
    assert_eq!(recorded[0].template_params, ["246810", "5"]);
    assert_eq!(recorded[1].phone_number, "+8613900001111");

    // The same record over HTTP.
    let listed: serde_json::Value =
        reqwest::get(format!("{}/sim/tencent/sms", sim.base_url())).await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[2]["template_params"], json!(["YQ20250102"]));
}

#[tokio::test]
async fn a_failed_number_is_an_error_and_nothing_is_recorded() {
    let (sim, cloud) = start().await;
    let sms = TencentSms::new(cloud, sms_config(accounts().await)).unwrap();
    sim.sim.tencent.fail_sms_to("+8613800138000", "FailedOperation.PhoneNumberInBlacklist");
    let m = message("13800138000", SmsTemplate::Paid { order: "YQ1".into() });
    rejected_with(sms.send(&m, "k").await, "FailedOperation.PhoneNumberInBlacklist");
    sim.sim.tencent.fail_sms_to("+8613900001111", "LimitExceeded.PhoneNumberDailyLimit");
    let m = message("13900001111", SmsTemplate::Paid { order: "YQ1".into() });
    rejected_with(sms.send(&m, "k").await, "LimitExceeded.PhoneNumberDailyLimit");
    sim.sim.tencent.fail_sms_to("+8613700001111", "InternalError.Timeout");
    let m = message("13700001111", SmsTemplate::Paid { order: "YQ1".into() });
    assert!(sms.send(&m, "k").await.unwrap_err().is_transient());
    assert!(sim.sim.tencent.sent_sms().is_empty());
}

#[tokio::test]
async fn a_wrong_sign_name_or_app_id_is_refused() {
    let (sim, cloud) = start().await;
    let accounts = accounts().await;
    let m = message("13800138000", SmsTemplate::Approved { order: "YQ1".into() });
    let mut config = sms_config(accounts);
    config.sign_name = "别的签名".into();
    let sms = TencentSms::new(cloud.clone(), config).unwrap();
    rejected_with(sms.send(&m, "k").await, "FailedOperation.SignatureIncorrectOrUnapproved");
    let mut config = sms_config(accounts);
    config.sdk_app_id = "1400999999".into();
    let sms = TencentSms::new(cloud, config).unwrap();
    rejected_with(sms.send(&m, "k").await, "InvalidParameterValue.SdkAppIdNotExist");
    assert!(sim.sim.tencent.sent_sms().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_key_or_id_is_refused_and_nothing_is_sent() {
    let (sim, _) = start().await;
    let accounts = accounts().await;
    let m = message("13800138000", SmsTemplate::Approved { order: "YQ1".into() });
    let wrong_key = TencentCloudConfig::new(&accounts.tencent.secret_id, "not-the-key", None, Some(&sim.base_url()));
    let sms = TencentSms::new(TencentCloud::new(wrong_key.unwrap()).unwrap(), sms_config(accounts)).unwrap();
    rejected_with(sms.send(&m, "k").await, "AuthFailure.SignatureFailure");
    let wrong_id = TencentCloudConfig::new("AKIDunknown", &accounts.tencent.secret_key, None, Some(&sim.base_url()));
    let sms = TencentSms::new(TencentCloud::new(wrong_id.unwrap()).unwrap(), sms_config(accounts)).unwrap();
    rejected_with(sms.send(&m, "k").await, "AuthFailure.SecretIdNotFound");
    assert!(sim.sim.tencent.sent_sms().is_empty());
}

/// Posts `sent_body` as a `GetLiveCode` signed by hand over `signed_body` at `timestamp`, its
/// `Authorization` header passed through `edit`; returns the `Response`.
async fn hand_signed(
    sim: &RunningSim,
    timestamp: i64,
    signed_body: &[u8],
    sent_body: &[u8],
    edit: impl Fn(String) -> String,
) -> serde_json::Value {
    let t = &accounts().await.tencent;
    let credentials = tc3::Credentials { secret_id: t.secret_id.clone(), secret_key: t.secret_key.clone() };
    let host = sim.addr.to_string();
    let request = tc3::Tc3Request {
        service: "faceid",
        host: &host,
        content_type: tc3::CONTENT_TYPE,
        payload: signed_body,
        timestamp: chrono::DateTime::from_timestamp(timestamp, 0).unwrap(),
    };
    let answer: serde_json::Value = reqwest::Client::new()
        .post(sim.base_url())
        .header("Content-Type", tc3::CONTENT_TYPE)
        .header("Authorization", edit(tc3::authorization(&credentials, &request)))
        .header("X-TC-Action", "GetLiveCode")
        .header("X-TC-Version", "2018-03-01")
        .header("X-TC-Timestamp", timestamp.to_string())
        .header("X-TC-Region", "ap-guangzhou")
        .body(sent_body.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["Response"].clone()
}

#[tokio::test]
async fn a_request_signed_ten_minutes_ago_has_expired() {
    let (sim, _) = start().await;
    let now = chrono::Utc::now().timestamp();
    // The hand-built request is right when fresh…
    let fresh = hand_signed(&sim, now, b"{}", b"{}", |a| a).await;
    assert!(fresh["LiveCode"].as_str().is_some_and(|c| c.len() == 4), "{fresh}");
    assert!(fresh["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
    // …expired ten minutes later…
    let stale = hand_signed(&sim, now - 600, b"{}", b"{}", |a| a).await;
    assert_eq!(stale["Error"]["Code"], "AuthFailure.SignatureExpire", "{stale}");
    // …and wrong with a body other than the one signed.
    let tampered = hand_signed(&sim, now, b"{}", b"{ }", |a| a).await;
    assert_eq!(tampered["Error"]["Code"], "AuthFailure.SignatureFailure", "{tampered}");
    // Host must be signed.
    let unsigned_host = hand_signed(&sim, now, b"{}", b"{}", |a| {
        a.replace("SignedHeaders=content-type;host", "SignedHeaders=content-type")
    })
    .await;
    assert_eq!(unsigned_host["Error"]["Code"], "AuthFailure.InvalidAuthorization", "{unsigned_host}");
    assert_eq!(sim.sim.tencent.issued_live_codes().len(), 1);
}

#[tokio::test]
async fn the_stand_in_refuses_what_tencent_refuses() {
    let (sim, cloud) = start().await;
    let api_code = |r: Result<serde_json::Value, CallError>| match r {
        Err(CallError::Api(e)) => e.code,
        other => panic!("expected an error answer, got {other:?}"),
    };
    let empty = json!({});
    // The credential scope names another service than the action's.
    assert_eq!(
        api_code(cloud.try_call("sms", "2018-03-01", "GetLiveCode", &empty).await),
        "AuthFailure.InvalidAuthorization"
    );
    assert_eq!(api_code(cloud.try_call("faceid", "2017-01-01", "GetLiveCode", &empty).await), "NoSuchVersion");
    assert_eq!(api_code(cloud.try_call("cvm", "2017-03-12", "DescribeInstances", &empty).await), "InvalidAction");
    let t = &accounts().await.tencent;
    let mars = TencentCloudConfig::new(&t.secret_id, &t.secret_key, Some("mars-1"), Some(&sim.base_url())).unwrap();
    let mars = TencentCloud::new(mars).unwrap();
    assert_eq!(api_code(mars.try_call("faceid", "2018-03-01", "GetLiveCode", &empty).await), "UnsupportedRegion");

    // A number not in E.164 form fails for that number only.
    let body = json!({
        "PhoneNumberSet": ["13800138000", "+8613900001111"],
        "SmsSdkAppId": t.sms_sdk_app_id, "SignName": t.sms_sign_name, "TemplateId": "2000001",
        "TemplateParamSet": ["1"],
    });
    let answer = cloud.call("sms", "2021-01-11", "SendSms", &body).await.unwrap();
    assert_eq!(answer["SendStatusSet"][0]["Code"], "InvalidParameterValue.IncorrectPhoneNumber");
    assert_eq!(answer["SendStatusSet"][1]["Code"], "Ok");
    assert_eq!(sim.sim.tencent.sent_sms().len(), 1);

    // Warnings are reported only when Config switches them on; Config must be a JSON string.
    sim.sim.tencent.script_ocr_warnings(CardSide::Front, &[-9102, -9110]);
    let image = base64::engine::general_purpose::STANDARD.encode(JPEG_FRONT);
    let body = json!({"ImageBase64": image, "CardSide": "FRONT", "Config": "{\"ReshootWarn\":true}"});
    let answer = cloud.call("ocr", "2018-11-19", "IDCardOCR", &body).await.unwrap();
    let advanced: serde_json::Value = serde_json::from_str(answer["AdvancedInfo"].as_str().unwrap()).unwrap();
    assert_eq!(advanced["WarnInfos"], json!([-9110]));
    let body = json!({"ImageBase64": image, "CardSide": "FRONT", "Config": {"CopyWarn": true}});
    let r = cloud.try_call("ocr", "2018-11-19", "IDCardOCR", &body).await;
    assert_eq!(api_code(r), "InvalidParameter.ConfigFormatError");
}

#[tokio::test]
async fn both_sides_of_the_card_are_read_and_mapped() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    assert_eq!(identity.name(), "tencent");
    let reading = identity.read_id_card(JPEG_FRONT, JPEG_BACK).await.unwrap();
    assert_eq!(reading.name.as_deref(), Some("张三"));
    assert_eq!(reading.sex.as_deref(), Some("女"));
    assert_eq!(reading.ethnicity.as_deref(), Some("汉"));
    assert_eq!(reading.birth_date.as_deref(), Some("1949-12-31"));
    assert_eq!(reading.address.as_deref(), Some("北京市朝阳区建国路88号"));
    assert_eq!(reading.id_number.as_deref(), Some("11010519491231002X"));
    assert_eq!(reading.authority.as_deref(), Some("北京市公安局朝阳分局"));
    assert_eq!(reading.validity.as_deref(), Some("2015.08.01-2035.08.01"));
    assert!(reading.warnings.is_empty());

    let mut requests = sim.sim.tencent.ocr_requests();
    requests.sort_by(|a, b| b.card_side.cmp(&a.card_side));
    assert_eq!(requests.len(), 2);
    assert_eq!((requests[0].card_side.as_str(), requests[0].image.as_slice()), ("FRONT", JPEG_FRONT));
    assert_eq!((requests[1].card_side.as_str(), requests[1].image.as_slice()), ("BACK", JPEG_BACK));
    for flag in
        ["CopyWarn", "BorderCheckWarn", "ReshootWarn", "DetectPsWarn", "TempIdWarn", "InvalidDateWarn", "ReflectWarn"]
    {
        assert_eq!(requests[0].config[flag], true, "{flag}");
    }

    sim.sim.tencent.set_id_card(SimIdCard {
        name: "李四".into(),
        sex: "男".into(),
        birth: "1990/3/7".into(),
        id_num: "110101199003074477".into(),
        valid_date: "2020.01.01-长期".into(),
        ..SimIdCard::default()
    });
    let reading = identity.read_id_card(JPEG_FRONT, JPEG_BACK).await.unwrap();
    assert_eq!(reading.birth_date.as_deref(), Some("1990-03-07"));
    assert_eq!(reading.id_number.as_deref(), Some("110101199003074477"));
    assert_eq!(reading.validity.as_deref(), Some("2020.01.01-长期"));
}

#[tokio::test]
async fn ocr_warnings_become_problems_of_the_right_side() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    sim.sim.tencent.script_ocr_warnings(CardSide::Front, &[-9102, -9105]);
    sim.sim.tencent.script_ocr_warnings(CardSide::Back, &[-9107, -9109, -9111]);
    let reading = identity.read_id_card(JPEG_FRONT, JPEG_BACK).await.unwrap();
    let w = |side, problem| IdPhotoWarning { side, problem };
    let mut expected = vec![
        w(CardSide::Front, IdPhotoProblem::Photocopy),
        w(CardSide::Front, IdPhotoProblem::Occluded),
        w(CardSide::Back, IdPhotoProblem::Glare),
        w(CardSide::Back, IdPhotoProblem::InvalidValidity),
        w(CardSide::Back, IdPhotoProblem::NotOriginal),
    ];
    assert_eq!(reading.warnings, expected);
    // The fields are still read.
    assert_eq!(reading.name.as_deref(), Some("张三"));
    // Warnings last for one call only.
    assert!(identity.read_id_card(JPEG_FRONT, JPEG_BACK).await.unwrap().warnings.is_empty());

    sim.sim.tencent.script_ocr_warnings(CardSide::Back, &[-9103, -9104]);
    expected = vec![w(CardSide::Back, IdPhotoProblem::Reshoot), w(CardSide::Back, IdPhotoProblem::TemporaryCard)];
    assert_eq!(identity.read_id_card(JPEG_FRONT, JPEG_BACK).await.unwrap().warnings, expected);
}

#[tokio::test]
async fn an_unrecognised_side_is_a_retake_not_an_error() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    sim.sim.tencent.script_ocr_failure(CardSide::Back, "FailedOperation.OcrFailed");
    let reading = identity.read_id_card(JPEG_FRONT, JPEG_BACK).await.unwrap();
    assert_eq!(reading.warnings, [IdPhotoWarning { side: CardSide::Back, problem: IdPhotoProblem::NotRecognised }]);
    assert_eq!(reading.id_number.as_deref(), Some("11010519491231002X"));
    assert_eq!((reading.authority, reading.validity), (None, None));

    // Not a picture at all: Tencent cannot decode it.
    let reading = identity.read_id_card(b"a text file, not a photo", JPEG_BACK).await.unwrap();
    assert_eq!(reading.warnings, [IdPhotoWarning { side: CardSide::Front, problem: IdPhotoProblem::NotRecognised }]);
    assert_eq!(reading.name, None);
    assert!(reading.authority.is_some());
}

#[tokio::test]
async fn a_live_code_and_a_good_video_pass_with_the_similarity_kept() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    let code = identity.live_code().await.unwrap();
    assert!(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    assert_eq!(sim.sim.tencent.issued_live_codes(), std::slice::from_ref(&code));
    let verdict = identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap();
    assert_eq!(verdict, LivenessVerdict::Pass { similarity: 88.5 });
    let requests = sim.sim.tencent.liveness_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!((requests[0].liveness_type.as_str(), requests[0].validate_data.as_str()), ("LIP", code.as_str()));
    assert_eq!((requests[0].video.as_slice(), requests[0].image.as_slice()), (MP4, JPEG_FRONT));

    sim.sim.tencent.script_liveness(None, Some(71.25));
    assert_eq!(
        identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap(),
        LivenessVerdict::Pass { similarity: 71.25 }
    );
}

#[tokio::test]
async fn low_similarity_and_lip_failures_fail_with_the_applicants_reason() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    let code = identity.live_code().await.unwrap();

    sim.sim.tencent.script_liveness(None, Some(42.0));
    match identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap() {
        LivenessVerdict::Fail { reason, similarity } => {
            assert_eq!(similarity, Some(42.0));
            assert!(reason.contains("身份证照片"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    sim.sim.tencent.script_liveness(Some("FailedOperation.LipVoiceLow"), None);
    assert_eq!(
        identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap(),
        LivenessVerdict::Fail {
            reason: "声音太小,请在安静的环境中大声读出数字".into(), similarity: None
        }
    );

    sim.sim.tencent.script_liveness(Some("FailedOperation.LivessDetectFake"), Some(81.0));
    assert!(matches!(
        identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap(),
        LivenessVerdict::NeedsReview { similarity: Some(s), .. } if s == 81.0
    ));

    sim.sim.tencent.script_liveness(Some("FailedOperation.LivessSystemError"), None);
    assert!(identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap_err().is_transient());
    // Scripts last for one call.
    assert!(matches!(identity.check_liveness(MP4, &code, JPEG_FRONT).await.unwrap(), LivenessVerdict::Pass { .. }));
}

#[tokio::test]
async fn a_code_never_issued_is_refused() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    rejected_with(identity.check_liveness(MP4, "12345", JPEG_FRONT).await, "InvalidParameterValue");
    assert!(sim.sim.tencent.liveness_requests().is_empty());
}

#[tokio::test]
async fn videos_tencent_cannot_take_go_to_a_reviewer_without_a_call() {
    let (sim, cloud) = start().await;
    let identity = TencentIdentity::new(cloud);
    let code = identity.live_code().await.unwrap();
    let mut big = MP4.to_vec();
    big.resize(6 * 1024 * 1024 + 1, 0); // Base64 over 8 MB
    assert!(matches!(
        identity.check_liveness(&big, &code, JPEG_FRONT).await.unwrap(),
        LivenessVerdict::NeedsReview { similarity: None, .. }
    ));
    let webm = b"\x1aE\xdf\xa3\x9fB\x86\x81\x01webm";
    assert!(matches!(
        identity.check_liveness(webm, &code, JPEG_FRONT).await.unwrap(),
        LivenessVerdict::NeedsReview { similarity: None, .. }
    ));
    let mut photo = JPEG_FRONT.to_vec();
    photo.resize(3 * 1024 * 1024, 0); // Base64 over 3 MB
    assert!(matches!(
        identity.check_liveness(MP4, &code, &photo).await.unwrap(),
        LivenessVerdict::NeedsReview { similarity: None, .. }
    ));
    assert!(sim.sim.tencent.liveness_requests().is_empty());
}
