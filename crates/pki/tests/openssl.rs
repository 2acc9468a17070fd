//! Interop: the system `openssl` (3.0) must accept what the PKI engine produces — chains,
//! CSRs, personal certificates, CRLs — and the engine must accept what `openssl req` makes.
//!
//! SM2 needs care (see crypto-feasibility.md): we sign with the distinguishing ID
//! 1234567812345678, OpenSSL 3.0 defaults to the empty ID, `-vfyopt` only reaches the leaf of a
//! chain (so SM2 chains are verified one level at a time) and `openssl crl` has no option at
//! all (so SM2 CRL signatures are checked with `openssl dgst -sm3` over the TBS bytes).

mod common;

use common::*;
use der::{Decode, Encode, Header, Reader, SliceReader};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tempfile::TempDir;
use yiqian_pki::x509_cert::Certificate;
type CertificateList = yiqian_pki::x509_cert::crl::CertificateList;
use yiqian_pki::profile::identity_value;
use yiqian_pki::{
    Algorithm, CertificateRequest, DEFAULT_SM2_DISTID, IdNumberPolicy, IssuanceOptions, PkiError, Profile,
    RevocationReason, RevokedEntry, SerialNumber, Signer, SoftwareKey, build_crl, build_csr, common_name, issue,
    personal_subject, to_pem, verify_csr,
};

const DISTID_OPT: &str = "distid:1234567812345678";
const ID_NUMBER: &str = "110101199003074477";
const CRL_URL: &str = "http://pki.example.cn/pki/crl";
const OCSP_URL: &str = "http://pki.example.cn/pki/ocsp";
const CA_ISSUERS_URL: &str = "http://pki.example.cn/pki/ca.crt";
/// RFC 5612's documentation enterprise number.
const POLICY: &str = "1.3.6.1.4.1.32473.1.1";
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// A root, an issuing CA under it, and a subscriber key, for one algorithm.
struct Hierarchy {
    alg: Algorithm,
    dir: TempDir,
    root: Certificate,
    ca_key: SoftwareKey,
    ca: Certificate,
    ee_key: SoftwareKey,
    options: IssuanceOptions,
}

