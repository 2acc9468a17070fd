//! The software token through the `Token`/`TokenReader` seam, as a personalisation station
//! uses it: blank key → SO PIN → user PIN → key pair → CSR signed on the token → certificate
//! issued by a test CA → written back; and the PIN counters, unblocking and refusals.

mod common;

use common::{HOLDER, TestCa};
use tempfile::TempDir;
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::spki::SubjectPublicKeyInfoOwned;
use yiqian_pki::{Algorithm, DEFAULT_SM2_DISTID, build_csr, key_algorithm, personal_subject, verify, verify_csr};
use yiqian_token::software::{SoftwareTokenReader, USER_PIN_TRIES};
use yiqian_token::{Pin, Token, TokenError, TokenReader};

/// A reader over a fresh temporary directory (kept alive by the `TempDir`).
fn reader() -> (TempDir, SoftwareTokenReader) {
    let dir = tempfile::tempdir().unwrap();
    let reader = SoftwareTokenReader::new(dir.path().join("tokens"));
    (dir, reader)
}

/// A token with an SO PIN, a user PIN and a key pair `key-1`; returns it with its PINs and
/// the public key.
fn personalised(reader: &SoftwareTokenReader, algorithm: Algorithm) -> (Box<dyn Token>, Pin, Pin, Vec<u8>) {
    let mut token = reader.blank_token().unwrap();
    let (so, user) = (Pin::random(16), Pin::random(8));
    token.initialise(None, &so, "order-1").unwrap();
    token.init_user_pin(&so, &user).unwrap();
    let spki = token.generate_key_pair(&user, algorithm, b"key-1").unwrap();
    (token, so, user, spki)
}

/// Signs a message with the token's key and checks it against `spki`.
fn signs_with(token: &dyn Token, user: &Pin, spki: &[u8]) {
    let signer = token.signer(user, b"key-1").unwrap();
    let signature = signer.sign(b"hello").unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_der(spki).unwrap();
    verify(&spki, signer.algorithm(), b"hello", &signature, signer.sm2_distid()).unwrap();
}

