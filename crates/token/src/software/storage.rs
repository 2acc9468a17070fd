//! The building blocks of a PIN-protected token file, public so that the software SKF library
//! (`crates/softskf`, a stand-in for a GM/T 0016 UKEY) keeps its devices with the very same
//! code as the [software token](super): one implementation of PIN wrapping and retry counters.
//!
//! - A *data key* ([`DataKey`], 256 random bits) encrypts a token's private keys
//!   ([`seal`] / [`open`]: AES-256-GCM, random 96-bit nonce, associated data built with
//!   [`aad`]).
//! - A [`PinSlot`] holds the data key wrapped under one PIN (Argon2id, RFC 9106, a fresh
//!   16-byte salt per wrap, 8 MiB, 1 pass, 1 lane; parameters recorded in the slot and bounded
//!   when read) and that PIN's retry counter, with its maximum (`max_tries`, absent in files
//!   written before it existed: the caller then supplies its default).
//! - [`check_pin`] is the card-like PIN check: it decrements the counter and has it *saved*
//!   ([`PinStore::save`]) before the PIN is looked at, and restores it after a correct PIN,
//!   so killing the process in the middle gains no free try. A slot at 0 is locked.
//! - Files: [`create_private_dir`] (0700), [`lock_file`] (an exclusive lock on a lock file
//!   beside the data, so two handles take turns like card sessions), [`read_bounded`] and
//!   [`write_atomically`] (temporary file, fsync, rename, fsync of the directory; mode 0600).
//!
//! [`Bytes`] is binary data as standard base64 in JSON files.
//!
//! The limits are the software token's (see its module docs): this is a stand-in for a
//! secure element, the counters are enforced only by this code, and whoever copies a file can
//! try PINs offline at Argon2id's cost.

#![warn(missing_docs)]

use crate::TokenError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use yiqian_pki::zeroize::Zeroizing;

/// The key that encrypts the private keys of one token (or one SKF application).
pub type DataKey = Zeroizing<[u8; 32]>;

/// Argon2id parameters for new PIN wraps (8 MiB, t=1, p=1; see the software token's docs).
const KDF_MEMORY_KIB: u32 = 8 * 1024;
const KDF_ITERATIONS: u32 = 1;
const KDF_PARALLELISM: u32 = 1;
const KDF_SALT_BYTES: usize = 16;

/// Bounds on Argon2id parameters read from a file, so a damaged or hostile file cannot make
/// a PIN check allocate gigabytes or run for minutes.
const KDF_MAX_MEMORY_KIB: u32 = 1024 * 1024;
const KDF_MAX_ITERATIONS: u32 = 16;
const KDF_MAX_PARALLELISM: u32 = 4;

const NONCE_BYTES: usize = 12;

/// A fresh random data key.
pub fn new_data_key() -> DataKey {
    let mut key: DataKey = Zeroizing::new([0; 32]);
    OsRng.fill_bytes(&mut key[..]);
    key
}

/// Bytes as standard base64 in JSON.
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// The data key wrapped under one PIN, and that PIN's retry counter. No `Debug`: nothing
/// here needs printing.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinSlot {
    kdf: KdfParams,
    /// Nonce ‖ AES-256-GCM ciphertext ‖ tag of the 32-byte data key.
    wrapped_data_key: Bytes,
    tries_left: u32,
    /// Wrong tries before the PIN locks; absent in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_tries: Option<u32>,
}

impl PinSlot {
    /// A new slot holding `data_key` under `pin`, with a full counter of `max_tries` (at
    /// least 1). `context` is bound into the wrap (associated data): the same PIN and key
    /// wrapped for another token or role do not unwrap here.
    pub fn new(data_key: &DataKey, context: &[u8], pin: &[u8], max_tries: u32) -> Result<PinSlot, TokenError> {
        let kdf = KdfParams::new();
        let wrapping_key = kdf.derive(pin)?;
        let wrapped = seal(&wrapping_key, context, &data_key[..])?;
        let max_tries = max_tries.max(1);
        Ok(PinSlot { kdf, wrapped_data_key: Bytes(wrapped), tries_left: max_tries, max_tries: Some(max_tries) })
    }

