//! The whole journey with a PKCS#11 UKEY: the service configured with `[ukey] reader =
//! "pkcs11"` over a hub of SoftHSM2 keys (a P-256 CA), an applicant applies and pays, staff
//! approve and personalise (the key found blank in the hub, labelled with the order number),
//! ship, and the applicant activates; the PIN arrives by SMS once, and that PIN — and only
//! it — logs in to the key in the hub, whose key signs under the order's certificate.
//!
//! ONE test: SoftHSM2 reads `SOFTHSM2_CONF` once per process. Without SoftHSM2 it passes with
//! a note, unless `YIQIAN_REQUIRE_SOFTHSM=1` (set by `.ci/run`).

mod common;

use common::*;
use serde_json::json;
use yiqian_pki::der::Decode;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{Algorithm, verify};
use yiqian_store::Backend;
use yiqian_token::pkcs11::{Pkcs11ReaderConfig, Pkcs11TokenReader};
use yiqian_token::softhsm::{MODULE, SoftHsmHub};
use yiqian_token::{Pin, TokenError, TokenReader};

const FACTORY_SO_PIN: &str = "12345678";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_to_activated_with_a_pkcs11_ukey() {
    if let Err(why) = SoftHsmHub::available() {
        assert!(std::env::var("YIQIAN_REQUIRE_SOFTHSM").as_deref() != Ok("1"), "YIQIAN_REQUIRE_SOFTHSM=1: {why}");
        eprintln!("SKIPPED: the PKCS#11 journey needs SoftHSM2: {why}");
        return;
    }
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = SoftHsmHub::create(hub_dir.path()).unwrap();
    hub.add_key("ePass2003", FACTORY_SO_PIN, "11111111").unwrap();
    hub.add_key("ePass2003", FACTORY_SO_PIN, "11111111").unwrap();
    // SAFETY: the only test in this binary; SoftHSM2 reads the variable at C_Initialize.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hub.conf()) };

    let h = start_configured(Backend::Sqlite, false, |c| {
        c.ca_algorithm = "p256".into();
        c.sandbox_face_check = "pass".into();
        c.ukey.reader = "pkcs11".into();
        c.ukey.module = MODULE.into();
        c.secret_env.insert(yiqian::ukey::FACTORY_SO_PIN_VARIABLE.into(), FACTORY_SO_PIN.into());
    })
    .await;
    let phone = "13800138123";
    let token = h.login(phone).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    assert_eq!(h.complete_materials(&token, &id, phone).await["state"], "submitted");
    let code = ship_order_as_staff(&h, &id).await;

    // The key in the hub carries the order number and the order's certificate.
    let hub_reader = Pkcs11TokenReader::open(Pkcs11ReaderConfig {
        module: MODULE.into(),
        factory_so_pin: None,
        accept_uninitialised: false,
    })
    .unwrap();
    let present = hub_reader.present().unwrap();
    let key = present.iter().find(|k| k.label == id).unwrap_or_else(|| panic!("no key labelled {id}: {present:?}"));
    assert_eq!(present.iter().filter(|k| k.label == "ePass2003").count(), 1, "the other key is still blank");
    let order_id = yiqian_domain::OrderId::parse(&id).unwrap();
    let fulfilment = h.server.app.store().read().await.unwrap().fulfilment(&order_id).await.unwrap().unwrap();
    assert_eq!(fulfilment.token_serial.as_deref(), Some(key.serial.as_str()), "the hardware serial is recorded");
    let record = h.server.app.store().read().await.unwrap().token(&key.serial).await.unwrap().unwrap();
    assert_eq!(record.reader, "pkcs11");
    let stored = h.server.app.store().certificate(&record.certificate_serial).await.unwrap().unwrap();
    let on_key = hub_reader.open(&key.serial).unwrap().certificates().unwrap();
    assert_eq!(on_key.first(), Some(&stored.der), "the order's certificate is on the key");
    assert_eq!(on_key.len(), 3, "then the issuing CA and the root");

    // Activation: consent, digits, video; the sandbox passes it and the PIN is sent once.
    let base = format!("/api/v1/activation/{code}");
    h.post(Some(&token), &format!("{base}/consent"), json!({"agreed": true})).await.ok();
    let challenge = h.post(Some(&token), &format!("{base}/challenge"), json!({})).await.ok();
    let video = reqwest::multipart::Form::new()
        .text("challenge_id", challenge["challenge_id"].as_str().unwrap().to_owned())
        .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("activation.mp4"));
    h.post_form(&token, &format!("{base}/video"), video).await.ok();
    h.wait_for_state(&token, &id, "activated").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let sms = loop {
        if let Some(sms) = h.sms_containing(phone, "PIN码为").await {
            break sms;
        }
        assert!(std::time::Instant::now() < deadline, "no PIN SMS");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let digits: String = sms.split("PIN码为").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 8, "{sms}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(h.inbox(phone).await.iter().filter(|(_, text)| text.contains("PIN码为")).count(), 1, "sent once");

    // The PIN from the SMS opens the key; the key signs under its certificate.
    let pin = Pin::parse(&digits).unwrap();
    let serial = key.serial.clone();
    let der = stored.der.clone();
    let key_id = hex::decode(&record.key_id).unwrap();
    tokio::task::spawn_blocking(move || {
        let ukey = hub_reader.open(&serial).unwrap();
        let wrong = Pin::parse("00000000").unwrap();
        assert!(matches!(ukey.signer(&wrong, &key_id), Err(TokenError::PinIncorrect { .. })));
        let certificate = Certificate::from_der(&der).unwrap();
        let spki = certificate.tbs_certificate().subject_public_key_info();
        let signer = ukey.signer(&pin, &key_id).unwrap();
        assert_eq!(signer.public_key(), spki);
        let signature = signer.sign(b"activated").unwrap();
        verify(spki, Algorithm::P256, b"activated", &signature, "").unwrap();
    })
    .await
    .unwrap();
}
