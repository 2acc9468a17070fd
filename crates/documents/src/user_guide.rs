//! The personal digital certificate user guide (《个人数字证书使用说明》): the leaflet in each
//! applicant's parcel that says what the certificate and the UKEY are, how to activate, how to
//! keep the PIN safe, and where to go for renewal and after-sales. Its data, and how that data
//! becomes typst input; the layout lives in `templates/user_guide.typ`.
//!
//! The guide carries no personal data beyond the order number. Everything on it that is also on
//! the confirmation form is the same string: [`UserGuide::from`] a [`ConfirmationForm`] is how
//! the parcel's guide is made, so each of those values is decided in one place.

use crate::ConfirmationForm;
use typst::foundations::{Dict, IntoValue, Value};

/// One applicant's user guide. All strings are already what to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserGuide {
    /// 订单号, printed small under the heading so a guide can be matched to its parcel.
    pub order_no: String,
    /// 证书类型, e.g. `个人数字证书(UKEY)`.
    pub product: String,
    /// 有效期, e.g. `2年`.
    pub validity: String,
    /// The activation link, printed in full for those who cannot scan the QR code on the form.
    pub activation_url: String,
    /// The CA's name, e.g. `宜签数字证书认证中心`.
    pub ca_name: String,
    /// 客服电话.
    pub customer_service: String,
}

impl From<&ConfirmationForm> for UserGuide {
    /// The guide that goes with `form`: the same order, product, validity, activation link, CA
    /// and hotline; none of the applicant's personal details.
    fn from(form: &ConfirmationForm) -> UserGuide {
        UserGuide {
            order_no: form.order_no.clone(),
            product: form.product.clone(),
            validity: form.validity.clone(),
            activation_url: form.activation_url.clone(),
            ca_name: form.ca_name.clone(),
            customer_service: form.customer_service.clone(),
        }
    }
}

impl UserGuide {
    /// The guide as typst input: one dictionary of strings.
    pub(crate) fn to_input(&self) -> Value {
        let mut dict = Dict::new();
        let texts = [
            ("order_no", &self.order_no),
            ("product", &self.product),
            ("validity", &self.validity),
            ("activation_url", &self.activation_url),
            ("ca_name", &self.ca_name),
            ("customer_service", &self.customer_service),
        ];
        for (key, text) in texts {
            dict.insert(key.into(), text.as_str().into_value());
        }
        Value::Dict(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_of_a_form_carries_no_personal_details() {
        let form = ConfirmationForm {
            order_no: "YQ1".into(),
            applicant_name: "张三".into(),
            id_number_masked: "1101**********1234".into(),
            mobile_masked: "138****5678".into(),
            address: "北京市海淀区".into(),
            product: "个人数字证书(UKEY)".into(),
            validity: "2年".into(),
            activation_url: "https://example.cn/activate/A".into(),
            ca_name: "宜签数字证书认证中心".into(),
            customer_service: "400-800-1234".into(),
            ..ConfirmationForm::default()
        };
        let guide = UserGuide::from(&form);
        assert_eq!(
            guide,
            UserGuide {
                order_no: "YQ1".into(),
                product: "个人数字证书(UKEY)".into(),
                validity: "2年".into(),
                activation_url: "https://example.cn/activate/A".into(),
                ca_name: "宜签数字证书认证中心".into(),
                customer_service: "400-800-1234".into(),
            }
        );
        let Value::Dict(input) = guide.to_input() else { panic!("not a dictionary") };
        for personal in ["applicant_name", "id_number_masked", "mobile_masked", "address"] {
            assert!(input.get(personal).is_err(), "{personal} is in the guide's input");
        }
    }
}
