//! CA keys held in a PKCS#11 token (an HSM, or SoftHSM2 in tests): the second implementation
//! of the `Signer` seam, next to the encrypted key file (`SoftwareKey`).
//!
//! The private key never leaves the token: it is generated there (`CKA_SENSITIVE` true,
//! `CKA_EXTRACTABLE` false) and every signature is made there. Mechanisms:
//!
//! - **P-256**: the message is hashed with SHA-256 in software (aws-lc-rs) and the token signs
//!   the digest with `CKM_ECDSA`. Tokens return the raw `r‖s` (64 bytes); it is re-encoded as the
//!   DER `SEQUENCE { r, s }` X.509 wants. `CKM_ECDSA_SHA256` is not used: SoftHSM2 does not
//!   have it (infra-feasibility.md §1), and hashing in software means a million-entry CRL is not
//!   streamed through the token.
//! - **RSA**: `CKM_SHA256_RSA_PKCS` when the token lists it, else `CKM_RSA_PKCS` over the
//!   DER DigestInfo of the SHA-256 hash (the same PKCS#1 v1.5 signature).
//! - **SM2**: not supported. The PKCS#11 standard defines no SM2 mechanism; Chinese HSMs and
//!   USB keys expose SM2 through their vendor's own PKCS#11 module and vendor-defined
//!   (`CKM_VENDOR_DEFINED + n`) mechanism codes, and SoftHSM2 has no SM2 at all. (Note that
//!   cryptoki's `get_mechanism_list` silently drops codes it does not know, vendor ones
//!   included.) SM2 CA keys stay in the encrypted key file for now.
//!
//! Tokens and keys are found by label, never by slot number: SoftHSM2 (and many HSMs) move a
//! token to a different slot number when it is initialised or re-inserted.
//!
//! `C_Initialize` runs once per module per process; the context is kept for the life of the
//! process (never `C_Finalize`d), and `CKR_CRYPTOKI_ALREADY_INITIALIZED` (another component of
//! the process initialised the same module) is accepted. Each `Pkcs11Key` keeps one logged-in
//! session open behind a mutex; when the token reports the session gone
//! (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`, …) or the user logged out
//! (`CKR_USER_NOT_LOGGED_IN`; SoftHSM2 says `CKR_OBJECT_HANDLE_INVALID` instead, the private
//! key being invisible to a public session), it closes the old session, opens a new one, logs
//! in again, finds the key by label (checking its `CKA_ID`) and retries once.
//!
//! PKCS#11 logins are per process and token, not per session: while one `Pkcs11Key` of this
//! process is logged in to a token, `C_Login` for a second key on the same token answers
//! `CKR_USER_ALREADY_LOGGED_IN` without looking at the PIN, so the second key's PIN is not
//! re-checked. Configure one PIN per token.
//!
//! Errors are `PkiError::Key` (finding, generating, logging in) or `PkiError::Signing`, with
//! the PKCS#11 function and return code name (`C_Login returned CKR_PIN_INCORRECT`) in the
//! message. The PIN is never part of a message, and `Debug` masks it.

use crate::PkiError;
use crate::algorithm::{Algorithm, key_algorithm};
use crate::encoding::{tag, tlv};
use crate::key::{Signer, verify};
use crate::oids;
use aws_lc_rs::digest;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::{Any, BitString, Null, OctetString, UintRef};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use zeroize::Zeroizing;

/// The usual path of SoftHSM2's module on Debian and Ubuntu (package `softhsm2`).
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1): followed by the 32-byte hash,
/// it is what `CKM_RSA_PKCS` signs when the token has no `CKM_SHA256_RSA_PKCS`.
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// Signed once by `generate` and `open` and checked against the public key, so a public key
/// object that does not belong to the private key is caught before any certificate is made.
const SELF_TEST_MESSAGE: &[u8] = b"yiqian PKCS#11 key self-test";

/// Where a CA key lives in an HSM.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the token vendor's PKCS#11 module (`SOFTHSM2_MODULE` for SoftHSM2).
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, as set at initialisation). The token is
    /// looked up by label on every (re)connection, never by slot number.
    pub token_label: String,
    /// The user PIN. Never printed.
    pub pin: Zeroizing<String>,
    /// The `CKA_LABEL` of the key pair; must be unique among the token's private keys.
    pub key_label: String,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<hidden>")
            .field("key_label", &self.key_label)
            .finish()
    }
}

