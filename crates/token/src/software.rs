//! The software token: the embedded default that stands in for a real UKEY until the PKCS#11
//! UKEY driver comes. It behaves like a PKCS#11 smart card — an SO PIN and a user PIN with
//! retry counters, keys generated "on the token" and usable only after a user login,
//! certificates readable without one — but its "chip" is a file, and its keys live in this
//! process's memory while they sign.
//!
//! # Storage
//!
//! A [`SoftwareTokenReader`] is a directory; each token is one file `<serial>.token` in it,
//! e.g. `SW3F09A1C27B44E0.token` (serials are `SW` and 14 upper-case hex digits). Every change
//! is written atomically (a temporary file, fsync, rename, fsync of the directory) with mode
//! 0600, and each operation holds an exclusive lock on `<serial>.lock` beside it, so two
//! handles on the same token — in this process or another — take turns like card sessions.
//!
//! The file is JSON (binary fields in standard base64, key IDs in hex):
//!
//! ```json
//! {
//!   "format": "yiqian-software-token/1",
//!   "serial": "SW3F09A1C27B44E0",
//!   "label": "order 2025-000123",
//!   "so_pin": {
//!     "kdf": { "algorithm": "argon2id", "version": 19, "memory_kib": 8192, "iterations": 1,
//!              "parallelism": 1, "salt": "…16 bytes…" },
//!     "wrapped_data_key": "…nonce ‖ AES-256-GCM(data key) ‖ tag…",
//!     "tries_left": 10, "max_tries": 10
//!   },
//!   "user_pin": { …the same, under the user PIN…, "tries_left": 6, "max_tries": 6 },
//!   "objects": [
//!     { "id": "01", "algorithm": "sm2", "public_key": "…SPKI DER…",
//!       "private_key": "…nonce ‖ AES-256-GCM(PKCS#8 DER) ‖ tag…", "certificate": "…DER…" }
//!   ]
//! }
//! ```
//!
//! `so_pin` is absent on a blank token, `user_pin` until `C_InitPIN`; `ca_certificates`
//! (the CA chain, base64 DER) is absent in files written before it existed, and so is
//! `max_tries` (the counter's maximum; [`SO_PIN_TRIES`] / [`USER_PIN_TRIES`] then).
//!
//! The PIN slots, the sealing of keys, the retry counter and the file helpers live in
//! [`storage`], which the software SKF library (`yiqian-softskf`) uses too.
//!
//! # Key protection
//!
//! `C_InitToken` draws a random 256-bit *data key*. Each private key's PKCS#8 DER is
//! encrypted under it with AES-256-GCM, the associated data binding the ciphertext to the
//! token serial, the key ID, the algorithm and the public key (so objects cannot be swapped
//! or relabelled). The data key itself is stored twice, wrapped (AES-256-GCM) under a key
//! derived from the SO PIN and under one derived from the user PIN. Setting a new user PIN
//! with the SO PIN (the counter's "PIN unlock") unwraps the data key with the SO PIN and
//! wraps it anew under the new user PIN: the keys on the token stay usable. A PIN is
//! verified by unwrapping the data key (the GCM tag); neither PIN nor any key is stored in
//! the clear.
//!
//! PIN-derived keys come from Argon2id (RFC 9106, version 0x13) with a fresh random 16-byte
//! salt per wrap, 8 MiB of memory, 1 pass and 1 lane — about 7 ms per PIN check in a release
//! build, 80 ms unoptimised (so tests that personalise tokens stay quick). Argon2id rather
//! than PBKDF2 because it is memory-hard: guessing costs memory as well as time on GPUs. The
//! parameters are modest on purpose: they sit below OWASP's password minimum (19 MiB, 2
//! passes), but no affordable cost makes an 8-digit PIN safe against someone holding the file
//! (see the limits below), while the 16-digit SO PIN is out of reach either way. They are
//! recorded per wrap in the file, so they can be raised without breaking existing tokens.
//!
//! Retry counters work like a card's: the counter is decremented and written to disk
//! *before* the PIN is checked, and restored after a correct PIN, so killing the process
//! mid-check gains no free try. The user PIN locks after [`USER_PIN_TRIES`] wrong tries
//! (`TokenError::PinLocked`; the try that locks it reports that too); the SO PIN after
//! [`SO_PIN_TRIES`] (`TokenError::State("SO PIN locked")`), which leaves the token unusable
//! for anything needing the SO PIN, as on a card.
//!
//! # Honest limits
//!
//! This is a stand-in, not a secure element:
//! - the counters are enforced only by this code: whoever can copy the token file can try
//!   PINs offline, limited only by Argon2id's cost. An 8-digit user PIN is 10⁸ guesses, which
//!   is within reach of a determined attacker with the file; the 16-digit SO PIN is not. Keep
//!   the reader directory as private as a CA key directory;
//! - keys are not bound to hardware: the file can be copied, and [`Token::signer`] hands out
//!   the decrypted key as an in-process [`SoftwareKey`] signer. It never leaves the process,
//!   but it is in this process's memory for as long as the signer lives (this module zeroes
//!   its own copies of the PKCS#8 bytes and the data key; the key object is the PKI
//!   backends' to clear);
//! - the counters, label and certificates are not authenticated (they must be readable and
//!   writable without a PIN); tampering with them can reset a counter but reveals no key.

