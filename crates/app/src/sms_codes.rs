//! SMS verification codes: six digits, five minutes, five tries, one per minute, daily limits
//! per phone and per client address. Codes are stored only as keyed hashes.

use crate::apply::SMS;
use crate::{App, AppError, in_tx, new_id};
use rand::Rng;
use yiqian_domain::identity::MobileNumber;
use yiqian_providers::sms::{SmsMessage, SmsTemplate};
use yiqian_store::sms::SmsCodeRecord;

/// The input a code is typed into, named in code errors so pages show them beside it.
const CODE_FIELD: &str = "code";

/// What a code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// Logging in with a phone number.
    Login,
    /// Binding the phone to an order.
    BindPhone,
}

impl CodePurpose {
    fn code(self) -> &'static str {
        match self {
            CodePurpose::Login => "login",
            CodePurpose::BindPhone => "bind_phone",
        }
    }
}

/// A code was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSent {
    /// When another code may be asked for.
    pub retry_after_seconds: i64,
}

/// A code that matched, to be used up in the caller's unit of work.
#[derive(Debug)]
pub(crate) struct MatchedCode {
    id: String,
}

impl App {
    fn code_hash(&self, phone: &MobileNumber, purpose: CodePurpose, code: &str) -> String {
        self.store().vault().lookup_hash("sms-code", &format!("{}|{}|{}", phone.as_str(), purpose.code(), code))
    }

    /// Sends a new code to `phone`, within the limits.
    pub async fn send_code(
        &self,
        phone: &MobileNumber,
        purpose: CodePurpose,
        client_ip: &str,
    ) -> Result<CodeSent, AppError> {
        let policy = &self.config().sms;
        let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
        let phone_hash = self.store().vault().lookup_hash("phone", phone.as_str());
        let code_hash = self.code_hash(phone, purpose, &code);
        in_tx!(self, |tx| {
            let now = self.now();
            if let Some(last) = tx.latest_sms_code(&phone_hash, purpose.code()).await? {
                let wait = (last.created_at + policy.resend_cooldown - now).num_seconds();
                if wait > 0 {
                    return Err(AppError::RateLimited {
                        message: format!("验证码已发送,请{wait}秒后再重新获取"),
                        retry_after_seconds: wait,
                    });
                }
            }
            let day_ago = now - chrono::Duration::days(1);
            if tx.sms_codes_to_phone_since(&phone_hash, day_ago).await? >= policy.per_phone_daily {
                return Err(AppError::RateLimited {
                    message: "该手机号今日获取验证码次数已达上限,请明天再试".into(),
                    retry_after_seconds: 24 * 3600,
                });
            }
            if tx.sms_codes_from_ip_since(client_ip, day_ago).await? >= policy.per_ip_daily {
                return Err(AppError::RateLimited {
                    message: "当前网络获取验证码次数过多,请明天再试".into(),
                    retry_after_seconds: 24 * 3600,
                });
            }
            let id = new_id("SC", 20);
            tx.insert_sms_code(&SmsCodeRecord {
                id: id.clone(),
                phone_hash: phone_hash.clone(),
                purpose: purpose.code().into(),
                code_hash: code_hash.clone(),
                client_ip: client_ip.into(),
                created_at: now,
                expires_at: now + policy.code_ttl,
                attempts: 0,
                consumed_at: None,
            })
            .await?;
            let message = SmsMessage {
                to: phone.clone(),
                template: SmsTemplate::VerificationCode {
                    code: code.clone(),
                    minutes: policy.code_ttl.num_minutes() as u32,
                },
            };
            let payload = serde_json::to_value(message).map_err(|e| AppError::Internal(e.to_string()))?;
            tx.enqueue(&new_id("OB", 20), SMS, &format!("sms:code:{id}"), &payload, now).await?;
            Ok(())
        })?;
        self.wake_outbox();
        Ok(CodeSent { retry_after_seconds: policy.resend_cooldown.num_seconds() })
    }

    /// Checks `code` against the newest code sent to `phone`. A wrong code counts against the
    /// code's tries (and that count is kept even though the caller fails). The matched code
    /// must then be used up with [`App::use_code`] in the caller's unit of work.
    pub(crate) async fn check_code(
        &self,
        phone: &MobileNumber,
        purpose: CodePurpose,
        code: &str,
    ) -> Result<MatchedCode, AppError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::invalid_field("sms_code_format", CODE_FIELD, "请输入6位数字验证码"));
        }
        let phone_hash = self.store().vault().lookup_hash("phone", phone.as_str());
        let hash = self.code_hash(phone, purpose, code);
        let max_attempts = self.config().sms.max_attempts;
        in_tx!(self, |tx| {
            let now = self.now();
            let Some(last) = tx.latest_sms_code(&phone_hash, purpose.code()).await? else {
                return Ok(Err(AppError::invalid_field("sms_code_missing", CODE_FIELD, "请先获取验证码")));
            };
            if last.consumed_at.is_some() {
                return Ok(Err(AppError::invalid_field("sms_code_used", CODE_FIELD, "验证码已使用,请重新获取")));
            }
            if now >= last.expires_at {
                return Ok(Err(AppError::invalid_field("sms_code_expired", CODE_FIELD, "验证码已过期,请重新获取")));
            }
            if last.attempts >= max_attempts {
                return Ok(Err(AppError::invalid_field(
                    "sms_code_locked",
                    CODE_FIELD,
                    "验证码错误次数过多,请重新获取",
                )));
            }
            if last.code_hash != hash {
                tx.count_sms_attempt(&last.id).await?;
                let left = max_attempts - last.attempts - 1;
                let message = if left > 0 {
                    format!("验证码错误,还可尝试{left}次")
                } else {
                    "验证码错误次数过多,请重新获取".into()
                };
                return Ok(Err(AppError::invalid_field("sms_code_wrong", CODE_FIELD, message)));
            }
            Ok(Ok(MatchedCode { id: last.id }))
        })?
    }

    /// Uses up a matched code inside the caller's unit of work; a code is good once.
    pub(crate) async fn use_code(&self, tx: &mut yiqian_store::Tx, matched: &MatchedCode) -> Result<(), AppError> {
        match tx.consume_sms_code(&matched.id, self.now()).await {
            Ok(()) => Ok(()),
            Err(yiqian_store::StoreError::Conflict) => {
                Err(AppError::invalid_field("sms_code_used", CODE_FIELD, "验证码已使用,请重新获取"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