/// A CA key held in a PKCS#11 token; signing happens in the token.
///
/// `Send + Sync`: the one session is behind a mutex, so signatures from several threads are
/// made one after the other. Dropping the key closes its session.
pub struct Pkcs11Key {
    config: Pkcs11Config,
    context: Pkcs11,
    algorithm: Algorithm,
    spki: SubjectPublicKeyInfoOwned,
    /// `CKA_ID` of the key pair, checked again after a reconnection.
    id: Vec<u8>,
    mechanism: SignMechanism,
    /// `None` after a failed reconnection.
    connection: Mutex<Option<Connection>>,
}

/// How signatures are made in a token (an HSM or a UKEY): the one place that says what the
/// token is given and what is made of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMechanism {
    /// SHA-256 in software, `CKM_ECDSA` in the token, raw r‖s converted to DER.
    Ecdsa,
    /// `CKM_SHA256_RSA_PKCS` over the message.
    Sha256RsaPkcs,
    /// SHA-256 in software, `CKM_RSA_PKCS` over DigestInfo ‖ hash.
    RsaPkcs,
}

impl SignMechanism {
    /// The mechanism's PKCS#11 name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            SignMechanism::Ecdsa => "CKM_ECDSA",
            SignMechanism::Sha256RsaPkcs => "CKM_SHA256_RSA_PKCS",
            SignMechanism::RsaPkcs => "CKM_RSA_PKCS",
        }
    }

    /// The `C_Sign` mechanism and the data to give it for `message`.
    pub fn prepare(self, message: &[u8]) -> (Mechanism<'static>, Vec<u8>) {
        let sha256 = || digest::digest(&digest::SHA256, message).as_ref().to_vec();
        match self {
            SignMechanism::Ecdsa => (Mechanism::Ecdsa, sha256()),
            SignMechanism::Sha256RsaPkcs => (Mechanism::Sha256RsaPkcs, message.to_vec()),
            SignMechanism::RsaPkcs => (Mechanism::RsaPkcs, [&SHA256_DIGEST_INFO_PREFIX[..], &sha256()].concat()),
        }
    }

    /// The X.509 signature made of the token's answer (ECDSA's raw r‖s as DER).
    pub fn finish(self, signature: Vec<u8>) -> Result<Vec<u8>, PkiError> {
        match self {
            SignMechanism::Ecdsa => ecdsa_raw_to_der(&signature),
            SignMechanism::Sha256RsaPkcs | SignMechanism::RsaPkcs => Ok(signature),
        }
    }
}

/// A logged-in session and the private key's handle in it.
struct Connection {
    session: Session,
    key: ObjectHandle,
}