pub mod storage;

use crate::{Pin, Token, TokenError, TokenInfo, TokenReader};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use storage::{
    Bytes, DataKey, PinCheck, PinSlot, PinStore, aad, check_pin, create_private_dir, lock_file, new_data_key, open,
    read_bounded, seal, write_atomically,
};
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{Algorithm, Signer, SoftwareKey};

/// The model reported by [`Token::info`] and the name of the reader.
pub const MODEL: &str = "software";

/// Wrong user PIN tries before the user PIN locks.
pub const USER_PIN_TRIES: u32 = 6;

/// Wrong SO PIN tries before the SO PIN locks (for good).
pub const SO_PIN_TRIES: u32 = 10;

/// The longest label, in bytes of UTF-8 (PKCS#11 `CK_TOKEN_INFO.label` is 32 bytes).
pub const MAX_LABEL_BYTES: usize = crate::MAX_LABEL_BYTES;

/// The longest key ID (`CKA_ID`), in bytes.
pub const MAX_KEY_ID_BYTES: usize = 64;

/// The largest certificate a token stores, in bytes of DER.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// The `format` of token files this code reads and writes.
const FORMAT: &str = "yiqian-software-token/1";

/// The largest token file read (a handful of keys and certificates is a few tens of KiB).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A directory of software tokens, the software "reader". See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SoftwareTokenReader {
    dir: PathBuf,
}

impl SoftwareTokenReader {
    /// A reader over `dir`, which is created (mode 0700) when the first token is made.
    pub fn new(dir: PathBuf) -> SoftwareTokenReader {
        SoftwareTokenReader { dir }
    }

    /// The directory holding the token files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes a new blank token with a fresh random serial and returns it.
    pub fn create_blank(&self) -> Result<SoftwareToken, TokenError> {
        create_private_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        for _ in 0..16 {
            let token = SoftwareToken { serial: random_serial(), dir: self.dir.clone() };
            let _lock = token.lock()?;
            if token.path().exists() {
                continue; // 2^56 serials: a clash is all but impossible, but never overwrite.
            }
            let blank = TokenFile {
                format: FORMAT.to_owned(),
                serial: token.serial.clone(),
                label: String::new(),
                so_pin: None,
                user_pin: None,
                objects: Vec::new(),
                ca_certificates: Vec::new(),
            };
            token.store(&blank)?;
            return Ok(token);
        }
        Err(TokenError::Io("could not find a free token serial".to_owned()))
    }

    /// The token with `serial`: `NotPresent` if there is none, `State` for a serial this
    /// reader never makes (which also keeps paths inside the directory).
    pub fn open_token(&self, serial: &str) -> Result<SoftwareToken, TokenError> {
        if !is_valid_serial(serial) {
            return Err(TokenError::State(format!("{serial:?} is not a software token serial (SW and 14 hex digits)")));
        }
        let token = SoftwareToken { serial: serial.to_owned(), dir: self.dir.clone() };
        let _lock = token.lock_existing()?;
        token.load()?; // a damaged file is reported now rather than at first use
        Ok(token)
    }
}