fn personalise(algorithm: Algorithm) {
    let (_dir, reader) = reader();
    assert_eq!(reader.name(), "software");
    let mut token = reader.blank_token().unwrap();
    let info = token.info().unwrap();
    assert!(info.serial.starts_with("SW") && info.serial.len() == 16, "{}", info.serial);
    assert_eq!((info.label.as_str(), info.model.as_str(), info.initialised), ("", "software", false));
    assert!(!info.user_pin_locked);

    let (so, user) = (Pin::random(16), Pin::random(8));
    token.initialise(None, &so, "order-2025-000123").unwrap();
    token.init_user_pin(&so, &user).unwrap();
    let info = token.info().unwrap();
    assert_eq!((info.label.as_str(), info.initialised), ("order-2025-000123", true));

    let spki = token.generate_key_pair(&user, algorithm, b"key-1").unwrap();
    assert_eq!(key_algorithm(&SubjectPublicKeyInfoOwned::from_der(&spki).unwrap()).unwrap(), algorithm);

    // The CSR is signed on the token, and the CA accepts it.
    let signer = token.signer(&user, b"key-1").unwrap();
    assert_eq!(signer.algorithm(), algorithm);
    assert_eq!(signer.public_key().to_der().unwrap(), spki);
    let csr = build_csr(&personal_subject(HOLDER).unwrap(), signer.as_ref()).unwrap();
    drop(signer);
    let verified = verify_csr(&csr, DEFAULT_SM2_DISTID).unwrap();
    assert_eq!(verified.public_key.to_der().unwrap(), spki);
    assert_eq!(verified.algorithm, algorithm);

    let ca = TestCa::new(algorithm);
    let cert = ca.issue_personal(&csr);
    token.write_certificate(&user, b"key-1", &cert).unwrap();
    let serial = token.info().unwrap().serial;
    drop(token);

    // Back from disk.
    let mut token = reader.open(&serial).unwrap();
    assert_eq!(token.certificates().unwrap(), vec![cert.clone()]);
    assert_eq!(token.info().unwrap().label, "order-2025-000123");
    signs_with(token.as_ref(), &user, &spki);

    // A certificate for another key is refused, as is one for a key that is not there.
    let other = ca.cert.to_der().unwrap();
    match token.write_certificate(&user, b"key-1", &other) {
        Err(TokenError::State(msg)) => assert_eq!(msg, "certificate does not match the key"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(token.write_certificate(&user, b"key-2", &cert), Err(TokenError::State(_))));
    assert!(matches!(token.write_certificate(&user, b"key-1", b"not DER"), Err(TokenError::State(_))));
    assert_eq!(token.certificates().unwrap(), vec![cert]);
}

#[test]
fn personalisation_sm2() {
    personalise(Algorithm::Sm2);
}

#[test]
fn personalisation_p256() {
    personalise(Algorithm::P256);
}

#[test]
fn personalisation_rsa3072() {
    personalise(Algorithm::Rsa3072);
}

#[test]
fn wrong_user_pins_count_down_and_lock_at_six() {
    let (_dir, reader) = reader();
    let (token, _so, user, _) = personalised(&reader, Algorithm::P256);
    let wrong = Pin::parse("00000000").unwrap();
    assert_ne!(wrong, user);

    // A correct try resets the counter.
    for left in [5, 4] {
        assert!(
            matches!(token.signer(&wrong, b"key-1"), Err(TokenError::PinIncorrect { tries_left: Some(n) }) if n == left)
        );
    }
    token.signer(&user, b"key-1").unwrap();

    for left in (1..USER_PIN_TRIES).rev() {
        let result = token.signer(&wrong, b"key-1");
        assert!(matches!(result, Err(TokenError::PinIncorrect { tries_left: Some(n) }) if n == left), "{left}");
        assert!(!token.info().unwrap().user_pin_locked);
    }
    // The sixth wrong try locks the PIN, and then even the right PIN is refused.
    assert!(matches!(token.signer(&wrong, b"key-1"), Err(TokenError::PinLocked)));
    assert!(token.info().unwrap().user_pin_locked);
    assert!(matches!(token.signer(&user, b"key-1"), Err(TokenError::PinLocked)));

    // The lock is on disk.
    let again = reader.open(&token.info().unwrap().serial).unwrap();
    assert!(again.info().unwrap().user_pin_locked);
    assert!(matches!(again.signer(&user, b"key-1"), Err(TokenError::PinLocked)));
}

#[test]
fn every_pin_operation_counts_towards_the_lock() {
    let (_dir, reader) = reader();
    let (mut token, _so, _user, _) = personalised(&reader, Algorithm::P256);
    let wrong = Pin::parse("999999").unwrap();
    let mut left = USER_PIN_TRIES;
    let mut expect = |result: Result<(), TokenError>| {
        left -= 1;
        assert!(matches!(result, Err(TokenError::PinIncorrect { tries_left: Some(n) }) if n == left), "{result:?}");
    };
    expect(token.generate_key_pair(&wrong, Algorithm::P256, b"key-2").map(drop));
    expect(token.signer(&wrong, b"key-1").map(drop));
    expect(token.destroy_key(&wrong, b"key-1"));
    let cert = TestCa::new(Algorithm::P256).cert.to_der().unwrap();
    expect(token.write_certificate(&wrong, b"key-1", &cert));
    // Another handle on the same token sees the same counter.
    let other = reader.open(&token.info().unwrap().serial).unwrap();
    expect(other.signer(&wrong, b"key-1").map(drop));
    assert!(matches!(token.signer(&wrong, b"key-1"), Err(TokenError::PinLocked)));
}

#[test]
fn the_so_pin_unblocks_the_user_pin_and_the_key_stays_usable() {
    let (_dir, reader) = reader();
    let (mut token, so, old, spki) = personalised(&reader, Algorithm::Sm2);
    let wrong = Pin::parse("00000000").unwrap();
    while !matches!(token.signer(&wrong, b"key-1"), Err(TokenError::PinLocked)) {}

    // A wrong SO PIN is refused and changes nothing.
    let new = Pin::random(8);
    let wrong_so = Pin::parse("1111111111111111").unwrap();
    assert!(matches!(token.init_user_pin(&wrong_so, &new), Err(TokenError::PinIncorrect { tries_left: Some(9) })));
    assert!(token.info().unwrap().user_pin_locked);

    token.init_user_pin(&so, &new).unwrap();
    assert!(!token.info().unwrap().user_pin_locked);
    signs_with(token.as_ref(), &new, &spki);
    assert!(matches!(token.signer(&old, b"key-1"), Err(TokenError::PinIncorrect { tries_left: Some(5) })));
    // A correct SO login reset the SO counter too.
    assert!(matches!(token.init_user_pin(&wrong_so, &new), Err(TokenError::PinIncorrect { tries_left: Some(9) })));
}

#[test]
fn the_so_pin_locks_after_ten_wrong_tries() {
    let (_dir, reader) = reader();
    let (mut token, so, user, spki) = personalised(&reader, Algorithm::P256);
    let wrong = Pin::parse("2222222222222222").unwrap();
    for left in (1..10).rev() {
        let result = token.init_user_pin(&wrong, &user);
        assert!(matches!(result, Err(TokenError::PinIncorrect { tries_left: Some(n) }) if n == left), "{result:?}");
    }
    let locked = |r: Result<(), TokenError>| matches!(r, Err(TokenError::State(m)) if m == "SO PIN locked");
    assert!(locked(token.init_user_pin(&wrong, &user)));
    assert!(locked(token.init_user_pin(&so, &user)));
    assert!(locked(token.initialise(Some(&so), &so, "again")));
    // The user PIN has its own counter.
    signs_with(token.as_ref(), &user, &spki);
}

#[test]
fn reinitialising_needs_the_so_pin_and_erases_everything() {
    let (_dir, reader) = reader();
    let (mut token, so, user, _) = personalised(&reader, Algorithm::P256);
    let ca = TestCa::new(Algorithm::P256);
    let csr = build_csr(&personal_subject(HOLDER).unwrap(), token.signer(&user, b"key-1").unwrap().as_ref()).unwrap();
    token.write_certificate(&user, b"key-1", &ca.issue_personal(&csr)).unwrap();

    let wrong = Pin::parse("3333333333333333").unwrap();
    let new_so = Pin::random(16);
    assert!(matches!(
        token.initialise(Some(&wrong), &new_so, "order-2"),
        Err(TokenError::PinIncorrect { tries_left: Some(9) })
    ));
    assert!(matches!(token.initialise(None, &new_so, "order-2"), Err(TokenError::State(_))), "needs the SO PIN");
    assert_eq!(token.certificates().unwrap().len(), 1);

    token.initialise(Some(&so), &new_so, "order-2").unwrap();
    let info = token.info().unwrap();
    assert_eq!((info.label.as_str(), info.initialised, info.user_pin_locked), ("order-2", true, false));
    assert!(token.certificates().unwrap().is_empty());
    assert!(matches!(token.signer(&user, b"key-1"), Err(TokenError::State(_))), "the user PIN is unset");
    // The new SO PIN is the SO PIN from now on.
    assert!(matches!(token.init_user_pin(&so, &user), Err(TokenError::PinIncorrect { .. })));
    token.initialise(Some(&new_so), &new_so, "order-3").unwrap();
    token.init_user_pin(&new_so, &user).unwrap();
    assert!(matches!(token.signer(&user, b"key-1"), Err(TokenError::State(_))), "the key is gone");
}

#[test]
fn the_holder_changes_the_user_pin_and_the_ca_chain_is_kept() {
    let (_dir, reader) = reader();
    let (mut token, _so, user, spki) = personalised(&reader, Algorithm::P256);
    let ca = TestCa::new(Algorithm::P256);
    let csr = build_csr(&personal_subject(HOLDER).unwrap(), token.signer(&user, b"key-1").unwrap().as_ref()).unwrap();
    let holder = ca.issue_personal(&csr);
    token.write_certificate(&user, b"key-1", &holder).unwrap();
    let chain = vec![ca.cert.to_der().unwrap()];
    assert!(matches!(token.write_ca_certificates(&user, &[b"not DER".to_vec()]), Err(TokenError::State(_))));
    token.write_ca_certificates(&user, &chain).unwrap();
    token.write_ca_certificates(&user, &chain).unwrap(); // replaces, does not add
    assert_eq!(token.certificates().unwrap(), vec![holder, chain[0].clone()]);

    let new = Pin::parse("24681357").unwrap();
    let wrong = Pin::parse("99999999").unwrap();
    assert!(matches!(token.change_user_pin(&wrong, &new), Err(TokenError::PinIncorrect { tries_left: Some(5) })));
    assert_eq!(token.info().unwrap().user_pin_tries_left, Some(5));
    token.change_user_pin(&user, &new).unwrap();
    assert_eq!(token.info().unwrap().user_pin_tries_left, Some(USER_PIN_TRIES));
    assert!(matches!(token.signer(&user, b"key-1"), Err(TokenError::PinIncorrect { .. })));
    signs_with(token.as_ref(), &new, &spki);
}

#[test]
fn present_lists_every_token_of_the_reader() {
    let (_dir, reader) = reader();
    assert!(reader.present().unwrap().is_empty(), "no directory yet");
    let (token, _, _, _) = personalised(&reader, Algorithm::P256);
    let blank = reader.blank_token().unwrap();
    let present = reader.present().unwrap();
    let mut serials = vec![token.info().unwrap().serial, blank.info().unwrap().serial];
    serials.sort();
    assert_eq!(present.iter().map(|i| i.serial.clone()).collect::<Vec<_>>(), serials);
    assert_eq!(present.iter().filter(|i| i.initialised).count(), 1);
}

#[test]
fn operations_need_an_initialised_token_and_a_user_pin() {
    let (_dir, reader) = reader();
    let mut token = reader.blank_token().unwrap();
    let (so, user) = (Pin::random(16), Pin::random(8));
    let state = |r: Result<(), TokenError>| matches!(r, Err(TokenError::State(_)));
    assert!(token.certificates().unwrap().is_empty());
    assert!(state(token.init_user_pin(&so, &user)));
    assert!(state(token.generate_key_pair(&user, Algorithm::P256, b"k").map(drop)));
    assert!(state(token.signer(&user, b"k").map(drop)));
    assert!(state(token.destroy_key(&user, b"k")));

    token.initialise(None, &so, "order-1").unwrap();
    assert!(state(token.generate_key_pair(&user, Algorithm::P256, b"k").map(drop)));
    assert!(state(token.signer(&user, b"k").map(drop)));
    assert!(!token.info().unwrap().user_pin_locked);

    // Labels are at most 32 bytes, as in CK_TOKEN_INFO.
    assert!(state(token.initialise(Some(&so), &so, &"x".repeat(33))));
    assert!(state(token.initialise(Some(&so), &so, "a\nb")));
    token.initialise(Some(&so), &so, &"张".repeat(10)).unwrap();
}

#[test]
fn key_ids_are_unique_and_destroy_removes_key_and_certificate() {
    let (_dir, reader) = reader();
    let (mut token, _so, user, spki) = personalised(&reader, Algorithm::P256);
    assert!(matches!(token.generate_key_pair(&user, Algorithm::Sm2, b"key-1"), Err(TokenError::State(_))));
    assert!(matches!(token.generate_key_pair(&user, Algorithm::Sm2, b""), Err(TokenError::State(_))));
    assert!(matches!(token.generate_key_pair(&user, Algorithm::Sm2, &[7; 65]), Err(TokenError::State(_))));
    let second = token.generate_key_pair(&user, Algorithm::Sm2, b"key-2").unwrap();
    assert_ne!(second, spki);

    let ca = TestCa::new(Algorithm::P256);
    let mut certs = Vec::new();
    for id in [&b"key-1"[..], b"key-2"] {
        let csr = build_csr(&personal_subject(HOLDER).unwrap(), token.signer(&user, id).unwrap().as_ref()).unwrap();
        let cert = ca.issue_personal(&csr);
        token.write_certificate(&user, id, &cert).unwrap();
        certs.push(cert);
    }
    assert_eq!(token.certificates().unwrap(), certs);
    // The certificate of one key is refused for the other.
    assert!(matches!(token.write_certificate(&user, b"key-2", &certs[0]), Err(TokenError::State(_))));

    token.destroy_key(&user, b"key-1").unwrap();
    assert_eq!(token.certificates().unwrap(), vec![certs[1].clone()]);
    assert!(matches!(token.signer(&user, b"key-1"), Err(TokenError::State(_))));
    assert!(matches!(token.destroy_key(&user, b"key-1"), Err(TokenError::State(_))));
    // The ID is free again (renewal).
    token.generate_key_pair(&user, Algorithm::P256, b"key-1").unwrap();
    token.signer(&user, b"key-2").unwrap();
}

#[test]
fn serials_that_are_not_ours_are_refused() {
    let (dir, reader) = reader();
    let token = reader.blank_token().unwrap();
    let serial = token.info().unwrap().serial;
    std::fs::write(dir.path().join("outside.token"), b"{}").unwrap();
    for bad in [
        "",
        "../outside",
        "SW/../../outside",
        "SW..%2F........",
        &serial.to_lowercase(),
        &format!("{serial}0"),
        &format!("../tokens/{serial}"),
        "SW00000000000000\0",
    ] {
        assert!(matches!(reader.open(bad), Err(TokenError::State(_))), "{bad:?}");
    }
    assert!(matches!(reader.open("SW00000000000000"), Err(TokenError::NotPresent(_))));
    assert_eq!(reader.open(&serial).unwrap().info().unwrap().serial, serial);

    // Blank tokens get distinct serials.
    let other = reader.blank_token().unwrap().info().unwrap().serial;
    assert_ne!(other, serial);
}

#[test]
fn a_removed_token_is_not_present() {
    let (_dir, reader) = reader();
    let token = reader.create_blank().unwrap();
    let boxed = reader.open(token.serial()).unwrap();
    std::fs::remove_file(token.path()).unwrap();
    assert!(matches!(boxed.info(), Err(TokenError::NotPresent(_))));
    assert!(matches!(boxed.certificates(), Err(TokenError::NotPresent(_))));
    assert!(matches!(reader.open(token.serial()), Err(TokenError::NotPresent(_))));
}

#[test]
fn a_damaged_token_file_is_an_io_error() {
    let (_dir, reader) = reader();
    let token = reader.create_blank().unwrap();
    std::fs::write(token.path(), b"{\"format\": \"something else\"}").unwrap();
    assert!(matches!(reader.open(token.serial()), Err(TokenError::Io(_))));
    std::fs::write(token.path(), b"not json").unwrap();
    assert!(matches!(token.info(), Err(TokenError::Io(_))));
}

#[cfg(unix)]
#[test]
fn token_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, reader) = reader();
    let (token, ..) = personalised(&reader, Algorithm::P256);
    let serial = token.info().unwrap().serial;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&reader.dir().join(format!("{serial}.token"))), 0o600);
    assert_eq!(mode(&reader.dir().join(format!("{serial}.lock"))), 0o600);
    assert_eq!(mode(reader.dir()), 0o700);
    // Only the token and its lock: no temporary file is left behind.
    let mut names: Vec<String> =
        std::fs::read_dir(reader.dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, [format!("{serial}.lock"), format!("{serial}.token")]);
}

