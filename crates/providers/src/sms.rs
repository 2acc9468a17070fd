//! Sending SMS: the message templates (Chinese text, one per notification) and the
//! [`SmsSender`] seam.

use crate::ProviderError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use yiqian_domain::identity::MobileNumber;

/// The signature every message starts with, as SMS regulations require.
pub const SIGN: &str = "【宜签】";

/// The messages yiqian sends. Each maps to one vendor template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum SmsTemplate {
    /// A verification code for login or phone binding.
    VerificationCode {
        /// The six digits.
        code: String,
        /// Minutes it stays valid.
        minutes: u32,
    },
    /// Payment received; the applicant should complete the materials.
    Paid {
        /// Order number.
        order: String,
    },
    /// Application submitted (受理成功).
    Submitted {
        /// Order number.
        order: String,
    },
    /// A refund was started.
    RefundStarted {
        /// Order number.
        order: String,
        /// Amount, e.g. `150.00`.
        yuan: String,
    },
    /// The refund went through.
    Refunded {
        /// Order number.
        order: String,
        /// Amount, e.g. `150.00`.
        yuan: String,
    },
}

impl SmsTemplate {
    /// The template's name at the vendor.
    pub fn name(&self) -> &'static str {
        match self {
            SmsTemplate::VerificationCode { .. } => "verification_code",
            SmsTemplate::Paid { .. } => "paid",
            SmsTemplate::Submitted { .. } => "submitted",
            SmsTemplate::RefundStarted { .. } => "refund_started",
            SmsTemplate::Refunded { .. } => "refunded",
        }
    }

    /// The full text the phone shows.
    pub fn text(&self) -> String {
        let body = match self {
            SmsTemplate::VerificationCode { code, minutes } => {
                format!("您的验证码是{code},{minutes}分钟内有效。请勿将验证码告诉他人。")
            }
            SmsTemplate::Paid { order } => format!("您的订单{order}已支付成功,请继续完成申请资料的提交。"),
            SmsTemplate::Submitted { order } => format!("您的订单{order}已受理成功,我们将尽快审核。"),
            SmsTemplate::RefundStarted { order, yuan } => {
                format!("您的订单{order}已申请退款,{yuan}元将原路退回,请留意到账通知。")
            }
            SmsTemplate::Refunded { order, yuan } => format!("您的订单{order}退款{yuan}元已原路退回。"),
        };
        format!("{SIGN}{body}")
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    /// Recipient.
    pub to: MobileNumber,
    /// What to say.
    pub template: SmsTemplate,
}

/// Sends SMS.
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Sends `message` once per `idempotency_key`: a repeated key is accepted and not sent again.
    async fn send(&self, message: &SmsMessage, idempotency_key: &str) -> Result<(), ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_carry_the_sign_and_the_values() {
        let t = SmsTemplate::VerificationCode { code: "123456".into(), minutes: 5 }.text();
        assert!(t.starts_with(SIGN));
        assert!(t.contains("123456") && t.contains("5分钟"));
        let t = SmsTemplate::Refunded { order: "YQ1".into(), yuan: "150.00".into() }.text();
        assert!(t.contains("YQ1") && t.contains("150.00元"));
    }
}