impl TokenReader for SoftwareTokenReader {
    fn name(&self) -> &'static str {
        MODEL
    }

    fn present(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, e))?;
            let name = entry.file_name();
            let Some(serial) = name.to_str().and_then(|n| n.strip_suffix(".token")) else { continue };
            if !is_valid_serial(serial) {
                continue;
            }
            match self.open_token(serial).and_then(|t| t.info()) {
                Ok(info) => found.push(info),
                Err(TokenError::NotPresent(_)) => {} // removed meanwhile
                Err(e) => return Err(e),
            }
        }
        found.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(found)
    }

    fn blank_token(&self) -> Result<Box<dyn Token>, TokenError> {
        Ok(Box::new(self.create_blank()?))
    }

    fn open(&self, serial: &str) -> Result<Box<dyn Token>, TokenError> {
        Ok(Box::new(self.open_token(serial)?))
    }
}

/// One software token, a handle on its file. It holds no secret: every operation reads the
/// file under the token's lock, and the data key lives only for the length of a call.
#[derive(Debug, Clone)]
pub struct SoftwareToken {
    serial: String,
    dir: PathBuf,
}

/// Which PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    So,
    User,
}

impl Role {
    fn max_tries(self) -> u32 {
        match self {
            Role::So => SO_PIN_TRIES,
            Role::User => USER_PIN_TRIES,
        }
    }

    fn locked(self) -> TokenError {
        match self {
            Role::So => TokenError::State("SO PIN locked".to_owned()),
            Role::User => TokenError::PinLocked,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::So => "so",
            Role::User => "user",
        }
    }
}

impl SoftwareToken {
    /// The token's serial.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The token's file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.token", self.serial))
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.serial))
    }

    /// Takes the token's exclusive lock (blocking), creating the lock file.
    fn lock(&self) -> Result<File, TokenError> {
        let path = self.lock_path();
        lock_file(&path).map_err(|e| io_error(&path, e))
    }

    /// The lock of a token that must exist: `NotPresent` without creating a lock file when
    /// the token file is missing.
    fn lock_existing(&self) -> Result<File, TokenError> {
        if !self.path().exists() {
            return Err(TokenError::NotPresent(self.serial.clone()));
        }
        self.lock()
    }

    /// Reads the token file (call with the lock held).
    fn load(&self) -> Result<TokenFile, TokenError> {
        let path = self.path();
        let bytes = match read_bounded(&path, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(TokenError::NotPresent(self.serial.clone())),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(corrupt(&path, "larger than any token file"));
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        let state: TokenFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
        if state.format != FORMAT {
            return Err(corrupt(&path, format!("format {:?}, expected {FORMAT:?}", state.format)));
        }
        if state.serial != self.serial {
            return Err(corrupt(&path, format!("it holds token {:?}", state.serial)));
        }
        for slot in [&state.so_pin, &state.user_pin].into_iter().flatten() {
            slot.check().map_err(|e| corrupt(&path, e))?;
        }
        if state.user_pin.is_some() && state.so_pin.is_none() {
            return Err(corrupt(&path, "a user PIN on an uninitialised token"));
        }
        Ok(state)
    }

    /// Writes the token file atomically (call with the lock held).
    fn store(&self, state: &TokenFile) -> Result<(), TokenError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| TokenError::Io(format!("token file: {e}")))?;
        let path = self.path();
        let tmp = self.dir.join(format!(".{}.token.tmp", self.serial));
        write_atomically(&self.dir, &tmp, &path, &bytes).map_err(|e| io_error(&path, e))
    }

    /// Opens a session: the lock and the current state.
    fn session(&self) -> Result<Session<'_>, TokenError> {
        let lock = self.lock_existing()?;
        let state = self.load()?;
        Ok(Session { token: self, _lock: lock, state })
    }
}

/// A locked token and its state, for the length of one operation.
struct Session<'a> {
    token: &'a SoftwareToken,
    _lock: File,
    state: TokenFile,
}

