//! Tencent Cloud SMS (`sms`, API 2021-01-11, `SendSms`) behind [`SmsSender`].
//!
//! Each of yiqian's templates ([`SmsTemplate::NAMES`]) is an approved template at Tencent
//! with its own TemplateId; the variables go in `TemplateParamSet` in placeholder order.
//! Tencent has **no idempotency of its own**: the same request sent twice sends two messages.
//! The caller's outbox delivers each message once; the idempotency key only travels as
//! `SessionContext` (echoed back and shown in Tencent's delivery records) so a duplicate can be
//! traced.

use super::{PROVIDER, TencentCloud, code_is_transient, request_id};
use crate::sms::{SmsMessage, SmsSender, SmsTemplate};
use crate::{ConfigError, ProviderError};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The SMS API's version.
pub const VERSION: &str = "2021-01-11";
/// `SessionContext` must stay below this many bytes.
pub const SESSION_CONTEXT_LIMIT: usize = 512;

/// The SMS application at Tencent Cloud.
#[derive(Debug, Clone, Deserialize)]
pub struct TencentSmsConfig {
    /// `SmsSdkAppId` (`1400…`).
    pub sdk_app_id: String,
    /// The approved signature text (`SignName`), e.g. `宜签`.
    pub sign_name: String,
    /// Template name ([`SmsTemplate::name`]) → approved `TemplateId`; every name is required.
    pub templates: BTreeMap<String, String>,
}

/// Sends yiqian's SMS through Tencent Cloud.
#[derive(Debug, Clone)]
pub struct TencentSms {
    cloud: TencentCloud,
    config: TencentSmsConfig,
}

impl TencentSms {
    /// An SMS sender; refuses a configuration lacking a TemplateId for any of
    /// [`SmsTemplate::NAMES`] or naming a template yiqian does not have.
    pub fn new(cloud: TencentCloud, config: TencentSmsConfig) -> Result<TencentSms, ConfigError> {
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !numeric(&config.sdk_app_id) {
            return Err(ConfigError::new(PROVIDER, "sms.sdk_app_id", "must be the numeric SmsSdkAppId (1400…)"));
        }
        if config.sign_name.trim().is_empty() {
            return Err(ConfigError::new(PROVIDER, "sms.sign_name", "must be the approved signature text"));
        }
        if let Some(missing) = SmsTemplate::NAMES.iter().find(|n| !config.templates.contains_key(**n)) {
            return Err(ConfigError::new(PROVIDER, "sms.templates", format!("no TemplateId for {missing:?}")));
        }
        for (name, id) in &config.templates {
            if !SmsTemplate::NAMES.contains(&name.as_str()) {
                return Err(ConfigError::new(PROVIDER, "sms.templates", format!("unknown template {name:?}")));
            }
            if !numeric(id) {
                return Err(ConfigError::new(
                    PROVIDER,
                    "sms.templates",
                    format!("TemplateId of {name:?} is not numeric"),
                ));
            }
        }
        Ok(TencentSms { cloud, config })
    }

    /// The `SendSms` request for `message`.
    fn request(&self, message: &SmsMessage, idempotency_key: &str) -> Result<Value, ProviderError> {
        let name = message.template.name();
        let template_id = self.config.templates.get(name).ok_or_else(|| ProviderError::Rejected {
            provider: PROVIDER,
            detail: format!("no TemplateId for {name}"),
        })?;
        Ok(json!({
            "PhoneNumberSet": [message.to.e164()],
            "SmsSdkAppId": self.config.sdk_app_id,
            "SignName": self.config.sign_name,
            "TemplateId": template_id,
            "TemplateParamSet": message.template.params(),
            "SessionContext": session_context(idempotency_key),
        }))
    }
}

/// The idempotency key as `SessionContext`: cut at a character boundary below 512 bytes.
pub fn session_context(idempotency_key: &str) -> &str {
    if idempotency_key.len() < SESSION_CONTEXT_LIMIT {
        return idempotency_key;
    }
    let mut end = SESSION_CONTEXT_LIMIT - 1;
    while !idempotency_key.is_char_boundary(end) {
        end -= 1;
    }
    &idempotency_key[..end]
}

