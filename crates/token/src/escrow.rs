//! PINs sealed to the server's PIN-escrow public key, so that a personalisation station can
//! hand the PINs it drew to the server without the PINs ever leaving it in the clear, and the
//! server opens them only when the one SMS that delivers a PIN is sent.
//!
//! The sealing is HPKE (RFC 9180) in base mode with the suite DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM, from the `hpke` crate. The server's key pair is derived from its
//! 32-byte PIN-escrow key with the RFC's `DeriveKeyPair` (after an HKDF step that gives the
//! derivation its own label), so no second secret needs keeping. The HPKE `info` binds a
//! sealed PIN to its key's serial number and to which PIN it is (user or SO): a sealed PIN
//! cannot be moved to another key or passed off as the other PIN.
//!
//! A sealed PIN is text: `hpke1:` followed by the standard base64 of the 32-byte encapsulated
//! key and the ciphertext with its tag.

use crate::{Pin, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::Sha256;
use yiqian_pki::zeroize::Zeroizing;

/// The prefix of sealed PINs.
pub const SEALED_PREFIX: &str = "hpke1:";

/// The suite's name, as the server announces it to stations.
pub const SUITE: &str = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM";

type Kem = X25519HkdfSha256;

/// Which PIN of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRole {
    /// The holder's PIN.
    User,
    /// The security officer's (admin) PIN.
    So,
}

impl PinRole {
    fn code(self) -> &'static str {
        match self {
            PinRole::User => "user",
            PinRole::So => "so",
        }
    }
}

/// The HPKE `info`: what a sealed PIN is bound to.
fn info(token_serial: &str, role: PinRole) -> Vec<u8> {
    format!("yiqian pin escrow v1\0{token_serial}\0{}", role.code()).into_bytes()
}

fn escrow_error(what: &str) -> TokenError {
    TokenError::State(format!("sealed PIN: {what}"))
}

/// The public half, which stations seal to. 32 bytes (an X25519 public key).
#[derive(Clone, PartialEq, Eq)]
pub struct EscrowPublicKey(<Kem as hpke::Kem>::PublicKey);

impl std::fmt::Debug for EscrowPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EscrowPublicKey({})", self.to_base64())
    }
}

impl EscrowPublicKey {
    /// Parses the standard base64 of the 32-byte key.
    pub fn from_base64(text: &str) -> Result<EscrowPublicKey, TokenError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| escrow_error("the escrow public key is not base64"))?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map(EscrowPublicKey)
            .map_err(|_| escrow_error("the escrow public key is not a 32-byte X25519 key"))
    }

    /// The standard base64 of the key.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    /// Seals `pin`, the `role` PIN of the key `token_serial`.
    pub fn seal(&self, pin: &Pin, token_serial: &str, role: PinRole) -> Result<String, TokenError> {
        let mut rng = hpke_rand_core::UnwrapErr(hpke_rand_core::OsRng);
        let (encapsulated, ciphertext) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            &self.0,
            &info(token_serial, role),
            pin.expose().as_bytes(),
            b"",
            &mut rng,
        )
        .map_err(|e| escrow_error(&format!("sealing failed: {e}")))?;
        let mut bytes = encapsulated.to_bytes().to_vec();
        bytes.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", BASE64.encode(bytes)))
    }
}

/// The server's escrow key pair, derived from its PIN-escrow key.
pub struct EscrowKeyPair {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: EscrowPublicKey,
}

impl std::fmt::Debug for EscrowKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

impl EscrowKeyPair {
    /// The key pair of a 32-byte PIN-escrow key (always the same pair for the same key).
    pub fn derive(escrow_key: &[u8; 32]) -> EscrowKeyPair {
        let mut ikm = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(b"yiqian pin escrow"), escrow_key)
            .expand(b"hpke x25519 key pair", &mut ikm[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let (private, public) = Kem::derive_keypair(&ikm[..]);
        EscrowKeyPair { private, public: EscrowPublicKey(public) }
    }

    /// The public half.
    pub fn public_key(&self) -> &EscrowPublicKey {
        &self.public
    }

    /// Whether `text` is a PIN sealed this way (rather than by the server's own vault).
    pub fn is_sealed_pin(text: &str) -> bool {
        text.starts_with(SEALED_PREFIX)
    }

    /// Opens what [`EscrowPublicKey::seal`] made for the same key and role.
    pub fn open(&self, sealed: &str, token_serial: &str, role: PinRole) -> Result<Pin, TokenError> {
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(|| escrow_error("not an HPKE-sealed PIN"))?;
        let bytes = BASE64.decode(body).map_err(|_| escrow_error("not base64"))?;
        if bytes.len() < 32 + 16 {
            return Err(escrow_error("too short"));
        }
        let (encapsulated, ciphertext) = bytes.split_at(32);
        let encapsulated = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapsulated)
            .map_err(|_| escrow_error("bad encapsulated key"))?;
        let plain = Zeroizing::new(
            hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
                &OpModeR::Base,
                &self.private,
                &encapsulated,
                &info(token_serial, role),
                ciphertext,
                b"",
            )
            .map_err(|_| escrow_error("it does not open with this escrow key for this key and PIN"))?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| escrow_error("not text"))?;
        Pin::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_pin_opens_only_for_its_key_and_role() {
        let pair = EscrowKeyPair::derive(&[7u8; 32]);
        let pin = Pin::parse("12345678").unwrap();
        let sealed = pair.public_key().seal(&pin, "SW0011223344556677", PinRole::User).unwrap();
        assert!(EscrowKeyPair::is_sealed_pin(&sealed));
        assert!(!sealed.contains("12345678"));
        assert_eq!(pair.open(&sealed, "SW0011223344556677", PinRole::User).unwrap(), pin);
        assert!(pair.open(&sealed, "SW0011223344556678", PinRole::User).is_err(), "another key");
        assert!(pair.open(&sealed, "SW0011223344556677", PinRole::So).is_err(), "the other PIN");
        assert!(EscrowKeyPair::derive(&[8u8; 32]).open(&sealed, "SW0011223344556677", PinRole::User).is_err());
        // Every seal is fresh.
        assert_ne!(sealed, pair.public_key().seal(&pin, "SW0011223344556677", PinRole::User).unwrap());
        // Tampering is detected.
        let mut bytes = BASE64.decode(&sealed[SEALED_PREFIX.len()..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{SEALED_PREFIX}{}", BASE64.encode(&bytes));
        assert!(pair.open(&tampered, "SW0011223344556677", PinRole::User).is_err());
        assert!(pair.open("hpke1:AAAA", "x", PinRole::User).is_err());
        assert!(pair.open("v1:whatever", "x", PinRole::User).is_err());
    }

    #[test]
    fn the_key_pair_is_derived_and_its_public_key_travels_as_base64() {
        let a = EscrowKeyPair::derive(&[1u8; 32]);
        let b = EscrowKeyPair::derive(&[1u8; 32]);
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(a.public_key(), EscrowKeyPair::derive(&[2u8; 32]).public_key());
        let text = a.public_key().to_base64();
        assert_eq!(EscrowPublicKey::from_base64(&text).unwrap(), *a.public_key());
        assert!(EscrowPublicKey::from_base64("not base64!").is_err());
        assert!(EscrowPublicKey::from_base64("AAAA").is_err());
        assert!(!format!("{a:?}").contains("private"));
    }
}