impl Pkcs11Key {
    /// Generates a key pair in the token: P-256 (`CKM_EC_KEY_PAIR_GEN`) or RSA-3072
    /// (`CKM_RSA_PKCS_KEY_PAIR_GEN`, e = 65537). The private key is a token object with
    /// `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false and `CKA_SIGN` true; both halves get
    /// `config.key_label` and a random 16-byte `CKA_ID`.
    ///
    /// Refused: SM2 (`PkiError::UnsupportedAlgorithm`: it needs the key vendor's PKCS#11 module
    /// and its vendor-defined mechanisms), and a label some private key on the token already
    /// has (`PkiError::Key`; use `open` for it).
    pub fn generate(config: &Pkcs11Config, algorithm: Algorithm) -> Result<Pkcs11Key, PkiError> {
        if algorithm == Algorithm::Sm2 {
            return Err(PkiError::UnsupportedAlgorithm(
                "SM2 keys cannot be generated in a PKCS#11 token by yiqian: the PKCS#11 standard has no SM2 \
                 mechanism, so it needs the key vendor's own PKCS#11 module and its vendor-defined mechanisms \
                 (SoftHSM2 has none); keep SM2 CA keys in the encrypted key file"
                    .to_owned(),
            ));
        }
        let context = context(&config.module)?;
        let slot = find_token(&context, &config.token_label)?;
        let session = context.open_rw_session(slot).map_err(|e| key_error("could not open a session", &e))?;
        login(&session, config).map_err(PkiError::Key)?;
        if !find_private_keys(&session, &config.key_label)?.is_empty() {
            return Err(PkiError::Key(format!(
                "token {:?} already holds a private key labelled {:?}; open it, or choose another key label",
                config.token_label, config.key_label
            )));
        }

        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| PkiError::Key("could not draw a random CKA_ID".to_owned()))?;
        let label = config.key_label.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id.clone()),
        ];
        let mechanism = match algorithm {
            Algorithm::P256 => {
                let params = p256_params()?;
                public.push(Attribute::EcParams(params));
                private.push(Attribute::Derive(false));
                Mechanism::EccKeyPairGen
            }
            Algorithm::Rsa3072 => {
                public.push(Attribute::ModulusBits(3072.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                public.push(Attribute::Encrypt(false));
                private.push(Attribute::Decrypt(false));
                Mechanism::RsaPkcsKeyPairGen
            }
            Algorithm::Sm2 => unreachable!("refused above"),
        };
        let (public_handle, private_handle) = session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| key_error(&format!("could not generate a {algorithm} key pair in the token"), &e))?;

        let spki = public_key(&session, public_handle, Some(private_handle), algorithm)?;
        let key = Pkcs11Key::assemble(config, context, slot, algorithm, spki, id, session, private_handle)?;
        Ok(key)
    }

    /// Opens an existing key pair by its label. The algorithm is read from the key
    /// (`CKA_KEY_TYPE`, and `CKA_EC_PARAMS` for EC keys): P-256 and RSA (3072 to 4096 bits)
    /// are accepted. The public key is read from the public key object with the same `CKA_ID`
    /// (or label); for RSA, from the private key's `CKA_MODULUS` when there is none.
    pub fn open(config: &Pkcs11Config) -> Result<Pkcs11Key, PkiError> {
        let context = context(&config.module)?;
        let slot = find_token(&context, &config.token_label)?;
        let session = context.open_ro_session(slot).map_err(|e| key_error("could not open a session", &e))?;
        login(&session, config).map_err(PkiError::Key)?;
        let private = the_private_key(&session, config)?;

        let attributes = session
            .get_attributes(private, &[AttributeType::KeyType, AttributeType::Id, AttributeType::EcParams])
            .map_err(|e| key_error("could not read the private key's attributes", &e))?;
        let mut key_type = None;
        let mut id = Vec::new();
        let mut ec_params = None;
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::Id(value) => id = value,
                Attribute::EcParams(value) => ec_params = Some(value),
                _ => {}
            }
        }
        let algorithm = match key_type {
            Some(KeyType::EC) => ec_algorithm(ec_params.as_deref())?,
            Some(KeyType::RSA) => Algorithm::Rsa3072,
            Some(other) => {
                return Err(PkiError::UnsupportedAlgorithm(format!(
                    "the key labelled {:?} is of PKCS#11 key type {other}; only EC (P-256) and RSA keys are supported",
                    config.key_label
                )));
            }
            None => return Err(PkiError::Key(format!("the key labelled {:?} has no CKA_KEY_TYPE", config.key_label))),
        };

        let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        if id.is_empty() {
            template.push(Attribute::Label(config.key_label.as_bytes().to_vec()));
        } else {
            template.push(Attribute::Id(id.clone()));
        }
        let publics =
            session.find_objects(&template).map_err(|e| key_error("could not look for the public key", &e))?;
        let spki = match publics.as_slice() {
            [public] => public_key(&session, *public, Some(private), algorithm)?,
            [] if algorithm == Algorithm::Rsa3072 => rsa_public_key(&session, private)?,
            [] => {
                return Err(PkiError::Key(format!(
                    "token {:?} has no public key object for the key labelled {:?}",
                    config.token_label, config.key_label
                )));
            }
            _ => {
                return Err(PkiError::Key(format!(
                    "token {:?} has {} public key objects for the key labelled {:?}; there must be one",
                    config.token_label,
                    publics.len(),
                    config.key_label
                )));
            }
        };
        Pkcs11Key::assemble(config, context, slot, algorithm, spki, id, session, private)
    }

    /// Makes `CKM_RSA_PKCS` over a software SHA-256 DigestInfo the RSA mechanism even when the
    /// token offers `CKM_SHA256_RSA_PKCS`: only the 51-byte DigestInfo then travels to the
    /// token, which matters for large CRLs on slow (USB, network) HSMs. The signatures are the
    /// same bytes (PKCS#1 v1.5 is deterministic). No effect on P-256 keys.
    pub fn hash_in_software(mut self) -> Pkcs11Key {
        if self.mechanism == SignMechanism::Sha256RsaPkcs {
            self.mechanism = SignMechanism::RsaPkcs;
        }
        self
    }

    /// The PKCS#11 signing mechanism in use: `CKM_ECDSA`, `CKM_SHA256_RSA_PKCS` or `CKM_RSA_PKCS`.
    pub fn mechanism(&self) -> &'static str {
        self.mechanism.name()
    }

    /// The `CKA_ID` of the key pair (random, 16 bytes, for keys made by `generate`).
    pub fn key_id(&self) -> &[u8] {
        &self.id
    }

    /// The label of the token holding the key.
    pub fn token_label(&self) -> &str {
        &self.config.token_label
    }

    /// The `CKA_LABEL` of the key pair.
    pub fn key_label(&self) -> &str {
        &self.config.key_label
    }

    /// Finishes `generate` and `open`: picks the mechanism, wraps the session, and signs a
    /// test message that must verify with `spki`.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        config: &Pkcs11Config,
        context: Pkcs11,
        slot: Slot,
        algorithm: Algorithm,
        spki: SubjectPublicKeyInfoOwned,
        id: Vec<u8>,
        session: Session,
        key: ObjectHandle,
    ) -> Result<Pkcs11Key, PkiError> {
        let found = key_algorithm(&spki)?;
        if found != algorithm {
            return Err(PkiError::Key(format!(
                "the key labelled {:?} has a {found} public key, not {algorithm}",
                config.key_label
            )));
        }
        let mechanism = match algorithm {
            Algorithm::P256 => SignMechanism::Ecdsa,
            _ => {
                let mechanisms = context
                    .get_mechanism_list(slot)
                    .map_err(|e| key_error("could not list the token's mechanisms", &e))?;
                if mechanisms.contains(&MechanismType::SHA256_RSA_PKCS) {
                    SignMechanism::Sha256RsaPkcs
                } else {
                    SignMechanism::RsaPkcs
                }
            }
        };
        let key = Pkcs11Key {
            config: config.clone(),
            context,
            algorithm,
            spki,
            id,
            mechanism,
            connection: Mutex::new(Some(Connection { session, key })),
        };
        let signature = key.sign(SELF_TEST_MESSAGE).map_err(|e| match e {
            PkiError::Signing(message) => PkiError::Key(format!("the key cannot sign: {message}")),
            other => other,
        })?;
        verify(&key.spki, algorithm, SELF_TEST_MESSAGE, &signature, "").map_err(|_| {
            PkiError::Key(format!(
                "the public key object labelled {:?} does not belong to the private key: a test signature does not \
                 verify",
                config.key_label
            ))
        })?;
        Ok(key)
    }

    /// A new session, logged in, with the private key found again by label (and checked to
    /// have the same `CKA_ID`).
    fn reconnect(&self) -> Result<Connection, String> {
        let describe = |e: PkiError| match e {
            PkiError::Key(message) => message,
            other => other.to_string(),
        };
        let slot = find_token(&self.context, &self.config.token_label).map_err(describe)?;
        let session = self
            .context
            .open_ro_session(slot)
            .map_err(|e| format!("could not open a new session: {}", ck_describe(&e)))?;
        login(&session, &self.config)?;
        let key = the_private_key(&session, &self.config).map_err(describe)?;
        if !self.id.is_empty() {
            let same = session
                .get_attributes(key, &[AttributeType::Id])
                .map_err(|e| format!("could not read the key's CKA_ID: {}", ck_describe(&e)))?
                .into_iter()
                .any(|a| matches!(a, Attribute::Id(id) if id == self.id));
            if !same {
                return Err(format!(
                    "the key labelled {:?} is no longer the key this signer was opened with (its CKA_ID changed)",
                    self.config.key_label
                ));
            }
        }
        Ok(Connection { session, key })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic while the lock was held cannot leave the session half-changed.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one signing operation in the token. When the session or the login is gone, the
    /// old session is closed first (a restarted module may hand its handle number out again),
    /// then a new one is opened and logged in, and the operation is retried once. If that
    /// fails, the next call tries to reconnect again.
    fn token_sign(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut guard = self.lock();
        let stale = match guard.as_ref() {
            Some(connection) => match connection.session.sign(mechanism, connection.key, data) {
                Ok(signature) => return Ok(signature),
                Err(e) if is_stale(&e) => Some(e),
                Err(e) => return Err(self.signing_error(&e)),
            },
            None => None,
        };
        if let Some(old) = guard.take() {
            // Usually fails (the handle is gone); nothing to do about it.
            let _ = old.session.close();
        }
        let connection = self.reconnect().map_err(|why| {
            let cause = match &stale {
                Some(e) => ck_describe(e),
                None => "no session (an earlier reconnection failed)".to_owned(),
            };
            PkiError::Signing(format!("{cause} on token {:?}; reconnecting failed: {why}", self.config.token_label))
        })?;
        let connection = guard.insert(connection);
        connection.session.sign(mechanism, connection.key, data).map_err(|e| self.signing_error(&e))
    }

    fn signing_error(&self, e: &CkError) -> PkiError {
        PkiError::Signing(format!(
            "{} with the key labelled {:?} on token {:?} ({})",
            ck_describe(e),
            self.config.key_label,
            self.config.token_label,
            self.mechanism.name()
        ))
    }
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let (mechanism, data) = self.mechanism.prepare(message);
        self.mechanism.finish(self.token_sign(&mechanism, &data)?)
    }
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("algorithm", &self.algorithm)
            .field("token_label", &self.config.token_label)
            .field("key_label", &self.config.key_label)
            .field("mechanism", &self.mechanism.name())
            .finish_non_exhaustive()
    }
}

