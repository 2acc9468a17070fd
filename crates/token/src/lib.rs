//! Personalising a UKEY. The [`Token`] trait is shaped after PKCS#11 (one method per
//! `C_*` call sequence a personalisation station makes), so that the PKCS#11 UKEY driver
//! slots in beside the [`software`] token without the application changing:
//!
//! 1. [`TokenReader::present`] / [`TokenReader::blank_token`] — the keys in the reader (a
//!    hub's slots with a token in them), one blank key;
//! 2. [`Token::initialise`] — `C_InitToken` with the token's current SO PIN (the factory
//!    default for a new key), then the random SO PIN and the label;
//! 3. [`Token::init_user_pin`] — `C_Login(SO)` + `C_InitPIN` with a random user PIN;
//! 4. [`Token::generate_key_pair`] — `C_Login(User)` + `C_GenerateKeyPair` on the token;
//! 5. [`Token::signer`] — `C_Sign` with that key, to sign the CSR on the token;
//! 6. [`Token::write_certificate`] and [`Token::write_ca_certificates`] —
//!    `C_CreateObject(CKO_CERTIFICATE)` for the holder's certificate and the CA chain.
//!
//! Three drivers implement it: the [`software`] token (the embedded default), [`pkcs11`] for
//! UKEYs with a PKCS#11 module (OpenSC, a vendor's module; SoftHSM2 in tests) and [`skf`] for
//! SM2 UKEYs with a GM/T 0016 (SKF) library.
//!
//! PINs travel as [`Pin`], which zeroes itself and never prints.

pub mod escrow;
pub mod pkcs11;
pub mod skf;
pub mod softhsm;
pub mod software;

use std::fmt;
use yiqian_pki::zeroize::{Zeroize, Zeroizing};
use yiqian_pki::{Algorithm, PkiError, Signer};

/// A PIN (user or SO). Digits only; `Debug` never shows it; zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// A uniformly random PIN of `len` digits (8 for the user PIN, 16 for the SO PIN).
    pub fn random(len: usize) -> Pin {
        use rand::Rng;
        let mut rng = rand::rngs::OsRng;
        Pin(Zeroizing::new((0..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()))
    }

    /// Takes a PIN typed or unsealed; refuses anything but 6–32 digits.
    pub fn parse(text: &str) -> Result<Pin, TokenError> {
        if (6..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Pin(Zeroizing::new(text.to_owned())))
        } else {
            Err(TokenError::BadPinFormat)
        }
    }

    /// The digits, for sealing or for the one SMS that delivers them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(…)")
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// What a token tells about itself (`C_GetTokenInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's serial number, unique per reader (printed on the key).
    pub serial: String,
    /// The label set at initialisation (the order number), empty when blank.
    pub label: String,
    /// The kind of token, e.g. `software` or the UKEY model.
    pub model: String,
    /// Whether it has been initialised (has an SO PIN).
    pub initialised: bool,
    /// Whether the user PIN is locked after too many wrong tries (`CKF_USER_PIN_LOCKED`).
    pub user_pin_locked: bool,
    /// Wrong user PIN tries left before it locks, when the token says (SKF and the software
    /// token do; PKCS#11 only flags "count low" and "final try").
    pub user_pin_tries_left: Option<u32>,
}

/// Why a token operation failed. Messages are for CA staff.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No blank token is available / the serial is not present.
    #[error("token not present: {0}")]
    NotPresent(String),
    /// The PIN is wrong (`CKR_PIN_INCORRECT`); `tries_left` when the token says.
    #[error("wrong PIN{}", .tries_left.map(|n| format!(", {n} tries left")).unwrap_or_default())]
    PinIncorrect {
        /// Tries left before the PIN locks.
        tries_left: Option<u32>,
    },
    /// The user PIN is locked (`CKR_PIN_LOCKED`): unblock it with the SO PIN.
    #[error("the user PIN is locked")]
    PinLocked,
    /// A PIN that is not 6–32 digits.
    #[error("a PIN must be 6 to 32 digits")]
    BadPinFormat,
    /// The token is not in a state for this call (not initialised, no such key, …).
    #[error("token state: {0}")]
    State(String),
    /// The token or its driver refused something yiqian needs (an attribute, a mechanism, a
    /// label length, `C_InitToken` itself); the message names it and what to do.
    #[error("the token refused: {0}")]
    Refused(String),
    /// The algorithm is not supported by this token.
    #[error("algorithm not supported by the token: {0:?}")]
    Unsupported(Algorithm),
    /// Key generation or signing failed inside the PKI engine.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The token's storage failed (file, USB, driver).
    #[error("token I/O: {0}")]
    Io(String),
}

