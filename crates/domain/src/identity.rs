//! Validation of the Chinese identifiers an applicant types in: the resident ID number
//! (公民身份号码, GB 11643-1999) and the validity period printed on the card, mainland mobile
//! numbers, and the unified social credit code of an organisation (GB 32100-2015), plus the
//! rule deciding who may apply online.
//!
//! Every error's `Display` is the Simplified-Chinese sentence shown to the applicant. Types
//! holding personal data (`ResidentId`, `MobileNumber`) mask themselves in `Debug`, so they can
//! never leak into logs; use `as_str` where the full value is really needed.
//!
//! Values deserialised with serde are validated again (through `TryFrom<String>`), so a
//! `ResidentId`, `MobileNumber` or `SocialCreditCode` always holds a well-formed value.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Resident ID number
// ---------------------------------------------------------------------------------------------

/// Province-level codes (GB/T 2260) of the mainland.
const MAINLAND_PROVINCES: [&str; 31] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
];

/// Province-level codes accepted in a number although they are not mainland ones:
/// Taiwan, Hong Kong, Macao, and residence permits for Taiwan residents. (9x is handled apart.)
const OTHER_PROVINCES: [&str; 4] = ["71", "81", "82", "83"];

/// Weights W_i of the first 17 digits (GB 11643-1999).
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check character for S mod 11 = 0..=10.
const ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Earliest birth year accepted. GB 11643 itself uses a number born in 1880 as its example.
const MIN_BIRTH_YEAR: i32 = 1800;

/// A validated 18-character resident ID number (公民身份号码, GB 11643-1999), normalised
/// (upper-case X).
///
/// `Debug` masks the number; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

/// Why a resident ID number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Neither 18 nor 15 characters.
    #[error("身份证号码应为18位(旧证为15位)")]
    Length,
    /// Something other than digits (and a final X on an 18-digit number).
    #[error("身份证号码只能包含数字,最后一位可以是X")]
    Characters,
    /// The first two digits are not a known province-level code.
    #[error("身份证号码中的地区代码无效")]
    Region,
    /// The birth date is not a calendar date, too early, or in the future.
    #[error("身份证号码中的出生日期无效")]
    BirthDate,
    /// The check character does not match the first 17 digits.
    #[error("身份证号码校验位不正确,请核对后重新输入")]
    Checksum,
}

/// Sex as encoded in a resident ID number (17th digit: odd = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// 男
    Male,
    /// 女
    Female,
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sex::Male => "男",
            Sex::Female => "女",
        })
    }
}

impl ResidentId {
    /// Parses an 18-digit number, or a legacy 15-digit number which is upgraded to 18 digits
    /// (insert "19" before the 2-digit year, append the computed check character).
    /// Surrounding whitespace is ignored and a lower-case `x` accepted.
    /// `today` is used to refuse birth dates in the future.
    pub fn parse(input: &str, today: NaiveDate) -> Result<ResidentId, IdNumberError> {
        Self::parse_inner(input, Some(today))
    }

    fn parse_inner(input: &str, today: Option<NaiveDate>) -> Result<ResidentId, IdNumberError> {
        let s = input.trim();
        let (body, check) = match s.chars().count() {
            18 => {
                let mut chars = s.chars();
                let check = match chars.next_back() {
                    Some(c @ '0'..='9') => c as u8,
                    Some('X' | 'x') => b'X',
                    _ => return Err(IdNumberError::Characters),
                };
                let body = chars.as_str();
                if !is_ascii_digits(body) {
                    return Err(IdNumberError::Characters);
                }
                (body.to_owned(), check)
            }
            15 => {
                if !is_ascii_digits(s) {
                    return Err(IdNumberError::Characters);
                }
                let body = format!("{}19{}", &s[..6], &s[6..]);
                let check = id_check_char(&body);
                (body, check)
            }
            _ => return Err(IdNumberError::Length),
        };

        if !is_known_province(&body[..2]) {
            return Err(IdNumberError::Region);
        }
        let birth = birth_date_of(&body).ok_or(IdNumberError::BirthDate)?;
        if birth.year() < MIN_BIRTH_YEAR || today.is_some_and(|t| birth > t) {
            return Err(IdNumberError::BirthDate);
        }
        if id_check_char(&body) != check {
            return Err(IdNumberError::Checksum);
        }

        let mut id = body;
        id.push(char::from(check));
        Ok(ResidentId(id))
    }

