//! Shared by the token tests (and the software SKF library's driver test, which includes this
//! file by path): a test CA that issues personal certificates for CSRs made on a
//! token, and `openssl` run in a work directory.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};
use yiqian_pki::der::Encode;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{
    Algorithm, CertificateRequest, DEFAULT_SM2_DISTID, IdNumberPolicy, IssuanceOptions, Profile, SerialNumber, Signer,
    SoftwareKey, issue, personal_subject, verify_csr,
};

/// The holder named in test certificates.
pub const HOLDER: &str = "张三";
/// A valid resident ID number (GB 11643 checksum).
pub const ID_NUMBER: &str = "110101199003074477";
/// A year.
pub const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A self-signed test CA that issues personal certificates.
pub struct TestCa {
    pub key: SoftwareKey,
    pub cert: Certificate,
}

impl TestCa {
    pub fn new(algorithm: Algorithm) -> TestCa {
        let key = SoftwareKey::generate(algorithm).unwrap();
        let now = SystemTime::now();
        let cert = issue(
            &CertificateRequest {
                profile: Profile::Root,
                subject: "CN=yiqian Token Test CA,O=yiqian,C=CN".parse().unwrap(),
                public_key: key.public_key().clone(),
                serial: SerialNumber::random(),
                not_before: now - Duration::from_secs(60),
                not_after: now + 10 * YEAR,
                issuer: None,
                options: &IssuanceOptions::default(),
            },
            &key,
        )
        .unwrap();
        TestCa { key, cert }
    }

    /// Verifies the CSR and issues the holder's personal certificate for its key (DER).
    pub fn issue_personal(&self, csr: &[u8]) -> Vec<u8> {
        let csr = verify_csr(csr, DEFAULT_SM2_DISTID).unwrap();
        let now = SystemTime::now();
        let cert = issue(
            &CertificateRequest {
                profile: Profile::Personal {
                    name: HOLDER.to_owned(),
                    id_number: ID_NUMBER.to_owned(),
                    id_policy: IdNumberPolicy::Masked,
                },
                subject: personal_subject(HOLDER).unwrap(),
                public_key: csr.public_key,
                serial: SerialNumber::random(),
                not_before: now - Duration::from_secs(60),
                not_after: now + 2 * YEAR,
                issuer: Some(&self.cert),
                options: &IssuanceOptions::default(),
            },
            &self.key,
        )
        .unwrap();
        cert.to_der().unwrap()
    }
}

/// Runs `openssl` in `dir`; whether it succeeded, and what it printed.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
