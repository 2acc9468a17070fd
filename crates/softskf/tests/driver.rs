//! yiqian's SKF driver (`yiqian_token::skf`) against the software SKF library, loaded from the
//! `libyiqian_softskf.so` cargo built for this test exactly as a key maker's library would be:
//! an SM2 key generated on the device, the CSR signed there, a certificate issued by a test
//! CA and written back, the CA chain in a file on the key; the system `openssl` checks the
//! certificate and a signature the device made. Then the PIN counters (the configured
//! counts, on disk), unblocking and PIN change, device authentication with a wrong key,
//! re-initialisation, what `present` and `blank_token` see, and the C interface itself fed
//! bad handles, NULLs and short buffers.
//!
//! The library reads its directory from `YIQIAN_SOFTSKF_DIR`, one value per process, so the
//! tests share one directory and take turns ([`fixture`]), each starting from an empty one.

// The token tests' test CA and openssl runner.
#[path = "../../token/tests/common/mod.rs"]
mod common;

use common::{HOLDER, TestCa, openssl};
use std::ffi::{CString, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::spki::SubjectPublicKeyInfoOwned;
use yiqian_pki::{
    Algorithm, DEFAULT_SM2_DISTID, build_csr, key_algorithm, personal_subject, to_pem, verify, verify_csr,
};
use yiqian_softskf::{DIR_ENV, FACTORY_DEVICE_AUTH_KEY, create_device};
use yiqian_token::skf::ffi::{self, DEVINFO, ECCSIGNATUREBLOB, HANDLE, ULONG, sar};
use yiqian_token::skf::{DeviceAuthKey, SkfConfig, SkfTokenReader};
use yiqian_token::{Pin, Token, TokenError, TokenReader};

const ORDER: &str = "YQ20260101K7M2Q9XW";
const KEY_ID: &[u8] = &[0x5A, 0x01, 0xC3, 0x7E, 0x00, 0x11, 0x22, 0x33];

// ---- Fixture ----

/// The library cargo built beside this test.
fn library() -> PathBuf {
    yiqian_softskf::library_beside_this_test().unwrap_or_else(|e| panic!("{e}"))
}

/// The test holds the library's directory to itself, empty at the start.
struct Fixture {
    _turn: MutexGuard<'static, ()>,
    dir: PathBuf,
}

fn fixture() -> Fixture {
    static TURN: Mutex<()> = Mutex::new(());
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("softskf-driver-devices");
        // SAFETY: set once, before the library is first loaded, while holding TURN, which
        // every test takes before anything else: no other thread of this process is reading
        // the environment meanwhile.
        unsafe { std::env::set_var(DIR_ENV, &dir) };
        dir
    });
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    Fixture { _turn: turn, dir: dir.clone() }
}

impl Fixture {
    fn device(&self, serial: &str) {
        create_device(&self.dir, serial, "SoftSKF", FACTORY_DEVICE_AUTH_KEY).unwrap();
    }

    fn device_file(&self, serial: &str) -> PathBuf {
        self.dir.join(format!("{serial}.skfdev"))
    }
}

fn config() -> SkfConfig {
    SkfConfig::new(library(), DeviceAuthKey::new(FACTORY_DEVICE_AUTH_KEY).unwrap())
}

fn reader_with(config: SkfConfig) -> SkfTokenReader {
    SkfTokenReader::new(config).unwrap()
}

fn reader() -> SkfTokenReader {
    reader_with(config())
}

fn pin(text: &str) -> Pin {
    Pin::parse(text).unwrap()
}

/// A blank key initialised with `so`, its user PIN set to `user` and an SM2 key `KEY_ID`.
fn personalise(reader: &SkfTokenReader, so: &Pin, user: &Pin) -> (Box<dyn Token>, Vec<u8>) {
    let mut token = reader.blank_token().unwrap();
    token.initialise(None, so, ORDER).unwrap();
    token.init_user_pin(so, user).unwrap();
    let spki = token.generate_key_pair(user, Algorithm::Sm2, KEY_ID).unwrap();
    (token, spki)
}