    /// The data key, if `pin` is the slot's PIN (the retry counter is not touched: use
    /// [`check_pin`] for a PIN someone typed).
    pub fn unwrap_data_key(&self, context: &[u8], pin: &[u8]) -> Option<DataKey> {
        let wrapping_key = self.kdf.derive(pin).ok()?;
        let plain = open(&wrapping_key, context, &self.wrapped_data_key.0)?;
        let mut key: DataKey = Zeroizing::new([0; 32]);
        if plain.len() != key.len() {
            return None;
        }
        key.copy_from_slice(&plain);
        Some(key)
    }

    /// Wrong tries left before the PIN locks; 0 when locked.
    pub fn tries_left(&self) -> u32 {
        self.tries_left
    }

    /// The counter's maximum, when the file records it.
    pub fn max_tries(&self) -> Option<u32> {
        self.max_tries
    }

    /// Refuses key-derivation parameters this code would not have written or that would cost
    /// too much (call when reading a file).
    pub fn check(&self) -> Result<(), String> {
        self.kdf.check()
    }
}

/// The outcome of [`check_pin`]. `Debug` does not show the key.
pub enum PinCheck {
    /// The PIN is right: here is the data key (the counter is full again).
    Correct(DataKey),
    /// The PIN is wrong; `tries_left` more wrong tries lock it (0: this try locked it).
    Incorrect {
        /// Tries left.
        tries_left: u32,
    },
    /// The PIN was already locked; it was not looked at.
    Locked,
}

impl fmt::Debug for PinCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinCheck::Correct(_) => f.write_str("Correct(…)"),
            PinCheck::Incorrect { tries_left } => write!(f, "Incorrect {{ tries_left: {tries_left} }}"),
            PinCheck::Locked => f.write_str("Locked"),
        }
    }
}

/// A locked, loaded token file whose PIN slots [`check_pin`] may count down.
pub trait PinStore {
    /// Which slot (a role, or an application and a role).
    type Slot: Copy;
    /// The slot, or why there is none (not initialised, …).
    fn pin_slot(&mut self, slot: Self::Slot) -> Result<&mut PinSlot, TokenError>;
    /// Writes the whole state to disk (atomically).
    fn save(&mut self) -> Result<(), TokenError>;
}

/// Checks `pin` against a slot the card way: the counter is decremented and saved before the
/// PIN is checked, and restored to its maximum (the slot's own, else `default_max_tries`)
/// after a correct PIN. `context` is the slot's wrap context (see [`PinSlot::new`]).
pub fn check_pin<S: PinStore>(
    store: &mut S,
    slot: S::Slot,
    context: &[u8],
    pin: &[u8],
    default_max_tries: u32,
) -> Result<PinCheck, TokenError> {
    let entry = store.pin_slot(slot)?;
    let max = entry.max_tries.unwrap_or(default_max_tries).max(1);
    if entry.tries_left == 0 {
        return Ok(PinCheck::Locked);
    }
    entry.tries_left = entry.tries_left.min(max) - 1;
    let remaining = entry.tries_left;
    store.save()?; // the try is spent before the PIN is looked at
    match store.pin_slot(slot)?.unwrap_data_key(context, pin) {
        Some(key) => {
            store.pin_slot(slot)?.tries_left = max;
            store.save()?;
            Ok(PinCheck::Correct(key))
        }
        None => Ok(PinCheck::Incorrect { tries_left: remaining }),
    }
}

/// How a PIN became a wrapping key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    /// Always `argon2id`.
    algorithm: String,
    /// Argon2 version, 19 (0x13).
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: Bytes,
}

impl KdfParams {
    fn new() -> KdfParams {
        let mut salt = vec![0; KDF_SALT_BYTES];
        OsRng.fill_bytes(&mut salt);
        KdfParams {
            algorithm: "argon2id".to_owned(),
            version: 0x13,
            memory_kib: KDF_MEMORY_KIB,
            iterations: KDF_ITERATIONS,
            parallelism: KDF_PARALLELISM,
            salt: Bytes(salt),
        }
    }

    fn check(&self) -> Result<(), String> {
        let ok = self.algorithm == "argon2id"
            && self.version == 0x13
            && (1..=KDF_MAX_PARALLELISM).contains(&self.parallelism)
            && (8 * self.parallelism..=KDF_MAX_MEMORY_KIB).contains(&self.memory_kib)
            && (1..=KDF_MAX_ITERATIONS).contains(&self.iterations)
            && (8..=64).contains(&self.salt.0.len());
        if ok { Ok(()) } else { Err("unsupported PIN key derivation parameters".to_owned()) }
    }