impl Session<'_> {
    fn save(&self) -> Result<(), TokenError> {
        self.token.store(&self.state)
    }

    fn slot_mut(&mut self, role: Role) -> Result<&mut PinSlot, TokenError> {
        let not_initialised = || TokenError::State("the token is not initialised".to_owned());
        match role {
            Role::So => self.state.so_pin.as_mut().ok_or_else(not_initialised),
            Role::User => {
                if self.state.so_pin.is_none() {
                    return Err(not_initialised());
                }
                self.state.user_pin.as_mut().ok_or_else(|| TokenError::State("the user PIN is not set".to_owned()))
            }
        }
    }

    /// `C_Login`: checks `pin` for `role` against its retry counter and returns the data key.
    /// The counter is decremented and saved before the check and restored after a correct PIN
    /// ([`storage::check_pin`]).
    fn login(&mut self, role: Role, pin: &Pin) -> Result<DataKey, TokenError> {
        let context = wrap_aad(&self.state.serial, role);
        match check_pin(self, role, &context, pin.expose().as_bytes(), role.max_tries())? {
            PinCheck::Correct(key) => Ok(key),
            PinCheck::Incorrect { tries_left: 0 } | PinCheck::Locked => Err(role.locked()),
            PinCheck::Incorrect { tries_left } => Err(TokenError::PinIncorrect { tries_left: Some(tries_left) }),
        }
    }

    fn object(&self, key_id: &[u8]) -> Result<&KeyObject, TokenError> {
        self.state.objects.iter().find(|o| o.id.0 == key_id).ok_or_else(|| no_such_key(key_id))
    }
}

impl PinStore for Session<'_> {
    type Slot = Role;

    fn pin_slot(&mut self, role: Role) -> Result<&mut PinSlot, TokenError> {
        self.slot_mut(role)
    }

    fn save(&mut self) -> Result<(), TokenError> {
        Session::save(self)
    }
}

impl Token for SoftwareToken {
    fn info(&self) -> Result<TokenInfo, TokenError> {
        let _lock = self.lock_existing()?;
        let state = self.load()?;
        Ok(TokenInfo {
            serial: state.serial,
            label: state.label,
            model: MODEL.to_owned(),
            initialised: state.so_pin.is_some(),
            user_pin_locked: state.user_pin.as_ref().is_some_and(|slot| slot.tries_left() == 0),
            user_pin_tries_left: state.user_pin.as_ref().map(|slot| slot.tries_left()),
        })
    }

    fn initialise(&mut self, current_so_pin: Option<&Pin>, so_pin: &Pin, label: &str) -> Result<(), TokenError> {
        crate::check_label(label)?;
        let mut session = self.session()?;
        if session.state.so_pin.is_some() {
            // Re-initialising: C_InitToken checks the current SO PIN.
            let current = current_so_pin.ok_or_else(|| {
                TokenError::State("the token is initialised: re-initialising it needs its current SO PIN".to_owned())
            })?;
            session.login(Role::So, current)?;
        }
        let data_key = new_data_key();
        let serial = session.state.serial.clone();
        session.state.so_pin = Some(wrap_data_key(&data_key, Role::So, &serial, so_pin)?);
        session.state.user_pin = None;
        session.state.objects.clear();
        session.state.ca_certificates.clear();
        session.state.label = label.to_owned();
        session.save()
    }

    fn init_user_pin(&mut self, so_pin: &Pin, user_pin: &Pin) -> Result<(), TokenError> {
        let mut session = self.session()?;
        let data_key = session.login(Role::So, so_pin)?;
        let serial = session.state.serial.clone();
        session.state.user_pin = Some(wrap_data_key(&data_key, Role::User, &serial, user_pin)?);
        session.save()
    }