/// The process-wide, initialised context of each module loaded so far.
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// Loads `module` and calls `C_Initialize` the first time; afterwards returns the same context.
pub fn context(module: &Path) -> Result<Pkcs11, PkiError> {
    let mut contexts = CONTEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, context)) = contexts.iter().find(|(path, _)| path == module) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(module).map_err(|e| {
        PkiError::Key(format!("could not load the PKCS#11 module {}: {}", module.display(), ck_describe(&e)))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(PkiError::Key(format!(
                "could not initialise the PKCS#11 module {}: {}",
                module.display(),
                ck_describe(&e)
            )));
        }
    }
    contexts.push((module.to_owned(), context.clone()));
    Ok(context)
}

/// The slot holding the one token labelled `label`.
fn find_token(context: &Pkcs11, label: &str) -> Result<Slot, PkiError> {
    let slots = context.get_slots_with_token().map_err(|e| key_error("could not list the token slots", &e))?;
    let mut found = Vec::new();
    for slot in slots {
        let info = context.get_token_info(slot).map_err(|e| key_error("could not read a token's information", &e))?;
        if info.label().trim_end() == label.trim_end() {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(PkiError::Key(format!("no token labelled {label:?} in the PKCS#11 module"))),
        _ => Err(PkiError::Key(format!("{} tokens are labelled {label:?}; token labels must be unique", found.len()))),
    }
}

/// Logs the user in; `CKR_USER_ALREADY_LOGGED_IN` (another session of this process did) is
/// success. The error message never contains the PIN.
fn login(session: &Session, config: &Pkcs11Config) -> Result<(), String> {
    let pin = AuthPin::from(config.pin.as_str());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e @ CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
            Err(format!("token {:?} refused the PIN ({})", config.token_label, ck_describe(&e)))
        }
        Err(e @ CkError::Pkcs11(RvError::PinLocked, _)) => {
            Err(format!("the user PIN of token {:?} is locked ({})", config.token_label, ck_describe(&e)))
        }
        Err(e) => Err(format!("could not log in to token {:?}: {}", config.token_label, ck_describe(&e))),
    }
}

