//! The PKCS#11 UKEY driver against SoftHSM2, each SoftHSM2 token one key in a hub: factory
//! keys found by serial, personalised with P-256 and RSA-3072 (SO PIN changed from the factory
//! one, user PIN set, key pair on the key and not extractable, CSR signed there, certificate
//! and CA chain written and read back), `openssl` verifying a signature made by the key with
//! the certificate read back from it; PIN change and unlock, re-initialisation, refusals.
//!
//! ONE test function: SoftHSM2 reads `SOFTHSM2_CONF` once per process. Without SoftHSM2 the
//! test passes with a note, unless `YIQIAN_REQUIRE_SOFTHSM=1` (set by `.ci/run`).

mod common;

use common::{TestCa, openssl};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::Path;
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{Algorithm, SoftwareKey, build_csr, personal_subject, to_pem};
use yiqian_token::pkcs11::{Pkcs11ReaderConfig, Pkcs11TokenReader};
use yiqian_token::softhsm::{MODULE, SoftHsmHub};
use yiqian_token::{Pin, Token, TokenError, TokenReader};

const FACTORY_SO_PIN: &str = "12345678";
const FACTORY_USER_PIN: &str = "11111111";

fn pin(text: &str) -> Pin {
    Pin::parse(text).unwrap()
}

/// Personalises the blank key `token` for `algorithm` and checks it from outside.
fn personalise(reader: &Pkcs11TokenReader, token: &mut dyn Token, algorithm: Algorithm, label: &str, work: &Path) {
    let serial = token.info().unwrap().serial;
    let (so, user) = (Pin::random(16), Pin::random(8));
    token.initialise(None, &so, label).unwrap();
    token.init_user_pin(&so, &user).unwrap();
    let key_id = b"key-1".to_vec();
    let spki = token.generate_key_pair(&user, algorithm, &key_id).unwrap();
    assert!(matches!(token.generate_key_pair(&user, algorithm, &key_id), Err(TokenError::State(_))), "one key per ID");

    // The CSR is signed on the key.
    let signer = token.signer(&user, &key_id).unwrap();
    assert_eq!(signer.public_key().to_der().unwrap(), spki);
    let csr = build_csr(&personal_subject("张三").unwrap(), signer.as_ref()).unwrap();
    let message = b"signed on the UKEY";
    let signature = signer.sign(message).unwrap();
    drop(signer);

    let ca = TestCa::new(Algorithm::P256);
    let holder = ca.issue_personal(&csr);
    let other_ca = TestCa::new(Algorithm::P256);
    let foreign = other_ca.issue_personal(
        &build_csr(&personal_subject("李四").unwrap(), &SoftwareKey::generate(algorithm).unwrap()).unwrap(),
    );
    assert!(matches!(token.write_certificate(&user, &key_id, &foreign), Err(TokenError::State(_))));
    token.write_certificate(&user, &key_id, &holder).unwrap();
    token.write_ca_certificates(&user, &[ca.cert.to_der().unwrap()]).unwrap();
    token.write_ca_certificates(&user, &[ca.cert.to_der().unwrap()]).unwrap();

    // Read back through a fresh handle, as the counter would.
    let again = reader.open(&serial).unwrap();
    let info = again.info().unwrap();
    assert_eq!((info.label.as_str(), info.initialised, info.user_pin_locked), (label, true, false));
    assert!(info.model.contains("SoftHSM"), "{}", info.model);
    let certificates = again.certificates().unwrap();
    assert_eq!(certificates, vec![holder.clone(), ca.cert.to_der().unwrap()], "holder first, then the chain");

    // openssl: the certificate read back verifies under the CA, and the token's signature
    // verifies under the certificate's key.
    let read_back = Certificate::from_der(&certificates[0]).unwrap();
    std::fs::write(work.join("holder.pem"), to_pem("CERTIFICATE", &read_back.to_der().unwrap())).unwrap();
    std::fs::write(work.join("ca.pem"), to_pem("CERTIFICATE", &ca.cert.to_der().unwrap())).unwrap();
    std::fs::write(work.join("message"), message).unwrap();
    std::fs::write(work.join("signature"), &signature).unwrap();
    let (ok, text) = openssl(work, &["verify", "-x509_strict", "-CAfile", "ca.pem", "holder.pem"]);
    assert!(ok && text.contains("holder.pem: OK"), "{text}");
    let (ok, text) = openssl(work, &["x509", "-in", "holder.pem", "-pubkey", "-noout", "-out", "holder.pub"]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(work, &["dgst", "-sha256", "-verify", "holder.pub", "-signature", "signature", "message"]);
    assert!(ok && text.contains("Verified OK"), "{algorithm}: {text}");

    // The private key cannot be read out: C_GetAttributeValue refuses its value.
    let pkcs11 = Pkcs11::new(MODULE).unwrap();
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| pkcs11.get_token_info(*s).unwrap().serial_number().trim_end() == serial)
        .unwrap();
    let session = pkcs11.open_ro_session(slot).unwrap();
    session.login(UserType::User, Some(&AuthPin::from(user.expose()))).unwrap();
    let private =
        session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(key_id.clone())]).unwrap();
    assert_eq!(private.len(), 1);
    let secret = match algorithm {
        Algorithm::P256 => AttributeType::Value,
        _ => AttributeType::PrivateExponent,
    };
    match session.get_attributes(private[0], &[secret]) {
        Ok(values) => assert!(values.is_empty(), "the private value is readable: {values:?}"),
        Err(e) => assert!(e.to_string().contains("Sensitive"), "{e}"),
    }
    let flags = session.get_attributes(private[0], &[AttributeType::Sensitive, AttributeType::Extractable]).unwrap();
    assert!(flags.contains(&Attribute::Sensitive(true)) && flags.contains(&Attribute::Extractable(false)), "{flags:?}");
    drop(session);

    // PIN change, a wrong PIN, and the counter's unlock with the SO PIN.
    let mut token = reader.open(&serial).unwrap();
    let new = pin("24681357");
    assert!(matches!(token.change_user_pin(&pin("99999999"), &new), Err(TokenError::PinIncorrect { .. })));
    token.change_user_pin(&user, &new).unwrap();
    assert!(matches!(token.signer(&user, &key_id), Err(TokenError::PinIncorrect { .. })));
    token.signer(&new, &key_id).unwrap();
    assert!(matches!(token.init_user_pin(&pin("1111111111111111"), &user), Err(TokenError::PinIncorrect { .. })));
    token.init_user_pin(&so, &user).unwrap();
    token.signer(&user, &key_id).unwrap();

    // Renewal on the same key: the old key pair and its certificate go.
    token.destroy_key(&user, &key_id).unwrap();
    assert_eq!(token.certificates().unwrap(), vec![ca.cert.to_der().unwrap()]);
    assert!(matches!(token.signer(&user, &key_id), Err(TokenError::State(_))));
}