    fn change_user_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), TokenError> {
        let mut session = self.session()?;
        let data_key = session.login(Role::User, old)?;
        let serial = session.state.serial.clone();
        session.state.user_pin = Some(wrap_data_key(&data_key, Role::User, &serial, new)?);
        session.save()
    }

    fn generate_key_pair(
        &mut self,
        user_pin: &Pin,
        algorithm: Algorithm,
        key_id: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        if key_id.is_empty() || key_id.len() > MAX_KEY_ID_BYTES {
            return Err(TokenError::State(format!("a key ID is 1 to {MAX_KEY_ID_BYTES} bytes")));
        }
        let mut session = self.session()?;
        let data_key = session.login(Role::User, user_pin)?;
        if session.object(key_id).is_ok() {
            return Err(TokenError::State(format!("the token already has a key with ID {}", hex::encode(key_id))));
        }
        let key = SoftwareKey::generate(algorithm)?;
        let public_key = key.public_key().to_der().map_err(|e| TokenError::Io(format!("public key: {e}")))?;
        let pkcs8 = key.to_pkcs8_der()?;
        let aad = key_aad(&session.state.serial, key_id, algorithm, &public_key);
        let private_key = seal(&data_key, &aad, &pkcs8)?;
        session.state.objects.push(KeyObject {
            id: HexBytes(key_id.to_vec()),
            algorithm: AlgorithmName(algorithm),
            public_key: Bytes(public_key.clone()),
            private_key: Bytes(private_key),
            certificate: None,
        });
        session.save()?;
        Ok(public_key)
    }

    fn signer(&self, user_pin: &Pin, key_id: &[u8]) -> Result<Box<dyn Signer>, TokenError> {
        let mut session = self.session()?;
        let data_key = session.login(Role::User, user_pin)?;
        let object = session.object(key_id)?;
        let key = decrypt_key(&data_key, &session.state.serial, object).map_err(|e| corrupt(&self.path(), e))?;
        Ok(Box::new(key))
    }

    fn write_certificate(&mut self, user_pin: &Pin, key_id: &[u8], der: &[u8]) -> Result<(), TokenError> {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(TokenError::State(format!("a certificate is at most {MAX_CERTIFICATE_BYTES} bytes")));
        }
        let certificate =
            Certificate::from_der(der).map_err(|e| TokenError::State(format!("not a DER certificate: {e}")))?;
        let certified_key = certificate
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| TokenError::State(format!("the certificate's public key: {e}")))?;
        let mut session = self.session()?;
        session.login(Role::User, user_pin)?;
        if session.object(key_id)?.public_key.0 != certified_key {
            return Err(TokenError::State("certificate does not match the key".to_owned()));
        }
        if let Some(object) = session.state.objects.iter_mut().find(|o| o.id.0 == key_id) {
            object.certificate = Some(Bytes(der.to_vec()));
        }
        session.save()
    }

    fn write_ca_certificates(&mut self, user_pin: &Pin, chain: &[Vec<u8>]) -> Result<(), TokenError> {
        for der in chain {
            if der.len() > MAX_CERTIFICATE_BYTES {
                return Err(TokenError::State(format!("a certificate is at most {MAX_CERTIFICATE_BYTES} bytes")));
            }
            Certificate::from_der(der).map_err(|e| TokenError::State(format!("not a DER certificate: {e}")))?;
        }
        let mut session = self.session()?;
        session.login(Role::User, user_pin)?;
        session.state.ca_certificates = chain.iter().map(|der| Bytes(der.clone())).collect();
        session.save()
    }

    fn certificates(&self) -> Result<Vec<Vec<u8>>, TokenError> {
        let _lock = self.lock_existing()?;
        let state = self.load()?;
        let holders = state.objects.into_iter().filter_map(|o| o.certificate.map(|c| c.0));
        Ok(holders.chain(state.ca_certificates.into_iter().map(|c| c.0)).collect())
    }

    fn destroy_key(&mut self, user_pin: &Pin, key_id: &[u8]) -> Result<(), TokenError> {
        let mut session = self.session()?;
        session.login(Role::User, user_pin)?;
        session.object(key_id)?;
        session.state.objects.retain(|o| o.id.0 != key_id);
        session.save()
    }
}

// ---- The file format ----

/// The token file. No `Debug`: nothing here needs printing.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    format: String,
    serial: String,
    label: String,
    so_pin: Option<PinSlot>,
    user_pin: Option<PinSlot>,
    objects: Vec<KeyObject>,
    /// The CA chain (DER, issuing CA first); absent in files written before it existed.
    #[serde(default)]
    ca_certificates: Vec<Bytes>,
}

