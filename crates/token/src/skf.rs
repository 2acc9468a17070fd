//! The SKF driver: SM2 UKEYs through their maker's GM/T 0016-2012 library (智能密码钥匙密码
//! 应用接口规范, "SKF"), loaded by path at run time, behind the [`Token`] seam.
//!
//! A [`SkfTokenReader`] is one vendor library ([`SkfConfig::library`], e.g. the
//! `libes_3000gm.so` a key maker ships); the keys it reports are its devices. yiqian keeps
//! everything it writes in one *application* on the key ([`SkfConfig::application`],
//! `YIQIAN` by default), whose admin PIN is the token's SO PIN and whose user PIN is the
//! holder's PIN. Each key pair lives in a *container* named by the hex of its key ID.
//!
//! # The mapping
//!
//! | `Token` / `TokenReader` | SKF calls |
//! | --- | --- |
//! | [`present`](TokenReader::present) | `SKF_EnumDev(TRUE)`, per device `SKF_ConnectDev` + `SKF_GetDevInfo` (serial = `SerialNumber`, label = `Label`, model = `Manufacturer` and `Issuer`) + `SKF_EnumApplication` (initialised = the application exists) + `SKF_OpenApplication` + `SKF_GetPINInfo(USER_TYPE)` (tries left, locked at 0) |
//! | [`blank_token`](TokenReader::blank_token) | the first present device whose label is not an order number ([`is_personalised_label`](crate::is_personalised_label)) |
//! | [`initialise`](Token::initialise) | `SKF_GenRandom` (8 bytes) + `SKF_DevAuth` (the random padded with zeros to 16 bytes, SM4-ECB-encrypted on the host with the device authentication key, §8.2.3); if the application exists, `SKF_VerifyPIN(ADMIN_TYPE)` with the current SO PIN (or, on a key whose label is not an order number, the configured factory admin PIN) and `SKF_DeleteApplication`; `SKF_CreateApplication` (admin PIN = the new SO PIN, user PIN = a random temporary PIN, the configured retry counts, create-file rights = user); `SKF_SetLabel` |
//! | [`init_user_pin`](Token::init_user_pin) | `SKF_UnblockPIN(admin PIN, new user PIN)` |
//! | [`change_user_pin`](Token::change_user_pin) | `SKF_ChangePIN(USER_TYPE)` |
//! | [`generate_key_pair`](Token::generate_key_pair) | `SKF_VerifyPIN(USER_TYPE)` + `SKF_CreateContainer(hex(key ID))` + `SKF_GenECCKeyPair(SGD_SM2_1)` → SubjectPublicKeyInfo (id-ecPublicKey, curve SM2, the uncompressed point from the blob's right-aligned 64-byte fields); SM2 only, other algorithms are [`TokenError::Unsupported`] |
//! | [`signer`](Token::signer) | `SKF_VerifyPIN(USER_TYPE)` + `SKF_OpenContainer` + `SKF_ExportPublicKey(TRUE)`; each signature: SM3(Z_A ‖ M) on the host, then `SKF_ECCSignData` |
//! | [`write_certificate`](Token::write_certificate) | the certificate's key checked against `SKF_ExportPublicKey(TRUE)`, then `SKF_ImportCertificate(bSignFlag = TRUE)` |
//! | [`write_ca_certificates`](Token::write_ca_certificates) | the file [`CA_CHAIN_FILE`] in the application (concatenated DER, readable by anyone, written with the user PIN): `SKF_DeleteFile` + `SKF_CreateFile` + `SKF_WriteFile` in chunks of `DEVINFO.MaxBufferSize` |
//! | [`certificates`](Token::certificates) | `SKF_EnumContainer` + `SKF_ExportCertificate(TRUE)` per container, then the chain file (`SKF_GetFileInfo` + `SKF_ReadFile`) |
//! | [`destroy_key`](Token::destroy_key) | `SKF_VerifyPIN(USER_TYPE)` + `SKF_DeleteContainer` |
//!
//! Every operation connects to the device, does its work and lets go again
//! (`SKF_ClearSecureState` + `SKF_CloseApplication`, `SKF_DisConnectDev`), so a key pulled
//! out between two operations is simply [`TokenError::NotPresent`]; a signer keeps its
//! device, application and container open (and the user PIN verified) until it is dropped.
//! Keys are found by serial number, never by device name. Calls into the library are
//! serialised (one mutex per library), because many vendors' libraries are not thread-safe.
//!
//! # SM2 signatures: the host hashes
//!
//! GM/T 0016-2012 §7.6.13 says of `SKF_ECCSignData`: "输入数据为待签数据的杂凑值。当使用SM2算法
//! 时，该输入数据为待签数据经过SM2签名预处理的结果，预处理过程遵循《公钥密码基础设施应用技术体系
//! SM2算法密码使用规范》" — the input is the *digest* of the data, for SM2 the result of the
//! SM2 signature preprocessing of GM/T 0009. So the device signs e, never the message: the
//! signer computes Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) (GM/T 0003.2 §5.5,
//! [`sm2_z`]) with ID_A = [`DEFAULT_SM2_DISTID`] (`1234567812345678`, the GM/T 0009 default
//! that the CA verifies CSRs with), then e = SM3(Z_A ‖ M), passes the 32 bytes of e to
//! `SKF_ECCSignData`, and re-encodes the returned r and s (right-aligned in 64-byte fields) as
//! the DER `SEQUENCE { r INTEGER, s INTEGER }` that X.509 and PKCS#10 carry.
//!
//! # Errors
//!
//! `SAR_PIN_INCORRECT` is [`TokenError::PinIncorrect`] with the retry count the call
//! returned (0 left means locked: [`TokenError::PinLocked`]); `SAR_PIN_LOCKED` is
//! `PinLocked` (for the admin PIN, [`TokenError::State`]); `SAR_DEVICE_REMOVED` is
//! [`TokenError::NotPresent`]; a refusal — `SAR_NOTSUPPORTYETERR`, a PIN, name or label length
//! the model does not take, a full key, device authentication failing — is
//! [`TokenError::Refused`] naming the function and the code, e.g. "SKF_GenECCKeyPair returned
//! SAR_NOTSUPPORTYETERR (0x0A000003)"; anything else is [`TokenError::Io`] with the same
//! wording. No PIN or key ever goes into a message or a `Debug` output.
//!
//! # Why not the `skf-rs` crate
//!
//! crates.io has `skf-api` (FFI types, MIT) and `skf-rs` 0.8 (a wrapper that loads the library
//! with libloading, MIT, one maintainer). They were read and not used: `skf-rs` panics
//! (`expect("Symbol not load")`) when a vendor library lacks an optional function, brings in
//! `anyhow` and `tracing`, authenticates devices by asking the device itself to encrypt the
//! challenge with SM1 (so the key leaves the host in the clear) where the standard has the
//! host compute it, and is exercised only against real hardware; `skf-api` adds a vendor
//! code (`SAR_NO_AUTH` 0x0A000033) that is not in the standard and types `ADMIN_TYPE` as a
//! byte where the functions take a `ULONG`. The few types needed are in [`ffi`], checked
//! against the standard's text, and the library is loaded with `libloading` directly.
//!
//! # Limits
//!
//! Only the software SKF library (`crates/softskf`, a stand-in with no secure element) has
//! been driven by this code; no real SKF device was tried. Real models differ: some
//! authenticate devices with SM1 (refused here with a clear message, since no host can compute
//! SM1), some take shorter labels or container names, some ship with an application of their
//! own (left alone) — keep such facts in the per-model configuration. The encryption key pair
//! of the Chinese two-certificate model (`SKF_ImportECCKeyPair`) is not handled.

#![warn(missing_docs)]

pub mod ffi;

