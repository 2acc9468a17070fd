//! Unit tests of the SKF driver's host-side pieces: Z_A and e against the GM/T 0003.5
//! example, signatures made from our e checked by the `sm2` crate, the blob and DER
//! conversions, name lists, and the wording of errors. The driver against a library is
//! tested in `crates/softskf/tests/driver.rs`.

use super::*;
use sm2::dsa::signature::hazmat::PrehashSigner;
use yiqian_pki::verify;

/// GM/T 0003.5-2012 (GB/T 32918.5-2017) Annex A: the signature example on the recommended
/// curve, ID_A = "1234567812345678", M = "message digest".
mod example {
    use super::hex32;
    pub const D: [u8; 32] = hex32("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8");
    pub const X: [u8; 32] = hex32("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020");
    pub const Y: [u8; 32] = hex32("CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13");
    pub const Z: [u8; 32] = hex32("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3");
    pub const E: [u8; 32] = hex32("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640");
    pub const R: [u8; 32] = hex32("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3");
    pub const S: [u8; 32] = hex32("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA");
}

fn spki_of(x: &[u8; 32], y: &[u8; 32]) -> SubjectPublicKeyInfoOwned {
    sm2_spki_from_blob(&sm2_public_key_blob(x, y)).unwrap()
}

#[test]
fn z_and_e_match_the_gmt_0003_5_example() {
    let z = sm2_z(b"1234567812345678", &example::X, &example::Y).unwrap();
    assert_eq!(z, example::Z);
    assert_eq!(sm2_digest(&z, b"message digest"), example::E);
    // The example's signature verifies over the message, through the sm2 crate's own Z_A.
    let der = sm2_signature_der(&sm2_signature_blob(&example::R, &example::S)).unwrap();
    let spki = spki_of(&example::X, &example::Y);
    verify(&spki, Algorithm::Sm2, b"message digest", &der, DEFAULT_SM2_DISTID).unwrap();
    assert!(verify(&spki, Algorithm::Sm2, b"message digest!", &der, DEFAULT_SM2_DISTID).is_err());
    // Another ID gives another Z_A; an ID too long for ENTL has none.
    assert_ne!(sm2_z(b"ALICE123@YAHOO.COM", &example::X, &example::Y), Some(example::Z));
    assert_eq!(sm2_z(&[b'x'; 8192], &example::X, &example::Y), None);
    assert!(sm2_z(&[b'x'; 8191], &example::X, &example::Y).is_some());
}

#[test]
fn a_device_signature_of_our_e_verifies_as_an_sm2_signature_of_the_message() {
    // What SKF_ECCSignData does: sign the 32-byte e as given (here with the sm2 crate's
    // prehash signer, as the software SKF library does).
    let key = sm2::dsa::SigningKey::from_slice(DEFAULT_SM2_DISTID, &example::D).unwrap();
    let point = key.verifying_key().to_sec1_bytes();
    let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
    x.copy_from_slice(&point[1..33]);
    y.copy_from_slice(&point[33..]);
    assert_eq!((x, y), (example::X, example::Y));
    let spki = spki_of(&x, &y);
    let z = sm2_z(DEFAULT_SM2_DISTID.as_bytes(), &x, &y).unwrap();
    for message in [&b""[..], b"hello", &[0xA5; 1000]] {
        let e = sm2_digest(&z, message);
        let signature: sm2::dsa::Signature = key.sign_prehash(&e).unwrap();
        let (r, s) = (signature.r_bytes(), signature.s_bytes());
        let (mut r32, mut s32) = ([0u8; 32], [0u8; 32]);
        r32.copy_from_slice(&r);
        s32.copy_from_slice(&s);
        let der = sm2_signature_der(&sm2_signature_blob(&r32, &s32)).unwrap();
        assert_eq!(der, signature.to_der().as_bytes());
        verify(&spki, Algorithm::Sm2, message, &der, DEFAULT_SM2_DISTID).unwrap();
        // The ID matters: openssl's empty default would not verify it.
        assert!(verify(&spki, Algorithm::Sm2, message, &der, "").is_err());
    }
}

