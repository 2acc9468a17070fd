//! What goes in each kind of certificate: the four profiles, the URLs and policy a CA writes
//! into what it issues, and the GM/T 0015-2023 identity extension.
//!
//! Key identifiers are the SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1,
//! what OpenSSL computes). The authority key identifier is the issuer's own SKI.

use crate::PkiError;
use crate::algorithm::Algorithm;
use crate::oids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::Encode;
use der::asn1::{Ia5String, Null, OctetString, PrintableStringRef};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};

/// What kind of certificate to issue, and the profile-specific data it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// Self-signed root CA: BasicConstraints CA:true (critical), KeyUsage keyCertSign+cRLSign
    /// (critical), SKI.
    Root,
    /// Issuing CA under the root: BasicConstraints CA:true pathLen 0 (critical), KeyUsage
    /// keyCertSign+cRLSign (critical), SKI, AKI, CRL DP/AIA and certificate policies if
    /// configured.
    IssuingCa,
    /// Personal certificate per GM/T 0015-2023: KeyUsage digitalSignature+nonRepudiation
    /// (critical); EKU clientAuth+emailProtection; SKI, AKI; CRL DP and AIA (OCSP, caIssuers)
    /// and certificate policies if configured; the resident ID number in the 2023 identity
    /// extension 1.2.156.10260.4.1.1.1 (non-critical), as `id_policy` says.
    Personal {
        /// The holder's name, as in the subject CN (checked against it).
        name: String,
        /// The holder's resident ID number (公民身份号码), as validated by the caller.
        id_number: String,
        /// How much of the number the certificate reveals.
        id_policy: IdNumberPolicy,
    },
    /// Delegated OCSP signing: EKU id-kp-OCSPSigning (critical), KeyUsage digitalSignature
    /// (critical), id-pkix-ocsp-nocheck, SKI, AKI.
    OcspSigner,
}

impl Profile {
    /// Whether certificates of this profile are CA certificates.
    pub fn is_ca(&self) -> bool {
        matches!(self, Profile::Root | Profile::IssuingCa)
    }

    /// Short name for messages and audit records.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::Root => "root",
            Profile::IssuingCa => "issuing-ca",
            Profile::Personal { .. } => "personal",
            Profile::OcspSigner => "ocsp-signer",
        }
    }
}

/// How the resident ID number appears in the GM/T 0015-2023 identity extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdNumberPolicy {
    /// The full number, e.g. `110101199003074477`.
    Full,
    /// The first 4 and last 4 characters kept, the rest replaced by `MASK_CHAR`:
    /// `1101----------4477`.
    Masked,
    /// Lower-case hex of the hash of the (upper-cased) number: SM3 when the issuing CA signs
    /// with SM2, SHA-256 otherwise. Note: ID numbers have little entropy (region, birth date,
    /// sequence), so a plain hash hides the number from a casual reader only; anyone who
    /// knows the holder can confirm a guess, and a determined one can enumerate.
    Hashed,
}

/// The character replacing hidden digits of a masked ID number. Not `*`: the extension is a
/// PrintableString (GM/T 0015-2023), whose alphabet (X.680 §41.4) has no asterisk, and a CA
/// must not emit invalid DER. `-` is in the alphabet and never occurs in an ID number.
pub const MASK_CHAR: char = '-';

/// Characters kept at each end of a masked ID number.
const MASK_KEEP: usize = 4;

/// URLs and policy written into certificates issued by a CA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuanceOptions {
    /// CRL distribution point (an `http://` URL of the issuing CA's CRL).
    pub crl_url: Option<String>,
    /// OCSP responder URL, written in AuthorityInfoAccess.
    pub ocsp_url: Option<String>,
    /// URL of the issuing CA's certificate, written in AuthorityInfoAccess (caIssuers).
    pub ca_issuers_url: Option<String>,
    /// Certificate policy OID (from the CA's CP/CPS), written in certificatePolicies.
    pub policy_oid: Option<ObjectIdentifier>,
}