use crate::{Pin, Token, TokenError, TokenInfo, TokenReader};
use ffi::sar::{self, SAR_OK};
use ffi::{BOOL, DEVINFO, ECCPUBLICKEYBLOB, ECCSIGNATUREBLOB, FILEATTRIBUTE, HANDLE, LPSTR, ULONG};
use sm3::{Digest, Sm3};
use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};
use yiqian_pki::der::asn1::{Any, BitString};
use yiqian_pki::der::{Decode, Encode, Reader, SliceReader};
use yiqian_pki::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::zeroize::Zeroizing;
use yiqian_pki::{Algorithm, DEFAULT_SM2_DISTID, PkiError, Signer, key_algorithm, oids};

/// The reader's name ([`TokenReader::name`]).
pub const NAME: &str = "skf";

/// The application yiqian creates on a key, unless configured otherwise.
pub const DEFAULT_APPLICATION: &str = "YIQIAN";

/// The file in the application that holds the CA chain (concatenated DER, issuing CA first).
pub const CA_CHAIN_FILE: &str = "YIQIAN_CA_CHAIN";

/// The longest label: `DEVINFO.Label` is 32 bytes and `SKF_SetLabel` wants fewer (§7.1.8).
pub const MAX_LABEL_BYTES: usize = 31;

/// The longest key ID: its hex is the container name, at most 64 bytes (§7.5.2).
pub const MAX_KEY_ID_BYTES: usize = 32;

/// The largest certificate written to or read from a key, in bytes of DER.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// The longest name list or chain file the driver accepts from a library.
const MAX_LIST_BYTES: ULONG = 64 * 1024;
const MAX_CHAIN_BYTES: ULONG = 1024 * 1024;

/// The device authentication key of a key model (16 bytes for SM4). Zeroed on drop; `Debug`
/// never shows it.
#[derive(Clone)]
pub struct DeviceAuthKey(Zeroizing<Vec<u8>>);

impl DeviceAuthKey {
    /// A 16-byte SM4 key.
    pub fn new(bytes: &[u8]) -> Result<DeviceAuthKey, TokenError> {
        if bytes.len() != 16 {
            return Err(TokenError::State("a device authentication key is 16 bytes (SM4)".to_owned()));
        }
        Ok(DeviceAuthKey(Zeroizing::new(bytes.to_vec())))
    }

    /// From 32 hex digits.
    pub fn from_hex(text: &str) -> Result<DeviceAuthKey, TokenError> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| TokenError::State("a device authentication key is 32 hex digits".to_owned()))?,
        );
        DeviceAuthKey::new(&bytes)
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for DeviceAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceAuthKey(…)")
    }
}

/// How to reach one model of SM2 UKEY through its SKF library.
#[derive(Debug, Clone)]
pub struct SkfConfig {
    /// The vendor's SKF library (a `.so`, `.dylib` or `.dll`).
    pub library: PathBuf,
    /// The model's device authentication key (for `SKF_DevAuth`).
    pub device_auth_key: DeviceAuthKey,
    /// The admin PIN of a factory-fresh key's application of yiqian's name, for models that
    /// ship with one; `None` otherwise.
    pub factory_admin_pin: Option<Pin>,
    /// The application yiqian keeps its keys in ([`DEFAULT_APPLICATION`]).
    pub application: String,
    /// Wrong admin (SO) PIN tries before it locks (10).
    pub admin_pin_retries: u32,
    /// Wrong user PIN tries before it locks (6).
    pub user_pin_retries: u32,
}

impl SkfConfig {
    /// A configuration with the defaults: application `YIQIAN`, 10 admin and 6 user PIN tries,
    /// no factory application.
    pub fn new(library: PathBuf, device_auth_key: DeviceAuthKey) -> SkfConfig {
        SkfConfig {
            library,
            device_auth_key,
            factory_admin_pin: None,
            application: DEFAULT_APPLICATION.to_owned(),
            admin_pin_retries: 10,
            user_pin_retries: 6,
        }
    }

    fn check(&self) -> Result<(), TokenError> {
        let name = &self.application;
        if name.is_empty() || name.len() > 32 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::State(format!(
                "SKF application name {name:?}: 1 to 32 printable ASCII characters"
            )));
        }
        for (what, n) in [("admin", self.admin_pin_retries), ("user", self.user_pin_retries)] {
            if !(1..=15).contains(&n) {
                return Err(TokenError::State(format!("{what} PIN retries: 1 to 15, not {n}")));
            }
        }
        Ok(())
    }
}

// ---- The library ----

/// The functions the driver calls, resolved once.
struct Api {
    enum_dev: ffi::functions::EnumDev,
    connect_dev: ffi::functions::ConnectDev,
    disconnect_dev: ffi::functions::DisConnectDev,
    set_label: ffi::functions::SetLabel,
    get_dev_info: ffi::functions::GetDevInfo,
    dev_auth: ffi::functions::DevAuth,
    gen_random: ffi::functions::GenRandom,
    change_pin: ffi::functions::ChangePIN,
    get_pin_info: ffi::functions::GetPINInfo,
    verify_pin: ffi::functions::VerifyPIN,
    unblock_pin: ffi::functions::UnblockPIN,
    clear_secure_state: ffi::functions::ClearSecureState,
    create_application: ffi::functions::CreateApplication,
    enum_application: ffi::functions::EnumApplication,
    delete_application: ffi::functions::DeleteApplication,
    open_application: ffi::functions::OpenApplication,
    close_application: ffi::functions::CloseApplication,
    create_file: ffi::functions::CreateFile,
    delete_file: ffi::functions::DeleteFile,
    enum_files: ffi::functions::EnumFiles,
    get_file_info: ffi::functions::GetFileInfo,
    read_file: ffi::functions::ReadFile,
    write_file: ffi::functions::WriteFile,
    create_container: ffi::functions::CreateContainer,
    delete_container: ffi::functions::DeleteContainer,
    open_container: ffi::functions::OpenContainer,
    close_container: ffi::functions::CloseContainer,
    enum_container: ffi::functions::EnumContainer,
    import_certificate: ffi::functions::ImportCertificate,
    export_certificate: ffi::functions::ExportCertificate,
    gen_ecc_key_pair: ffi::functions::GenECCKeyPair,
    ecc_sign_data: ffi::functions::ECCSignData,
    export_public_key: ffi::functions::ExportPublicKey,
}

/// A loaded SKF library. The function pointers in `api` stay valid while `_library` lives.
struct Library {
    api: Api,
    calls: Mutex<()>,
    _library: libloading::Library,
}

/// A failed SKF call: the function and its return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SarError {
    function: &'static str,
    code: ULONG,
}

impl fmt::Display for SarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match sar::name(self.code) {
            Some(name) => write!(f, "{} returned {name} (0x{:08X})", self.function, self.code),
            None => write!(f, "{} returned 0x{:08X}", self.function, self.code),
        }
    }
}

impl SarError {
    /// The [`TokenError`] for a failed call on the key `serial`.
    fn token_error(self, serial: &str) -> TokenError {
        match self.code {
            sar::SAR_DEVICE_REMOVED => TokenError::NotPresent(format!("{serial} ({self})")),
            sar::SAR_PIN_LOCKED => TokenError::PinLocked,
            sar::SAR_NOTSUPPORTYETERR
            | sar::SAR_NAMELENERR
            | sar::SAR_PIN_LEN_RANGE
            | sar::SAR_PIN_INVALID
            | sar::SAR_APPLICATION_NAME_INVALID
            | sar::SAR_NO_ROOM
            | sar::SAR_REACH_MAX_CONTAINER_COUNT
            | sar::SAR_KEYUSAGEERR
            | sar::SAR_MODULUSLENERR => TokenError::Refused(self.to_string()),
            sar::SAR_USER_NOT_LOGGED_IN
            | sar::SAR_APPLICATION_NOT_EXISTS
            | sar::SAR_APPLICATION_EXISTS
            | sar::SAR_USER_PIN_NOT_INITIALIZED
            | sar::SAR_KEYNOTFOUNTERR
            | sar::SAR_FILE_NOT_EXIST => TokenError::State(self.to_string()),
            _ => TokenError::Io(self.to_string()),
        }
    }
}