impl Hierarchy {
    fn new(alg: Algorithm) -> Hierarchy {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let options = IssuanceOptions {
            crl_url: Some(CRL_URL.to_owned()),
            ocsp_url: Some(OCSP_URL.to_owned()),
            ca_issuers_url: Some(CA_ISSUERS_URL.to_owned()),
            policy_oid: Some(POLICY.parse().unwrap()),
        };
        let root_key = SoftwareKey::generate(alg).unwrap();
        let root = issue(
            &CertificateRequest {
                profile: Profile::Root,
                subject: "CN=yiqian Test Root,O=yiqian,C=CN".parse().unwrap(),
                public_key: root_key.public_key().clone(),
                serial: SerialNumber::random(),
                not_before: now - Duration::from_secs(60),
                // Past 2049: notAfter becomes a GeneralizedTime.
                not_after: now + 30 * YEAR,
                issuer: None,
                options: &IssuanceOptions::default(),
            },
            &root_key,
        )
        .unwrap();
        let ca_key = SoftwareKey::generate(alg).unwrap();
        let ca = issue(
            &CertificateRequest {
                profile: Profile::IssuingCa,
                subject: "CN=yiqian Test Issuing CA,O=yiqian,C=CN".parse().unwrap(),
                public_key: ca_key.public_key().clone(),
                serial: SerialNumber::random(),
                not_before: now - Duration::from_secs(60),
                not_after: now + 10 * YEAR,
                issuer: Some(&root),
                options: &options,
            },
            &root_key,
        )
        .unwrap();
        let ee_key = SoftwareKey::generate(alg).unwrap();
        write(dir.path(), "root.pem", cert_pem(&root));
        write(dir.path(), "ca.pem", cert_pem(&ca));
        Hierarchy { alg, dir, root, ca_key, ca, ee_key, options }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A personal certificate for the subscriber key, from a CSR checked by `verify_csr`.
    fn personal(&self, csr_der: &[u8], policy: IdNumberPolicy) -> Certificate {
        let csr = verify_csr(csr_der, DEFAULT_SM2_DISTID).unwrap();
        assert_eq!(csr.algorithm, self.alg);
        let name = common_name(&csr.subject).unwrap();
        let now = SystemTime::now();
        issue(
            &CertificateRequest {
                profile: Profile::Personal { name: name.clone(), id_number: ID_NUMBER.to_owned(), id_policy: policy },
                subject: personal_subject(&name).unwrap(),
                public_key: csr.public_key,
                serial: SerialNumber::random(),
                not_before: now - Duration::from_secs(60),
                not_after: now + 2 * YEAR,
                issuer: Some(&self.ca),
                options: &self.options,
            },
            &self.ca_key,
        )
        .unwrap()
    }

    /// Verifies `leaf` (a file in the directory) up to the root the way OpenSSL can for this
    /// algorithm; returns the output of the final `verify`.
    fn verify_chain(&self, leaf: &str, extra: &[&str]) -> (bool, String) {
        if self.alg == Algorithm::Sm2 {
            openssl(
                self.path(),
                &[
                    &["verify", "-x509_strict", "-vfyopt", DISTID_OPT, "-partial_chain", "-CAfile", "ca.pem"],
                    extra,
                    &[leaf],
                ]
                .concat(),
            )
        } else {
            openssl(
                self.path(),
                &[
                    &["verify", "-x509_strict", "-check_ss_sig", "-CAfile", "root.pem", "-untrusted", "ca.pem"],
                    extra,
                    &[leaf],
                ]
                .concat(),
            )
        }
    }
}

fn signature_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Sm2 => "SM2-with-SM3",
        Algorithm::P256 => "ecdsa-with-SHA256",
        Algorithm::Rsa3072 => "sha256WithRSAEncryption",
    }
}

/// The raw TBS bytes (first element of the outer SEQUENCE) of a certificate or CRL.
fn tbs_bytes(der: &[u8]) -> Vec<u8> {
    let mut reader = SliceReader::new(der).unwrap();
    Header::decode(&mut reader).unwrap();
    reader.tlv_bytes().unwrap().to_vec()
}

/// Checks an SM2 signature (DER) over `tbs` with the public key in `pubkey_pem`, with the
/// standard distinguishing ID, through `openssl dgst -sm3`.
fn sm2_dgst_verify(dir: &Path, pubkey_pem: &str, tbs: &[u8], signature: &[u8]) -> bool {
    write(dir, "tbs.der", tbs);
    write(dir, "sig.bin", signature);
    let (ok, text) = openssl(
        dir,
        &["dgst", "-sm3", "-sigopt", DISTID_OPT, "-verify", pubkey_pem, "-signature", "sig.bin", "tbs.der"],
    );
    assert_eq!(ok, text.contains("Verified OK"), "{text}");
    ok
}