/// The value written in the identity extension for `id_number` under `policy`. `ca_algorithm`
/// chooses the hash of `Hashed` (SM3 for SM2 CAs, SHA-256 otherwise).
pub fn identity_value(id_number: &str, policy: IdNumberPolicy, ca_algorithm: Algorithm) -> Result<String, PkiError> {
    let id = id_number.trim().to_ascii_uppercase();
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PkiError::InvalidRequest(
            "an ID number must be 1 to 32 letters and digits (a resident ID number has 18)".to_owned(),
        ));
    }
    Ok(match policy {
        IdNumberPolicy::Full => id,
        IdNumberPolicy::Masked => {
            if id.len() <= 2 * MASK_KEEP {
                return Err(PkiError::InvalidRequest(format!(
                    "an ID number of {} characters is too short to be masked",
                    id.len()
                )));
            }
            let hidden = id.len() - 2 * MASK_KEEP;
            format!("{}{}{}", &id[..MASK_KEEP], MASK_CHAR.to_string().repeat(hidden), &id[id.len() - MASK_KEEP..])
        }
        IdNumberPolicy::Hashed => {
            let digest: Vec<u8> = match ca_algorithm {
                Algorithm::Sm2 => {
                    use sm3::Digest;
                    sm3::Sm3::digest(id.as_bytes()).to_vec()
                }
                Algorithm::P256 | Algorithm::Rsa3072 => {
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes()).as_ref().to_vec()
                }
            };
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
    })
}

/// The key identifier of a public key: SHA-1 of the subjectPublicKey bits (RFC 5280 method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.subject_public_key.raw_bytes());
    digest.as_ref().to_vec()
}

/// The key identifier a certificate's subject key is known by: its SKI extension if present,
/// otherwise computed from its public key.
pub fn subject_key_identifier(cert: &Certificate) -> Result<Vec<u8>, PkiError> {
    match cert.tbs_certificate().get_extension::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => Ok(ski.0.as_bytes().to_vec()),
        Ok(None) => Ok(key_identifier(cert.tbs_certificate().subject_public_key_info())),
        Err(e) => Err(PkiError::malformed("the issuer's subject key identifier", e)),
    }
}

/// An extension holding the DER of `value` under its associated OID.
pub(crate) fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, PkiError> {
    raw_extension(T::OID, critical, value.to_der().map_err(|e| PkiError::encoding("extension", e))?)
}

fn raw_extension(oid: ObjectIdentifier, critical: bool, der: Vec<u8>) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(der).map_err(|e| PkiError::encoding("extension", e))?,
    })
}

fn uri(url: &str) -> Result<GeneralName, PkiError> {
    let url = url.trim();
    if url.is_empty() || url.contains(char::is_whitespace) {
        return Err(PkiError::InvalidRequest(format!("{url:?} is not a URL")));
    }
    Ia5String::new(url)
        .map(GeneralName::UniformResourceIdentifier)
        .map_err(|_| PkiError::InvalidRequest(format!("{url:?} is not an ASCII URL")))
}