    /// The normalised 18-character number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The birth date encoded in digits 7–14.
    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(&self.0).expect("a ResidentId always holds a valid birth date")
    }

    /// The sex encoded in digit 17 (odd = male).
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// The province-level code: the first two digits.
    pub fn province_code(&self) -> &str {
        &self.0[..2]
    }

    /// Masked for display: first 4 and last 4 kept, e.g. "1101**********002X".
    pub fn masked(&self) -> String {
        format!("{}{}{}", &self.0[..4], "*".repeat(10), &self.0[14..])
    }

    /// Whether this number belongs to a mainland resident (province 11..=65, as listed in
    /// GB/T 2260); 71 Taiwan, 81 Hong Kong, 82 Macao, 83 (residence permits for Taiwan
    /// residents) and 9x (foreigners' permanent-residence ID) are not mainland.
    pub fn is_mainland(&self) -> bool {
        MAINLAND_PROVINCES.contains(&self.province_code())
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

/// Validates a stored number (as when deserialising): every rule of [`ResidentId::parse`]
/// except the comparison of the birth date with today, which was done when it was first parsed.
impl TryFrom<String> for ResidentId {
    type Error = IdNumberError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_inner(&value, None)
    }
}

impl From<ResidentId> for String {
    fn from(id: ResidentId) -> String {
        id.0
    }
}

fn is_ascii_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_known_province(code: &str) -> bool {
    MAINLAND_PROVINCES.contains(&code) || OTHER_PROVINCES.contains(&code) || code.starts_with('9')
}

/// The check character (as an ASCII byte) of 17 ASCII digits.
fn id_check_char(body: &str) -> u8 {
    let sum: u32 = body.bytes().zip(ID_WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    ID_CHECK_CHARS[(sum % 11) as usize]
}

/// The calendar date in positions 7–14 of at least 14 ASCII digits, if it is one.
fn birth_date_of(digits: &str) -> Option<NaiveDate> {
    let year = digits.get(6..10)?.parse().ok()?;
    let month = digits.get(10..12)?.parse().ok()?;
    let day = digits.get(12..14)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

// ---------------------------------------------------------------------------------------------
// Card validity period
// ---------------------------------------------------------------------------------------------

/// Validity period of a second-generation ID card (有效期限), as printed on the back:
/// "2015.03.01-2035.03.01" or "2015.03.01-长期".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardValidity {
    /// First day of validity.
    pub from: NaiveDate,
    /// Last day of validity; `None` means 长期 (no expiry).
    pub until: Option<NaiveDate>,
}

/// Why a card's validity period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardValidityError {
    /// The text is not a validity period.
    #[error("有效期限格式不正确,应如 2015.03.01-2035.03.01 或 2015.03.01-长期")]
    Format,
    /// The card expired before today.
    #[error("身份证已过期,请使用有效的身份证,或到线下网点办理")]
    Expired,
    /// The card's validity starts after today.
    #[error("身份证尚未生效")]
    NotYetValid,
    /// The end date is before the start date.
    #[error("有效期限的结束日期早于开始日期")]
    Reversed,
}

/// Separators accepted between the two ends of a validity period.
const RANGE_SEPARATORS: [&str; 5] = ["——", "—", "–", "-", "至"];

/// Words meaning "no expiry".
const INDEFINITE: [&str; 2] = ["长期", "长期有效"];

impl CardValidity {
    /// Parses "YYYY.MM.DD-YYYY.MM.DD" or "YYYY.MM.DD-长期"; also accepts '-' or '/' as date
    /// separators inside dates ("2015-03-01") and "至"/"—"/"–" as the range separator.
    /// Spaces around the range separator are ignored.
    pub fn parse(input: &str) -> Result<CardValidity, CardValidityError> {
        let (from, rest) = parse_date_prefix(input.trim()).ok_or(CardValidityError::Format)?;
        let rest = rest.trim_start();
        let rest = RANGE_SEPARATORS
            .iter()
            .find_map(|sep| rest.strip_prefix(sep))
            .ok_or(CardValidityError::Format)?
            .trim_start();
        let until = if INDEFINITE.contains(&rest) {
            None
        } else {
            match parse_date_prefix(rest) {
                Some((date, "")) => Some(date),
                _ => return Err(CardValidityError::Format),
            }
        };
        let validity = CardValidity { from, until };
        validity.check_order()?;
        Ok(validity)
    }

