//! What the applicant types and confirms: the ID card's fields (checked against each other
//! and against the rules for online application) and the shipping address.

use crate::identity::{
    CardValidity, CardValidityError, DocumentKind, EligibilityError, IdNumberError, MobileNumber, MobileNumberError,
    ResidentId, Sex, check_online_eligibility,
};
use crate::regions::{Division, DivisionError, resolve};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The ID card's fields as typed or confirmed by the applicant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCardForm {
    /// 姓名.
    pub name: String,
    /// 性别: 男 or 女.
    pub sex: String,
    /// 民族.
    pub ethnicity: String,
    /// 出生: `YYYY-MM-DD` (also `YYYY.MM.DD` or `YYYY年MM月DD日`).
    pub birth_date: String,
    /// 住址.
    pub address: String,
    /// 公民身份号码.
    pub id_number: String,
    /// 签发机关.
    pub authority: String,
    /// 有效期限.
    pub validity: String,
}

/// An ID card whose fields agree with each other and allow online application.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedIdCard {
    /// 姓名.
    pub name: String,
    /// 性别.
    pub sex: Sex,
    /// 民族.
    pub ethnicity: String,
    /// 出生.
    pub birth_date: NaiveDate,
    /// 住址.
    pub address: String,
    /// 公民身份号码.
    pub id_number: ResidentId,
    /// 签发机关.
    pub authority: String,
    /// 有效期限.
    pub validity: CardValidity,
}

impl std::fmt::Debug for ConfirmedIdCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal data stays out of logs: only the masked number.
        f.debug_struct("ConfirmedIdCard").field("id_number", &self.id_number).finish_non_exhaustive()
    }
}

/// Why the ID card's fields were not accepted; the text is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdCardError {
    /// Name missing or implausible.
    #[error("请填写与身份证一致的姓名")]
    Name,
    /// Sex missing or not 男/女.
    #[error("请选择性别")]
    Sex,
    /// A required field is empty.
    #[error("请填写{0}")]
    Missing(&'static str),
    /// Birth date unreadable.
    #[error("出生日期格式不正确")]
    BirthDate,
    /// The ID number is invalid.
    #[error(transparent)]
    IdNumber(#[from] IdNumberError),
    /// The validity period is invalid or over.
    #[error(transparent)]
    Validity(#[from] CardValidityError),
    /// Not eligible for online application.
    #[error(transparent)]
    Eligibility(#[from] EligibilityError),
    /// The sex does not match the ID number.
    #[error("性别与身份证号码不一致,请核对")]
    SexMismatch,
    /// The birth date does not match the ID number.
    #[error("出生日期与身份证号码不一致,请核对")]
    BirthDateMismatch,
}

impl IdCardError {
    /// The field of [`IdCardForm`] (its serialised name) that the applicant should correct.
    pub fn field(&self) -> &'static str {
        match self {
            IdCardError::Name => "name",
            IdCardError::Sex | IdCardError::SexMismatch => "sex",
            IdCardError::BirthDate | IdCardError::BirthDateMismatch => "birth_date",
            IdCardError::IdNumber(_) | IdCardError::Eligibility(_) => "id_number",
            IdCardError::Validity(_) => "validity",
            IdCardError::Missing(label) => match *label {
                ETHNICITY => "ethnicity",
                ADDRESS => "address",
                _ => "authority",
            },
        }
    }
}

/// The labels of the free-text fields, as [`IdCardError::Missing`] names them.
const ETHNICITY: &str = "民族";
const ADDRESS: &str = "住址";
const AUTHORITY: &str = "签发机关";

fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    ["%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn required(value: &str, field: &'static str, max_chars: usize) -> Result<String, IdCardError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max_chars {
        return Err(IdCardError::Missing(field));
    }
    Ok(v.to_owned())
}

/// Checks the confirmed fields: every field present, a valid ID number of a mainland
/// resident, sex and birth date agreeing with it, and a card valid `today`.
pub fn confirm_id_card(form: &IdCardForm, today: NaiveDate) -> Result<ConfirmedIdCard, IdCardError> {
    let name = form.name.trim();
    let name_ok = (2..=30).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphabetic() || c == '·' || c == '•' || c == ' ');
    if !name_ok {
        return Err(IdCardError::Name);
    }
    let sex = match form.sex.trim() {
        "男" => Sex::Male,
        "女" => Sex::Female,
        _ => return Err(IdCardError::Sex),
    };
    let ethnicity = required(&form.ethnicity, ETHNICITY, 20)?;
    let birth_date = parse_date(&form.birth_date).ok_or(IdCardError::BirthDate)?;
    let address = required(&form.address, ADDRESS, 100)?;
    let authority = required(&form.authority, AUTHORITY, 50)?;
    let id_number = ResidentId::parse(&form.id_number, today)?;
    check_online_eligibility(DocumentKind::MainlandResidentCard, &id_number)?;
    if id_number.sex() != sex {
        return Err(IdCardError::SexMismatch);
    }
    if id_number.birth_date() != birth_date {
        return Err(IdCardError::BirthDateMismatch);
    }
    let validity = CardValidity::parse(&form.validity)?;
    validity.check_valid_on(today)?;
    Ok(ConfirmedIdCard { name: name.to_owned(), sex, ethnicity, birth_date, address, id_number, authority, validity })
}