fn signs(token: &dyn Token, user: &Pin, spki: &[u8]) {
    let signer = token.signer(user, KEY_ID).unwrap();
    let signature = signer.sign(b"hello").unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_der(spki).unwrap();
    verify(&spki, Algorithm::Sm2, b"hello", &signature, DEFAULT_SM2_DISTID).unwrap();
}

// ---- Through the driver ----

#[test]
fn personalisation_through_the_skf_driver_is_checked_by_openssl() {
    let fx = fixture();
    fx.device("YQSKTEST0001");
    fx.device("YQSKTEST0002");
    let reader = reader();
    assert_eq!(reader.name(), "skf");
    let present = reader.present().unwrap();
    assert_eq!(present.len(), 2);
    for info in &present {
        assert_eq!((info.label.as_str(), info.model.as_str()), ("SoftSKF", "yiqian softskf (yiqian)"));
        assert!(!info.initialised && !info.user_pin_locked);
        assert_eq!(info.user_pin_tries_left, None);
    }

    let mut token = reader.blank_token().unwrap();
    assert_eq!(token.info().unwrap().serial, "YQSKTEST0001");
    let (so, user) = (Pin::random(16), Pin::random(8));
    token.initialise(None, &so, ORDER).unwrap();
    let info = token.info().unwrap();
    assert_eq!((info.label.as_str(), info.initialised, info.user_pin_tries_left), (ORDER, true, Some(6)));
    // The other key is the blank one now.
    assert_eq!(reader.blank_token().unwrap().info().unwrap().serial, "YQSKTEST0002");

    token.init_user_pin(&so, &user).unwrap();
    assert!(matches!(
        token.generate_key_pair(&user, Algorithm::P256, KEY_ID),
        Err(TokenError::Unsupported(Algorithm::P256))
    ));
    let spki = token.generate_key_pair(&user, Algorithm::Sm2, KEY_ID).unwrap();
    assert_eq!(key_algorithm(&SubjectPublicKeyInfoOwned::from_der(&spki).unwrap()).unwrap(), Algorithm::Sm2);
    assert!(matches!(token.generate_key_pair(&user, Algorithm::Sm2, KEY_ID), Err(TokenError::State(_))));

    // The CSR is signed on the device; the CA accepts it with the standard ID.
    let signer = token.signer(&user, KEY_ID).unwrap();
    assert_eq!((signer.algorithm(), signer.sm2_distid()), (Algorithm::Sm2, DEFAULT_SM2_DISTID));
    assert_eq!(signer.public_key().to_der().unwrap(), spki);
    let csr = build_csr(&personal_subject(HOLDER).unwrap(), signer.as_ref()).unwrap();
    let message = "a message the holder signs on the key".as_bytes();
    let device_signature = signer.sign(message).unwrap();
    drop(signer);
    assert_eq!(verify_csr(&csr, DEFAULT_SM2_DISTID).unwrap().public_key.to_der().unwrap(), spki);

    let ca = TestCa::new(Algorithm::Sm2);
    let cert = ca.issue_personal(&csr);
    let ca_der = ca.cert.to_der().unwrap();
    match token.write_certificate(&user, KEY_ID, &ca_der) {
        Err(TokenError::State(m)) => assert_eq!(m, "certificate does not match the key"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(token.write_certificate(&user, b"other", &cert), Err(TokenError::State(_))));
    assert!(matches!(token.write_certificate(&user, KEY_ID, b"not DER"), Err(TokenError::State(_))));
    token.write_certificate(&user, KEY_ID, &cert).unwrap();
    token.write_ca_certificates(&user, std::slice::from_ref(&ca_der)).unwrap();
    drop(token);

    // Back from the device, by serial: the holder's certificate, then the chain.
    let token = reader.open("YQSKTEST0001").unwrap();
    assert_eq!(token.certificates().unwrap(), vec![cert.clone(), ca_der.clone()]);
    signs(token.as_ref(), &user, &spki);

    // openssl: the CSR made on the device, the certificate against the CA, and the device's
    // signature of a message — all with the distinguishing ID 1234567812345678. Some of these
    // commands exit 0 on failure, so what they print is checked.
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("csr.pem"), to_pem("CERTIFICATE REQUEST", &csr)).unwrap();
    std::fs::write(w.join("ca.pem"), to_pem("CERTIFICATE", &ca_der)).unwrap();
    std::fs::write(w.join("ee.pem"), to_pem("CERTIFICATE", &cert)).unwrap();
    std::fs::write(w.join("pub.pem"), to_pem("PUBLIC KEY", &spki)).unwrap();
    std::fs::write(w.join("msg.bin"), message).unwrap();
    std::fs::write(w.join("tampered.bin"), b"another message").unwrap();
    std::fs::write(w.join("sig.der"), &device_signature).unwrap();

    let (_, out) = openssl(w, &["req", "-in", "csr.pem", "-noout", "-verify", "-vfyopt", "distid:1234567812345678"]);
    assert!(out.contains("verify OK") || out.contains("Certificate request self-signature verify OK"), "{out}");

    let (ok, out) = openssl(w, &["verify", "-CAfile", "ca.pem", "-vfyopt", "distid:1234567812345678", "ee.pem"]);
    assert!(ok && out.contains("ee.pem: OK"), "{out}");

    let verify_args = |file: &'static str| {
        vec!["dgst", "-sm3", "-sigopt", "distid:1234567812345678", "-verify", "pub.pem", "-signature", "sig.der", file]
    };
    let (ok, out) = openssl(w, &verify_args("msg.bin"));
    assert!(ok && out.contains("Verified OK"), "{out}");
    let (_, out) = openssl(w, &verify_args("tampered.bin"));
    assert!(out.contains("Verification failure") && !out.contains("Verified OK"), "{out}");
    // With openssl's empty default ID the device's signature does not verify: Z_A went in.
    let (_, out) = openssl(w, &["dgst", "-sm3", "-verify", "pub.pem", "-signature", "sig.der", "msg.bin"]);
    assert!(!out.contains("Verified OK"), "{out}");

    // The device file holds neither PIN.
    let file = std::fs::read(fx.device_file("YQSKTEST0001")).unwrap();
    for secret in [&user, &so] {
        assert!(!file.windows(secret.expose().len()).any(|w| w == secret.expose().as_bytes()));
    }
}