    /// Refuses a card that is expired on `today` (until < today) or not yet valid
    /// (from > today). The card is valid on its last day.
    pub fn check_valid_on(&self, today: NaiveDate) -> Result<(), CardValidityError> {
        self.check_order()?;
        if self.from > today {
            return Err(CardValidityError::NotYetValid);
        }
        if self.until.is_some_and(|until| until < today) {
            return Err(CardValidityError::Expired);
        }
        Ok(())
    }

    fn check_order(&self) -> Result<(), CardValidityError> {
        match self.until {
            Some(until) if until < self.from => Err(CardValidityError::Reversed),
            _ => Ok(()),
        }
    }
}

/// Reads a date "YYYY?M?D" at the start of `s`, where `?` is one of '.', '-', '/' (the same
/// twice) and month and day have one or two digits; returns it with the rest of `s`.
fn parse_date_prefix(s: &str) -> Option<(NaiveDate, &str)> {
    fn digits(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
        let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
        if n < min {
            return None;
        }
        Some((s[..n].parse().ok()?, &s[n..]))
    }

    let (year, rest) = digits(s, 4, 4)?;
    let sep = rest.chars().next().filter(|c| matches!(c, '.' | '-' | '/'))?;
    let (month, rest) = digits(&rest[1..], 1, 2)?;
    let rest = rest.strip_prefix(sep)?;
    let (day, rest) = digits(rest, 1, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date, rest))
}

// ---------------------------------------------------------------------------------------------
// Mobile number
// ---------------------------------------------------------------------------------------------

/// A mainland mobile number, normalised to 11 digits.
///
/// `Debug` masks the number; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobileNumber(String);

/// Why a mobile number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileNumberError {
    /// Not an 11-digit mainland mobile number.
    #[error("请输入正确的11位手机号码")]
    Invalid,
}

impl MobileNumber {
    /// Strips whitespace and hyphens and a leading +86, 86 or 0086; then requires
    /// `^1[3-9]\d{9}$`.
    pub fn parse(input: &str) -> Result<MobileNumber, MobileNumberError> {
        let cleaned: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        let number = if let Some(rest) = cleaned.strip_prefix("+86") {
            rest
        } else if let Some(rest) = cleaned.strip_prefix("0086") {
            rest
        } else if cleaned.len() == 13 && cleaned.starts_with("86") {
            &cleaned[2..]
        } else {
            &cleaned
        };
        match number.as_bytes() {
            [b'1', b'3'..=b'9', rest @ ..] if rest.len() == 9 && rest.iter().all(u8::is_ascii_digit) => {
                Ok(MobileNumber(number.to_owned()))
            }
            _ => Err(MobileNumberError::Invalid),
        }
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Masked for display: first 3 and last 4 kept, e.g. "138****0000".
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }

    /// The number in E.164 form, e.g. "+8613800000000".
    pub fn e164(&self) -> String {
        format!("+86{}", self.0)
    }
}

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNumber({})", self.masked())
    }
}

/// Validates a stored number (as when deserialising), exactly as [`MobileNumber::parse`].
impl TryFrom<String> for MobileNumber {
    type Error = MobileNumberError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MobileNumber> for String {
    fn from(number: MobileNumber) -> String {
        number.0
    }
}

// ---------------------------------------------------------------------------------------------
// Unified social credit code
// ---------------------------------------------------------------------------------------------

/// Characters of a unified social credit code; a character's value is its index.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1..=17 (3^(i-1) mod 31).
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A unified social credit code (统一社会信用代码, GB 32100-2015), upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SocialCreditCode(String);

/// Why a unified social credit code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocialCreditCodeError {
    /// Not 18 characters.
    #[error("统一社会信用代码应为18位")]
    Length,
    /// A character outside the code's alphabet.
    #[error("统一社会信用代码含有无效字符(不使用 I、O、Z、S、V)")]
    Characters,
    /// The check character does not match the first 17.
    #[error("统一社会信用代码校验位不正确,请核对后重新输入")]
    Checksum,
}