fn full_scenario(alg: Algorithm) {
    let h = Hierarchy::new(alg);
    let dir = h.path();

    // The hierarchy: root self-signature, issuing CA under the root.
    if alg == Algorithm::Sm2 {
        // `-vfyopt` does not reach the self-signature check of a trust anchor: check the
        // root's signature over its TBS bytes directly.
        let root_der = h.root.to_der().unwrap();
        openssl_ok(dir, &["x509", "-in", "root.pem", "-pubkey", "-noout", "-out", "rootpub.pem"]);
        assert!(sm2_dgst_verify(dir, "rootpub.pem", &tbs_bytes(&root_der), h.root.signature().raw_bytes()));
        let ca = openssl_ok(dir, &["verify", "-x509_strict", "-vfyopt", DISTID_OPT, "-CAfile", "root.pem", "ca.pem"]);
        assert!(ca.contains("ca.pem: OK"), "{ca}");
        // Without the ID OpenSSL 3.0 uses the empty one, and must fail: the ID really is in use.
        let (ok, text) = openssl(dir, &["verify", "-CAfile", "root.pem", "ca.pem"]);
        assert!(!ok && !text.contains("ca.pem: OK"), "{text}");
    }
    let ca_text = openssl_ok(dir, &["x509", "-in", "ca.pem", "-noout", "-text"]);
    for needle in [
        "Version: 3 (0x2)",
        signature_name(alg),
        "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0",
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        POLICY,
    ] {
        assert!(ca_text.contains(needle), "issuing CA lacks {needle:?}:\n{ca_text}");
    }
    let root_text = openssl_ok(dir, &["x509", "-in", "root.pem", "-noout", "-text"]);
    assert!(root_text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE\n"), "{root_text}");
    assert!(!root_text.contains("X509v3 Authority Key Identifier"), "{root_text}");
    // RFC 5280 times: the root's notAfter is past 2049, the issuing CA's is not.
    let root_asn1 = openssl_ok(dir, &["asn1parse", "-in", "root.pem"]);
    assert!(root_asn1.contains("UTCTIME") && root_asn1.contains("GENERALIZEDTIME"), "{root_asn1}");
    let ca_asn1 = openssl_ok(dir, &["asn1parse", "-in", "ca.pem"]);
    assert!(!ca_asn1.contains("GENERALIZEDTIME"), "{ca_asn1}");

    // The subscriber's CSR, built by us: OpenSSL accepts its self-signature.
    let csr_der = build_csr(&personal_subject("张三").unwrap(), &h.ee_key).unwrap();
    write(dir, "csr.pem", to_pem("CERTIFICATE REQUEST", &csr_der));
    let args: Vec<&str> = if alg == Algorithm::Sm2 {
        vec!["req", "-verify", "-in", "csr.pem", "-noout", "-vfyopt", DISTID_OPT]
    } else {
        vec!["req", "-verify", "-in", "csr.pem", "-noout"]
    };
    // `req -verify` exits 0 even when the signature is bad: read what it says.
    let (_, text) = openssl(dir, &args);
    assert!(text.contains("verify OK") && !text.to_lowercase().contains("fail"), "{text}");

    // The personal certificate chains to the root.
    let ee = h.personal(&csr_der, IdNumberPolicy::Masked);
    write(dir, "ee.pem", cert_pem(&ee));
    let (ok, text) = h.verify_chain("ee.pem", &[]);
    assert!(ok && text.contains("ee.pem: OK"), "{text}");

    // …and reads as GM/T 0015-2023 says.
    let ee_text =
        openssl_ok(dir, &["x509", "-in", "ee.pem", "-noout", "-text", "-nameopt", "utf8,sep_comma_plus_space"]);
    for needle in [
        "Version: 3 (0x2)",
        signature_name(alg),
        "Subject: C=CN, CN=张三",
        "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation",
        "X509v3 Extended Key Usage: \n                TLS Web Client Authentication, E-mail Protection",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        &format!("Policy: {POLICY}"),
        &format!("URI:{CRL_URL}"),
        &format!("OCSP - URI:{OCSP_URL}"),
        &format!("CA Issuers - URI:{CA_ISSUERS_URL}"),
        "1.2.156.10260.4.1.1.1: \n",
        "1101----------4477",
    ] {
        assert!(ee_text.contains(needle), "personal certificate lacks {needle:?}:\n{ee_text}");
    }
    assert!(!ee_text.contains(ID_NUMBER), "the full ID number leaked:\n{ee_text}");
    assert!(!ee_text.contains("X509v3 Basic Constraints"), "{ee_text}");

    // A delegated OCSP signing certificate.
    let now = SystemTime::now();
    let ocsp = issue(
        &CertificateRequest {
            profile: Profile::OcspSigner,
            subject: "CN=yiqian Test OCSP,O=yiqian,C=CN".parse().unwrap(),
            public_key: h.ee_key.public_key().clone(),
            serial: SerialNumber::random(),
            not_before: now,
            not_after: now + YEAR,
            issuer: Some(&h.ca),
            options: &h.options,
        },
        &h.ca_key,
    )
    .unwrap();
    write(dir, "ocsp.pem", cert_pem(&ocsp));
    let (ok, text) = h.verify_chain("ocsp.pem", &[]);
    assert!(ok && text.contains("ocsp.pem: OK"), "{text}");
    let ocsp_text = openssl_ok(dir, &["x509", "-in", "ocsp.pem", "-noout", "-text"]);
    for needle in
        ["X509v3 Extended Key Usage: critical\n                OCSP Signing", "OCSP No Check", "Digital Signature\n"]
    {
        assert!(ocsp_text.contains(needle), "OCSP signer lacks {needle:?}:\n{ocsp_text}");
    }

    // A CRL revoking two certificates: one for key compromise, one on hold.
    let held = h.personal(&csr_der, IdNumberPolicy::Hashed);
    let good = h.personal(&csr_der, IdNumberPolicy::Full);
    write(dir, "held.pem", cert_pem(&held));
    write(dir, "good.pem", cert_pem(&good));
    let held_text = openssl_ok(dir, &["x509", "-in", "held.pem", "-noout", "-text"]);
    let hashed = identity_value(ID_NUMBER, IdNumberPolicy::Hashed, alg).unwrap();
    assert!(held_text.contains(&hashed) && !held_text.contains(ID_NUMBER), "{held_text}");
    let good_text = openssl_ok(dir, &["x509", "-in", "good.pem", "-noout", "-text"]);
    assert!(good_text.contains(ID_NUMBER), "{good_text}");
    let serial = |c: &Certificate| SerialNumber::from_x509(c.tbs_certificate().serial_number()).unwrap();
    let revoked = [
        RevokedEntry { serial: serial(&ee), revoked_at: now, reason: RevocationReason::KeyCompromise },
        RevokedEntry { serial: serial(&held), revoked_at: now, reason: RevocationReason::CertificateHold },
    ];
    let crl = build_crl(&h.ca, &h.ca_key, 1, now, now + Duration::from_secs(86_400), &revoked).unwrap();
    write(dir, "crl.der", &crl);
    write(dir, "crl.pem", to_pem("X509 CRL", &crl));

    if alg == Algorithm::Sm2 {
        openssl_ok(dir, &["x509", "-in", "ca.pem", "-pubkey", "-noout", "-out", "capub.pem"]);
        let signature = CertificateList::from_der(&crl).unwrap().signature;
        assert!(sm2_dgst_verify(dir, "capub.pem", &tbs_bytes(&crl), signature.raw_bytes()));
        // A flipped TBS byte fails the same check: the check is real.
        let mut bad = tbs_bytes(&crl);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!sm2_dgst_verify(dir, "capub.pem", &bad, signature.raw_bytes()));
    } else {
        let text =
            openssl_ok(dir, &["crl", "-in", "crl.der", "-inform", "DER", "-CAfile", "ca.pem", "-noout", "-verify"]);
        assert!(text.contains("verify OK"), "{text}");
    }

    let crl_text = openssl_ok(dir, &["crl", "-in", "crl.der", "-inform", "DER", "-noout", "-text"]);
    for needle in [
        "Version 2 (0x1)",
        signature_name(alg),
        "X509v3 CRL Number: \n                1\n",
        "X509v3 Authority Key Identifier",
        &format!("Serial Number: {}", serial(&ee).to_hex()),
        &format!("Serial Number: {}", serial(&held).to_hex()),
        RevocationReason::KeyCompromise.openssl_name(),
        RevocationReason::CertificateHold.openssl_name(),
        "Next Update: ",
    ] {
        assert!(crl_text.contains(needle), "CRL lacks {needle:?}:\n{crl_text}");
    }
    assert!(!crl_text.contains(&serial(&good).to_hex()));

    if alg != Algorithm::Sm2 {
        let crl_args = ["-crl_check", "-CRLfile", "crl.pem"];
        for revoked_leaf in ["ee.pem", "held.pem"] {
            let (ok, text) = h.verify_chain(revoked_leaf, &crl_args);
            assert!(!ok && text.contains("certificate revoked"), "{revoked_leaf}: {text}");
        }
        let (ok, text) = h.verify_chain("good.pem", &crl_args);
        assert!(ok && text.contains("good.pem: OK"), "{text}");
    }

    // The issuing CA's own key and certificate survive a PKCS#8 round trip and go on signing.
    let reloaded = SoftwareKey::from_pkcs8_der(alg, &h.ca_key.to_pkcs8_der().unwrap()).unwrap();
    let again = build_crl(&h.ca, &reloaded, 2, now, now + Duration::from_secs(60), &[]).unwrap();
    assert!(CertificateList::from_der(&again).is_ok());
    // OpenSSL reads the PKCS#8 key too.
    write(dir, "key.pem", to_pem("PRIVATE KEY", &h.ca_key.to_pkcs8_der().unwrap()));
    openssl_ok(dir, &["pkey", "-in", "key.pem", "-noout"]);
    // YIQIAN_PKI_KEEP=1 keeps the files for a look by hand.
    if std::env::var_os("YIQIAN_PKI_KEEP").is_some() {
        eprintln!("{alg} files kept in {}", h.dir.keep().display());
    }
}