/// Handles of the private keys labelled `label`.
fn find_private_keys(session: &Session, label: &str) -> Result<Vec<ObjectHandle>, PkiError> {
    session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label.as_bytes().to_vec())])
        .map_err(|e| key_error("could not look for the private key", &e))
}

/// The one private key labelled `config.key_label`.
fn the_private_key(session: &Session, config: &Pkcs11Config) -> Result<ObjectHandle, PkiError> {
    let keys = find_private_keys(session, &config.key_label)?;
    match keys.as_slice() {
        [key] => Ok(*key),
        [] => Err(PkiError::Key(format!(
            "token {:?} has no private key labelled {:?}",
            config.token_label, config.key_label
        ))),
        _ => Err(PkiError::Key(format!(
            "token {:?} has {} private keys labelled {:?}; key labels must be unique",
            config.token_label,
            keys.len(),
            config.key_label
        ))),
    }
}

/// DER of the P-256 namedCurve OID, as `CKA_EC_PARAMS` holds it.
pub fn p256_params() -> Result<Vec<u8>, PkiError> {
    oids::P256_CURVE.to_der().map_err(|e| PkiError::encoding("P-256 curve", e))
}

/// The algorithm of an EC key from its `CKA_EC_PARAMS`.
fn ec_algorithm(params: Option<&[u8]>) -> Result<Algorithm, PkiError> {
    let params = params.ok_or_else(|| PkiError::Key("the EC key has no CKA_EC_PARAMS".to_owned()))?;
    match const_oid::ObjectIdentifier::from_der(params) {
        Ok(oids::P256_CURVE) => Ok(Algorithm::P256),
        Ok(oids::SM2_CURVE) => Err(PkiError::UnsupportedAlgorithm(
            "an SM2 key in a PKCS#11 token: signing with it needs the key vendor's PKCS#11 module and its \
             vendor-defined mechanisms, which yiqian does not support"
                .to_owned(),
        )),
        Ok(other) => Err(PkiError::UnsupportedAlgorithm(format!("EC key on curve {other}; only P-256 is supported"))),
        Err(_) => Err(PkiError::UnsupportedAlgorithm(
            "EC key with explicit or unrecognised curve parameters; only the named curve P-256 is supported".to_owned(),
        )),
    }
}