impl SocialCreditCode {
    /// Parses an 18-character code; surrounding whitespace is ignored and lower case accepted.
    /// Only the code's own check character is verified (not the embedded organisation code's).
    pub fn parse(input: &str) -> Result<SocialCreditCode, SocialCreditCodeError> {
        let s = input.trim();
        if s.chars().count() != 18 {
            return Err(SocialCreditCodeError::Length);
        }
        let code = s.to_ascii_uppercase();
        if !code.bytes().all(|b| USCC_ALPHABET.contains(&b)) {
            return Err(SocialCreditCodeError::Characters);
        }
        let (body, check) = code.split_at(17);
        if uscc_check_char(body) != check.as_bytes()[0] {
            return Err(SocialCreditCodeError::Checksum);
        }
        Ok(SocialCreditCode(code))
    }

    /// The 18 upper-case characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Validates a stored code (as when deserialising), exactly as [`SocialCreditCode::parse`].
impl TryFrom<String> for SocialCreditCode {
    type Error = SocialCreditCodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SocialCreditCode> for String {
    fn from(code: SocialCreditCode) -> String {
        code.0
    }
}

fn uscc_value(b: u8) -> u32 {
    USCC_ALPHABET.iter().position(|&a| a == b).map_or(0, |i| i as u32)
}

/// The check character (as an ASCII byte) of 17 characters of the alphabet.
fn uscc_check_char(body: &str) -> u8 {
    let sum: u32 = body.bytes().zip(USCC_WEIGHTS).map(|(b, w)| uscc_value(b) * w).sum();
    USCC_ALPHABET[((31 - sum % 31) % 31) as usize]
}

// ---------------------------------------------------------------------------------------------
// Online eligibility
// ---------------------------------------------------------------------------------------------

/// Kinds of identity document an applicant may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Second-generation resident identity card (居民身份证).
    MainlandResidentCard,
    /// Mainland travel permit for Hong Kong and Macao residents (港澳居民来往内地通行证).
    HongKongMacaoPermit,
    /// Mainland travel permit for Taiwan residents (台湾居民来往大陆通行证).
    TaiwanPermit,
    /// Foreigner's permanent residence ID card (外国人永久居留身份证).
    ForeignPermanentResidence,
    /// Any other document.
    Other,
}

/// Why an applicant cannot apply online.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EligibilityError {
    /// Not a mainland resident with a second-generation card.
    #[error("在线申请仅受理持有效第二代居民身份证的大陆居民,请携带证件到线下网点办理")]
    NotMainland,
}

