//! The personalisation station with SM2 UKEYs through the SKF (GM/T 0016) driver: the real
//! `yiqian station` binary loads the software SKF library cargo built (as it would a key
//! maker's `.so`), authenticates to each device with the model's device key, and personalises
//! two devices in parallel for an SM2 CA: the SM2 key pair made on the device, the CSR signed
//! there, the certificate (on hold) and the chain imported, the key recorded as `skf`.
//!
//! ONE test: the library reads `YIQIAN_SOFTSKF_DIR` once per process (here: the station's).

mod common;

use common::station::*;
use common::*;
use yiqian_domain::OrderId;
use yiqian_pki::der::Decode;
use yiqian_pki::x509_cert::Certificate;
use yiqian_softskf::{DIR_ENV, FACTORY_DEVICE_AUTH_KEY, create_device, library_beside_this_test};
use yiqian_store::Backend;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::PersonalisedAt;
use yiqian_token::TokenReader;
use yiqian_token::skf::{DeviceAuthKey, SkfConfig, SkfTokenReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_personalises_sm2_keys_through_an_skf_library() {
    let library = library_beside_this_test().unwrap_or_else(|e| panic!("{e}"));
    let devices = tempfile::tempdir().unwrap();
    let serials = ["YQSK000000000001", "YQSK000000000002"];
    for s in serials {
        create_device(devices.path(), s, "SoftSKF", FACTORY_DEVICE_AUTH_KEY).unwrap();
    }
    let h = start_configured(Backend::Sqlite, false, |c| c.ca_algorithm = "sm2".into()).await;
    let maker = console_login(&h, "zhao.min", "fulfilment").await;
    let station = Station {
        credential: devices.path().join("station.json"),
        reader: vec!["--reader".into(), "skf".into(), "--library".into(), library.display().to_string()],
        env: vec![
            (DIR_ENV.to_owned(), devices.path().display().to_string()),
            (yiqian::ukey::DEVICE_AUTH_KEY_VARIABLE.to_owned(), hex::encode(FACTORY_DEVICE_AUTH_KEY)),
        ],
    };
    enrol(&h, &station, &maker.name, &maker.password, &maker.totp_secret, "制证室-SM2").await;

    let orders: Vec<String> = approved_orders(&h, 1, 2).await.into_iter().map(|(_, id, _)| id).collect();
    let member = member(&h, "zhao.min").await;
    let batch = h.server.app.start_issuance_batch(&member, &orders, PersonalisedAt::Station).await.unwrap();
    let (ok, out) = station.run(&batch, &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("发现 2 个UKEY,并行制证") && out.matches("完成 YQ").count() == 2, "{out}");

    // The devices, read through the same driver in this process.
    // SAFETY: set before the library is first loaded in this process; no other thread reads it.
    unsafe { std::env::set_var(DIR_ENV, devices.path()) };
    let reader =
        SkfTokenReader::new(SkfConfig::new(library, DeviceAuthKey::new(FACTORY_DEVICE_AUTH_KEY).unwrap())).unwrap();
    for id in &orders {
        let order = OrderId::parse(id).unwrap();
        let tokens = h.server.app.store().read().await.unwrap().tokens_of(&order).await.unwrap();
        assert_eq!(tokens.len(), 1);
        let token = &tokens[0];
        assert_eq!(token.reader, "skf");
        assert!(serials.contains(&token.serial.as_str()), "the device's serial is recorded: {}", token.serial);
        let stored = h.server.app.store().certificate(&token.certificate_serial).await.unwrap().unwrap();
        assert_eq!(stored.status, CertificateStatus::Hold);
        let key = reader.present().unwrap().into_iter().find(|k| k.serial == token.serial).unwrap();
        assert_eq!(key.label, *id, "the device is labelled with its order");
        let on_device = reader.open(&token.serial).unwrap().certificates().unwrap();
        assert_eq!(on_device.first(), Some(&stored.der), "the certificate imported on the device");
        let certificate = Certificate::from_der(&stored.der).unwrap();
        let algorithm = certificate.tbs_certificate().subject_public_key_info().algorithm.parameters.clone();
        assert_eq!(
            algorithm
                .and_then(|p| p.decode_as::<yiqian_pki::der::asn1::ObjectIdentifier>().ok())
                .map(|o| o.to_string()),
            Some("1.2.156.10197.1.301".to_owned()),
            "an SM2 key"
        );
    }
}