/// The SubjectPublicKeyInfo of a public key object. For RSA, `private` is the fallback when
/// the public object lacks the modulus.
pub fn public_key(
    session: &Session,
    public: ObjectHandle,
    private: Option<ObjectHandle>,
    algorithm: Algorithm,
) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    match algorithm {
        Algorithm::P256 => {
            let attributes = session
                .get_attributes(public, &[AttributeType::EcPoint])
                .map_err(|e| key_error("could not read CKA_EC_POINT", &e))?;
            let point = attributes
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(point) => Some(point),
                    _ => None,
                })
                .ok_or_else(|| PkiError::Key("the public key has no CKA_EC_POINT".to_owned()))?;
            let point = ec_point(&point)?;
            Ok(SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: oids::EC_PUBLIC_KEY,
                    parameters: Some(Any::from(&oids::P256_CURVE)),
                },
                subject_public_key: BitString::from_bytes(&point)
                    .map_err(|e| PkiError::encoding("EC public key", e))?,
            })
        }
        Algorithm::Rsa3072 => match rsa_public_key(session, public) {
            Ok(spki) => Ok(spki),
            Err(e) => match private {
                Some(private) => rsa_public_key(session, private),
                None => Err(e),
            },
        },
        Algorithm::Sm2 => Err(PkiError::UnsupportedAlgorithm("SM2 keys in PKCS#11 tokens".to_owned())),
    }
}

/// The uncompressed P-256 point of a `CKA_EC_POINT`: PKCS#11 says it is a DER OCTET STRING
/// (SoftHSM2: `04 41 04 …`, 67 bytes); some tokens return the bare 65-byte point.
fn ec_point(value: &[u8]) -> Result<Vec<u8>, PkiError> {
    let point = if value.len() == 65 && value[0] == 0x04 {
        value.to_vec()
    } else {
        OctetString::from_der(value)
            .map_err(|e| PkiError::Key(format!("CKA_EC_POINT is neither a DER OCTET STRING nor a bare point: {e}")))?
            .into_bytes()
            .into_vec()
    };
    if point.len() != 65 || point[0] != 0x04 {
        return Err(PkiError::Key(format!(
            "CKA_EC_POINT holds a {}-byte value, not an uncompressed P-256 point",
            point.len()
        )));
    }
    Ok(point)
}

