//! E-invoices (电子发票): who the invoice is made out to, validated the way the tax system
//! expects, and the invoice's two states.

use crate::OrderState;
use crate::identity::{SocialCreditCode, SocialCreditCodeError};
use serde::{Deserialize, Serialize};

/// The buyer on the invoice (发票抬头).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InvoiceBuyer {
    /// 单位: the company's full name and its unified social credit code (纳税人识别号).
    Company {
        /// 单位名称.
        name: String,
        /// 纳税人识别号.
        tax_id: SocialCreditCode,
    },
    /// 个人: the person's name.
    Personal {
        /// 姓名.
        name: String,
    },
}

impl InvoiceBuyer {
    /// The name on the invoice.
    pub fn name(&self) -> &str {
        match self {
            InvoiceBuyer::Company { name, .. } | InvoiceBuyer::Personal { name } => name,
        }
    }

    /// 单位 or 个人.
    pub fn kind_word(&self) -> &'static str {
        match self {
            InvoiceBuyer::Company { .. } => "单位",
            InvoiceBuyer::Personal { .. } => "个人",
        }
    }
}

/// The invoice request as typed on 申请开票.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InvoiceForm {
    /// `company` or `personal`.
    pub kind: String,
    /// 抬头: company name or personal name.
    pub name: String,
    /// 纳税人识别号 (company only).
    #[serde(default)]
    pub tax_id: Option<String>,
    /// Where to e-mail the invoice as well (optional).
    #[serde(default)]
    pub email: Option<String>,
}

/// A checked invoice request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRequest {
    /// 抬头.
    pub buyer: InvoiceBuyer,
    /// Optional e-mail address.
    pub email: Option<String>,
}

/// Why an invoice request was refused; the text is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// Neither company nor personal.
    #[error("请选择发票抬头类型:单位或个人")]
    Kind,
    /// Name missing or too long.
    #[error("请填写发票抬头(2至100个字)")]
    Name,
    /// The company's code is wrong.
    #[error(transparent)]
    TaxId(#[from] SocialCreditCodeError),
    /// A company without its code.
    #[error("单位发票请填写纳税人识别号(统一社会信用代码)")]
    TaxIdMissing,
    /// Not an e-mail address.
    #[error("邮箱格式不正确")]
    Email,
    /// The order is not activated yet.
    #[error("证书激活后才能申请开票")]
    NotActivated,
    /// An invoice was already requested for the order.
    #[error("该订单已申请过发票")]
    AlreadyRequested,
}

/// Whether an order in `state` may have an e-invoice requested: once it is activated.
pub fn invoice_allowed(state: OrderState) -> bool {
    matches!(state, OrderState::Activated | OrderState::ActivationReview)
}

/// Checks an invoice request for an order in `state`.
pub fn check_invoice(state: OrderState, form: &InvoiceForm) -> Result<InvoiceRequest, InvoiceError> {
    if !invoice_allowed(state) {
        return Err(InvoiceError::NotActivated);
    }
    let name = form.name.trim().to_owned();
    if !(2..=100).contains(&name.chars().count()) || name.chars().any(char::is_control) {
        return Err(InvoiceError::Name);
    }
    let buyer = match form.kind.as_str() {
        "company" => {
            let tax_id = form.tax_id.as_deref().map(str::trim).filter(|t| !t.is_empty());
            InvoiceBuyer::Company { name, tax_id: SocialCreditCode::parse(tax_id.ok_or(InvoiceError::TaxIdMissing)?)? }
        }
        "personal" => InvoiceBuyer::Personal { name },
        _ => return Err(InvoiceError::Kind),
    };
    let email = match form.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => {
            let ok = e.len() <= 254
                && e.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
                })
                && !e.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(InvoiceError::Email);
            }
            Some(e.to_owned())
        }
    };
    Ok(InvoiceRequest { buyer, email })
}

/// Where an invoice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    /// Requested; finance has not issued it yet (开票中).
    Requested,
    /// Issued; the PDF can be downloaded (已开票).
    Issued,
}

impl InvoiceState {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            InvoiceState::Requested => "requested",
            InvoiceState::Issued => "issued",
        }
    }

    /// From the storage code.
    pub fn from_code(code: &str) -> Option<InvoiceState> {
        match code {
            "requested" => Some(InvoiceState::Requested),
            "issued" => Some(InvoiceState::Issued),
            _ => None,
        }
    }

    /// The applicant's word.
    pub fn applicant_word(self) -> &'static str {
        match self {
            InvoiceState::Requested => "开票中",
            InvoiceState::Issued => "已开票",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: &str, name: &str, tax_id: Option<&str>) -> InvoiceForm {
        InvoiceForm { kind: kind.into(), name: name.into(), tax_id: tax_id.map(Into::into), email: None }
    }

    #[test]
    fn company_needs_a_valid_code() {
        let ok = check_invoice(OrderState::Activated, &form("company", "宜签科技有限公司", Some("91350100M000100Y43")));
        assert!(matches!(ok, Ok(InvoiceRequest { buyer: InvoiceBuyer::Company { .. }, .. })));
        assert_eq!(
            check_invoice(OrderState::Activated, &form("company", "宜签科技有限公司", None)),
            Err(InvoiceError::TaxIdMissing)
        );
        assert!(matches!(
            check_invoice(OrderState::Activated, &form("company", "宜签科技有限公司", Some("91350100M000100Y44"))),
            Err(InvoiceError::TaxId(SocialCreditCodeError::Checksum))
        ));
    }

    #[test]
    fn personal_and_states() {
        assert!(check_invoice(OrderState::ActivationReview, &form("personal", "张三", None)).is_ok());
        assert_eq!(
            check_invoice(OrderState::Shipped, &form("personal", "张三", None)),
            Err(InvoiceError::NotActivated)
        );
        assert_eq!(check_invoice(OrderState::Activated, &form("personal", " ", None)), Err(InvoiceError::Name));
        assert_eq!(check_invoice(OrderState::Activated, &form("other", "张三", None)), Err(InvoiceError::Kind));
        let mut f = form("personal", "张三", None);
        f.email = Some("not-an-address".into());
        assert_eq!(check_invoice(OrderState::Activated, &f), Err(InvoiceError::Email));
        f.email = Some("zhang@example.cn".into());
        assert_eq!(check_invoice(OrderState::Activated, &f).unwrap().email.as_deref(), Some("zhang@example.cn"));
    }
}