/// Online application is open only to mainland residents with a valid second-generation
/// card; everyone else is told to visit a service point. (The card's validity period is
/// checked separately with [`CardValidity::check_valid_on`].)
pub fn check_online_eligibility(kind: DocumentKind, id: &ResidentId) -> Result<(), EligibilityError> {
    if kind == DocumentKind::MainlandResidentCard && id.is_mainland() {
        Ok(())
    } else {
        Err(EligibilityError::NotMainland)
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        date(2026, 1, 1)
    }

    fn id(s: &str) -> ResidentId {
        ResidentId::parse(s, today()).unwrap()
    }

    /// 17 digits followed by their check character.
    fn with_check(body: &str) -> String {
        format!("{body}{}", char::from(id_check_char(body)))
    }

    // --- ResidentId ---------------------------------------------------------------------

    #[test]
    fn valid_numbers_parse() {
        for s in ["11010519491231002X", "440524188001010014", "110101199003074477", "11010119900307803X"] {
            assert_eq!(id(s).as_str(), s);
        }
    }

    #[test]
    fn accessors() {
        let a = id("11010519491231002X");
        assert_eq!(a.birth_date(), date(1949, 12, 31));
        assert_eq!(a.sex(), Sex::Female);
        assert_eq!(a.province_code(), "11");
        assert!(a.is_mainland());
        assert_eq!(a.masked(), "1101**********002X");

        let b = id("110101199003074477");
        assert_eq!(b.birth_date(), date(1990, 3, 7));
        assert_eq!(b.sex(), Sex::Male);
        assert_eq!(id("440524188001010014").birth_date(), date(1880, 1, 1));
        assert_eq!(id("11010119900307803X").sex(), Sex::Male);
    }

    #[test]
    fn sex_display_and_serde() {
        assert_eq!(Sex::Male.to_string(), "男");
        assert_eq!(Sex::Female.to_string(), "女");
        assert_eq!(serde_json::to_string(&Sex::Female).unwrap(), "\"female\"");
    }

    #[test]
    fn lower_case_x_and_whitespace_are_normalised() {
        assert_eq!(id("  11010519491231002x\n").as_str(), "11010519491231002X");
    }

    #[test]
    fn fifteen_digit_numbers_are_upgraded() {
        let a = id("130503670401001");
        assert_eq!(a.as_str(), "130503196704010016");
        assert_eq!(a.birth_date(), date(1967, 4, 1));
        assert_eq!(id("440524800101001").as_str(), "440524198001010013");
    }

    #[test]
    fn bad_checksum() {
        assert_eq!(ResidentId::parse("110101199003074478", today()), Err(IdNumberError::Checksum));
        // An X where a digit is due.
        assert_eq!(ResidentId::parse("11010119900307447X", today()), Err(IdNumberError::Checksum));
    }

    #[test]
    fn impossible_birth_date() {
        let feb30 = with_check("11010119900230447");
        assert_eq!(ResidentId::parse(&feb30, today()), Err(IdNumberError::BirthDate));
        let month13 = with_check("11010119901301447");
        assert_eq!(ResidentId::parse(&month13, today()), Err(IdNumberError::BirthDate));
        let too_old = with_check("11010117990101447");
        assert_eq!(ResidentId::parse(&too_old, today()), Err(IdNumberError::BirthDate));
        // A legacy number for 29 February of a non-leap year.
        assert_eq!(ResidentId::parse("110101670229001", today()), Err(IdNumberError::BirthDate));
    }

    #[test]
    fn future_birth_date() {
        let tomorrow = with_check("11010120260102447");
        assert_eq!(ResidentId::parse(&tomorrow, today()), Err(IdNumberError::BirthDate));
        let born_today = with_check("11010120260101447");
        assert!(ResidentId::parse(&born_today, today()).is_ok());
    }

    #[test]
    fn length_and_characters() {
        for s in ["", "1101011990030744", "1101011990030744771", "12345678901234"] {
            assert_eq!(ResidentId::parse(s, today()), Err(IdNumberError::Length), "{s}");
        }
        for s in [
            "1101011990030744A7",
            "X10101199003074477",
            "11010119900307447Y",
            "11010167040100X",
            "１１０１０１１９９００３０７４４７７", // full-width digits
            "110101199003074４77",
        ] {
            assert_eq!(ResidentId::parse(s, today()), Err(IdNumberError::Characters), "{s}");
        }
    }

    #[test]
    fn regions() {
        for body in ["10010119900307447", "66010119900307447", "00010119900307447", "72010119900307447"] {
            assert_eq!(ResidentId::parse(&with_check(body), today()), Err(IdNumberError::Region), "{body}");
        }
        for (body, mainland) in [
            ("65010119900307447", true),
            ("71010119900307447", false),
            ("81000019900307447", false),
            ("82000019900307447", false),
            ("83000019900307447", false),
            ("91000019900307447", false),
            ("99000019900307447", false),
        ] {
            let parsed = id(&with_check(body));
            assert_eq!(parsed.is_mainland(), mainland, "{body}");
        }
    }

    #[test]
    fn debug_is_masked() {
        let a = id("110101199003074477");
        assert_eq!(format!("{a:?}"), "ResidentId(1101**********4477)");
        assert!(!format!("{a:#?}").contains("110101199003074477"));
    }

    #[test]
    fn resident_id_serde_round_trip_and_validation() {
        let a = id("11010519491231002X");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"11010519491231002X\"");
        assert_eq!(serde_json::from_str::<ResidentId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<ResidentId>("\"110101199003074478\"").is_err());
        assert!(serde_json::from_str::<ResidentId>("\"garbage\"").is_err());
    }

    #[test]
    fn id_error_messages() {
        assert_eq!(IdNumberError::Length.to_string(), "身份证号码应为18位(旧证为15位)");
        assert_eq!(IdNumberError::Checksum.to_string(), "身份证号码校验位不正确,请核对后重新输入");
    }

    // --- CardValidity -------------------------------------------------------------------

    #[test]
    fn card_validity_formats() {
        let fixed = CardValidity { from: date(2015, 3, 1), until: Some(date(2035, 3, 1)) };
        let open = CardValidity { from: date(2015, 3, 1), until: None };
        for s in [
            "2015.03.01-2035.03.01",
            "2015-03-01-2035-03-01",
            "2015/03/01-2035/03/01",
            "2015.03.01至2035.03.01",
            "2015.03.01—2035.03.01",
            "2015.03.01–2035.03.01",
            "2015.03.01——2035.03.01",
            " 2015.03.01 - 2035.03.01 ",
            "2015.3.1-2035.3.1",
            "2015-03-01 至 2035.03.01",
        ] {
            assert_eq!(CardValidity::parse(s), Ok(fixed), "{s}");
        }
        for s in ["2015.03.01-长期", "2015-03-01-长期", "2015.03.01 至 长期", "2015.03.01-长期有效"] {
            assert_eq!(CardValidity::parse(s), Ok(open), "{s}");
        }
    }

    #[test]
    fn card_validity_bad_formats() {
        for s in [
            "",
            "2015.03.01",
            "2015.03.01-",
            "2015.03.01 2035.03.01",
            "2015.03.01-2035.03.01x",
            "2015.03.01-2035.03",
            "2015.02.30-2035.02.28",
            "2015.03-01-2035.03.01",
            "15.03.01-35.03.01",
            "20150301-20350301",
            "2015.03.01-永久",
            "2015.003.01-2035.03.01",
            "长期",
        ] {
            assert_eq!(CardValidity::parse(s), Err(CardValidityError::Format), "{s}");
        }
    }

    #[test]
    fn card_validity_reversed() {
        assert_eq!(CardValidity::parse("2035.03.01-2015.03.01"), Err(CardValidityError::Reversed));
        let reversed = CardValidity { from: date(2035, 3, 1), until: Some(date(2015, 3, 1)) };
        assert_eq!(reversed.check_valid_on(today()), Err(CardValidityError::Reversed));
    }

    #[test]
    fn card_validity_on_a_day() {
        let v = CardValidity::parse("2015.03.01-2035.03.01").unwrap();
        assert_eq!(v.check_valid_on(date(2015, 3, 1)), Ok(()));
        assert_eq!(v.check_valid_on(date(2035, 3, 1)), Ok(()));
        assert_eq!(v.check_valid_on(date(2035, 3, 2)), Err(CardValidityError::Expired));
        assert_eq!(v.check_valid_on(date(2015, 2, 28)), Err(CardValidityError::NotYetValid));
        let open = CardValidity::parse("2015.03.01-长期").unwrap();
        assert_eq!(open.check_valid_on(date(2100, 1, 1)), Ok(()));
        assert_eq!(open.check_valid_on(date(2015, 2, 28)), Err(CardValidityError::NotYetValid));
    }

    // --- MobileNumber -------------------------------------------------------------------

    #[test]
    fn mobile_numbers() {
        for s in [
            "13800000000",
            "+8613800000000",
            "+86 138 0000 0000",
            "8613800000000",
            "008613800000000",
            "138-0000-0000",
            " 138 0000 0000 ",
            "+86-138-0000-0000",
        ] {
            let m = MobileNumber::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(m.as_str(), "13800000000");
            assert_eq!(m.masked(), "138****0000");
            assert_eq!(m.e164(), "+8613800000000");
        }
        for s in [
            "",
            "1380000000",
            "138000000000",
            "12800000000",
            "23800000000",
            "1380000000a",
            "+8512800000000",
            "+86+8613800000000",
            "１３８０００００００００",
            "(138)00000000",
        ] {
            assert_eq!(MobileNumber::parse(s), Err(MobileNumberError::Invalid), "{s}");
        }
        assert_eq!(MobileNumberError::Invalid.to_string(), "请输入正确的11位手机号码");
    }

    #[test]
    fn mobile_debug_and_serde() {
        let m = MobileNumber::parse("13912345678").unwrap();
        assert_eq!(format!("{m:?}"), "MobileNumber(139****5678)");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"13912345678\"");
        assert_eq!(serde_json::from_str::<MobileNumber>(&json).unwrap(), m);
        assert!(serde_json::from_str::<MobileNumber>("\"12345\"").is_err());
    }

    // --- SocialCreditCode ---------------------------------------------------------------

    const USCC_VECTORS: [&str; 5] =
        ["91350100M000100Y43", "91440300708461136T", "91330100716105852F", "91110108551385082Q", "91310000MA1FL5LX3K"];

    #[test]
    fn social_credit_codes() {
        for s in USCC_VECTORS {
            assert_eq!(SocialCreditCode::parse(s).unwrap().as_str(), s);
            let lower = format!(" {} ", s.to_ascii_lowercase());
            assert_eq!(SocialCreditCode::parse(&lower).unwrap().as_str(), s);
        }
    }

    #[test]
    fn social_credit_code_mutated_check_char() {
        for s in USCC_VECTORS {
            let (body, check) = s.split_at(17);
            for &c in USCC_ALPHABET {
                if c != check.as_bytes()[0] {
                    let mutated = format!("{body}{}", char::from(c));
                    assert_eq!(SocialCreditCode::parse(&mutated), Err(SocialCreditCodeError::Checksum), "{mutated}");
                }
            }
        }
    }

    #[test]
    fn social_credit_code_errors() {
        assert_eq!(SocialCreditCode::parse("9135010"), Err(SocialCreditCodeError::Length));
        assert_eq!(SocialCreditCode::parse("91350100M000100Y433"), Err(SocialCreditCodeError::Length));
        for s in ["91350100M000100I43", "O1350100M000100Y43", "91350100M000100Y4Z", "9135010 M000100Y43"] {
            assert_eq!(SocialCreditCode::parse(s), Err(SocialCreditCodeError::Characters), "{s}");
        }
        assert!(serde_json::from_str::<SocialCreditCode>("\"91350100M000100Y44\"").is_err());
        let code = SocialCreditCode::parse("91350100M000100Y43").unwrap();
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(serde_json::from_str::<SocialCreditCode>(&json).unwrap(), code);
    }

    // --- Eligibility --------------------------------------------------------------------

    #[test]
    fn online_eligibility() {
        let mainland = id("110101199003074477");
        let hong_kong = id(&with_check("81000019900307447"));
        assert_eq!(check_online_eligibility(DocumentKind::MainlandResidentCard, &mainland), Ok(()));
        assert_eq!(
            check_online_eligibility(DocumentKind::MainlandResidentCard, &hong_kong),
            Err(EligibilityError::NotMainland)
        );
        for kind in [
            DocumentKind::HongKongMacaoPermit,
            DocumentKind::TaiwanPermit,
            DocumentKind::ForeignPermanentResidence,
            DocumentKind::Other,
        ] {
            assert_eq!(check_online_eligibility(kind, &mainland), Err(EligibilityError::NotMainland));
        }
        assert_eq!(serde_json::to_string(&DocumentKind::HongKongMacaoPermit).unwrap(), "\"hong_kong_macao_permit\"");
    }

    // --- Properties ---------------------------------------------------------------------

    fn any_province() -> impl Strategy<Value = &'static str> {
        prop::sample::select(MAINLAND_PROVINCES.to_vec())
    }

    /// A birth date from `first` to `last`.
    fn any_date(first: NaiveDate, last: NaiveDate) -> impl Strategy<Value = NaiveDate> {
        (0..=(last - first).num_days()).prop_map(move |d| first + chrono::Days::new(d as u64))
    }

    /// The first 17 digits of a valid number, with its birth date.
    fn any_body() -> impl Strategy<Value = (String, NaiveDate)> {
        (any_province(), 0..10_000u32, any_date(date(1900, 1, 1), today()), 0..1000u32)
            .prop_map(|(p, county, birth, seq)| (format!("{p}{county:04}{}{seq:03}", birth.format("%Y%m%d")), birth))
    }

    proptest! {
        #[test]
        fn computed_check_char_parses_and_others_fail((body, birth) in any_body()) {
            let full = with_check(&body);
            let parsed = ResidentId::parse(&full, today()).unwrap();
            prop_assert_eq!(parsed.as_str(), full.as_str());
            prop_assert_eq!(parsed.birth_date(), birth);
            prop_assert!(parsed.is_mainland());
            let right = full.as_bytes()[17];
            for &c in ID_CHECK_CHARS.iter().filter(|&&c| c != right) {
                let wrong = format!("{body}{}", char::from(c));
                prop_assert_eq!(ResidentId::parse(&wrong, today()), Err(IdNumberError::Checksum));
            }
        }

        #[test]
        fn fifteen_digit_upgrade(
            province in any_province(),
            county in 0..10_000u32,
            birth in any_date(date(1900, 1, 1), date(1999, 12, 31)),
            seq in 0..1000u32,
        ) {
            let old = format!("{province}{county:04}{}{seq:03}", birth.format("%y%m%d"));
            let upgraded = ResidentId::parse(&old, today()).unwrap();
            prop_assert_eq!(upgraded.birth_date(), birth);
            prop_assert_eq!(upgraded.as_str().len(), 18);
            prop_assert_eq!(&upgraded.as_str()[..6], &old[..6]);
            prop_assert_eq!(&upgraded.as_str()[8..17], &old[6..]);
            let reparsed = ResidentId::parse(upgraded.as_str(), today()).unwrap();
            prop_assert_eq!(reparsed, upgraded);
        }

        #[test]
        fn masking_hides_the_middle((body, birth) in any_body()) {
            let parsed = ResidentId::parse(&with_check(&body), today()).unwrap();
            let masked = parsed.masked();
            let full = parsed.as_str();
            prop_assert_eq!(masked.len(), 18);
            prop_assert_eq!(&masked[..4], &full[..4]);
            prop_assert_eq!(&masked[4..14], "**********");
            prop_assert_eq!(&masked[14..], &full[14..]);
            let birth_digits = birth.format("%Y%m%d").to_string();
            prop_assert!(!masked.contains(&birth_digits));
            let debug = format!("{parsed:?}");
            prop_assert!(!debug.contains(full));
            prop_assert!(!debug.contains(&birth_digits));
        }

        #[test]
        fn mobile_debug_and_mask_hide_the_number(second in 3..10u32, rest in 0..100_000_000u64, formatted in any::<bool>()) {
            let digits = format!("1{second}{rest:09}");
            let input = if formatted {
                format!("+86 {}-{}-{}", &digits[..3], &digits[3..7], &digits[7..])
            } else {
                digits.clone()
            };
            let m = MobileNumber::parse(&input).unwrap();
            prop_assert_eq!(m.as_str(), digits.as_str());
            let debug = format!("{m:?}");
            prop_assert!(!debug.contains(&digits));
            let masked = m.masked();
            prop_assert_eq!(&masked[..3], &digits[..3]);
            prop_assert_eq!(&masked[3..7], "****");
            prop_assert_eq!(&masked[7..], &digits[7..]);
        }

        #[test]
        fn uscc_computed_check_char_validates(body in proptest::collection::vec(prop::sample::select(USCC_ALPHABET.to_vec()), 17)) {
            let body = String::from_utf8(body).unwrap();
            let check = uscc_check_char(&body);
            let code = format!("{body}{}", char::from(check));
            let parsed = SocialCreditCode::parse(&code).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
            for &c in USCC_ALPHABET.iter().filter(|&&c| c != check) {
                let wrong = format!("{body}{}", char::from(c));
                prop_assert_eq!(SocialCreditCode::parse(&wrong), Err(SocialCreditCodeError::Checksum));
            }
        }

        #[test]
        fn card_validity_round_trip(
            from in any_date(date(2000, 1, 1), date(2030, 12, 31)),
            years in prop::option::of(0..=20u32),
            date_sep in prop::sample::select(vec!['.', '-', '/']),
            range_sep in prop::sample::select(RANGE_SEPARATORS.to_vec()),
        ) {
            let until = years.map(|y| from.checked_add_months(chrono::Months::new(12 * y)).unwrap());
            let fmt = |d: NaiveDate| d.format(&format!("%Y{date_sep}%m{date_sep}%d")).to_string();
            let text = format!("{}{range_sep}{}", fmt(from), until.map_or("长期".to_owned(), fmt));
            prop_assert_eq!(CardValidity::parse(&text), Ok(CardValidity { from, until }));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,24}") {
            let _ = ResidentId::parse(&s, today());
            let _ = MobileNumber::parse(&s);
            let _ = SocialCreditCode::parse(&s);
            let _ = CardValidity::parse(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_misses(s in "[0-9xX. /\\-至长期+]{0,24}") {
            let _ = ResidentId::parse(&s, today());
            let _ = MobileNumber::parse(&s);
            let _ = SocialCreditCode::parse(&s);
            let _ = CardValidity::parse(&s);
        }
    }
}