#[test]
fn sm2_hierarchy_csr_personal_certificate_and_crl() {
    full_scenario(Algorithm::Sm2);
}

#[test]
fn p256_hierarchy_csr_personal_certificate_and_crl() {
    full_scenario(Algorithm::P256);
}

#[test]
fn rsa3072_hierarchy_csr_personal_certificate_and_crl() {
    full_scenario(Algorithm::Rsa3072);
}

/// Makes a CSR with `openssl req -new` in `dir`, returning its DER.
fn openssl_csr(dir: &Path, name: &str, key_args: &[&str], extra: &[&str]) -> Vec<u8> {
    let pem = format!("{name}.pem");
    let key = format!("{name}.key");
    openssl_ok(
        dir,
        &[
            &["req", "-new", "-utf8", "-nodes", "-subj", "/C=CN/CN=张三", "-keyout", &key, "-out", &pem],
            key_args,
            extra,
        ]
        .concat(),
    );
    openssl_ok(dir, &["req", "-in", &pem, "-outform", "DER", "-out", &format!("{name}.der")]);
    fs::read(dir.join(format!("{name}.der"))).unwrap()
}

/// The CSR with one byte of its signature flipped (the last byte is inside the signature).
fn flipped(der: &[u8]) -> Vec<u8> {
    let mut bad = der.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    bad
}

