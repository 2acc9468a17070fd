//! The PKCS#11 signer (`Pkcs11Key`) on SoftHSM2 passes the same suite as the software signer
//! (tests/openssl.rs) for P-256 and RSA-3072, with the root and issuing CA keys held in the
//! token: `openssl verify` accepts root → issuing CA → personal certificate, `openssl crl
//! -verify` accepts the CRL, and `verify -crl_check` reports the revoked certificate. Plus what
//! only an HSM has: keys found again by label in a new session, re-login after a logout, a new
//! session after a module restart, a wrong PIN, non-extractable keys, and SM2 refused.
//!
//! Everything runs in ONE test function: SoftHSM2 reads `SOFTHSM2_CONF` (process-wide) once,
//! at `C_Initialize`, which happens once per process. The token lives in a temporary
//! directory. Without SoftHSM2 (`apt-get install softhsm2`) the test passes with a note,
//! unless `YIQIAN_REQUIRE_SOFTHSM=1` (set by `.ci/run`) makes that a failure.

mod common;

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::types::AuthPin;
use der::Decode;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;
use yiqian_pki::pkcs11::SOFTHSM2_MODULE;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{
    Algorithm, CertificateRequest, DEFAULT_SM2_DISTID, IdNumberPolicy, IssuanceOptions, Pkcs11Config, Pkcs11Key,
    PkiError, Profile, RevocationReason, RevokedEntry, SerialNumber, Signer, SoftwareKey, build_crl, build_csr,
    common_name, issue, personal_subject, to_pem, verify, verify_csr,
};
type CertificateList = yiqian_pki::x509_cert::crl::CertificateList;

const TOKEN: &str = "yiqian-test";
const PIN: &str = "123456";
const SO_PIN: &str = "12345678";
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// A private SoftHSM2 token directory with one initialised token, `yiqian-test`.
struct SoftHsm {
    dir: TempDir,
}