    /// The wrapping key for `pin`.
    fn derive(&self, pin: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        self.check().map_err(TokenError::Io)?;
        let failed = |e: argon2::Error| TokenError::Io(format!("PIN key derivation failed: {e}"));
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32)).map_err(failed)?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon.hash_password_into(pin, &self.salt.0, &mut key[..]).map_err(failed)?;
        Ok(key)
    }
}

/// Associated data: length-prefixed fields, so no two field lists encode alike.
pub fn aad(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// AES-256-GCM with a random nonce; returns nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, TokenError> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .map_err(|_| TokenError::Io("encryption failed".to_owned()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`seal`] made; `None` if the key, the associated data or the bytes are wrong.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let cipher = Aes256Gcm::new(key.into());
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).ok().map(Zeroizing::new)
}

/// Options that create files with mode 0600.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` and its parents, the last with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Takes an exclusive lock on `path` (blocking), creating the file (mode 0600). The lock lasts
/// as long as the returned `File`.
pub fn lock_file(path: &Path) -> io::Result<File> {
    let file = private_options().read(true).write(true).create(true).truncate(false).open(path)?;
    file.lock()?;
    Ok(file)
}

/// Reads `path` whole, refusing (`InvalidData`) a file larger than `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// Writes `bytes` to `tmp`, fsyncs it, renames it over `path` and fsyncs `dir`.
pub fn write_atomically(dir: &Path, tmp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut file = private_options().write(true).create(true).truncate(true).open(tmp)?;
        #[cfg(unix)]
        {
            // In case a stale temporary file was left with other permissions.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result?;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with one slot, counting its saves.
    struct Store {
        slot: PinSlot,
        saves: Vec<u32>,
    }

    impl PinStore for Store {
        type Slot = ();
        fn pin_slot(&mut self, _: ()) -> Result<&mut PinSlot, TokenError> {
            Ok(&mut self.slot)
        }
        fn save(&mut self) -> Result<(), TokenError> {
            self.saves.push(self.slot.tries_left);
            Ok(())
        }
    }

    #[test]
    fn the_counter_is_saved_before_the_check_and_restored_after_a_right_pin() {
        let key = new_data_key();
        let mut store = Store { slot: PinSlot::new(&key, b"ctx", b"123456", 3).unwrap(), saves: Vec::new() };
        assert!(matches!(check_pin(&mut store, (), b"ctx", b"000000", 9), Ok(PinCheck::Incorrect { tries_left: 2 })));
        assert_eq!(store.saves, [2]);
        match check_pin(&mut store, (), b"ctx", b"123456", 9).unwrap() {
            PinCheck::Correct(k) => assert_eq!(*k, *key),
            other => panic!("{other:?}"),
        }
        // Spent first (1), restored to the slot's own maximum (3), not the default (9).
        assert_eq!(store.saves, [2, 1, 3]);
        for left in [2, 1, 0] {
            let result = check_pin(&mut store, (), b"ctx", b"000000", 9).unwrap();
            assert!(matches!(result, PinCheck::Incorrect { tries_left } if tries_left == left), "{left}");
        }
        assert!(matches!(check_pin(&mut store, (), b"ctx", b"123456", 9), Ok(PinCheck::Locked)));
        // A wrong context does not unwrap, even with the right PIN.
        store.slot.tries_left = 3;
        assert!(matches!(check_pin(&mut store, (), b"other", b"123456", 9), Ok(PinCheck::Incorrect { .. })));
    }

    #[test]
    fn an_old_slot_without_a_maximum_takes_the_default() {
        let key = new_data_key();
        let mut slot = PinSlot::new(&key, b"ctx", b"123456", 3).unwrap();
        let mut json = serde_json::to_value(&slot).unwrap();
        assert_eq!(json["max_tries"], 3);
        json.as_object_mut().unwrap().remove("max_tries");
        slot = serde_json::from_value(json).unwrap();
        assert_eq!(slot.max_tries(), None);
        let mut store = Store { slot, saves: Vec::new() };
        assert!(matches!(check_pin(&mut store, (), b"ctx", b"123456", 6), Ok(PinCheck::Correct(_))));
        assert_eq!(store.slot.tries_left(), 6);
    }
}