#[test]
fn debug_shows_no_secrets() {
    let (_dir, reader) = reader();
    let mut token = reader.create_blank().unwrap();
    let (so, user) = (Pin::random(16), Pin::random(8));
    token.initialise(None, &so, "order-1").unwrap();
    token.init_user_pin(&so, &user).unwrap();
    for debug in [format!("{token:?}"), format!("{reader:?}"), format!("{so:?} {user:?}")] {
        assert!(!debug.contains(so.expose()) && !debug.contains(user.expose()), "{debug}");
    }
}

#[test]
fn random_pins_are_digits_of_the_asked_length() {
    for len in [6, 8, 16] {
        let pin = Pin::random(len);
        assert_eq!(pin.expose().len(), len);
        assert!(pin.expose().bytes().all(|b| b.is_ascii_digit()));
    }
    // Not constant: 20 draws of 8 digits do not repeat (10^8 possibilities).
    let draws: std::collections::HashSet<String> = (0..20).map(|_| Pin::random(8).expose().to_owned()).collect();
    assert_eq!(draws.len(), 20);
}

#[test]
fn pin_debug_shows_no_digits() {
    let pin = Pin::parse("12345678").unwrap();
    let debug = format!("{pin:?}");
    assert!(!debug.bytes().any(|b| b.is_ascii_digit()), "{debug}");
}

#[test]
fn pin_parse_takes_6_to_32_digits_only() {
    for good in ["123456", "00000000", &"9".repeat(32)] {
        assert_eq!(Pin::parse(good).unwrap().expose(), good);
    }
    for bad in ["", "12345", "1234567a", "abcdefgh", " 1234567", "123456 ", "１２３４５６", &"9".repeat(33)] {
        assert!(matches!(Pin::parse(bad), Err(TokenError::BadPinFormat)), "{bad:?}");
    }
}