/// A key pair (`CKO_PRIVATE_KEY` + `CKO_PUBLIC_KEY`) and its certificate, by `CKA_ID`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyObject {
    id: HexBytes,
    algorithm: AlgorithmName,
    /// DER SubjectPublicKeyInfo.
    public_key: Bytes,
    /// Nonce ‖ AES-256-GCM ciphertext ‖ tag of the PKCS#8 DER, under the data key.
    private_key: Bytes,
    /// DER certificate, once written.
    certificate: Option<Bytes>,
}

/// Bytes as lower-case hex in JSON (key IDs).
struct HexBytes(Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HexBytes, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map(HexBytes).map_err(serde::de::Error::custom)
    }
}

/// An algorithm by its configuration name (`sm2`, `p256`, `rsa3072`).
struct AlgorithmName(Algorithm);

impl Serialize for AlgorithmName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for AlgorithmName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AlgorithmName, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map(AlgorithmName).map_err(serde::de::Error::custom)
    }
}

// ---- Cryptography ----

fn wrap_aad(serial: &str, role: Role) -> Vec<u8> {
    aad(&[FORMAT.as_bytes(), b"data-key", role.name().as_bytes(), serial.as_bytes()])
}

fn key_aad(serial: &str, key_id: &[u8], algorithm: Algorithm, public_key: &[u8]) -> Vec<u8> {
    aad(&[FORMAT.as_bytes(), b"private-key", serial.as_bytes(), key_id, algorithm.as_str().as_bytes(), public_key])
}

/// A new slot holding `data_key` under `pin`, with a full retry counter.
fn wrap_data_key(data_key: &DataKey, role: Role, serial: &str, pin: &Pin) -> Result<PinSlot, TokenError> {
    PinSlot::new(data_key, &wrap_aad(serial, role), pin.expose().as_bytes(), role.max_tries())
}

/// The data key, if `pin` is the slot's PIN (tests; logins go through `Session::login`).
#[cfg(test)]
fn unwrap_data_key(slot: &PinSlot, role: Role, serial: &str, pin: &Pin) -> Option<DataKey> {
    slot.unwrap_data_key(&wrap_aad(serial, role), pin.expose().as_bytes())
}

/// The private key of `object`, checked against its stored public key.
fn decrypt_key(data_key: &DataKey, serial: &str, object: &KeyObject) -> Result<SoftwareKey, String> {
    let algorithm = object.algorithm.0;
    let aad = key_aad(serial, &object.id.0, algorithm, &object.public_key.0);
    let pkcs8 = open(data_key, &aad, &object.private_key.0)
        .ok_or_else(|| format!("the private key {} does not decrypt", hex::encode(&object.id.0)))?;
    let key = SoftwareKey::from_pkcs8_der(algorithm, &pkcs8).map_err(|e| e.to_string())?;
    let public_key = key.public_key().to_der().map_err(|e| e.to_string())?;
    if public_key != object.public_key.0 {
        return Err(format!("the private key {} does not match its public key", hex::encode(&object.id.0)));
    }
    Ok(key)
}

// ---- Files ----

/// `SW` and 14 upper-case hex digits (56 random bits).
fn random_serial() -> String {
    let mut bytes = [0u8; 7];
    OsRng.fill_bytes(&mut bytes);
    format!("SW{}", hex::encode_upper(bytes))
}

fn is_valid_serial(serial: &str) -> bool {
    serial.len() == 16
        && serial.starts_with("SW")
        && serial[2..].bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn io_error(path: &Path, e: io::Error) -> TokenError {
    TokenError::Io(format!("{}: {e}", path.display()))
}

fn corrupt(path: &Path, why: impl fmt::Display) -> TokenError {
    TokenError::Io(format!("{} is damaged: {why}", path.display()))
}

fn no_such_key(key_id: &[u8]) -> TokenError {
    TokenError::State(format!("the token has no key with ID {}", hex::encode(key_id)))
}

#[cfg(test)]
mod tests;
