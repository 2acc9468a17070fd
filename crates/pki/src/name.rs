//! Distinguished names: the subject of a personal certificate, and reading the common name
//! back (to match a CSR against the approved applicant).

use crate::PkiError;
use crate::oids;
use der::asn1::{Any, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// Upper bound of a commonName, in characters (X.520 ub-common-name).
const MAX_COMMON_NAME_CHARS: usize = 64;

/// The subject of a personal certificate: `C=CN` (PrintableString), `CN=<name>` (UTF8String,
/// so Chinese names are kept as they are). The name is trimmed; it must be 1 to 64 characters
/// without control characters.
pub fn personal_subject(name: &str) -> Result<Name, PkiError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_COMMON_NAME_CHARS {
        return Err(PkiError::InvalidRequest(format!(
            "a certificate holder's name must be 1 to {MAX_COMMON_NAME_CHARS} characters, this one has {chars}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(PkiError::InvalidRequest(
            "a certificate holder's name may not contain control characters".to_owned(),
        ));
    }
    let country = PrintableStringRef::new("CN").map_err(|e| PkiError::encoding("countryName", e))?;
    let common = Utf8StringRef::new(name).map_err(|e| PkiError::encoding("commonName", e))?;
    build_name(&[(oids::COUNTRY_NAME, Any::from(country)), (oids::COMMON_NAME, Any::from(common))])
}

/// Builds a name with one attribute per RDN, in the order given (most significant first).
pub(crate) fn build_name(attributes: &[(const_oid::ObjectIdentifier, Any)]) -> Result<Name, PkiError> {
    let mut rdns = Vec::with_capacity(attributes.len());
    for (oid, value) in attributes {
        let mut rdn = RelativeDistinguishedName::default();
        rdn.insert(AttributeTypeAndValue { oid: *oid, value: value.clone() })
            .map_err(|e| PkiError::encoding("name", e))?;
        rdns.push(rdn);
    }
    let der = RdnSequence::from(rdns).to_der().map_err(|e| PkiError::encoding("name", e))?;
    Name::from_der(&der).map_err(|e| PkiError::encoding("name", e))
}

/// The first CN of a subject, if any, when it is a UTF8String or PrintableString.
pub fn common_name(name: &Name) -> Option<String> {
    name.iter().filter(|atv| atv.oid == oids::COMMON_NAME).find_map(|atv| match atv.value.tag() {
        Tag::Utf8String => atv.value.decode_as::<Utf8StringRef<'_>>().ok().map(|s| s.as_str().to_owned()),
        Tag::PrintableString => atv.value.decode_as::<PrintableStringRef<'_>>().ok().map(|s| s.as_str().to_owned()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_subject_encodes_country_printable_and_name_utf8() {
        let name = personal_subject(" 张三 ").unwrap();
        assert_eq!(common_name(&name).as_deref(), Some("张三"));
        let der = name.to_der().unwrap();
        // C=CN as PrintableString (0x13), CN as UTF8String (0x0c).
        assert!(der.windows(4).any(|w| w == [0x13, 0x02, b'C', b'N']));
        let utf8 = "张三".as_bytes();
        assert!(der.windows(utf8.len() + 2).any(|w| w[0] == 0x0c && w[1] as usize == utf8.len() && &w[2..] == utf8));
        assert_eq!(name.to_string(), "CN=张三,C=CN");
    }

    #[test]
    fn personal_subject_refuses_empty_long_and_control() {
        assert!(personal_subject("  ").is_err());
        assert!(personal_subject(&"张".repeat(65)).is_err());
        assert!(personal_subject(&"张".repeat(64)).is_ok());
        assert!(personal_subject("a\u{0}b").is_err());
    }

    #[test]
    fn common_name_reads_printable_strings_too() {
        let name: Name = "CN=Alice,O=Example,C=CN".parse().unwrap();
        assert_eq!(common_name(&name).as_deref(), Some("Alice"));
        let no_cn: Name = "O=Example".parse().unwrap();
        assert_eq!(common_name(&no_cn), None);
    }
}