/// The shipping address as entered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressForm {
    /// 收件人.
    pub recipient: String,
    /// 联系电话.
    pub phone: String,
    /// Province code.
    pub province_code: String,
    /// City code.
    pub city_code: String,
    /// District code.
    pub district_code: String,
    /// 详细地址.
    pub street: String,
}

/// A deliverable address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    /// 收件人.
    pub recipient: String,
    /// 联系电话.
    pub phone: MobileNumber,
    /// Province.
    pub province: String,
    /// City.
    pub city: String,
    /// District.
    pub district: String,
    /// GB/T 2260 code of the most precise division.
    pub region_code: String,
    /// 详细地址.
    pub street: String,
}

impl std::fmt::Debug for ShippingAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShippingAddress").field("region_code", &self.region_code).finish_non_exhaustive()
    }
}

/// Why an address was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// No recipient.
    #[error("请填写收件人姓名")]
    Recipient,
    /// Bad phone.
    #[error(transparent)]
    Phone(#[from] MobileNumberError),
    /// Bad division.
    #[error(transparent)]
    Division(#[from] DivisionError),
    /// Street too short or long.
    #[error("请填写详细地址(街道、门牌号),5至100个字")]
    Street,
}

impl AddressError {
    /// The field of [`AddressForm`] (its serialised name) that the applicant should correct.
    pub fn field(&self) -> &'static str {
        match self {
            AddressError::Recipient => "recipient",
            AddressError::Phone(_) => "phone",
            AddressError::Division(DivisionError::Province) => "province_code",
            AddressError::Division(DivisionError::City) => "city_code",
            AddressError::Division(DivisionError::District) => "district_code",
            AddressError::Street => "street",
        }
    }
}