#[test]
fn public_key_blobs_become_sm2_subject_public_key_infos() {
    let blob = sm2_public_key_blob(&example::X, &example::Y);
    let (bits, x_field) = (blob.BitLen, blob.XCoordinate);
    assert_eq!(bits, 256);
    assert_eq!(&x_field[..32], &[0u8; 32]);
    assert_eq!(&x_field[32..], &example::X);
    assert_eq!(sm2_point_from_blob(&blob).unwrap(), (example::X, example::Y));

    let spki = sm2_spki_from_blob(&blob).unwrap();
    assert_eq!(spki.algorithm.oid, oids::EC_PUBLIC_KEY);
    assert_eq!(key_algorithm(&spki).unwrap(), Algorithm::Sm2);
    let point = spki.subject_public_key.raw_bytes();
    assert_eq!(point.len(), 65);
    assert_eq!(point[0], 0x04);
    assert_eq!(&point[1..33], &example::X);
    assert_eq!(&point[33..], &example::Y);
    // The same DER as the PKI engine's own SM2 keys.
    let der = spki.to_der().unwrap();
    assert_eq!(der.len(), 91);
    assert_eq!(&der[..27], &hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d03420004").unwrap()[..]);

    let mut wrong = blob;
    wrong.BitLen = 255;
    assert!(sm2_spki_from_blob(&wrong).unwrap_err().contains("255-bit"));
    let mut left_aligned = blob;
    left_aligned.XCoordinate = [0; 64];
    left_aligned.XCoordinate[..32].copy_from_slice(&example::X);
    assert!(sm2_point_from_blob(&left_aligned).is_err());
    let mut off_curve = example::Y;
    off_curve[31] ^= 1;
    assert!(sm2_spki_from_blob(&sm2_public_key_blob(&example::X, &off_curve)).is_err());
}

#[test]
fn signature_blobs_become_minimal_der() {
    let mut small = [0u8; 32];
    small[31] = 0x7F;
    let mut high = [0u8; 32];
    high[0] = 0x80;
    high[31] = 1;
    let der = sm2_signature_der(&sm2_signature_blob(&small, &high)).unwrap();
    // r = 0x7F (one byte, leading zeros gone); s has its top bit set, so a 0x00 goes first.
    let mut expected = vec![0x30, 3 + 35, 0x02, 0x01, 0x7F, 0x02, 0x21, 0x00];
    expected.extend_from_slice(&high);
    assert_eq!(der, expected);
    let mut blob = sm2_signature_blob(&small, &high);
    blob.r[0] = 1;
    assert!(sm2_signature_der(&blob).is_err());
}

#[test]
fn name_lists_end_at_the_double_nul() {
    assert_eq!(parse_multi_string(b"YIQIAN\0DEFAULT\0\0"), ["YIQIAN", "DEFAULT"]);
    assert_eq!(parse_multi_string(b"one\0\0garbage\0\0"), ["one"]);
    assert!(parse_multi_string(b"\0\0").is_empty());
    assert!(parse_multi_string(b"").is_empty());
    assert_eq!(parse_multi_string(b"unterminated"), ["unterminated"]);
    assert_eq!(text_field(b"ePass3000GM \0\0junk"), "ePass3000GM");
    assert_eq!(text_field(&[b'A'; 32]), "A".repeat(32));
}

#[test]
fn errors_name_the_function_and_the_code() {
    let e = SarError { function: "SKF_GenECCKeyPair", code: sar::SAR_NOTSUPPORTYETERR };
    match e.token_error("K1") {
        TokenError::Refused(m) => assert_eq!(m, "SKF_GenECCKeyPair returned SAR_NOTSUPPORTYETERR (0x0A000003)"),
        other => panic!("{other:?}"),
    }
    let vendor = SarError { function: "SKF_DevAuth", code: 0x0A00_0033 };
    assert!(matches!(vendor.token_error("K1"), TokenError::Io(m) if m == "SKF_DevAuth returned 0x0A000033"));
    let removed = SarError { function: "SKF_GetDevInfo", code: sar::SAR_DEVICE_REMOVED };
    assert!(matches!(removed.token_error("K1"), TokenError::NotPresent(m) if m.starts_with("K1 ")));
    let wrong = SarError { function: "SKF_VerifyPIN", code: sar::SAR_PIN_INCORRECT };
    assert!(matches!(PinRole::User.error(wrong, 3, "K1"), TokenError::PinIncorrect { tries_left: Some(3) }));
    assert!(matches!(PinRole::User.error(wrong, 0, "K1"), TokenError::PinLocked));
    assert!(matches!(PinRole::Admin.error(wrong, 0, "K1"), TokenError::State(_)));
    let locked = SarError { function: "SKF_VerifyPIN", code: sar::SAR_PIN_LOCKED };
    assert!(matches!(PinRole::User.error(locked, 0, "K1"), TokenError::PinLocked));
}

#[test]
fn secrets_are_not_printed() {
    let key = DeviceAuthKey::from_hex("31323334353637383132333435363738").unwrap();
    assert_eq!(key.bytes(), b"1234567812345678");
    let mut config = SkfConfig::new("/nonexistent/libskf.so".into(), key);
    config.factory_admin_pin = Some(Pin::parse("87654321").unwrap());
    let printed = format!("{config:?}");
    assert!(!printed.contains("1234567812345678") && !printed.contains("3132"), "{printed}");
    assert!(!printed.contains("87654321"), "{printed}");
    assert!(printed.contains("DeviceAuthKey(…)"));
    assert!(DeviceAuthKey::new(b"short").is_err());
    assert!(DeviceAuthKey::from_hex("zz").is_err());
}

#[test]
fn a_missing_library_or_a_bad_configuration_is_reported() {
    let key = DeviceAuthKey::new(b"1234567812345678").unwrap();
    let config = SkfConfig::new("/nonexistent/libskf.so".into(), key.clone());
    assert!(matches!(SkfTokenReader::new(config), Err(TokenError::Io(m)) if m.contains("/nonexistent/libskf.so")));
    let mut config = SkfConfig::new("/nonexistent/libskf.so".into(), key);
    config.user_pin_retries = 0;
    assert!(matches!(SkfTokenReader::new(config), Err(TokenError::State(_))));
}

#[test]
fn key_ids_become_container_names() {
    assert_eq!(container_name(&[0x01, 0xAB]).unwrap(), "01ab");
    assert!(container_name(&[]).is_err());
    assert!(container_name(&[0; 33]).is_err());
    assert_eq!(container_name(&[0xFF; 32]).unwrap().len(), 64);
}