impl SoftHsm {
    /// Sets SoftHSM2 up, or says why it cannot and returns `None` (a failure when
    /// `YIQIAN_REQUIRE_SOFTHSM=1`).
    fn start() -> Option<SoftHsm> {
        let missing = if !Path::new(SOFTHSM2_MODULE).exists() {
            Some(format!("{SOFTHSM2_MODULE} does not exist"))
        } else if Command::new("softhsm2-util").arg("--version").output().is_err() {
            Some("softhsm2-util is not on the PATH".to_owned())
        } else {
            None
        };
        if let Some(why) = missing {
            assert!(
                std::env::var("YIQIAN_REQUIRE_SOFTHSM").as_deref() != Ok("1"),
                "YIQIAN_REQUIRE_SOFTHSM=1 but SoftHSM2 is missing: {why} (apt-get install softhsm2)"
            );
            eprintln!(
                "SKIPPED: the PKCS#11 tests need SoftHSM2 and {why}; apt-get install softhsm2 \
                 (YIQIAN_REQUIRE_SOFTHSM=1 turns this into a failure)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nslots.mechanisms = ALL\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        // SAFETY: this is the only test in this binary, and nothing else in the process reads
        // or writes the environment while it runs. SoftHSM2 reads the variable in C_Initialize,
        // and `softhsm2-util` inherits it.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        let (ok, text) = run(
            dir.path(),
            "softhsm2-util",
            &["--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN, "--pin", PIN],
        );
        assert!(ok, "softhsm2-util --init-token failed:\n{text}");
        Some(SoftHsm { dir })
    }

    fn config(&self, key_label: &str) -> Pkcs11Config {
        Pkcs11Config {
            module: PathBuf::from(SOFTHSM2_MODULE),
            token_label: TOKEN.to_owned(),
            pin: PIN.to_owned().into(),
            key_label: key_label.to_owned(),
        }
    }

    /// A session of the test's own (same module, same process: already initialised by the
    /// library), logged in.
    fn session(&self) -> Session {
        let pkcs11 = Pkcs11::new(SOFTHSM2_MODULE).unwrap();
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slot = pkcs11
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| pkcs11.get_token_info(*s).unwrap().label() == TOKEN)
            .expect("the test token");
        let session = pkcs11.open_ro_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        session
    }
}

#[test]
fn pkcs11_signer_on_softhsm2() {
    let Some(hsm) = SoftHsm::start() else { return };
    let started = Instant::now();

    // Before anything is logged in: with a session of the process logged in, C_Login does not
    // look at the PIN (see below).
    wrong_pin_is_a_typed_error(&hsm);
    missing_tokens_and_keys_are_typed_errors(&hsm);
    sm2_is_unsupported(&hsm);
    for alg in [Algorithm::P256, Algorithm::Rsa3072] {
        let t = Instant::now();
        full_scenario(&hsm, alg);
        eprintln!("{alg}: HSM scenario in {:.2?}", t.elapsed());
    }
    // Every session is closed now, so the user is logged out again and the PIN is checked.
    wrong_pin_is_a_typed_error(&hsm);
    eprintln!("PKCS#11 suite on SoftHSM2: {:.2?}", started.elapsed());
}

fn wrong_pin_is_a_typed_error(hsm: &SoftHsm) {
    let wrong = "987654";
    let config = Pkcs11Config { pin: wrong.to_owned().into(), ..hsm.config("no-such-key") };
    for result in [Pkcs11Key::open(&config).map(|_| ()), Pkcs11Key::generate(&config, Algorithm::P256).map(|_| ())] {
        match result {
            Err(PkiError::Key(message)) => {
                assert!(message.contains("CKR_PIN_INCORRECT") && message.contains(TOKEN), "{message}");
                assert!(!message.contains(wrong), "the PIN leaked: {message}");
                assert!(!PkiError::Key(message).to_string().contains(wrong));
            }
            other => panic!("a wrong PIN gave {other:?}"),
        }
    }
    assert!(!format!("{config:?}").contains(wrong));
}

fn missing_tokens_and_keys_are_typed_errors(hsm: &SoftHsm) {
    let config = Pkcs11Config { token_label: "no-such-token".to_owned(), ..hsm.config("root") };
    match Pkcs11Key::open(&config) {
        Err(PkiError::Key(message)) => assert!(message.contains("no token labelled \"no-such-token\""), "{message}"),
        other => panic!("{other:?}"),
    }
    match Pkcs11Key::open(&hsm.config("no-such-key")) {
        Err(PkiError::Key(message)) => {
            assert!(message.contains("no private key labelled \"no-such-key\""), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let config = Pkcs11Config { module: "/nonexistent/libpkcs11.so".into(), ..hsm.config("root") };
    assert!(matches!(Pkcs11Key::open(&config), Err(PkiError::Key(_))));
}

fn sm2_is_unsupported(hsm: &SoftHsm) {
    match Pkcs11Key::generate(&hsm.config("sm2"), Algorithm::Sm2) {
        Err(PkiError::UnsupportedAlgorithm(message)) => {
            assert!(message.contains("vendor") && message.contains("PKCS#11 module"), "{message}")
        }
        other => panic!("SM2 generation gave {other:?}"),
    }
}

/// Checks in the token (and with `pkcs11-tool`, when OpenSC is installed) that the private key
/// labelled `label` is a sensitive, never-extractable token object.
fn check_private_key_is_locked_in(hsm: &SoftHsm, session: &Session, label: &str) {
    let keys = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label.as_bytes().to_vec())])
        .unwrap();
    assert_eq!(keys.len(), 1, "{label}");
    let attributes = session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sign,
                AttributeType::Id,
            ],
        )
        .unwrap();
    for attribute in &attributes {
        match attribute {
            Attribute::Token(v)
            | Attribute::Sensitive(v)
            | Attribute::AlwaysSensitive(v)
            | Attribute::NeverExtractable(v)
            | Attribute::Sign(v) => assert!(*v, "{label}: {attribute:?}"),
            Attribute::Extractable(v) => assert!(!*v, "{label}: {attribute:?}"),
            Attribute::Id(id) => assert_eq!(id.len(), 16, "{label}"),
            _ => {}
        }
    }
    assert_eq!(attributes.len(), 7, "{label}: {attributes:?}");
    // The value itself cannot be read.
    let value = session.get_attributes(keys[0], &[AttributeType::Value]).unwrap();
    assert!(value.is_empty(), "{label}: the private value was readable");

    if Command::new("pkcs11-tool").arg("--help").output().is_ok() {
        let (ok, text) = run(
            hsm.dir.path(),
            "pkcs11-tool",
            &["--module", SOFTHSM2_MODULE, "--token-label", TOKEN, "--login", "--pin", PIN, "--list-objects"],
        );
        assert!(ok, "{text}");
        let block = text
            .split("Private Key Object")
            .skip(1)
            .find(|b| b.contains(&format!("label:      {label}\n")))
            .unwrap_or_else(|| panic!("pkcs11-tool does not list the private key {label}:\n{text}"));
        assert!(block.contains("sensitive") && block.contains("never extractable"), "{block}");
    } else {
        eprintln!("pkcs11-tool (OpenSC) not installed: checked CKA_SENSITIVE/CKA_EXTRACTABLE through cryptoki only");
    }
}