/// Checks an address form.
pub fn check_address(form: &AddressForm) -> Result<ShippingAddress, AddressError> {
    let recipient = form.recipient.trim();
    if recipient.is_empty() || recipient.chars().count() > 30 {
        return Err(AddressError::Recipient);
    }
    let phone = MobileNumber::parse(&form.phone)?;
    let Division { province, city, district, code } =
        resolve(&form.province_code, &form.city_code, &form.district_code)?;
    let street = form.street.trim();
    if !(5..=100).contains(&street.chars().count()) {
        return Err(AddressError::Street);
    }
    Ok(ShippingAddress {
        recipient: recipient.to_owned(),
        phone,
        province,
        city,
        district,
        region_code: code,
        street: street.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn form() -> IdCardForm {
        IdCardForm {
            name: "张三".into(),
            sex: "男".into(),
            ethnicity: "汉".into(),
            birth_date: "1990-03-07".into(),
            address: "北京市东城区某街道1号".into(),
            id_number: "110101199003074477".into(),
            authority: "北京市公安局东城分局".into(),
            validity: "2020.01.01-2040.01.01".into(),
        }
    }

    #[test]
    fn accepts_a_consistent_card() {
        let c = confirm_id_card(&form(), today()).unwrap();
        assert_eq!(c.sex, Sex::Male);
        assert!(!format!("{c:?}").contains("张三"));
    }

    /// Each wrong field is named by its form name, so the page marks the right input.
    #[test]
    fn an_error_names_the_field_to_correct() {
        let blank = |f: fn(&mut IdCardForm)| {
            let mut form = form();
            f(&mut form);
            confirm_id_card(&form, today()).unwrap_err().field()
        };
        assert_eq!(blank(|f| f.name.clear()), "name");
        assert_eq!(blank(|f| f.sex.clear()), "sex");
        assert_eq!(blank(|f| f.sex = "女".into()), "sex");
        assert_eq!(blank(|f| f.ethnicity.clear()), "ethnicity");
        assert_eq!(blank(|f| f.birth_date.clear()), "birth_date");
        assert_eq!(blank(|f| f.birth_date = "1990-03-08".into()), "birth_date");
        assert_eq!(blank(|f| f.address.clear()), "address");
        assert_eq!(blank(|f| f.id_number = "110101199003074478".into()), "id_number");
        assert_eq!(blank(|f| f.authority.clear()), "authority");
        assert_eq!(blank(|f| f.validity = "2006.01.01-2016.01.01".into()), "validity");
        assert_eq!(blank(|f| f.validity.clear()), "validity");
    }

    #[test]
    fn refuses_inconsistent_or_expired_cards() {
        let f = IdCardForm { sex: "女".into(), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::SexMismatch));
        let f = IdCardForm { birth_date: "1990-03-08".into(), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::BirthDateMismatch));
        let f = IdCardForm { validity: "2006.01.01-2016.01.01".into(), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::Validity(CardValidityError::Expired)));
        let f = IdCardForm { id_number: "110101199003074478".into(), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::IdNumber(IdNumberError::Checksum)));
        let f = IdCardForm { name: "x".into(), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::Name));
        let f = IdCardForm { authority: " ".into(), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::Missing("签发机关")));
    }

    #[test]
    fn refuses_non_mainland_numbers() {
        // A Hong Kong residence-permit number (prefix 81) with a valid checksum.
        let body = "81000019900307001";
        let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let s: u32 = body.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
        let check = b"10X98765432"[(s % 11) as usize] as char;
        let f = IdCardForm { id_number: format!("{body}{check}"), ..form() };
        assert_eq!(confirm_id_card(&f, today()), Err(IdCardError::Eligibility(EligibilityError::NotMainland)));
    }

    #[test]
    fn checks_addresses() {
        let f = AddressForm {
            recipient: "张三".into(),
            phone: "13800138000".into(),
            province_code: "440000".into(),
            city_code: "440300".into(),
            district_code: "440305".into(),
            street: "科技园南区1栋101".into(),
        };
        let a = check_address(&f).unwrap();
        assert_eq!(a.district, "南山区");
        assert_eq!(check_address(&AddressForm { street: "1号".into(), ..f.clone() }), Err(AddressError::Street));
        assert_eq!(
            check_address(&AddressForm { district_code: "110101".into(), ..f.clone() }),
            Err(AddressError::Division(DivisionError::District))
        );
        let field = |f: AddressForm| check_address(&f).unwrap_err().field();
        assert_eq!(field(AddressForm { recipient: " ".into(), ..f.clone() }), "recipient");
        assert_eq!(field(AddressForm { street: "1号".into(), ..f.clone() }), "street");
        assert_eq!(field(AddressForm { province_code: "".into(), ..f.clone() }), "province_code");
        assert_eq!(field(AddressForm { city_code: "110100".into(), ..f.clone() }), "city_code");
        assert_eq!(field(AddressForm { district_code: "110101".into(), ..f.clone() }), "district_code");
        assert_eq!(field(AddressForm { phone: "123".into(), ..f.clone() }), "phone");
        assert!(matches!(check_address(&AddressForm { phone: "123".into(), ..f }), Err(AddressError::Phone(_))));
    }
}
