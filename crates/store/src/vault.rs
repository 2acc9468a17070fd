//! Envelope encryption of personal data. Each sealed value gets its own random data key
//! (AES-256-GCM); the data key is wrapped by the deployment's master key. Lookups (e.g. "is
//! this ID number already on an order?") use keyed hashes, never plain values.
//!
//! Sealed layout: `1 | wrap nonce (12) | wrapped data key (32 + 16) | nonce (12) | ciphertext+tag`.
//! The caller's `context` (e.g. the blob id) is bound in as associated data, so a sealed value
//! cannot be moved to another record unnoticed.

use crate::StoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

const VERSION: u8 = 1;
pub(crate) const NONCE: usize = 12;
pub(crate) const WRAPPED: usize = 32 + 16;

/// The deployment's master key: 32 random bytes from configuration or a key file.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> MasterKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        MasterKey(k)
    }

    /// Parses the base64 form used in configuration and environment variables.
    pub fn from_base64(text: &str) -> Result<MasterKey, StoreError> {
        let bytes = B64.decode(text.trim()).map_err(|_| StoreError::Config("master key is not valid base64".into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Config("master key must be 32 bytes (44 base64 characters)".into()))?;
        Ok(MasterKey(key))
    }

    /// The key itself, to derive other keys from it (e.g. the PIN-escrow HPKE key pair).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base64 form.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Reads the key file at `path`, or creates it (mode 0600) with a new random key.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool), StoreError> {
        match read_key_file(path)? {
            Some(key) => Ok((key, false)),
            None => {
                let key = MasterKey::generate();
                write_new_key_file(path, &key)?;
                Ok((key, true))
            }
        }
    }
}

/// Reads a 32-byte key stored as base64 in `path`; `None` when there is no such file.
pub fn read_key_file(path: &Path) -> Result<Option<MasterKey>, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(MasterKey::from_base64(&text)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `key` as base64 to a new file at `path` (mode 0600), creating its directory;
/// never overwrites an existing file.
pub fn write_new_key_file(path: &Path, key: &MasterKey) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options.open(path)?;
    file.write_all(key.to_base64().as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Seals and opens personal data with keys derived from the master key.
pub struct Vault {
    wrap: Aes256Gcm,
    lookup: [u8; 32],
}

impl Vault {
    /// Derives the wrapping and lookup keys from `master` (HKDF-SHA256, distinct labels).
    pub fn new(master: &MasterKey) -> Vault {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"yiqian"), &master.0);
        let mut wrap = [0u8; 32];
        let mut lookup = [0u8; 32];
        hk.expand(b"data-key wrapping v1", &mut wrap).expect("32 bytes is a valid HKDF length");
        hk.expand(b"lookup hash v1", &mut lookup).expect("32 bytes is a valid HKDF length");
        Vault { wrap: Aes256Gcm::new(&wrap.into()), lookup }
    }

    /// Encrypts `plaintext` under a fresh data key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut dek = [0u8; 32];
        let mut wrap_nonce = [0u8; NONCE];
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut dek);
        rand::rngs::OsRng.fill_bytes(&mut wrap_nonce);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = context.as_bytes();
        let wrapped = self
            .wrap
            .encrypt(Nonce::from_slice(&wrap_nonce), Payload { msg: &dek, aad })
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        let body = Aes256Gcm::new(&dek.into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption within size limits cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE + WRAPPED + NONCE + body.len());
        out.push(VERSION);
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out
    }

    /// A fresh random data key, wrapped by the master key and bound to `context`: the key,
    /// the wrapping nonce and the wrapped key.
    pub(crate) fn new_data_key(&self, context: &str) -> ([u8; 32], [u8; NONCE], Vec<u8>) {
        let mut dek = [0u8; 32];
        let mut wrap_nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut dek);
        rand::rngs::OsRng.fill_bytes(&mut wrap_nonce);
        let wrapped = self
            .wrap
            .encrypt(Nonce::from_slice(&wrap_nonce), Payload { msg: &dek, aad: context.as_bytes() })
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        (dek, wrap_nonce, wrapped)
    }

    /// Unwraps a data key made by [`Vault::new_data_key`] for the same `context`.
    pub(crate) fn open_data_key(&self, wrap_nonce: &[u8], wrapped: &[u8], context: &str) -> Option<[u8; 32]> {
        let dek =
            self.wrap.decrypt(Nonce::from_slice(wrap_nonce), Payload { msg: wrapped, aad: context.as_bytes() }).ok()?;
        dek.try_into().ok()
    }

    /// Decrypts what [`Vault::seal`] produced for the same `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("sealed value for {context} does not open"));
        if sealed.len() < 1 + NONCE + WRAPPED + NONCE + 16 || sealed[0] != VERSION {
            return Err(corrupt());
        }
        let (wrap_nonce, rest) = sealed[1..].split_at(NONCE);
        let (wrapped, rest) = rest.split_at(WRAPPED);
        let (nonce, body) = rest.split_at(NONCE);
        let aad = context.as_bytes();
        let dek =
            self.wrap.decrypt(Nonce::from_slice(wrap_nonce), Payload { msg: wrapped, aad }).map_err(|_| corrupt())?;
        let dek: [u8; 32] = dek.try_into().map_err(|_| corrupt())?;
        Aes256Gcm::new(&dek.into()).decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad }).map_err(|_| corrupt())
    }

    /// [`Vault::seal`] for text columns: the sealed bytes in base64.
    pub fn seal_text(&self, plaintext: &str, context: &str) -> String {
        B64.encode(self.seal(plaintext.as_bytes(), context))
    }

    /// Opens what [`Vault::seal_text`] produced.
    pub fn open_text(&self, sealed: &str, context: &str) -> Result<String, StoreError> {
        let bytes =
            B64.decode(sealed).map_err(|_| StoreError::Corrupt(format!("sealed value for {context} is not base64")))?;
        String::from_utf8(self.open(&bytes, context)?)
            .map_err(|_| StoreError::Corrupt(format!("sealed value for {context} is not text")))
    }

    /// A keyed hash of `value` in the namespace `kind`, for lookups without plain values.
    pub fn lookup_hash(&self, kind: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup).expect("HMAC takes any key length");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_context() {
        let v = Vault::new(&MasterKey::generate());
        let sealed = v.seal(b"110101199003074477", "order:1");
        assert!(!sealed.windows(18).any(|w| w == b"110101199003074477"));
        assert_eq!(v.open(&sealed, "order:1").unwrap(), b"110101199003074477");
        assert!(v.open(&sealed, "order:2").is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(v.open(&tampered, "order:1").is_err());
        assert!(Vault::new(&MasterKey::generate()).open(&sealed, "order:1").is_err());
        assert!(v.open(&sealed[..20], "order:1").is_err());
    }

    #[test]
    fn lookup_hash_is_keyed_and_stable() {
        let k = MasterKey::generate();
        let a = Vault::new(&k);
        let b = Vault::new(&k);
        assert_eq!(a.lookup_hash("id", "x"), b.lookup_hash("id", "x"));
        assert_ne!(a.lookup_hash("id", "x"), a.lookup_hash("phone", "x"));
        assert_ne!(a.lookup_hash("id", "x"), Vault::new(&MasterKey::generate()).lookup_hash("id", "x"));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let (k1, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        let (k2, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.to_base64(), k2.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