/// The SubjectPublicKeyInfo of an RSA key object, from `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`.
fn rsa_public_key(session: &Session, object: ObjectHandle) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    let attributes = session
        .get_attributes(object, &[AttributeType::Modulus, AttributeType::PublicExponent])
        .map_err(|e| key_error("could not read the RSA modulus and exponent", &e))?;
    let mut modulus = None;
    let mut exponent = None;
    for attribute in attributes {
        match attribute {
            Attribute::Modulus(n) => modulus = Some(n),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
        return Err(PkiError::Key("the RSA key has no CKA_MODULUS or CKA_PUBLIC_EXPONENT".to_owned()));
    };
    let pkcs1 = rsa_public_key_der(&modulus, &exponent)?;
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: oids::RSA_ENCRYPTION, parameters: Some(Any::from(Null)) },
        subject_public_key: BitString::from_bytes(&pkcs1).map_err(|e| PkiError::encoding("RSA public key", e))?,
    })
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` from the
/// big-endian unsigned values PKCS#11 stores.
fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, PkiError> {
    let integer = |bytes: &[u8], what: &str| {
        UintRef::new(bytes).and_then(|u| u.to_der()).map_err(|e| PkiError::encoding(what, e))
    };
    Ok(tlv(tag::SEQUENCE, &[&integer(modulus, "RSA modulus")?, &integer(exponent, "RSA public exponent")?]))
}

/// Converts a raw PKCS#11 ECDSA P-256 signature `r‖s` (32 + 32 bytes) to the DER
/// `SEQUENCE { r INTEGER, s INTEGER }` X.509 carries.
fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, PkiError> {
    if raw.len() != 64 {
        return Err(PkiError::Signing(format!(
            "the token returned a {}-byte ECDSA signature; a P-256 r‖s is 64 bytes",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(32);
    let integer = |bytes: &[u8]| {
        UintRef::new(bytes).and_then(|u| u.to_der()).map_err(|e| PkiError::encoding("ECDSA signature", e))
    };
    Ok(tlv(tag::SEQUENCE, &[&integer(r)?, &integer(s)?]))
}

/// Whether an error means the session or the login is gone, so that a new session and a new
/// login may succeed.
fn is_stale(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid,
            _
        )
    )
}

fn key_error(what: &str, e: &CkError) -> PkiError {
    PkiError::Key(format!("{what}: {}", ck_describe(e)))
}

/// "C_Login returned CKR_PIN_INCORRECT" for PKCS#11 errors; cryptoki's text for the rest.
pub fn ck_describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {}", rv_name(rv)),
        other => other.to_string(),
    }
}

/// The PKCS#11 name of a return code: `RvError::PinIncorrect` → `CKR_PIN_INCORRECT`.
fn rv_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("vendor-defined return code {code:#x}"),
        RvError::UnknownErrorCode(code) => format!("unknown return code {code:#x}"),
        other => {
            let camel = format!("{other:?}");
            let mut name = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, KeyPair as _};

    #[test]
    fn return_codes_read_as_pkcs11_names() {
        assert_eq!(rv_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(rv_name(&RvError::SessionHandleInvalid), "CKR_SESSION_HANDLE_INVALID");
        assert_eq!(rv_name(&RvError::CryptokiAlreadyInitialized), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
        assert_eq!(rv_name(&RvError::MechanismInvalid), "CKR_MECHANISM_INVALID");
        assert_eq!(rv_name(&RvError::VendorDefined(0x8000_0001)), "vendor-defined return code 0x80000001");
        let e = CkError::Pkcs11(RvError::UserNotLoggedIn, cryptoki::context::Function::SignInit);
        assert_eq!(ck_describe(&e), "C_SignInit returned CKR_USER_NOT_LOGGED_IN");
        assert!(is_stale(&e));
        assert!(!is_stale(&CkError::Pkcs11(RvError::PinIncorrect, cryptoki::context::Function::Login)));
    }

    #[test]
    fn debug_masks_the_pin() {
        let config = Pkcs11Config {
            module: SOFTHSM2_MODULE.into(),
            token_label: "ca".to_owned(),
            pin: Zeroizing::new("93857261".to_owned()),
            key_label: "root".to_owned(),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("93857261"), "{debug}");
        assert!(debug.contains("<hidden>") && debug.contains("root"), "{debug}");
        assert!(!format!("{:?}", config.clone()).contains("93857261"));
    }

    #[test]
    fn raw_ecdsa_signatures_become_der_that_verifies() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = EcdsaKeyPair::generate(&lc::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        // Enough signatures that r or s with a high first bit (needing a 0x00) or a leading
        // zero byte (needing trimming) certainly occur.
        for i in 0..200u32 {
            let message = i.to_be_bytes();
            let raw = key.sign(&rng, &message).unwrap();
            let der = ecdsa_raw_to_der(raw.as_ref()).unwrap();
            lc::UnparsedPublicKey::new(&lc::ECDSA_P256_SHA256_ASN1, key.public_key().as_ref())
                .verify(&message, &der)
                .unwrap();
        }
        // Leading zeros are trimmed, high bits padded.
        let mut raw = [0u8; 64];
        raw[31] = 0x01;
        raw[32] = 0x80;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], [0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], [0x02, 0x21, 0x00]);
        assert!(matches!(ecdsa_raw_to_der(&raw[..63]), Err(PkiError::Signing(_))));
    }

    #[test]
    fn ec_points_are_unwrapped() {
        let mut point = vec![0x04];
        point.extend([0x11; 64]);
        let wrapped = [&[0x04, 0x41][..], &point].concat();
        assert_eq!(ec_point(&wrapped).unwrap(), point);
        assert_eq!(ec_point(&point).unwrap(), point);
        assert!(ec_point(&[0x04, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(ec_point(b"").is_err());
    }

    #[test]
    fn rsa_public_keys_match_the_software_encoding() {
        let key = crate::key::tests::test_key(Algorithm::Rsa3072);
        let pkcs1 = key.public_key().subject_public_key.raw_bytes();
        // Take the modulus and exponent out of the software key's PKCS#1 encoding and encode
        // them again the way PKCS#11 values are.
        let mut reader = der::SliceReader::new(pkcs1).unwrap();
        let (n, e) = der::Reader::sequence(&mut reader, |r| -> der::Result<_> {
            Ok((UintRef::decode(r)?, UintRef::decode(r)?))
        })
        .unwrap();
        assert_eq!(rsa_public_key_der(n.as_bytes(), e.as_bytes()).unwrap(), pkcs1);
        // A modulus with a leading zero byte (as some tokens store it) encodes the same.
        let padded = [&[0u8][..], n.as_bytes()].concat();
        assert_eq!(rsa_public_key_der(&padded, &[0, 1, 0, 1]).unwrap(), pkcs1);
    }

    #[test]
    fn curve_parameters_select_the_algorithm() {
        assert_eq!(ec_algorithm(Some(&p256_params().unwrap())), Ok(Algorithm::P256));
        let sm2 = oids::SM2_CURVE.to_der().unwrap();
        assert!(matches!(ec_algorithm(Some(&sm2)), Err(PkiError::UnsupportedAlgorithm(m)) if m.contains("vendor")));
        assert!(matches!(ec_algorithm(Some(b"\x13\x0aprime256v1")), Err(PkiError::UnsupportedAlgorithm(_))));
        assert!(matches!(ec_algorithm(None), Err(PkiError::Key(_))));
    }

    #[test]
    fn sm2_generation_is_refused_before_any_module_is_loaded() {
        let config = Pkcs11Config {
            module: "/nonexistent/module.so".into(),
            token_label: "t".to_owned(),
            pin: Zeroizing::new("1234".to_owned()),
            key_label: "k".to_owned(),
        };
        match Pkcs11Key::generate(&config, Algorithm::Sm2) {
            Err(PkiError::UnsupportedAlgorithm(message)) => {
                assert!(message.contains("vendor") && message.contains("PKCS#11 module"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        match Pkcs11Key::open(&config) {
            Err(PkiError::Key(message)) => assert!(message.contains("/nonexistent/module.so"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