impl Library {
    fn load(path: &std::path::Path) -> Result<Library, TokenError> {
        // SAFETY: loading runs the library's initialisers. The path comes from the operator's
        // configuration and names the key maker's SKF library, trusted as any driver is.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| TokenError::Io(format!("cannot load the SKF library {}: {e}", path.display())))?;
        macro_rules! resolve {
            ($name:literal) => {{
                // SAFETY: the symbol is the GM/T 0016 function of that name, whose C signature
                // is the field's type (ffi::functions); the pointer is used only while
                // `library` is loaded (both live in the same `Library`).
                let symbol = unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|_| TokenError::Refused(format!("the SKF library {} has no {}", path.display(), $name)))?;
                *symbol
            }};
        }
        let api = Api {
            enum_dev: resolve!("SKF_EnumDev"),
            connect_dev: resolve!("SKF_ConnectDev"),
            disconnect_dev: resolve!("SKF_DisConnectDev"),
            set_label: resolve!("SKF_SetLabel"),
            get_dev_info: resolve!("SKF_GetDevInfo"),
            dev_auth: resolve!("SKF_DevAuth"),
            gen_random: resolve!("SKF_GenRandom"),
            change_pin: resolve!("SKF_ChangePIN"),
            get_pin_info: resolve!("SKF_GetPINInfo"),
            verify_pin: resolve!("SKF_VerifyPIN"),
            unblock_pin: resolve!("SKF_UnblockPIN"),
            clear_secure_state: resolve!("SKF_ClearSecureState"),
            create_application: resolve!("SKF_CreateApplication"),
            enum_application: resolve!("SKF_EnumApplication"),
            delete_application: resolve!("SKF_DeleteApplication"),
            open_application: resolve!("SKF_OpenApplication"),
            close_application: resolve!("SKF_CloseApplication"),
            create_file: resolve!("SKF_CreateFile"),
            delete_file: resolve!("SKF_DeleteFile"),
            enum_files: resolve!("SKF_EnumFiles"),
            get_file_info: resolve!("SKF_GetFileInfo"),
            read_file: resolve!("SKF_ReadFile"),
            write_file: resolve!("SKF_WriteFile"),
            create_container: resolve!("SKF_CreateContainer"),
            delete_container: resolve!("SKF_DeleteContainer"),
            open_container: resolve!("SKF_OpenContainer"),
            close_container: resolve!("SKF_CloseContainer"),
            enum_container: resolve!("SKF_EnumContainer"),
            import_certificate: resolve!("SKF_ImportCertificate"),
            export_certificate: resolve!("SKF_ExportCertificate"),
            gen_ecc_key_pair: resolve!("SKF_GenECCKeyPair"),
            ecc_sign_data: resolve!("SKF_ECCSignData"),
            export_public_key: resolve!("SKF_ExportPublicKey"),
        };
        Ok(Library { api, calls: Mutex::new(()), _library: library })
    }

    /// Makes one call (`call` holds the `unsafe` FFI call) under the library's lock.
    fn call(&self, function: &'static str, call: impl FnOnce(&Api) -> ULONG) -> Result<(), SarError> {
        let _serialised = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        match call(&self.api) {
            SAR_OK => Ok(()),
            code => Err(SarError { function, code }),
        }
    }

    /// A multi-string list (`SKF_EnumDev`, `SKF_EnumApplication`, …): the size first (NULL
    /// buffer), then the list.
    fn list(
        &self,
        function: &'static str,
        mut call: impl FnMut(&Api, LPSTR, *mut ULONG) -> ULONG,
    ) -> Result<Vec<String>, ListError> {
        for _ in 0..3 {
            let mut size: ULONG = 0;
            self.call(function, |api| call(api, ptr::null_mut(), &mut size))?;
            if size > MAX_LIST_BYTES {
                return Err(ListError::TooLong(function));
            }
            let mut buffer = vec![0u8; size as usize + 2];
            let mut len = size;
            match self.call(function, |api| call(api, buffer.as_mut_ptr().cast(), &mut len)) {
                Err(e) if e.code == sar::SAR_BUFFER_TOO_SMALL => continue, // the list grew meanwhile
                Err(e) => return Err(e.into()),
                Ok(()) => return Ok(parse_multi_string(&buffer[..(len as usize).min(buffer.len())])),
            }
        }
        Err(ListError::TooLong(function))
    }
}

/// Why a list could not be read.
enum ListError {
    Call(SarError),
    TooLong(&'static str),
}

impl From<SarError> for ListError {
    fn from(e: SarError) -> ListError {
        ListError::Call(e)
    }
}

impl ListError {
    fn token_error(self, serial: &str) -> TokenError {
        match self {
            ListError::Call(e) => e.token_error(serial),
            ListError::TooLong(function) => TokenError::Io(format!("{function} returned an overlong list")),
        }
    }
}

/// The names in a multi-string (each ends in NUL, the list in a second NUL).
fn parse_multi_string(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .take_while(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

/// A NUL-terminated copy of a name.
fn c_name(name: &str) -> Result<CString, TokenError> {
    CString::new(name).map_err(|_| TokenError::State(format!("{name:?} contains a NUL byte")))
}

/// A NUL-terminated copy of a PIN, zeroed on drop.
fn c_pin(pin: &Pin) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(pin.expose().len() + 1));
    bytes.extend_from_slice(pin.expose().as_bytes());
    bytes.push(0);
    bytes
}

/// A text field of `DEVINFO`: up to the first NUL, trailing spaces dropped.
fn text_field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim_end().to_owned()
}

/// An opaque handle the library gave us.
#[derive(Clone, Copy)]
struct Handle(HANDLE);

// SAFETY: a handle is an opaque value that is only ever passed back to the library that
// issued it, under that library's lock; it is never dereferenced here.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

/// What `SKF_GetDevInfo` tells.
#[derive(Debug, Clone)]
struct DevInfo {
    serial: String,
    label: String,
    manufacturer: String,
    issuer: String,
    dev_auth_alg: ULONG,
    /// The chunk size for file reads and writes.
    chunk: usize,
}

impl DevInfo {
    fn model(&self) -> String {
        if self.issuer.is_empty() || self.issuer == self.manufacturer {
            self.manufacturer.clone()
        } else {
            format!("{} ({})", self.manufacturer, self.issuer)
        }
    }
}

/// A connected device; disconnected on drop.
struct Device {
    lib: Arc<Library>,
    handle: Handle,
    /// The serial, once known (for messages).
    serial: String,
}

impl Drop for Device {
    fn drop(&mut self) {
        let handle = self.handle.0;
        // SAFETY: a handle from SKF_ConnectDev, released once.
        let _ = self.lib.call("SKF_DisConnectDev", |api| unsafe { (api.disconnect_dev)(handle) });
    }
}

impl Device {
    fn connect(lib: &Arc<Library>, name: &str) -> Result<Device, SarError> {
        let name =
            CString::new(name).map_err(|_| SarError { function: "SKF_ConnectDev", code: sar::SAR_INVALIDPARAMERR })?;
        let mut handle: HANDLE = ptr::null_mut();
        // SAFETY: a NUL-terminated name and a place for the handle, both live for the call.
        lib.call("SKF_ConnectDev", |api| unsafe { (api.connect_dev)(name.as_ptr().cast_mut(), &mut handle) })?;
        Ok(Device { lib: lib.clone(), handle: Handle(handle), serial: String::new() })
    }

    fn error(&self, e: SarError) -> TokenError {
        e.token_error(&self.serial)
    }