#[test]
fn wrong_user_pins_count_down_and_lock_at_the_configured_count() {
    let fx = fixture();
    fx.device("YQSKTEST0001");
    let mut config = config();
    config.user_pin_retries = 4;
    let reader = reader_with(config);
    let (so, user, wrong) = (pin("1122334455667788"), pin("13572468"), pin("86427531"));
    let (mut token, spki) = personalise(&reader, &so, &user);
    assert_eq!(token.info().unwrap().user_pin_tries_left, Some(4));

    // A wrong PIN counts down; a right one restores the count.
    assert!(matches!(token.signer(&wrong, KEY_ID), Err(TokenError::PinIncorrect { tries_left: Some(3) })));
    assert_eq!(token.info().unwrap().user_pin_tries_left, Some(3));
    signs(token.as_ref(), &user, &spki);
    assert_eq!(token.info().unwrap().user_pin_tries_left, Some(4));

    for left in [3, 2, 1] {
        let result = token.signer(&wrong, KEY_ID);
        assert!(matches!(result, Err(TokenError::PinIncorrect { tries_left: Some(n) }) if n == left), "{left}");
    }
    // The counter is on disk, in the application's user PIN slot.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.device_file("YQSKTEST0001")).unwrap()).unwrap();
    assert_eq!(json["applications"][0]["user_pin"]["tries_left"], 1);
    assert_eq!(json["applications"][0]["user_pin"]["max_tries"], 4);
    assert_eq!(json["applications"][0]["admin_pin"]["max_tries"], 10);

    // The fourth wrong try locks it; then even the right PIN is refused, for every use.
    assert!(matches!(token.signer(&wrong, KEY_ID), Err(TokenError::PinLocked)));
    let info = token.info().unwrap();
    assert!(info.user_pin_locked);
    assert_eq!(info.user_pin_tries_left, Some(0));
    assert!(matches!(token.signer(&user, KEY_ID), Err(TokenError::PinLocked)));
    assert!(matches!(token.change_user_pin(&user, &wrong), Err(TokenError::PinLocked)));
    assert!(matches!(token.write_ca_certificates(&user, &[]), Err(TokenError::PinLocked)));

    // Unblocking needs the admin (SO) PIN, whose wrong tries count too (10 configured).
    assert!(matches!(token.init_user_pin(&wrong, &user), Err(TokenError::PinIncorrect { tries_left: Some(9) })));
    let unblocked = pin("24681357");
    token.init_user_pin(&so, &unblocked).unwrap();
    let info = token.info().unwrap();
    assert!(!info.user_pin_locked);
    assert_eq!(info.user_pin_tries_left, Some(4));
    // The key survived the unblocking, and the old PIN is gone.
    signs(token.as_ref(), &unblocked, &spki);
    assert!(matches!(token.signer(&user, KEY_ID), Err(TokenError::PinIncorrect { tries_left: Some(3) })));

    // The holder changes the PIN; a wrong old PIN counts.
    let changed = pin("975318642");
    assert!(matches!(token.change_user_pin(&wrong, &changed), Err(TokenError::PinIncorrect { tries_left: Some(2) })));
    token.change_user_pin(&unblocked, &changed).unwrap();
    signs(token.as_ref(), &changed, &spki);
    assert!(matches!(token.signer(&unblocked, KEY_ID), Err(TokenError::PinIncorrect { .. })));

    // Destroying the key needs the PIN, then the key is gone.
    token.destroy_key(&changed, KEY_ID).unwrap();
    assert!(matches!(token.signer(&changed, KEY_ID), Err(TokenError::State(_))));
    assert!(matches!(token.destroy_key(&changed, KEY_ID), Err(TokenError::State(_))));
}