/// The outcome for our one number in a `SendSms` answer.
fn outcome(response: &Value, phone_e164: &str) -> Result<(), ProviderError> {
    let rid = request_id(response);
    let statuses = response.get("SendStatusSet").and_then(Value::as_array);
    let status = statuses.and_then(|s| {
        s.iter().find(|st| st.get("PhoneNumber").and_then(Value::as_str) == Some(phone_e164)).or(s.first())
    });
    let Some(status) = status else {
        return Err(ProviderError::transport(
            PROVIDER,
            format!("SendSms answer without SendStatusSet (RequestId {rid})"),
        ));
    };
    let code = status.get("Code").and_then(Value::as_str).unwrap_or("");
    if code == "Ok" {
        let serial = status.get("SerialNo").and_then(Value::as_str).unwrap_or("");
        tracing::info!(request_id = %rid, serial_no = %serial, "SMS accepted by Tencent Cloud");
        return Ok(());
    }
    tracing::warn!(request_id = %rid, code = %code, "Tencent Cloud did not send the SMS");
    let detail = format!("SendSms: the number's status is {code:?} (RequestId {rid})");
    // Only back-end trouble is worth a retry; LimitExceeded.*, FailedOperation.PhoneNumberInBlacklist,
    // InvalidParameterValue.IncorrectPhoneNumber and the like will fail again.
    if !code.is_empty() && code_is_transient(code) {
        Err(ProviderError::Transient { provider: PROVIDER, detail })
    } else {
        Err(ProviderError::Rejected { provider: PROVIDER, detail })
    }
}

#[async_trait]
impl SmsSender for TencentSms {
    fn name(&self) -> &'static str {
        "tencent"
    }

    /// Sends once per call: Tencent does not deduplicate, the caller's outbox does.
    async fn send(&self, message: &SmsMessage, idempotency_key: &str) -> Result<(), ProviderError> {
        let body = self.request(message, idempotency_key)?;
        let response = self.cloud.call("sms", VERSION, "SendSms", &body).await?;
        outcome(&response, &message.to.e164())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::TencentCloudConfig;
    use yiqian_domain::identity::MobileNumber;

    fn config() -> TencentSmsConfig {
        TencentSmsConfig {
            sdk_app_id: "1400000001".into(),
            sign_name: "宜签".into(),
            templates: SmsTemplate::NAMES
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), format!("{}", 100 + i)))
                .collect(),
        }
    }

    fn cloud() -> TencentCloud {
        TencentCloud::new(TencentCloudConfig::new("AKID1", "k", None, Some("http://127.0.0.1:1")).unwrap()).unwrap()
    }

    #[test]
    fn every_template_needs_a_numeric_id() {
        assert!(TencentSms::new(cloud(), config()).is_ok());
        let mut c = config();
        c.templates.remove("pin");
        assert!(TencentSms::new(cloud(), c).unwrap_err().message.contains("\"pin\""));
        let mut c = config();
        c.templates.insert("pin".into(), "SMS_1".into());
        assert!(TencentSms::new(cloud(), c).is_err());
        let mut c = config();
        c.templates.insert("welcome".into(), "1".into());
        assert!(TencentSms::new(cloud(), c).is_err());
        let mut c = config();
        c.sdk_app_id = String::new();
        assert_eq!(TencentSms::new(cloud(), c).unwrap_err().field, "sms.sdk_app_id");
    }

    #[test]
    fn the_request_carries_the_e164_number_template_and_params() {
        let sms = TencentSms::new(cloud(), config()).unwrap();
        let message = SmsMessage {
            to: MobileNumber::parse("13800138000").unwrap(),
            template: SmsTemplate::RefundStarted { order: "YQ1".into(), yuan: "150.00".into() },
        };
        let body = sms.request(&message, "outbox-7").unwrap();
        assert_eq!(body["PhoneNumberSet"], json!(["+8613800138000"]));
        assert_eq!(body["TemplateId"], json!("103"));
        assert_eq!(body["TemplateParamSet"], json!(["YQ1", "150.00"]));
        assert_eq!(body["SessionContext"], json!("outbox-7"));
        assert_eq!(body["SmsSdkAppId"], json!("1400000001"));
    }

    #[test]
    fn long_session_contexts_are_cut_at_a_character_boundary() {
        assert_eq!(session_context("k"), "k");
        let long = "签".repeat(200); // 600 bytes
        let cut = session_context(&long);
        assert!(cut.len() < SESSION_CONTEXT_LIMIT && cut.len() >= SESSION_CONTEXT_LIMIT - 3);
        assert!(long.starts_with(cut));
        let ascii = "a".repeat(512);
        assert_eq!(session_context(&ascii).len(), 511);
    }

    #[test]
    fn per_number_codes_decide_the_outcome() {
        let answer = |code: &str| json!({"SendStatusSet": [{"PhoneNumber": "+8613800138000", "Code": code, "SerialNo": "s"}], "RequestId": "r"});
        assert_eq!(outcome(&answer("Ok"), "+8613800138000"), Ok(()));
        for code in ["LimitExceeded.PhoneNumberDailyLimit", "FailedOperation.PhoneNumberInBlacklist", ""] {
            assert!(matches!(outcome(&answer(code), "+8613800138000"), Err(ProviderError::Rejected { .. })), "{code}");
        }
        assert!(outcome(&answer("InternalError.Timeout"), "+8613800138000").unwrap_err().is_transient());
        assert!(outcome(&json!({"SendStatusSet": [], "RequestId": "r"}), "+8613800138000").unwrap_err().is_transient());
    }
}