    fn info(&mut self) -> Result<DevInfo, TokenError> {
        // Vendors' DEVINFO differ in length (some omit MaxECCBufferSize and MaxBufferSize):
        // give the library more room than the standard's 294 bytes, zeroed.
        let mut buffer = [0u8; 1024];
        let handle = self.handle.0;
        // SAFETY: the buffer is larger than any DEVINFO and DEVINFO has alignment 1.
        self.lib
            .call("SKF_GetDevInfo", |api| unsafe { (api.get_dev_info)(handle, buffer.as_mut_ptr().cast::<DEVINFO>()) })
            .map_err(|e| self.error(e))?;
        use ffi::devinfo_offsets as at;
        let u32_at = |offset: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&buffer[offset..offset + 4]);
            u32::from_ne_bytes(bytes)
        };
        let max_buffer = u32_at(at::MAX_BUFFER_SIZE) as usize;
        let info = DevInfo {
            serial: text_field(&buffer[at::SERIAL_NUMBER..at::SERIAL_NUMBER + 32]),
            label: text_field(&buffer[at::LABEL..at::LABEL + 32]),
            manufacturer: text_field(&buffer[at::MANUFACTURER..at::MANUFACTURER + 64]),
            issuer: text_field(&buffer[at::ISSUER..at::ISSUER + 64]),
            dev_auth_alg: u32_at(at::DEV_AUTH_ALG_ID),
            chunk: if (64..=65536).contains(&max_buffer) { max_buffer.min(4096) } else { 1024 },
        };
        self.serial = info.serial.clone();
        Ok(info)
    }

    /// Device authentication (§8.2.3): the host encrypts the device's 8-byte random, padded
    /// with zeros to one block, with SM4-ECB under the device authentication key.
    fn authenticate(&self, key: &DeviceAuthKey, info: &DevInfo) -> Result<(), TokenError> {
        use sm4::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
        match info.dev_auth_alg {
            ffi::SGD_SMS4_ECB | 0 => {}
            ffi::SGD_SM1_ECB => {
                return Err(TokenError::Refused(format!(
                    "key {} authenticates with SM1 (SGD_SM1_ECB), which cannot be computed on the host; \
                     initialise this model with its maker's tool",
                    info.serial
                )));
            }
            other => {
                return Err(TokenError::Refused(format!(
                    "key {} authenticates with algorithm 0x{other:08X}; only SM4-ECB (SGD_SMS4_ECB) is supported",
                    info.serial
                )));
            }
        }
        let handle = self.handle.0;
        let mut block = Zeroizing::new([0u8; 16]);
        // SAFETY: 8 bytes written into a 16-byte buffer.
        self.lib
            .call("SKF_GenRandom", |api| unsafe { (api.gen_random)(handle, block.as_mut_ptr(), 8) })
            .map_err(|e| self.error(e))?;
        let cipher = sm4::Sm4::new_from_slice(key.bytes())
            .map_err(|_| TokenError::State("a device authentication key is 16 bytes (SM4)".to_owned()))?;
        cipher.encrypt_block(GenericArray::from_mut_slice(&mut block[..]));
        // SAFETY: 16 bytes read from a 16-byte buffer.
        self.lib.call("SKF_DevAuth", |api| unsafe { (api.dev_auth)(handle, block.as_mut_ptr(), 16) }).map_err(|e| {
            TokenError::Refused(format!(
                "{e}: device authentication failed; the configured device authentication key is not key {}'s",
                info.serial
            ))
        })
    }

    fn applications(&self) -> Result<Vec<String>, TokenError> {
        let handle = self.handle.0;
        // SAFETY: `list` passes a buffer of the announced size (or NULL) and its length.
        self.lib
            .list("SKF_EnumApplication", |api, buffer, size| unsafe { (api.enum_application)(handle, buffer, size) })
            .map_err(|e| e.token_error(&self.serial))
    }

    fn open_application(&self, name: &str, chunk: usize) -> Result<Application, TokenError> {
        let c = c_name(name)?;
        let handle = self.handle.0;
        let mut app: HANDLE = ptr::null_mut();
        // SAFETY: a NUL-terminated name and a place for the handle.
        self.lib
            .call("SKF_OpenApplication", |api| unsafe {
                (api.open_application)(handle, c.as_ptr().cast_mut(), &mut app)
            })
            .map_err(|e| self.error(e))?;
        Ok(Application { lib: self.lib.clone(), handle: Handle(app), serial: self.serial.clone(), chunk })
    }

    fn delete_application(&self, name: &str) -> Result<(), TokenError> {
        let c = c_name(name)?;
        let handle = self.handle.0;
        // SAFETY: a NUL-terminated name.
        self.lib
            .call("SKF_DeleteApplication", |api| unsafe { (api.delete_application)(handle, c.as_ptr().cast_mut()) })
            .map_err(|e| self.error(e))
    }

    fn create_application(&self, name: &str, admin: &Pin, user: &Pin, config: &SkfConfig) -> Result<(), TokenError> {
        let c = c_name(name)?;
        let (admin, user) = (c_pin(admin), c_pin(user));
        let handle = self.handle.0;
        let mut app: HANDLE = ptr::null_mut();
        // SAFETY: NUL-terminated name and PINs, and a place for the handle.
        self.lib
            .call("SKF_CreateApplication", |api| unsafe {
                (api.create_application)(
                    handle,
                    c.as_ptr().cast_mut(),
                    admin.as_ptr().cast_mut().cast(),
                    config.admin_pin_retries,
                    user.as_ptr().cast_mut().cast(),
                    config.user_pin_retries,
                    ffi::SECURE_USER_ACCOUNT,
                    &mut app,
                )
            })
            .map_err(|e| self.error(e))?;
        drop(Application { lib: self.lib.clone(), handle: Handle(app), serial: self.serial.clone(), chunk: 1024 });
        Ok(())
    }

    fn set_label(&self, label: &str) -> Result<(), TokenError> {
        let c = c_name(label)?;
        let handle = self.handle.0;
        // SAFETY: a NUL-terminated label.
        self.lib
            .call("SKF_SetLabel", |api| unsafe { (api.set_label)(handle, c.as_ptr().cast_mut()) })
            .map_err(|e| self.error(e))
    }
}

/// Which PIN of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinRole {
    Admin,
    User,
}

impl PinRole {
    fn code(self) -> ULONG {
        match self {
            PinRole::Admin => ffi::ADMIN_TYPE,
            PinRole::User => ffi::USER_TYPE,
        }
    }

    fn locked(self) -> TokenError {
        match self {
            PinRole::Admin => TokenError::State("the admin (SO) PIN of the key's application is locked".to_owned()),
            PinRole::User => TokenError::PinLocked,
        }
    }

    /// The error of a failed PIN call that returned `retry` tries left.
    fn error(self, e: SarError, retry: ULONG, serial: &str) -> TokenError {
        match e.code {
            sar::SAR_PIN_INCORRECT if retry == 0 => self.locked(),
            sar::SAR_PIN_INCORRECT => TokenError::PinIncorrect { tries_left: Some(retry) },
            sar::SAR_PIN_LOCKED => self.locked(),
            _ => e.token_error(serial),
        }
    }
}

/// An open application; its security state is cleared and it is closed on drop.
struct Application {
    lib: Arc<Library>,
    handle: Handle,
    serial: String,
    chunk: usize,
}

impl Drop for Application {
    fn drop(&mut self) {
        let handle = self.handle.0;
        // SAFETY: a handle from SKF_OpenApplication / SKF_CreateApplication, released once.
        // Real keys keep a verified PIN past SKF_CloseApplication (§7.3.6): clear it first.
        let _ = self.lib.call("SKF_ClearSecureState", |api| unsafe { (api.clear_secure_state)(handle) });
        // SAFETY: as above.
        let _ = self.lib.call("SKF_CloseApplication", |api| unsafe { (api.close_application)(handle) });
    }
}

impl Application {
    fn error(&self, e: SarError) -> TokenError {
        e.token_error(&self.serial)
    }