#[test]
fn device_authentication_with_a_wrong_key_is_refused() {
    let fx = fixture();
    fx.device("YQSKTEST0001");
    let wrong_key = DeviceAuthKey::new(b"8765432187654321").unwrap();
    let reader = reader_with(SkfConfig::new(library(), wrong_key.clone()));
    let mut token = reader.blank_token().unwrap();
    match token.initialise(None, &Pin::random(16), ORDER) {
        Err(TokenError::Refused(m)) => {
            assert!(m.starts_with("SKF_DevAuth returned SAR_FAIL (0x0A000001)"), "{m}");
            assert!(!m.contains("8765432187654321"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let info = token.info().unwrap();
    assert!(!info.initialised);
    assert_eq!(info.label, "SoftSKF");

    // A model with its own device key: that key works, the factory one does not.
    create_device(&fx.dir, "YQSKTEST0002", "SoftSKF", b"8765432187654321").unwrap();
    let mut own = reader.open("YQSKTEST0002").unwrap();
    own.initialise(None, &Pin::random(16), ORDER).unwrap();
    assert!(own.info().unwrap().initialised);
}

#[test]
fn reinitialising_a_key_needs_its_current_admin_pin() {
    let fx = fixture();
    fx.device("YQSKTEST0001");
    let reader = reader();
    let (so, user) = (pin("1122334455667788"), pin("13572468"));
    let (_token, _) = personalise(&reader, &so, &user);
    // A personalised key is no blank key.
    assert!(matches!(reader.blank_token().map(drop), Err(TokenError::NotPresent(_))));

    let mut token = reader.open("YQSKTEST0001").unwrap();
    let new_so = pin("8877665544332211");
    match token.initialise(None, &new_so, "YQ20260102AAAAAAAA") {
        Err(TokenError::State(m)) => assert!(m.contains("current SO PIN"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        token.initialise(Some(&new_so), &new_so, "YQ20260102AAAAAAAA"),
        Err(TokenError::PinIncorrect { tries_left: Some(9) })
    ));
    assert_eq!(token.info().unwrap().label, ORDER);
    token.initialise(Some(&so), &new_so, "YQ20260102AAAAAAAA").unwrap();

    // Everything on it is gone; the new SO PIN is the admin PIN now.
    let info = token.info().unwrap();
    assert_eq!((info.label.as_str(), info.user_pin_tries_left), ("YQ20260102AAAAAAAA", Some(6)));
    assert!(token.certificates().unwrap().is_empty());
    assert!(matches!(token.init_user_pin(&so, &user), Err(TokenError::PinIncorrect { .. })));
    token.init_user_pin(&new_so, &user).unwrap();
    assert!(matches!(token.signer(&user, KEY_ID).map(drop), Err(TokenError::State(_))));
}

#[test]
fn a_factory_application_is_replaced_with_the_configured_factory_admin_pin() {
    let fx = fixture();
    fx.device("YQSKTEST0001");
    // A key that ships with an application of yiqian's name and a default admin PIN (made
    // here by initialising it without an order label).
    let factory = pin("12345678");
    reader().blank_token().unwrap().initialise(None, &factory, "SoftSKF").unwrap();

    let mut token = reader().blank_token().unwrap();
    match token.initialise(None, &Pin::random(16), ORDER) {
        Err(TokenError::State(m)) => assert!(m.contains("already has a YIQIAN application"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut config = config();
    config.factory_admin_pin = Some(factory);
    let reader = reader_with(config);
    let mut token = reader.blank_token().unwrap();
    token.initialise(None, &Pin::random(16), ORDER).unwrap();
    assert_eq!(token.info().unwrap().label, ORDER);
}

#[test]
fn present_and_blank_token_follow_the_keys_in_the_reader() {
    let fx = fixture();
    let reader = reader();
    assert!(reader.present().unwrap().is_empty());
    assert!(matches!(reader.blank_token().map(drop), Err(TokenError::NotPresent(_))));
    assert!(matches!(reader.open("YQSKTEST0001").map(drop), Err(TokenError::NotPresent(_))));

    fx.device("YQSKTEST0001");
    let token = reader.blank_token().unwrap();
    assert_eq!(reader.present().unwrap().len(), 1);
    // Pulled out: the reader no longer sees it, and the token says so.
    std::fs::remove_file(fx.device_file("YQSKTEST0001")).unwrap();
    assert!(reader.present().unwrap().is_empty());
    assert!(matches!(token.info(), Err(TokenError::NotPresent(_))));
    assert!(matches!(reader.open("YQSKTEST0001").map(drop), Err(TokenError::NotPresent(_))));
}

// ---- The C interface directly ----

/// The library's functions, as a host would load them.
struct Raw {
    _library: libloading::Library,
    enum_dev: ffi::functions::EnumDev,
    connect_dev: ffi::functions::ConnectDev,
    disconnect_dev: ffi::functions::DisConnectDev,
    get_dev_info: ffi::functions::GetDevInfo,
    gen_random: ffi::functions::GenRandom,
    dev_auth: ffi::functions::DevAuth,
    create_application: ffi::functions::CreateApplication,
    open_application: ffi::functions::OpenApplication,
    close_application: ffi::functions::CloseApplication,
    verify_pin: ffi::functions::VerifyPIN,
    clear_secure_state: ffi::functions::ClearSecureState,
    open_container: ffi::functions::OpenContainer,
    gen_ecc_key_pair: ffi::functions::GenECCKeyPair,
    ecc_sign_data: ffi::functions::ECCSignData,
    export_certificate: ffi::functions::ExportCertificate,
}

impl Raw {
    fn load() -> Raw {
        // SAFETY: the library built from this crate; each symbol has the type it is read as
        // (the exports are checked against these types at compile time).
        unsafe {
            let library = libloading::Library::new(library()).unwrap();
            Raw {
                enum_dev: *library.get(b"SKF_EnumDev\0").unwrap(),
                connect_dev: *library.get(b"SKF_ConnectDev\0").unwrap(),
                disconnect_dev: *library.get(b"SKF_DisConnectDev\0").unwrap(),
                get_dev_info: *library.get(b"SKF_GetDevInfo\0").unwrap(),
                gen_random: *library.get(b"SKF_GenRandom\0").unwrap(),
                dev_auth: *library.get(b"SKF_DevAuth\0").unwrap(),
                create_application: *library.get(b"SKF_CreateApplication\0").unwrap(),
                open_application: *library.get(b"SKF_OpenApplication\0").unwrap(),
                close_application: *library.get(b"SKF_CloseApplication\0").unwrap(),
                verify_pin: *library.get(b"SKF_VerifyPIN\0").unwrap(),
                clear_secure_state: *library.get(b"SKF_ClearSecureState\0").unwrap(),
                open_container: *library.get(b"SKF_OpenContainer\0").unwrap(),
                gen_ecc_key_pair: *library.get(b"SKF_GenECCKeyPair\0").unwrap(),
                ecc_sign_data: *library.get(b"SKF_ECCSignData\0").unwrap(),
                export_certificate: *library.get(b"SKF_ExportCertificate\0").unwrap(),
                _library: library,
            }
        }
    }

    fn connect(&self, name: &str) -> Result<HANDLE, ULONG> {
        let name = CString::new(name).unwrap();
        let mut handle: HANDLE = ptr::null_mut();
        // SAFETY: a NUL-terminated name and a place for the handle.
        match unsafe { (self.connect_dev)(name.as_ptr().cast_mut(), &mut handle) } {
            sar::SAR_OK => Ok(handle),
            code => Err(code),
        }
    }

    fn info(&self, handle: HANDLE) -> ULONG {
        let mut info = DEVINFO::zeroed();
        // SAFETY: a DEVINFO to fill; the handle may be anything.
        unsafe { (self.get_dev_info)(handle, &mut info) }
    }
}

fn bogus(value: usize) -> HANDLE {
    ptr::without_provenance_mut::<c_void>(value)
}

#[test]
fn bad_handles_nulls_and_short_buffers_are_error_codes() {
    let fx = fixture();
    fx.device("YQSKTEST0001");
    fx.device("YQSKTEST0002");
    let raw = Raw::load();

    // Handles the library never gave, of the wrong kind, or stale.
    for handle in [ptr::null_mut(), bogus(0xDEAD_BEEF), bogus(1), bogus(usize::MAX)] {
        assert_eq!(raw.info(handle), sar::SAR_INVALIDHANDLEERR);
        // SAFETY: any handle value is allowed; the library must not dereference it.
        assert_eq!(unsafe { (raw.disconnect_dev)(handle) }, sar::SAR_INVALIDHANDLEERR);
    }
    let device = raw.connect("YQSKTEST0001").unwrap();
    assert_eq!(raw.info(device), sar::SAR_OK);
    let mut retry: ULONG = 99;
    // SAFETY: a device handle where an application handle belongs; a valid PIN string.
    let code = unsafe { (raw.verify_pin)(device, ffi::USER_TYPE, c"123456".as_ptr().cast_mut(), &mut retry) };
    assert_eq!(code, sar::SAR_INVALIDHANDLEERR);
    // SAFETY: a live handle, then the same handle once released.
    unsafe {
        assert_eq!((raw.disconnect_dev)(device), sar::SAR_OK);
        assert_eq!((raw.disconnect_dev)(device), sar::SAR_INVALIDHANDLEERR);
    }
    assert_eq!(raw.info(device), sar::SAR_INVALIDHANDLEERR);

    // NULLs where values belong; unknown names.
    // SAFETY: NULL pointers, which the library must check.
    unsafe {
        let mut handle: HANDLE = ptr::null_mut();
        assert_eq!((raw.connect_dev)(ptr::null_mut(), &mut handle), sar::SAR_INVALIDPARAMERR);
        assert_eq!((raw.connect_dev)(c"YQSKTEST0001".as_ptr().cast_mut(), ptr::null_mut()), sar::SAR_INVALIDPARAMERR);
        assert_eq!((raw.enum_dev)(ffi::TRUE, ptr::null_mut(), ptr::null_mut()), sar::SAR_INVALIDPARAMERR);
    }
    assert_eq!(raw.connect("YQSKNOSUCHKEY"), Err(sar::SAR_DEVICE_REMOVED));
    assert_eq!(raw.connect("../etc/passwd"), Err(sar::SAR_DEVICE_REMOVED));

    // The size query, a short buffer, then the list with its double NUL.
    let expected = b"YQSKTEST0001\0YQSKTEST0002\0\0";
    let mut size: ULONG = 0;
    // SAFETY: NULL buffer (size query), then buffers of the sizes given.
    unsafe {
        assert_eq!((raw.enum_dev)(ffi::TRUE, ptr::null_mut(), &mut size), sar::SAR_OK);
        assert_eq!(size as usize, expected.len());
        let mut short = [0u8; 8];
        size = 8;
        assert_eq!((raw.enum_dev)(ffi::TRUE, short.as_mut_ptr().cast(), &mut size), sar::SAR_BUFFER_TOO_SMALL);
        assert_eq!((size as usize, short), (expected.len(), [0; 8]));
        let mut list = [0xFFu8; 64];
        size = 64;
        assert_eq!((raw.enum_dev)(ffi::TRUE, list.as_mut_ptr().cast(), &mut size), sar::SAR_OK);
        assert_eq!(&list[..size as usize], expected);
    }

    // Applications need device authentication; a wrong response is refused.
    let device = raw.connect("YQSKTEST0001").unwrap();
    let mut app: HANDLE = ptr::null_mut();
    // SAFETY: NUL-terminated strings, buffers of the sizes given, places for results.
    unsafe {
        let create = |app: &mut HANDLE| {
            (raw.create_application)(
                device,
                c"TEST".as_ptr().cast_mut(),
                c"12345678".as_ptr().cast_mut(),
                10,
                c"123456".as_ptr().cast_mut(),
                6,
                ffi::SECURE_USER_ACCOUNT,
                app,
            )
        };
        assert_eq!(create(&mut app), sar::SAR_FAIL);
        let mut random = [0u8; 16];
        assert_eq!((raw.gen_random)(device, random.as_mut_ptr(), 8), sar::SAR_OK);
        assert_eq!((raw.dev_auth)(device, random.as_mut_ptr(), 16), sar::SAR_FAIL);
        assert_eq!((raw.dev_auth)(device, ptr::null_mut(), 16), sar::SAR_INVALIDPARAMERR);
        assert_eq!(create(&mut app), sar::SAR_FAIL);
        assert_eq!((raw.disconnect_dev)(device), sar::SAR_OK);
    }

    // A key personalised through the driver: signing needs the user PIN, takes 32 bytes, and
    // a container handle dies with its application handle.
    let user = pin("13572468");
    let (_token, _) = personalise(&reader(), &pin("1122334455667788"), &user);
    let device = raw.connect("YQSKTEST0001").unwrap();
    let container_name = CString::new(hex::encode(KEY_ID)).unwrap();
    // SAFETY: live handles, NUL-terminated strings, buffers of the sizes given.
    unsafe {
        assert_eq!((raw.open_application)(device, c"YIQIAN".as_ptr().cast_mut(), &mut app), sar::SAR_OK);
        let mut container: HANDLE = ptr::null_mut();
        assert_eq!((raw.open_container)(app, container_name.as_ptr().cast_mut(), &mut container), sar::SAR_OK);
        let mut digest = [7u8; 32];
        let mut signature = ECCSIGNATUREBLOB::zeroed();
        assert_eq!(
            (raw.ecc_sign_data)(container, digest.as_mut_ptr(), 32, &mut signature),
            sar::SAR_USER_NOT_LOGGED_IN
        );
        let mut retry: ULONG = 0;
        assert_eq!(
            (raw.verify_pin)(app, ffi::USER_TYPE, c"86427531".as_ptr().cast_mut(), &mut retry),
            sar::SAR_PIN_INCORRECT
        );
        assert_eq!(retry, 5);
        assert_eq!((raw.verify_pin)(app, 7, c"13572468".as_ptr().cast_mut(), &mut retry), sar::SAR_USER_TYPE_INVALID);
        assert_eq!((raw.verify_pin)(app, ffi::USER_TYPE, c"13572468".as_ptr().cast_mut(), &mut retry), sar::SAR_OK);
        assert_eq!((raw.ecc_sign_data)(container, digest.as_mut_ptr(), 31, &mut signature), sar::SAR_INDATALENERR);
        assert_eq!((raw.ecc_sign_data)(container, digest.as_mut_ptr(), 32, ptr::null_mut()), sar::SAR_INVALIDPARAMERR);
        assert_eq!((raw.ecc_sign_data)(container, digest.as_mut_ptr(), 32, &mut signature), sar::SAR_OK);
        assert_eq!(&signature.r[..32], &[0u8; 32]);
        let mut blob = yiqian_token::skf::sm2_public_key_blob(&[0; 32], &[0; 32]);
        assert_eq!((raw.gen_ecc_key_pair)(container, 0x0001_0000, &mut blob), sar::SAR_NOTSUPPORTYETERR);
        let mut len: ULONG = 0;
        assert_eq!((raw.export_certificate)(container, ffi::TRUE, ptr::null_mut(), &mut len), sar::SAR_CERTNOTFOUNTERR);
        assert_eq!((raw.clear_secure_state)(app), sar::SAR_OK);
        assert_eq!(
            (raw.ecc_sign_data)(container, digest.as_mut_ptr(), 32, &mut signature),
            sar::SAR_USER_NOT_LOGGED_IN
        );
        assert_eq!((raw.close_application)(app), sar::SAR_OK);
        assert_eq!((raw.ecc_sign_data)(container, digest.as_mut_ptr(), 32, &mut signature), sar::SAR_INVALIDHANDLEERR);

        // A device pulled out while connected.
        std::fs::remove_file(fx.device_file("YQSKTEST0001")).unwrap();
        assert_eq!(raw.info(device), sar::SAR_DEVICE_REMOVED);
        assert_eq!((raw.disconnect_dev)(device), sar::SAR_OK);
    }
}

#[test]
fn the_command_makes_blank_devices() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yiqian-softskf"))
        .args(["create-device", "--dir"])
        .arg(dir.path())
        .args(["--count", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let serials: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(serials.len(), 3);
    for serial in &serials {
        assert!(serial.starts_with("YQSK") && serial.len() == 16, "{serial}");
        assert!(dir.path().join(format!("{serial}.skfdev")).exists());
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_yiqian-softskf"))
        .args(["create-device", "--dir"])
        .arg(dir.path())
        .args(["--auth-key", "zz"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