/// The key reader at a personalisation station (a PKCS#11 module's slot list).
pub trait TokenReader: Send + Sync {
    /// The reader's kind: `software`, `pkcs11` or `skf`.
    fn name(&self) -> &'static str;
    /// The keys present in the reader, as they describe themselves (`C_GetSlotList` with
    /// tokens present + `C_GetTokenInfo`; `SKF_EnumDev` + `SKF_GetDevInfo`). For the software
    /// reader: every token file.
    fn present(&self) -> Result<Vec<TokenInfo>, TokenError>;
    /// A blank token ready for personalisation: for the software reader a new token; for a
    /// hub, a key in its factory state (a present key whose label is not an order number
    /// that yiqian wrote, see [`is_personalised_label`]).
    fn blank_token(&self) -> Result<Box<dyn Token>, TokenError>;
    /// The token with this serial.
    fn open(&self, serial: &str) -> Result<Box<dyn Token>, TokenError>;
}

/// One UKEY, PKCS#11-shaped. Methods are blocking: call them off the async runtime.
pub trait Token: Send {
    /// `C_GetTokenInfo`.
    fn info(&self) -> Result<TokenInfo, TokenError>;
    /// `C_InitToken`: erases everything on the token and sets the label and a new SO PIN.
    /// `current_so_pin` is the SO PIN the token has now: `None` for a key in its factory
    /// state (the reader knows the factory default, if the model has one), `Some` to
    /// re-initialise a key personalised before (a half-personalised key, a re-issue).
    fn initialise(&mut self, current_so_pin: Option<&Pin>, so_pin: &Pin, label: &str) -> Result<(), TokenError>;
    /// `C_Login(CKU_SO)` + `C_InitPIN`: sets the user PIN and clears a lock. This is also how
    /// a blocked PIN is unblocked at the counter.
    fn init_user_pin(&mut self, so_pin: &Pin, user_pin: &Pin) -> Result<(), TokenError>;
    /// `C_Login(CKU_USER)` + `C_SetPIN`: the holder changes the user PIN. A wrong `old`
    /// counts towards the lock.
    fn change_user_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), TokenError>;
    /// `C_Login(CKU_USER)` + `C_GenerateKeyPair`: a non-extractable key pair with `key_id`
    /// (CKA_ID) on the token. Returns the DER SubjectPublicKeyInfo.
    fn generate_key_pair(&mut self, user_pin: &Pin, algorithm: Algorithm, key_id: &[u8])
    -> Result<Vec<u8>, TokenError>;
    /// `C_Login(CKU_USER)` + `C_Sign` with the key `key_id`, as a PKI [`Signer`] (to sign
    /// the CSR on the token). Wrong PINs count towards the lock.
    fn signer(&self, user_pin: &Pin, key_id: &[u8]) -> Result<Box<dyn Signer>, TokenError>;
    /// `C_CreateObject(CKO_CERTIFICATE)`: stores the certificate (DER) with `key_id`.
    fn write_certificate(&mut self, user_pin: &Pin, key_id: &[u8], der: &[u8]) -> Result<(), TokenError>;
    /// `C_CreateObject(CKO_CERTIFICATE)` without a key: the CA chain (DER, issuing CA first),
    /// so that relying software on the holder's computer can build the path. Replaces a
    /// chain written before.
    fn write_ca_certificates(&mut self, user_pin: &Pin, chain: &[Vec<u8>]) -> Result<(), TokenError>;
    /// `C_FindObjects(CKO_CERTIFICATE)`: the certificates on the token (DER), the holder's
    /// first, then the CA chain; no login needed.
    fn certificates(&self) -> Result<Vec<Vec<u8>>, TokenError>;
    /// `C_DestroyObject`: removes the key pair and certificate with `key_id` (renewal).
    fn destroy_key(&mut self, user_pin: &Pin, key_id: &[u8]) -> Result<(), TokenError>;
}

/// Whether a token label is one yiqian writes at personalisation: an order number
/// (`YQ` and 12 to 30 digits or capitals). Keys with any other label (a factory label such as
/// `ePass2003` or SoftHSM2's `blank1`) are taken as blank.
pub fn is_personalised_label(label: &str) -> bool {
    label.len() >= 14
        && label.len() <= 32
        && label.starts_with("YQ")
        && label[2..].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The longest token label, in bytes of UTF-8 (PKCS#11 `CK_TOKEN_INFO.label` is 32 bytes).
pub const MAX_LABEL_BYTES: usize = 32;

/// The one rule for labels given to [`Token::initialise`]: at most [`MAX_LABEL_BYTES`] bytes of
/// UTF-8, no control characters.
pub fn check_label(label: &str) -> Result<(), TokenError> {
    if label.len() > MAX_LABEL_BYTES || label.chars().any(char::is_control) {
        return Err(TokenError::State(format!(
            "a token label is at most {MAX_LABEL_BYTES} bytes of UTF-8 without control characters"
        )));
    }
    Ok(())
}