#[test]
fn openssl_made_requests_are_accepted_and_tampered_ones_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // (file name, algorithm, key options, signing options, distinguishing ID expected)
    type Case<'a> = (&'a str, Algorithm, &'a [&'a str], &'a [&'a str], Option<&'a str>);
    let cases: [Case<'_>; 4] = [
        ("p256", Algorithm::P256, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], &[], None),
        ("sm2", Algorithm::Sm2, &["-newkey", "sm2", "-sm3"], &["-sigopt", DISTID_OPT], Some(DEFAULT_SM2_DISTID)),
        // OpenSSL 3.0 without -sigopt signs with the empty ID: accepted through the fallback.
        ("sm2-empty-id", Algorithm::Sm2, &["-newkey", "sm2", "-sm3"], &[], Some("")),
        ("rsa3072", Algorithm::Rsa3072, &["-newkey", "rsa:3072"], &[], None),
    ];
    for (name, alg, key_args, extra, distid) in cases {
        let der = openssl_csr(dir, name, key_args, extra);
        let csr = verify_csr(&der, DEFAULT_SM2_DISTID).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(csr.algorithm, alg, "{name}");
        assert_eq!(csr.sm2_distid_used.as_deref(), distid, "{name}");
        assert_eq!(common_name(&csr.subject).as_deref(), Some("张三"), "{name}");
        // The PEM form is accepted as well.
        let pem = fs::read(dir.join(format!("{name}.pem"))).unwrap();
        assert_eq!(verify_csr(&pem, DEFAULT_SM2_DISTID).unwrap(), csr, "{name}");
        assert_eq!(verify_csr(&flipped(&der), DEFAULT_SM2_DISTID), Err(PkiError::BadSignature), "{name}");
    }
}