    fn verify_pin(&self, role: PinRole, pin: &Pin) -> Result<(), TokenError> {
        let c = c_pin(pin);
        let handle = self.handle.0;
        let mut retry: ULONG = 0;
        // SAFETY: a NUL-terminated PIN and a place for the count.
        self.lib
            .call("SKF_VerifyPIN", |api| unsafe {
                (api.verify_pin)(handle, role.code(), c.as_ptr().cast_mut().cast(), &mut retry)
            })
            .map_err(|e| role.error(e, retry, &self.serial))
    }

    /// (maximum, remaining) tries.
    fn pin_info(&self, role: PinRole) -> Result<(ULONG, ULONG), TokenError> {
        let handle = self.handle.0;
        let (mut max, mut remaining, mut default): (ULONG, ULONG, BOOL) = (0, 0, 0);
        // SAFETY: three places for the results.
        self.lib
            .call("SKF_GetPINInfo", |api| unsafe {
                (api.get_pin_info)(handle, role.code(), &mut max, &mut remaining, &mut default)
            })
            .map_err(|e| self.error(e))?;
        Ok((max, remaining))
    }

    fn change_pin(&self, role: PinRole, old: &Pin, new: &Pin) -> Result<(), TokenError> {
        let (old, new) = (c_pin(old), c_pin(new));
        let handle = self.handle.0;
        let mut retry: ULONG = 0;
        // SAFETY: NUL-terminated PINs and a place for the count.
        self.lib
            .call("SKF_ChangePIN", |api| unsafe {
                (api.change_pin)(
                    handle,
                    role.code(),
                    old.as_ptr().cast_mut().cast(),
                    new.as_ptr().cast_mut().cast(),
                    &mut retry,
                )
            })
            .map_err(|e| role.error(e, retry, &self.serial))
    }

    fn unblock_pin(&self, admin: &Pin, user: &Pin) -> Result<(), TokenError> {
        let (admin, user) = (c_pin(admin), c_pin(user));
        let handle = self.handle.0;
        let mut retry: ULONG = 0;
        // SAFETY: NUL-terminated PINs and a place for the count.
        self.lib
            .call("SKF_UnblockPIN", |api| unsafe {
                (api.unblock_pin)(handle, admin.as_ptr().cast_mut().cast(), user.as_ptr().cast_mut().cast(), &mut retry)
            })
            .map_err(|e| PinRole::Admin.error(e, retry, &self.serial))
    }

    fn containers(&self) -> Result<Vec<String>, TokenError> {
        let handle = self.handle.0;
        // SAFETY: `list` passes a buffer of the announced size (or NULL) and its length.
        self.lib
            .list("SKF_EnumContainer", |api, buffer, size| unsafe { (api.enum_container)(handle, buffer, size) })
            .map_err(|e| e.token_error(&self.serial))
    }

    fn container(&self, name: &str, create: bool) -> Result<Container, TokenError> {
        let c = c_name(name)?;
        let handle = self.handle.0;
        let mut container: HANDLE = ptr::null_mut();
        let (function, call): (&'static str, ffi::functions::OpenContainer) = if create {
            ("SKF_CreateContainer", self.lib.api.create_container)
        } else {
            ("SKF_OpenContainer", self.lib.api.open_container)
        };
        // SAFETY: a NUL-terminated name and a place for the handle.
        self.lib
            .call(function, |_| unsafe { call(handle, c.as_ptr().cast_mut(), &mut container) })
            .map_err(|e| self.error(e))?;
        Ok(Container { lib: self.lib.clone(), handle: Handle(container), serial: self.serial.clone() })
    }

    fn delete_container(&self, name: &str) -> Result<(), TokenError> {
        let c = c_name(name)?;
        let handle = self.handle.0;
        // SAFETY: a NUL-terminated name.
        self.lib
            .call("SKF_DeleteContainer", |api| unsafe { (api.delete_container)(handle, c.as_ptr().cast_mut()) })
            .map_err(|e| self.error(e))
    }

    fn files(&self) -> Result<Vec<String>, TokenError> {
        let handle = self.handle.0;
        // SAFETY: `list` passes a buffer of the announced size (or NULL) and its length.
        self.lib
            .list("SKF_EnumFiles", |api, buffer, size| unsafe { (api.enum_files)(handle, buffer, size) })
            .map_err(|e| e.token_error(&self.serial))
    }

    /// Replaces the file `name` with `data` (readable by anyone, written with the user PIN).
    fn replace_file(&self, name: &str, data: &[u8]) -> Result<(), TokenError> {
        let c = c_name(name)?;
        let handle = self.handle.0;
        if self.files()?.iter().any(|f| f == name) {
            // SAFETY: a NUL-terminated name.
            self.lib
                .call("SKF_DeleteFile", |api| unsafe { (api.delete_file)(handle, c.as_ptr().cast_mut()) })
                .map_err(|e| self.error(e))?;
        }
        if data.is_empty() {
            return Ok(());
        }
        let size = ULONG::try_from(data.len()).map_err(|_| TokenError::State("the file is too large".to_owned()))?;
        // SAFETY: a NUL-terminated name.
        self.lib
            .call("SKF_CreateFile", |api| unsafe {
                (api.create_file)(
                    handle,
                    c.as_ptr().cast_mut(),
                    size,
                    ffi::SECURE_ANYONE_ACCOUNT,
                    ffi::SECURE_USER_ACCOUNT,
                )
            })
            .map_err(|e| self.error(e))?;
        let mut offset: ULONG = 0;
        for part in data.chunks(self.chunk.max(1)) {
            let mut part = part.to_vec();
            let len = part.len() as ULONG;
            // SAFETY: `len` bytes read from `part`.
            self.lib
                .call("SKF_WriteFile", |api| unsafe {
                    (api.write_file)(handle, c.as_ptr().cast_mut(), offset, part.as_mut_ptr(), len)
                })
                .map_err(|e| self.error(e))?;
            offset += len;
        }
        Ok(())
    }

    /// The whole file `name`, or `None` if there is none.
    fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, TokenError> {
        if !self.files()?.iter().any(|f| f == name) {
            return Ok(None);
        }
        let c = c_name(name)?;
        let handle = self.handle.0;
        let mut attribute = FILEATTRIBUTE::zeroed();
        // SAFETY: a NUL-terminated name and a FILEATTRIBUTE to fill.
        self.lib
            .call("SKF_GetFileInfo", |api| unsafe {
                (api.get_file_info)(handle, c.as_ptr().cast_mut(), &mut attribute)
            })
            .map_err(|e| self.error(e))?;
        let size = attribute.FileSize;
        if size > MAX_CHAIN_BYTES {
            return Err(TokenError::Io(format!("the file {name} on key {} is larger than expected", self.serial)));
        }
        let mut data = Vec::with_capacity(size as usize);
        while (data.len() as ULONG) < size {
            let offset = data.len() as ULONG;
            let want = (size - offset).min(self.chunk as ULONG);
            let mut part = vec![0u8; want as usize];
            let mut got = want;
            // SAFETY: at most `want` bytes written into `part`, which holds `want`.
            self.lib
                .call("SKF_ReadFile", |api| unsafe {
                    (api.read_file)(handle, c.as_ptr().cast_mut(), offset, want, part.as_mut_ptr(), &mut got)
                })
                .map_err(|e| self.error(e))?;
            if got == 0 || got > want {
                return Err(TokenError::Io(format!("SKF_ReadFile returned {got} bytes of {want} asked")));
            }
            data.extend_from_slice(&part[..got as usize]);
        }
        Ok(Some(data))
    }
}

/// An open container; closed on drop.
struct Container {
    lib: Arc<Library>,
    handle: Handle,
    serial: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let handle = self.handle.0;
        // SAFETY: a handle from SKF_OpenContainer / SKF_CreateContainer, released once.
        let _ = self.lib.call("SKF_CloseContainer", |api| unsafe { (api.close_container)(handle) });
    }
}

