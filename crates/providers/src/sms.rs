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
    /// Review passed; the key is being made.
    Approved {
        /// Order number.
        order: String,
    },
    /// A step was sent back for correction.
    SentBack {
        /// Order number.
        order: String,
        /// The step's title, e.g. `身份证拍照`.
        step: String,
        /// The reviewer's reason.
        reason: String,
    },
    /// The application was rejected; the money goes back.
    Rejected {
        /// Order number.
        order: String,
        /// The reviewer's reason.
        reason: String,
        /// Amount, e.g. `150.00`.
        yuan: String,
    },
    /// The key was handed to the courier.
    Shipped {
        /// Order number.
        order: String,
        /// Courier name.
        courier: String,
        /// Waybill number.
        tracking_no: String,
    },
    /// Activation received; a reviewer checks the video before the PIN is sent.
    ActivationPending {
        /// Order number.
        order: String,
    },
    /// The activation video was not accepted; verify again.
    ActivationRejected {
        /// Order number.
        order: String,
        /// The reviewer's reason.
        reason: String,
    },
    /// The key's PIN, sent once at activation (or after a counter reset).
    Pin {
        /// Order number.
        order: String,
        /// The PIN.
        pin: String,
    },
    /// The e-invoice was issued.
    InvoiceIssued {
        /// Order number.
        order: String,
    },
    /// The certificate was revoked at the counter.
    CertificateRevoked {
        /// Order number.
        order: String,
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
            SmsTemplate::Approved { .. } => "approved",
            SmsTemplate::SentBack { .. } => "sent_back",
            SmsTemplate::Rejected { .. } => "rejected",
            SmsTemplate::Shipped { .. } => "shipped",
            SmsTemplate::ActivationPending { .. } => "activation_pending",
            SmsTemplate::ActivationRejected { .. } => "activation_rejected",
            SmsTemplate::Pin { .. } => "pin",
            SmsTemplate::InvoiceIssued { .. } => "invoice_issued",
            SmsTemplate::CertificateRevoked { .. } => "certificate_revoked",
        }
    }

    /// The template's variables in the order of their placeholders `{1}`, `{2}`, … in the
    /// vendor template whose text is [`SmsTemplate::text`] (Tencent `TemplateParamSet`).
    pub fn params(&self) -> Vec<String> {
        match self {
            SmsTemplate::VerificationCode { code, minutes } => vec![code.clone(), minutes.to_string()],
            SmsTemplate::Paid { order }
            | SmsTemplate::Submitted { order }
            | SmsTemplate::Approved { order }
            | SmsTemplate::ActivationPending { order }
            | SmsTemplate::InvoiceIssued { order }
            | SmsTemplate::CertificateRevoked { order } => vec![order.clone()],
            SmsTemplate::RefundStarted { order, yuan } | SmsTemplate::Refunded { order, yuan } => {
                vec![order.clone(), yuan.clone()]
            }
            SmsTemplate::SentBack { order, step, reason } => vec![order.clone(), step.clone(), reason.clone()],
            SmsTemplate::Rejected { order, reason, yuan } => vec![order.clone(), reason.clone(), yuan.clone()],
            SmsTemplate::Shipped { order, courier, tracking_no } => {
                vec![order.clone(), courier.clone(), tracking_no.clone()]
            }
            SmsTemplate::ActivationRejected { order, reason } => vec![order.clone(), reason.clone()],
            SmsTemplate::Pin { order, pin } => vec![order.clone(), pin.clone()],
        }
    }

    /// The message a vendor template's name and parameters stand for (the inverse of
    /// [`SmsTemplate::name`] and [`SmsTemplate::params`]); `None` for an unknown name or the
    /// wrong number of parameters. Lets a stand-in show the text a phone would.
    pub fn from_params(name: &str, params: &[String]) -> Option<SmsTemplate> {
        let p = |i: usize| params.get(i).cloned();
        let t = match (name, params.len()) {
            ("verification_code", 2) => SmsTemplate::VerificationCode { code: p(0)?, minutes: params[1].parse().ok()? },
            ("paid", 1) => SmsTemplate::Paid { order: p(0)? },
            ("submitted", 1) => SmsTemplate::Submitted { order: p(0)? },
            ("refund_started", 2) => SmsTemplate::RefundStarted { order: p(0)?, yuan: p(1)? },
            ("refunded", 2) => SmsTemplate::Refunded { order: p(0)?, yuan: p(1)? },
            ("approved", 1) => SmsTemplate::Approved { order: p(0)? },
            ("sent_back", 3) => SmsTemplate::SentBack { order: p(0)?, step: p(1)?, reason: p(2)? },
            ("rejected", 3) => SmsTemplate::Rejected { order: p(0)?, reason: p(1)?, yuan: p(2)? },
            ("shipped", 3) => SmsTemplate::Shipped { order: p(0)?, courier: p(1)?, tracking_no: p(2)? },
            ("activation_pending", 1) => SmsTemplate::ActivationPending { order: p(0)? },
            ("activation_rejected", 2) => SmsTemplate::ActivationRejected { order: p(0)?, reason: p(1)? },
            ("pin", 2) => SmsTemplate::Pin { order: p(0)?, pin: p(1)? },
            ("invoice_issued", 1) => SmsTemplate::InvoiceIssued { order: p(0)? },
            ("certificate_revoked", 1) => SmsTemplate::CertificateRevoked { order: p(0)? },
            _ => return None,
        };
        Some(t)
    }

    /// Every template name, for configuration checks.
    pub const NAMES: [&'static str; 14] = [
        "verification_code",
        "paid",
        "submitted",
        "refund_started",
        "refunded",
        "approved",
        "sent_back",
        "rejected",
        "shipped",
        "activation_pending",
        "activation_rejected",
        "pin",
        "invoice_issued",
        "certificate_revoked",
    ];

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
            SmsTemplate::Approved { order } => format!("您的订单{order}已审核通过,我们正在为您制作数字证书UKEY。"),
            SmsTemplate::SentBack { order, step, reason } => {
                format!("您的订单{order}需要补正“{step}”:{reason}。请打开订单重新提交。")
            }
            SmsTemplate::Rejected { order, reason, yuan } => {
                format!("很抱歉,您的订单{order}审核未通过:{reason}。{yuan}元将原路退回。")
            }
            SmsTemplate::Shipped { order, courier, tracking_no } => {
                format!(
                    "您的订单{order}数字证书UKEY已寄出,{courier}运单号{tracking_no}。收到后请扫描业务确认单上的二维码激活。"
                )
            }
            SmsTemplate::ActivationPending { order } => {
                format!("您的订单{order}激活申请已收到,审核通过后PIN码将以短信发送给您。")
            }
            SmsTemplate::ActivationRejected { order, reason } => {
                format!("您的订单{order}激活审核未通过:{reason}。请重新扫码完成人脸验证。")
            }
            SmsTemplate::Pin { order, pin } => {
                format!(
                    "您的订单{order}数字证书已激活,UKEY的PIN码为{pin}。请妥善保管,切勿告知他人,工作人员不会向您索要PIN码。"
                )
            }
            SmsTemplate::InvoiceIssued { order } => format!("您的订单{order}电子发票已开具,请在已购记录中查看下载。"),
            SmsTemplate::CertificateRevoked { order } => {
                format!("您的订单{order}数字证书已注销,如非本人操作请立即联系客服。")
            }
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
    /// The provider's name (`sandbox`, `tencent`), for the operators' metrics.
    fn name(&self) -> &'static str;
    /// Sends `message` once per `idempotency_key`: a repeated key is accepted and not sent again.
    async fn send(&self, message: &SmsMessage, idempotency_key: &str) -> Result<(), ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_param_appears_in_the_text_and_every_name_is_listed() {
        let all = [
            SmsTemplate::VerificationCode { code: "123456".into(), minutes: 5 },
            SmsTemplate::SentBack { order: "YQ1".into(), step: "签名".into(), reason: "看不清".into() },
            SmsTemplate::Rejected { order: "YQ1".into(), reason: "资料不符".into(), yuan: "150.00".into() },
            SmsTemplate::Shipped { order: "YQ1".into(), courier: "顺丰速运".into(), tracking_no: "SF1".into() },
            SmsTemplate::Pin { order: "YQ1".into(), pin: "12345678".into() },
        ];
        for t in &all {
            assert!(SmsTemplate::NAMES.contains(&t.name()));
            assert_eq!(SmsTemplate::from_params(t.name(), &t.params()).as_ref(), Some(t));
            for p in t.params() {
                assert!(t.text().contains(&p), "{} lacks {p}", t.name());
            }
        }
    }

    #[test]
    fn texts_carry_the_sign_and_the_values() {
        let t = SmsTemplate::VerificationCode { code: "123456".into(), minutes: 5 }.text();
        assert!(t.starts_with(SIGN));
        assert!(t.contains("123456") && t.contains("5分钟"));
        let t = SmsTemplate::Refunded { order: "YQ1".into(), yuan: "150.00".into() }.text();
        assert!(t.contains("YQ1") && t.contains("150.00元"));
    }
}