#[test]
fn pkcs11_ukeys_on_softhsm2() {
    if let Err(why) = SoftHsmHub::available() {
        assert!(std::env::var("YIQIAN_REQUIRE_SOFTHSM").as_deref() != Ok("1"), "YIQIAN_REQUIRE_SOFTHSM=1: {why}");
        eprintln!("SKIPPED: the PKCS#11 UKEY tests need SoftHSM2: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = SoftHsmHub::create(&dir.path().join("hub")).unwrap();
    for n in 1..=4 {
        hub.add_key(&format!("blank{n}"), FACTORY_SO_PIN, FACTORY_USER_PIN).unwrap();
    }
    // SAFETY: the only test in this binary; SoftHSM2 reads the variable at C_Initialize.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hub.conf()) };
    let config = Pkcs11ReaderConfig {
        module: MODULE.into(),
        factory_so_pin: Some(pin(FACTORY_SO_PIN)),
        accept_uninitialised: false,
    };
    let reader = Pkcs11TokenReader::open(config.clone()).unwrap();
    assert_eq!(reader.name(), "pkcs11");

    // Four keys in the hub (SoftHSM2's extra free slot is not one), all blank.
    let present = reader.present().unwrap();
    assert_eq!(present.len(), 4, "{present:?}");
    assert!(present.iter().all(|i| i.initialised && i.label.starts_with("blank") && i.serial.len() == 16));
    assert!(matches!(reader.open("0000000000000000"), Err(TokenError::NotPresent(_))));

    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut first = reader.blank_token().unwrap();
    let first_serial = first.info().unwrap().serial;
    assert_eq!(first_serial, present[0].serial, "blank keys are taken in serial order");
    assert!(matches!(first.generate_key_pair(&pin("11111111"), Algorithm::Sm2, b"k"), Err(TokenError::Unsupported(_))));
    personalise(&reader, first.as_mut(), Algorithm::P256, "YQ20261201P256TEST", &work);

    // The personalised key is no longer blank; the next one is.
    let mut second = reader.blank_token().unwrap();
    let second_serial = second.info().unwrap().serial;
    assert_ne!(second_serial, first_serial);
    personalise(&reader, second.as_mut(), Algorithm::Rsa3072, "YQ20261201RSA3072T", &work);
    let blank: Vec<_> =
        reader.present().unwrap().into_iter().filter(|i| !yiqian_token::is_personalised_label(&i.label)).collect();
    assert_eq!(blank.len(), 2);

    // Re-initialising a personalised key needs its current SO PIN; the factory one is refused.
    let mut third = reader.blank_token().unwrap();
    let so = Pin::random(16);
    third.initialise(None, &so, "YQ20261201HALFDONE").unwrap();
    assert_eq!(third.info().unwrap().label, "YQ20261201HALFDONE");
    let again = Pin::random(16);
    assert!(matches!(third.initialise(None, &again, "YQ20261201AGAIN000"), Err(TokenError::PinIncorrect { .. })));
    assert!(matches!(
        third.init_user_pin(&pin(FACTORY_SO_PIN), &pin("11111111")),
        Err(TokenError::PinIncorrect { .. })
    ));
    third.initialise(Some(&so), &again, "YQ20261201AGAIN000").unwrap();
    third.init_user_pin(&again, &pin("11223344")).unwrap();
    assert!(third.certificates().unwrap().is_empty());

    // Without a factory SO PIN configured, a factory key cannot be initialised, and says why.
    let bare = Pkcs11TokenReader::open(Pkcs11ReaderConfig { factory_so_pin: None, ..config }).unwrap();
    let mut fourth = bare.blank_token().unwrap();
    match fourth.initialise(None, &Pin::random(16), "YQ20261201NOFACTRY") {
        Err(TokenError::State(message)) => assert!(message.contains("factory SO PIN"), "{message}"),
        other => panic!("{other:?}"),
    }
    fourth.initialise(Some(&pin(FACTORY_SO_PIN)), &Pin::random(16), "YQ20261201WITHPIN0").unwrap();
    assert!(matches!(reader.blank_token(), Err(TokenError::NotPresent(_))), "every key is personalised now");
}