#[test]
fn openssl_rsa_2048_request_is_refused_as_too_small() {
    let tmp = tempfile::tempdir().unwrap();
    let der = openssl_csr(tmp.path(), "rsa2048", &["-newkey", "rsa:2048"], &[]);
    match verify_csr(&der, DEFAULT_SM2_DISTID) {
        Err(PkiError::KeyNotAllowed(msg)) => assert!(msg.contains("2048"), "{msg}"),
        other => panic!("expected KeyNotAllowed, got {other:?}"),
    }
}

#[test]
fn openssl_requests_for_other_curves_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let der = openssl_csr(tmp.path(), "p384", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], &[]);
    assert!(matches!(verify_csr(&der, DEFAULT_SM2_DISTID), Err(PkiError::UnsupportedAlgorithm(_))));
    let der = openssl_csr(tmp.path(), "ed25519", &["-newkey", "ed25519"], &[]);
    assert!(matches!(verify_csr(&der, DEFAULT_SM2_DISTID), Err(PkiError::UnsupportedAlgorithm(_))));
}

#[test]
fn garbage_truncated_and_oversized_requests_give_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let der = openssl_csr(tmp.path(), "p256", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], &[]);
    for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
        assert!(matches!(verify_csr(&der[..cut], DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))), "cut at {cut}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(verify_csr(&trailing, DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))));
    assert!(matches!(verify_csr(b"not a certificate request", DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))));
    let pem_garbage = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    assert!(matches!(verify_csr(pem_garbage, DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))));
    let huge = vec![0x30u8; 1024 * 1024];
    assert_eq!(verify_csr(&huge, DEFAULT_SM2_DISTID), Err(PkiError::TooLarge { size: 1024 * 1024, limit: 64 * 1024 }));
    // Each error reads as a sentence for the operator.
    let message = verify_csr(&der[..10], DEFAULT_SM2_DISTID).unwrap_err().to_string();
    assert!(message.starts_with("malformed input: certificate request"), "{message}");
}

#[test]
fn openssl_generated_pkcs8_keys_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: [(Algorithm, &[&str]); 3] = [
        (Algorithm::Sm2, &["-algorithm", "sm2"]),
        (Algorithm::P256, &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        (Algorithm::Rsa3072, &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]),
    ];
    for (alg, args) in cases {
        openssl_ok(dir, &[&["genpkey", "-out", "key.pem"], args].concat());
        openssl_ok(dir, &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"]);
        let (label, pkcs8) = yiqian_pki::from_pem(&fs::read(dir.join("key.pem")).unwrap()).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        let key = SoftwareKey::from_pkcs8_der(alg, &pkcs8).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(key.public_key().to_der().unwrap(), fs::read(dir.join("pub.der")).unwrap(), "{alg}");
        // What it signs, OpenSSL verifies.
        write(
            dir,
            "csr.pem",
            to_pem("CERTIFICATE REQUEST", &build_csr(&personal_subject("张三").unwrap(), &key).unwrap()),
        );
        let mut verify = vec!["req", "-verify", "-in", "csr.pem", "-noout"];
        if alg == Algorithm::Sm2 {
            verify.extend(["-vfyopt", DISTID_OPT]);
        }
        let (_, text) = openssl(dir, &verify);
        assert!(text.contains("verify OK") && !text.to_lowercase().contains("fail"), "{alg}: {text}");
    }
}