/// The extensions of a certificate of `profile` for `subject_key`. `authority_key_id` is the
/// issuer's key identifier (`None` for a self-signed root); `ca_algorithm` is the signer's.
pub(crate) fn extensions(
    profile: &Profile,
    subject_key: &SubjectPublicKeyInfoOwned,
    authority_key_id: Option<&[u8]>,
    options: &IssuanceOptions,
    ca_algorithm: Algorithm,
) -> Result<Vec<Extension>, PkiError> {
    let mut exts = Vec::with_capacity(10);
    let ca_usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    match profile {
        Profile::Root => {
            exts.push(extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?);
            exts.push(extension(&ca_usage, true)?);
        }
        Profile::IssuingCa => {
            exts.push(extension(&BasicConstraints { ca: true, path_len_constraint: Some(0) }, true)?);
            exts.push(extension(&ca_usage, true)?);
        }
        Profile::Personal { .. } => {
            exts.push(extension(&KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation), true)?);
            exts.push(extension(&ExtendedKeyUsage(vec![oids::KP_CLIENT_AUTH, oids::KP_EMAIL_PROTECTION]), false)?);
        }
        Profile::OcspSigner => {
            exts.push(extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?);
            exts.push(extension(&ExtendedKeyUsage(vec![oids::KP_OCSP_SIGNING]), true)?);
            exts.push(raw_extension(
                oids::OCSP_NOCHECK,
                false,
                Null.to_der().map_err(|e| PkiError::encoding("ocsp-nocheck", e))?,
            )?);
        }
    }

    let ski = OctetString::new(key_identifier(subject_key)).map_err(|e| PkiError::encoding("SKI", e))?;
    exts.push(extension(&SubjectKeyIdentifier(ski), false)?);
    if let Some(aki) = authority_key_id {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki).map_err(|e| PkiError::encoding("AKI", e))?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        exts.push(extension(&aki, false)?);
    }

    if matches!(profile, Profile::IssuingCa | Profile::Personal { .. }) {
        if let Some(url) = &options.crl_url {
            let dp = DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            };
            exts.push(extension(&CrlDistributionPoints(vec![dp]), false)?);
        }
        let mut access = Vec::new();
        if let Some(url) = &options.ocsp_url {
            access.push(AccessDescription { access_method: oids::AD_OCSP, access_location: uri(url)? });
        }
        if let Some(url) = &options.ca_issuers_url {
            access.push(AccessDescription { access_method: oids::AD_CA_ISSUERS, access_location: uri(url)? });
        }
        if !access.is_empty() {
            exts.push(extension(&AuthorityInfoAccessSyntax(access), false)?);
        }
        if let Some(policy) = options.policy_oid {
            let info = PolicyInformation { policy_identifier: policy, policy_qualifiers: None };
            exts.push(extension(&CertificatePolicies(vec![info]), false)?);
        }
    }

    if let Profile::Personal { id_number, id_policy, .. } = profile {
        let value = identity_value(id_number, *id_policy, ca_algorithm)?;
        let printable = PrintableStringRef::new(&value).map_err(|e| PkiError::encoding("ID number", e))?;
        let der = printable.to_der().map_err(|e| PkiError::encoding("ID number", e))?;
        exts.push(raw_extension(oids::GMT0015_RESIDENT_ID, false, der)?);
    }
    Ok(exts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "110101199003074477";

    #[test]
    fn full_masked_and_hashed_values() {
        assert_eq!(identity_value(ID, IdNumberPolicy::Full, Algorithm::P256).unwrap(), ID);
        assert_eq!(identity_value(ID, IdNumberPolicy::Masked, Algorithm::P256).unwrap(), "1101----------4477");
        assert_eq!(
            identity_value("11010119900307447x", IdNumberPolicy::Full, Algorithm::Sm2).unwrap(),
            "11010119900307447X"
        );
        // SHA-256 of the ASCII number for P-256/RSA CAs (`printf %s 110101199003074477 | sha256sum`).
        let sha = identity_value(ID, IdNumberPolicy::Hashed, Algorithm::Rsa3072).unwrap();
        assert_eq!(sha, "7e92ef76b61d3626060636efa1bfe2c63805635aee62a087a94f516496bd77af");
        // SM3 for SM2 CAs (`printf %s 110101199003074477 | openssl dgst -sm3`), and the
        // GM/T 0004 "abc" vector for the SM3 implementation itself.
        let sm3 = identity_value(ID, IdNumberPolicy::Hashed, Algorithm::Sm2).unwrap();
        assert_eq!(sm3, "4647a2240e6107cab123cc404cf226d5b57faaaf7375dbaebe42383a3d3ca1ce");
        use sm3::Digest;
        let abc: String = sm3::Sm3::digest(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(abc, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    }

    #[test]
    fn masked_and_hashed_values_are_printable_strings() {
        for policy in [IdNumberPolicy::Full, IdNumberPolicy::Masked, IdNumberPolicy::Hashed] {
            for alg in Algorithm::ALL {
                let v = identity_value(ID, policy, alg).unwrap();
                assert!(PrintableStringRef::new(&v).is_ok(), "{v}");
                if policy != IdNumberPolicy::Full {
                    assert!(!v.contains("19900307"), "{v} reveals the birth date");
                }
            }
        }
    }

    #[test]
    fn bad_id_numbers_are_refused() {
        for bad in ["", "1101 0119", "1101*4477", "张三", &"1".repeat(33)] {
            assert!(identity_value(bad, IdNumberPolicy::Full, Algorithm::P256).is_err(), "{bad:?}");
        }
        assert!(identity_value("12345678", IdNumberPolicy::Masked, Algorithm::P256).is_err());
    }

    #[test]
    fn urls_must_be_ascii_without_spaces() {
        assert!(uri("http://ca.example.cn/crl").is_ok());
        assert!(uri("http://例子.cn/crl").is_err());
        assert!(uri("http://a b").is_err());
        assert!(uri("").is_err());
    }
}