impl Container {
    fn error(&self, e: SarError) -> TokenError {
        e.token_error(&self.serial)
    }

    fn generate_sm2(&self) -> Result<ECCPUBLICKEYBLOB, TokenError> {
        let handle = self.handle.0;
        let mut blob = ECCPUBLICKEYBLOB::zeroed();
        // SAFETY: an ECCPUBLICKEYBLOB to fill.
        self.lib
            .call("SKF_GenECCKeyPair", |api| unsafe { (api.gen_ecc_key_pair)(handle, ffi::SGD_SM2_1, &mut blob) })
            .map_err(|e| self.error(e))?;
        Ok(blob)
    }

    fn signing_public_key(&self) -> Result<ECCPUBLICKEYBLOB, TokenError> {
        let handle = self.handle.0;
        let mut blob = ECCPUBLICKEYBLOB::zeroed();
        let mut len = size_of::<ECCPUBLICKEYBLOB>() as ULONG;
        // SAFETY: a buffer of `len` bytes (alignment 1).
        self.lib
            .call("SKF_ExportPublicKey", |api| unsafe {
                (api.export_public_key)(handle, ffi::TRUE, (&raw mut blob).cast(), &mut len)
            })
            .map_err(|e| self.error(e))?;
        if len as usize != size_of::<ECCPUBLICKEYBLOB>() {
            return Err(TokenError::Io(format!("SKF_ExportPublicKey returned {len} bytes, not an ECCPUBLICKEYBLOB")));
        }
        Ok(blob)
    }

    fn import_signing_certificate(&self, der: &[u8]) -> Result<(), TokenError> {
        let handle = self.handle.0;
        let mut copy = der.to_vec();
        let len = copy.len() as ULONG;
        // SAFETY: `len` bytes read from `copy`.
        self.lib
            .call("SKF_ImportCertificate", |api| unsafe {
                (api.import_certificate)(handle, ffi::TRUE, copy.as_mut_ptr(), len)
            })
            .map_err(|e| self.error(e))
    }

    /// The signing certificate, `None` when the container has none.
    fn signing_certificate(&self) -> Result<Option<Vec<u8>>, TokenError> {
        let handle = self.handle.0;
        let mut len: ULONG = 0;
        // SAFETY: NULL asks for the size.
        let sized = self.lib.call("SKF_ExportCertificate", |api| unsafe {
            (api.export_certificate)(handle, ffi::TRUE, ptr::null_mut(), &mut len)
        });
        match sized {
            Err(e) if e.code == sar::SAR_CERTNOTFOUNTERR => return Ok(None),
            Err(e) => return Err(self.error(e)),
            Ok(()) if len == 0 => return Ok(None),
            Ok(()) if len as usize > MAX_CERTIFICATE_BYTES => {
                return Err(TokenError::Io(format!("a certificate of {len} bytes on key {}", self.serial)));
            }
            Ok(()) => {}
        }
        let mut der = vec![0u8; len as usize];
        // SAFETY: a buffer of `len` bytes.
        self.lib
            .call("SKF_ExportCertificate", |api| unsafe {
                (api.export_certificate)(handle, ffi::TRUE, der.as_mut_ptr(), &mut len)
            })
            .map_err(|e| self.error(e))?;
        der.truncate(len as usize);
        Ok(Some(der))
    }

    /// `SKF_ECCSignData` over the 32-byte digest e.
    fn sign_digest(&self, e: &[u8; 32]) -> Result<ECCSIGNATUREBLOB, SarError> {
        let handle = self.handle.0;
        let mut digest = *e;
        let mut blob = ECCSIGNATUREBLOB::zeroed();
        // SAFETY: 32 bytes read from `digest`, an ECCSIGNATUREBLOB to fill.
        self.lib.call("SKF_ECCSignData", |api| unsafe {
            (api.ecc_sign_data)(handle, digest.as_mut_ptr(), 32, &mut blob)
        })?;
        Ok(blob)
    }
}

// ---- SM2 on the host ----

/// Parses 64 hex digits at compile time.
const fn hex32(text: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not an upper-case hex digit"),
        }
    }
    let bytes = text.as_bytes();
    assert!(bytes.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

/// The SM2 curve's a, b, x_G and y_G (GM/T 0003.5, the recommended 256-bit curve).
const SM2_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const SM2_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const SM2_GX: [u8; 32] = hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const SM2_GY: [u8; 32] = hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

/// Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) (GM/T 0003.2 §5.5), ENTL_A being
/// the ID's length in bits as two bytes, big-endian. `None` for an ID of 8192 bytes or more.
pub fn sm2_z(distid: &[u8], x: &[u8; 32], y: &[u8; 32]) -> Option<[u8; 32]> {
    let entl = u16::try_from(distid.len().checked_mul(8)?).ok()?;
    let mut hash = Sm3::new();
    hash.update(entl.to_be_bytes());
    hash.update(distid);
    for part in [&SM2_A, &SM2_B, &SM2_GX, &SM2_GY, x, y] {
        hash.update(part);
    }
    let mut z = [0u8; 32];
    z.copy_from_slice(&hash.finalize());
    Some(z)
}

/// e = SM3(Z_A ‖ M): the digest `SKF_ECCSignData` signs.
pub fn sm2_digest(z: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut hash = Sm3::new();
    hash.update(z);
    hash.update(message);
    let mut e = [0u8; 32];
    e.copy_from_slice(&hash.finalize());
    e
}

/// The 32 significant bytes of a right-aligned 64-byte field; `None` if the upper half is
/// not zero (a value too large for SM2, or a left-aligned vendor quirk).
fn right_aligned(field: &[u8; 64]) -> Option<[u8; 32]> {
    let (high, low) = field.split_at(32);
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(low);
    Some(out)
}

/// A 32-byte value right-aligned in a 64-byte field.
fn right_align(value: &[u8; 32]) -> [u8; 64] {
    let mut field = [0u8; 64];
    field[32..].copy_from_slice(value);
    field
}

/// The `ECCPUBLICKEYBLOB` of an SM2 point (x, y).
pub fn sm2_public_key_blob(x: &[u8; 32], y: &[u8; 32]) -> ECCPUBLICKEYBLOB {
    ECCPUBLICKEYBLOB { BitLen: 256, XCoordinate: right_align(x), YCoordinate: right_align(y) }
}

/// The point (x, y) of an SM2 `ECCPUBLICKEYBLOB`.
pub fn sm2_point_from_blob(blob: &ECCPUBLICKEYBLOB) -> Result<([u8; 32], [u8; 32]), String> {
    let bits = blob.BitLen;
    if bits != 256 {
        return Err(format!("the public key blob is of a {bits}-bit key, not SM2's 256"));
    }
    let (x, y) = (blob.XCoordinate, blob.YCoordinate);
    match (right_aligned(&x), right_aligned(&y)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err("the public key blob's coordinates are not right-aligned 256-bit values".to_owned()),
    }
}

/// The SubjectPublicKeyInfo (id-ecPublicKey, namedCurve SM2, uncompressed point) of an SM2
/// `ECCPUBLICKEYBLOB`; the point must lie on the curve.
pub fn sm2_spki_from_blob(blob: &ECCPUBLICKEYBLOB) -> Result<SubjectPublicKeyInfoOwned, String> {
    let (x, y) = sm2_point_from_blob(blob)?;
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: oids::EC_PUBLIC_KEY, parameters: Some(Any::from(&oids::SM2_CURVE)) },
        subject_public_key: BitString::from_bytes(&point).map_err(|e| e.to_string())?,
    };
    match key_algorithm(&spki) {
        Ok(Algorithm::Sm2) => Ok(spki),
        Ok(other) => Err(format!("the key is {other}, not SM2")),
        Err(e) => Err(e.to_string()),
    }
}

/// The `ECCSIGNATUREBLOB` of (r, s).
pub fn sm2_signature_blob(r: &[u8; 32], s: &[u8; 32]) -> ECCSIGNATUREBLOB {
    ECCSIGNATUREBLOB { r: right_align(r), s: right_align(s) }
}