fn full_scenario(hsm: &SoftHsm, alg: Algorithm) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let now = SystemTime::now();
    let options = IssuanceOptions {
        crl_url: Some("http://pki.example.cn/pki/crl".to_owned()),
        ocsp_url: Some("http://pki.example.cn/pki/ocsp".to_owned()),
        ca_issuers_url: Some("http://pki.example.cn/pki/ca.crt".to_owned()),
        policy_oid: Some("1.3.6.1.4.1.32473.1.1".parse().unwrap()),
    };
    let root_label = format!("root-{alg}");
    let ca_label = format!("issuing-{alg}");

    // The root key in the token, and the self-signed root certificate it signs.
    let root_key = Pkcs11Key::generate(&hsm.config(&root_label), alg).unwrap();
    assert_eq!(root_key.algorithm(), alg);
    assert_eq!(yiqian_pki::key_algorithm(root_key.public_key()), Ok(alg));
    let expected_mechanism = if alg == Algorithm::P256 { "CKM_ECDSA" } else { "CKM_SHA256_RSA_PKCS" };
    assert_eq!(root_key.mechanism(), expected_mechanism);
    let debug = format!("{root_key:?}");
    assert!(debug.contains(&root_label) && !debug.contains(PIN), "{debug}");
    // The label is taken now.
    assert!(
        matches!(Pkcs11Key::generate(&hsm.config(&root_label), alg), Err(PkiError::Key(m)) if m.contains("already"))
    );

    let root = issue(
        &CertificateRequest {
            profile: Profile::Root,
            subject: format!("CN=yiqian HSM Test Root {alg},O=yiqian,C=CN").parse().unwrap(),
            public_key: root_key.public_key().clone(),
            serial: SerialNumber::random(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 30 * YEAR,
            issuer: None,
            options: &IssuanceOptions::default(),
        },
        &root_key,
    )
    .unwrap();

    // The issuing CA key in the token, certified by the root key in the token.
    let ca_key = Pkcs11Key::generate(&hsm.config(&ca_label), alg).unwrap();
    assert_ne!(ca_key.key_id(), root_key.key_id());
    let ca = issue(
        &CertificateRequest {
            profile: Profile::IssuingCa,
            subject: format!("CN=yiqian HSM Test Issuing CA {alg},O=yiqian,C=CN").parse().unwrap(),
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
    write(dir, "root.pem", cert_pem(&root));
    write(dir, "ca.pem", cert_pem(&ca));

    // A personal certificate for a software subscriber key, from its CSR.
    let ee_key = SoftwareKey::generate(alg).unwrap();
    let csr_der = build_csr(&personal_subject("张三").unwrap(), &ee_key).unwrap();
    let personal = |signer: &dyn Signer, ca: &Certificate| {
        let csr = verify_csr(&csr_der, DEFAULT_SM2_DISTID).unwrap();
        let name = common_name(&csr.subject).unwrap();
        issue(
            &CertificateRequest {
                profile: Profile::Personal {
                    name: name.clone(),
                    id_number: "110101199003074477".to_owned(),
                    id_policy: IdNumberPolicy::Masked,
                },
                subject: personal_subject(&name).unwrap(),
                public_key: csr.public_key,
                serial: SerialNumber::random(),
                not_before: now - Duration::from_secs(60),
                not_after: now + 2 * YEAR,
                issuer: Some(ca),
                options: &options,
            },
            signer,
        )
        .unwrap()
    };
    let ee = personal(&ca_key, &ca);
    write(dir, "ee.pem", cert_pem(&ee));
    let chain = |leaf: &str, extra: &[&str]| {
        openssl(
            dir,
            &[
                &["verify", "-x509_strict", "-check_ss_sig", "-CAfile", "root.pem", "-untrusted", "ca.pem"],
                extra,
                &[leaf],
            ]
            .concat(),
        )
    };
    let (ok, text) = chain("ee.pem", &[]);
    assert!(ok && text.contains("ee.pem: OK"), "{alg}: {text}");

    // A CRL signed in the token, revoking the personal certificate.
    let good = personal(&ca_key, &ca);
    write(dir, "good.pem", cert_pem(&good));
    let revoked = [RevokedEntry { serial: serial(&ee), revoked_at: now, reason: RevocationReason::KeyCompromise }];
    let crl = build_crl(&ca, &ca_key, 1, now, now + Duration::from_secs(86_400), &revoked).unwrap();
    assert!(CertificateList::from_der(&crl).is_ok());
    write(dir, "crl.der", &crl);
    write(dir, "crl.pem", to_pem("X509 CRL", &crl));
    let text = openssl_ok(dir, &["crl", "-in", "crl.der", "-inform", "DER", "-CAfile", "ca.pem", "-noout", "-verify"]);
    assert!(text.contains("verify OK"), "{alg}: {text}");
    let text = openssl_ok(dir, &["crl", "-in", "crl.der", "-inform", "DER", "-noout", "-text"]);
    assert!(text.contains(&format!("Serial Number: {}", serial(&ee).to_hex())), "{alg}: {text}");
    assert!(text.contains("Key Compromise"), "{alg}: {text}");
    let (ok, text) = chain("ee.pem", &["-crl_check", "-CRLfile", "crl.pem"]);
    assert!(!ok && text.contains("certificate revoked"), "{alg}: {text}");
    let (ok, text) = chain("good.pem", &["-crl_check", "-CRLfile", "crl.pem"]);
    assert!(ok && text.contains("good.pem: OK"), "{alg}: {text}");

    // Several threads share one HSM key (one session behind a mutex).
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let ca_key = &ca_key;
            s.spawn(move || {
                for i in 0..10u8 {
                    let message = [t, i];
                    let signature = ca_key.sign(&message).unwrap();
                    verify(ca_key.public_key(), alg, &message, &signature, "").unwrap();
                }
            });
        }
    });

    // The keys cannot leave the token.
    {
        let session = hsm.session();
        check_private_key_is_locked_in(hsm, &session, &root_label);
        check_private_key_is_locked_in(hsm, &session, &ca_label);
    }

    // Drop the handles (their sessions close); `open` finds the issuing key again by label.
    let ca_id = ca_key.key_id().to_vec();
    drop(ca_key);
    drop(root_key);
    let ca_key = Pkcs11Key::open(&hsm.config(&ca_label)).unwrap();
    assert_eq!((ca_key.token_label(), ca_key.key_label()), (TOKEN, ca_label.as_str()));
    assert_eq!(ca_key.algorithm(), alg);
    assert_eq!(ca_key.public_key(), ca.tbs_certificate().subject_public_key_info());
    assert_eq!(ca_key.key_id(), ca_id);
    let second = personal(&ca_key, &ca);
    write(dir, "second.pem", cert_pem(&second));
    let (ok, text) = chain("second.pem", &[]);
    assert!(ok && text.contains("second.pem: OK"), "{alg}: {text}");

    // Logged out behind its back (C_Logout ends the login of every session of the process on
    // the token; SoftHSM2 then answers C_SignInit with CKR_OBJECT_HANDLE_INVALID, the private
    // key being invisible): the key logs in again and goes on signing.
    {
        let session = hsm.session();
        session.logout().unwrap();
        assert!(matches!(session.get_session_info().unwrap().session_state(), SessionState::RoPublic));
    }
    let third = personal(&ca_key, &ca);
    write(dir, "third.pem", cert_pem(&third));
    let (ok, text) = chain("third.pem", &[]);
    assert!(ok && text.contains("third.pem: OK"), "{alg}: {text}");

    // The module restarts under it (C_Finalize + C_Initialize, as when an HSM client library
    // is reset): its session handle is invalid now; it opens a new session and goes on signing.
    {
        let pkcs11 = Pkcs11::new(SOFTHSM2_MODULE).unwrap();
        pkcs11.clone().finalize().unwrap();
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    }
    let fourth = personal(&ca_key, &ca);
    write(dir, "fourth.pem", cert_pem(&fourth));
    let (ok, text) = chain("fourth.pem", &[]);
    assert!(ok && text.contains("fourth.pem: OK"), "{alg}: {text}");

    // PKCS#11 logins are per process and token: while `ca_key` is logged in, C_Login for
    // another key answers CKR_USER_ALREADY_LOGGED_IN without checking the PIN (documented in
    // the module; SoftHSM2 behaves as the standard says).
    let wrong = Pkcs11Config { pin: "000000".to_owned().into(), ..hsm.config(&root_label) };
    let root_again = Pkcs11Key::open(&wrong).expect("the login of this process is shared");
    assert_eq!(root_again.public_key(), root.tbs_certificate().subject_public_key_info());
    drop(root_again);

    if alg == Algorithm::Rsa3072 {
        // CKM_RSA_PKCS over a software DigestInfo gives the same bytes as CKM_SHA256_RSA_PKCS.
        let raw = Pkcs11Key::open(&hsm.config(&ca_label)).unwrap().hash_in_software();
        assert_eq!(raw.mechanism(), "CKM_RSA_PKCS");
        let message = b"tbs bytes".as_slice();
        assert_eq!(raw.sign(message).unwrap(), ca_key.sign(message).unwrap());
        let crl = build_crl(&ca, &raw, 2, now, now + Duration::from_secs(86_400), &revoked).unwrap();
        write(dir, "crl2.der", &crl);
        let text =
            openssl_ok(dir, &["crl", "-in", "crl2.der", "-inform", "DER", "-CAfile", "ca.pem", "-noout", "-verify"]);
        assert!(text.contains("verify OK"), "{alg}: {text}");
    }

    if std::env::var_os("YIQIAN_PKI_KEEP").is_some() {
        eprintln!("{alg} files kept in {}", work.keep().display());
    }
}