/// The DER `SEQUENCE { r INTEGER, s INTEGER }` of an `ECCSIGNATUREBLOB`.
pub fn sm2_signature_der(blob: &ECCSIGNATUREBLOB) -> Result<Vec<u8>, String> {
    let (r, s) = (blob.r, blob.s);
    let (Some(r), Some(s)) = (right_aligned(&r), right_aligned(&s)) else {
        return Err("the signature blob's r and s are not right-aligned 256-bit values".to_owned());
    };
    fn integer(out: &mut Vec<u8>, value: &[u8; 32]) {
        let first = value.iter().position(|&b| b != 0).unwrap_or(31);
        let digits = &value[first..];
        let pad = digits[0] & 0x80 != 0;
        out.push(0x02);
        out.push((digits.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(digits);
    }
    let mut body = Vec::with_capacity(70);
    integer(&mut body, &r);
    integer(&mut body, &s);
    let mut der = vec![0x30, body.len() as u8];
    der.extend_from_slice(&body);
    Ok(der)
}

/// Splits concatenated DER certificates.
fn split_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut reader = SliceReader::new(bytes).map_err(|e| e.to_string())?;
    let mut certificates = Vec::new();
    while !reader.is_finished() {
        let certificate = Certificate::decode(&mut reader).map_err(|e| e.to_string())?;
        certificates.push(certificate.to_der().map_err(|e| e.to_string())?);
    }
    Ok(certificates)
}

/// The SKF signer: a container kept open with the user PIN verified. Fields drop in order:
/// container, application, device.
struct SkfSigner {
    container: Container,
    _application: Application,
    _device: Device,
    spki: SubjectPublicKeyInfoOwned,
    z: [u8; 32],
}

impl Signer for SkfSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Sm2
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// SM3(Z_A ‖ M) here, the signature of that digest on the key (GM/T 0016 §7.6.13).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let e = sm2_digest(&self.z, message);
        let blob = self.container.sign_digest(&e).map_err(|e| PkiError::Signing(e.to_string()))?;
        sm2_signature_der(&blob).map_err(PkiError::Signing)
    }

    fn sm2_distid(&self) -> &str {
        DEFAULT_SM2_DISTID
    }
}

// ---- The reader and the token ----

/// The SM2 UKEYs one SKF library reaches. See the [module docs](self).
#[derive(Clone)]
pub struct SkfTokenReader {
    lib: Arc<Library>,
    config: Arc<SkfConfig>,
}

impl fmt::Debug for SkfTokenReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkfTokenReader").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SkfTokenReader {
    /// Loads the library and resolves the functions the driver needs (a library without one is
    /// [`TokenError::Refused`], naming it).
    pub fn new(config: SkfConfig) -> Result<SkfTokenReader, TokenError> {
        config.check()?;
        let lib = Library::load(&config.library)?;
        Ok(SkfTokenReader { lib: Arc::new(lib), config: Arc::new(config) })
    }

    /// The configuration.
    pub fn config(&self) -> &SkfConfig {
        &self.config
    }

    /// The names `SKF_EnumDev(TRUE)` reports.
    fn device_names(&self) -> Result<Vec<String>, TokenError> {
        // SAFETY: `list` passes a buffer of the announced size (or NULL) and its length.
        self.lib
            .list("SKF_EnumDev", |api, buffer, size| unsafe { (api.enum_dev)(ffi::TRUE, buffer, size) })
            .map_err(|e| e.token_error("(enumeration)"))
    }

    /// Each present device, connected, with its information; devices pulled out meanwhile are
    /// skipped.
    fn devices(&self) -> Result<Vec<(String, Device, DevInfo)>, TokenError> {
        let mut found = Vec::new();
        for name in self.device_names()? {
            let mut device = match Device::connect(&self.lib, &name) {
                Ok(device) => device,
                Err(e) if e.code == sar::SAR_DEVICE_REMOVED => continue,
                Err(e) => return Err(e.token_error(&name)),
            };
            match device.info() {
                Ok(info) => found.push((name, device, info)),
                Err(TokenError::NotPresent(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    fn token(&self, name: String, info: &DevInfo) -> SkfToken {
        SkfToken { lib: self.lib.clone(), config: self.config.clone(), name, serial: info.serial.clone() }
    }
}

impl TokenReader for SkfTokenReader {
    fn name(&self) -> &'static str {
        NAME
    }

    fn present(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let mut present = Vec::new();
        for (name, device, info) in self.devices()? {
            match self.token(name, &info).describe(&device, &info) {
                Ok(token) => present.push(token),
                Err(TokenError::NotPresent(_)) => {}
                Err(e) => return Err(e),
            }
        }
        present.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(present)
    }

    fn blank_token(&self) -> Result<Box<dyn Token>, TokenError> {
        let mut devices = self.devices()?;
        devices.sort_by(|a, b| a.2.serial.cmp(&b.2.serial));
        for (name, _device, info) in devices {
            if !crate::is_personalised_label(&info.label) {
                return Ok(Box::new(self.token(name, &info)));
            }
        }
        Err(TokenError::NotPresent("no blank SKF key: every key present carries an order label".to_owned()))
    }

    fn open(&self, serial: &str) -> Result<Box<dyn Token>, TokenError> {
        for (name, _device, info) in self.devices()? {
            if info.serial == serial {
                return Ok(Box::new(self.token(name, &info)));
            }
        }
        Err(TokenError::NotPresent(serial.to_owned()))
    }
}

/// One SM2 UKEY, found by serial number. Holds no handle between operations.
#[derive(Clone)]
pub struct SkfToken {
    lib: Arc<Library>,
    config: Arc<SkfConfig>,
    /// The device name last seen; names may change when keys are plugged in again.
    name: String,
    serial: String,
}

impl fmt::Debug for SkfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkfToken").field("serial", &self.serial).field("name", &self.name).finish_non_exhaustive()
    }
}

impl SkfToken {
    /// The key's serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Connects to this key: by its last name, else by looking for its serial.
    fn connect(&self) -> Result<(Device, DevInfo), TokenError> {
        if let Ok(mut device) = Device::connect(&self.lib, &self.name)
            && let Ok(info) = device.info()
            && info.serial == self.serial
        {
            return Ok((device, info));
        }
        let reader = SkfTokenReader { lib: self.lib.clone(), config: self.config.clone() };
        for (_name, device, info) in reader.devices()? {
            if info.serial == self.serial {
                return Ok((device, info));
            }
        }
        Err(TokenError::NotPresent(self.serial.clone()))
    }

    fn has_application(&self, device: &Device) -> Result<bool, TokenError> {
        Ok(device.applications()?.iter().any(|a| *a == self.config.application))
    }

    /// The key's application, or `State` if yiqian never created it.
    fn application(&self, device: &Device, info: &DevInfo) -> Result<Application, TokenError> {
        if !self.has_application(device)? {
            return Err(TokenError::State(format!(
                "key {} is not initialised (no {} application)",
                self.serial, self.config.application
            )));
        }
        device.open_application(&self.config.application, info.chunk)
    }

    /// Connects, opens the application and verifies the user PIN.
    fn user_session(&self, user_pin: &Pin) -> Result<(Device, DevInfo, Application), TokenError> {
        let (device, info) = self.connect()?;
        let app = self.application(&device, &info)?;
        app.verify_pin(PinRole::User, user_pin)?;
        Ok((device, info, app))
    }

    fn describe(&self, device: &Device, info: &DevInfo) -> Result<TokenInfo, TokenError> {
        let initialised = self.has_application(device)?;
        let (user_pin_locked, user_pin_tries_left) = if initialised {
            let app = device.open_application(&self.config.application, info.chunk)?;
            match app.pin_info(PinRole::User) {
                Ok((_max, remaining)) => (remaining == 0, Some(remaining)),
                // A model without SKF_GetPINInfo: the lock shows at the next PIN check.
                Err(TokenError::Refused(_)) => (false, None),
                Err(e) => return Err(e),
            }
        } else {
            (false, None)
        };
        Ok(TokenInfo {
            serial: info.serial.clone(),
            label: info.label.clone(),
            model: info.model(),
            initialised,
            user_pin_locked,
            user_pin_tries_left,
        })
    }
}

/// The container of a key ID: its hex.
fn container_name(key_id: &[u8]) -> Result<String, TokenError> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_BYTES {
        return Err(TokenError::State(format!("a key ID is 1 to {MAX_KEY_ID_BYTES} bytes on an SKF key")));
    }
    Ok(hex::encode(key_id))
}

fn no_such_key(key_id: &[u8]) -> TokenError {
    TokenError::State(format!("the token has no key with ID {}", hex::encode(key_id)))
}

fn parse_certificate(der: &[u8]) -> Result<Certificate, TokenError> {
    if der.len() > MAX_CERTIFICATE_BYTES {
        return Err(TokenError::State(format!("a certificate is at most {MAX_CERTIFICATE_BYTES} bytes")));
    }
    Certificate::from_der(der).map_err(|e| TokenError::State(format!("not a DER certificate: {e}")))
}

impl Token for SkfToken {
    fn info(&self) -> Result<TokenInfo, TokenError> {
        let (device, info) = self.connect()?;
        self.describe(&device, &info)
    }

    fn initialise(&mut self, current_so_pin: Option<&Pin>, so_pin: &Pin, label: &str) -> Result<(), TokenError> {
        if label.len() > MAX_LABEL_BYTES || !label.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(TokenError::State(format!(
                "an SKF key label is at most {MAX_LABEL_BYTES} printable ASCII characters"
            )));
        }
        let (device, info) = self.connect()?;
        device.authenticate(&self.config.device_auth_key, &info)?;
        let name = &self.config.application;
        if self.has_application(&device)? {
            let current = match current_so_pin {
                Some(pin) => pin,
                None if crate::is_personalised_label(&info.label) => {
                    return Err(TokenError::State(format!(
                        "key {} was personalised (label {:?}): re-initialising it needs its current SO PIN",
                        self.serial, info.label
                    )));
                }
                None => self.config.factory_admin_pin.as_ref().ok_or_else(|| {
                    TokenError::State(format!(
                        "key {} already has a {name} application: re-initialising it needs its admin (SO) PIN",
                        self.serial
                    ))
                })?,
            };
            device.open_application(name, info.chunk)?.verify_pin(PinRole::Admin, current)?;
            device.delete_application(name)?;
        }
        // The user PIN is set by init_user_pin (SKF_UnblockPIN); until then it is random.
        let temporary = Pin::random(16);
        device.create_application(name, so_pin, &temporary, &self.config)?;
        device.set_label(label)
    }

    fn init_user_pin(&mut self, so_pin: &Pin, user_pin: &Pin) -> Result<(), TokenError> {
        let (device, info) = self.connect()?;
        self.application(&device, &info)?.unblock_pin(so_pin, user_pin)
    }

    fn change_user_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), TokenError> {
        let (device, info) = self.connect()?;
        self.application(&device, &info)?.change_pin(PinRole::User, old, new)
    }

    fn generate_key_pair(
        &mut self,
        user_pin: &Pin,
        algorithm: Algorithm,
        key_id: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        if algorithm != Algorithm::Sm2 {
            return Err(TokenError::Unsupported(algorithm));
        }
        let name = container_name(key_id)?;
        let (_device, _info, app) = self.user_session(user_pin)?;
        if app.containers()?.contains(&name) {
            return Err(TokenError::State(format!("the token already has a key with ID {name}")));
        }
        let container = app.container(&name, true)?;
        let generated = container.generate_sm2().and_then(|blob| {
            sm2_spki_from_blob(&blob)
                .map_err(|e| TokenError::Io(format!("SKF_GenECCKeyPair on key {}: {e}", self.serial)))
        });
        match generated {
            Ok(spki) => spki.to_der().map_err(|e| TokenError::Io(format!("public key: {e}"))),
            Err(e) => {
                drop(container);
                let _ = app.delete_container(&name);
                Err(e)
            }
        }
    }

    fn signer(&self, user_pin: &Pin, key_id: &[u8]) -> Result<Box<dyn Signer>, TokenError> {
        let name = container_name(key_id)?;
        let (device, _info, app) = self.user_session(user_pin)?;
        if !app.containers()?.contains(&name) {
            return Err(no_such_key(key_id));
        }
        let container = app.container(&name, false)?;
        let blob = container.signing_public_key()?;
        let invalid =
            |e: String| TokenError::Io(format!("the public key of container {name} on key {}: {e}", self.serial));
        let (x, y) = sm2_point_from_blob(&blob).map_err(invalid)?;
        let spki = sm2_spki_from_blob(&blob).map_err(invalid)?;
        let z = sm2_z(DEFAULT_SM2_DISTID.as_bytes(), &x, &y)
            .ok_or_else(|| TokenError::State("the SM2 distinguishing ID is too long".to_owned()))?;
        Ok(Box::new(SkfSigner { container, _application: app, _device: device, spki, z }))
    }

    fn write_certificate(&mut self, user_pin: &Pin, key_id: &[u8], der: &[u8]) -> Result<(), TokenError> {
        let certificate = parse_certificate(der)?;
        let certified = certificate
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| TokenError::State(format!("the certificate's public key: {e}")))?;
        let name = container_name(key_id)?;
        let (_device, _info, app) = self.user_session(user_pin)?;
        if !app.containers()?.contains(&name) {
            return Err(no_such_key(key_id));
        }
        let container = app.container(&name, false)?;
        let on_key = sm2_spki_from_blob(&container.signing_public_key()?)
            .and_then(|spki| spki.to_der().map_err(|e| e.to_string()))
            .map_err(|e| TokenError::Io(format!("the public key of container {name}: {e}")))?;
        if on_key != certified {
            return Err(TokenError::State("certificate does not match the key".to_owned()));
        }
        container.import_signing_certificate(der)
    }

    fn write_ca_certificates(&mut self, user_pin: &Pin, chain: &[Vec<u8>]) -> Result<(), TokenError> {
        let mut bundle = Vec::new();
        for der in chain {
            parse_certificate(der)?;
            bundle.extend_from_slice(der);
        }
        if bundle.len() > MAX_CHAIN_BYTES as usize {
            return Err(TokenError::State("the CA chain is too large for the key".to_owned()));
        }
        let (_device, _info, app) = self.user_session(user_pin)?;
        app.replace_file(CA_CHAIN_FILE, &bundle)
    }

    fn certificates(&self) -> Result<Vec<Vec<u8>>, TokenError> {
        let (device, info) = self.connect()?;
        if !self.has_application(&device)? {
            return Ok(Vec::new());
        }
        let app = device.open_application(&self.config.application, info.chunk)?;
        let mut certificates = Vec::new();
        for name in app.containers()? {
            if let Some(der) = app.container(&name, false)?.signing_certificate()? {
                certificates.push(der);
            }
        }
        if let Some(bundle) = app.read_file(CA_CHAIN_FILE)? {
            let chain = split_certificates(&bundle)
                .map_err(|e| TokenError::Io(format!("the CA chain on key {} is damaged: {e}", self.serial)))?;
            certificates.extend(chain);
        }
        Ok(certificates)
    }

    fn destroy_key(&mut self, user_pin: &Pin, key_id: &[u8]) -> Result<(), TokenError> {
        let name = container_name(key_id)?;
        let (_device, _info, app) = self.user_session(user_pin)?;
        if !app.containers()?.contains(&name) {
            return Err(no_such_key(key_id));
        }
        app.delete_container(&name)
    }
}

#[cfg(test)]
mod tests;
