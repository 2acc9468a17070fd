//! The PKCS#11 UKEY driver: each slot of a PKCS#11 module with a token in it is one key in the
//! hub. It implements the [`Token`] seam with `cryptoki`, in the order of PKCS#11 v2.40:
//!
//! | seam | PKCS#11 |
//! | --- | --- |
//! | [`TokenReader::present`] | `C_GetSlotList(tokenPresent)` + `C_GetTokenInfo` (serial, label, manufacturer + model, flags) |
//! | [`Token::initialise`] | `C_InitToken(current SO PIN, label)`, then `C_Login(CKU_SO)` + `C_SetPIN(current, new)` |
//! | [`Token::init_user_pin`] | `C_Login(CKU_SO)` + `C_InitPIN` (also the counter's PIN unlock) |
//! | [`Token::change_user_pin`] | `C_Login(CKU_USER)` + `C_SetPIN` |
//! | [`Token::generate_key_pair`] | `C_GenerateKeyPair` (`CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, one `CKA_ID`), read back and checked |
//! | [`Token::signer`] | `C_Sign`: `CKM_ECDSA` over a software SHA-256 (P-256); `CKM_SHA256_RSA_PKCS` or `CKM_RSA_PKCS` over a DigestInfo (RSA-3072) |
//! | [`Token::write_certificate`] | `C_CreateObject(CKO_CERTIFICATE, CKC_X_509)` with the key's `CKA_ID`, then a test signature verified under the certificate |
//! | [`Token::write_ca_certificates`] | `C_CreateObject(CKO_CERTIFICATE)` labelled `CA 1`, `CA 2`… without `CKA_ID` |
//! | [`Token::destroy_key`] | `C_DestroyObject` of every object with the `CKA_ID` |
//!
//! # The factory SO PIN
//!
//! UKEYs ship initialised with the vendor's default SO PIN (configured per deployment as a
//! secret, [`Pkcs11ReaderConfig::factory_so_pin`]). `C_InitToken` on an initialised token
//! checks the SO PIN it is given and keeps it, so personalising a factory-fresh key is
//! `C_InitToken(factory PIN)` and then `C_SetPIN` in an SO session to the random SO PIN.
//! A token that is not initialised at all takes the new SO PIN in `C_InitToken` directly; such
//! tokens are only offered when [`Pkcs11ReaderConfig::accept_uninitialised`] is set, because
//! SoftHSM2 always shows one uninitialised slot that is not a key in any hub.
//!
//! A key counts as blank when its label is not one yiqian writes ([`is_personalised_label`]):
//! a factory label (`ePass2003`, SoftHSM2's `blank1`…).
//!
//! # Refusals
//!
//! Many commercial keys refuse `C_InitToken` through PKCS#11 (it needs the vendor's tool or
//! OpenSC's `pkcs15-init`), some cannot make RSA-3072 keys or silently drop
//! `CKA_EXTRACTABLE`. Each refusal is a [`TokenError::Refused`] naming the function, the
//! return code and the attribute or mechanism concerned; a key pair whose read-back attributes
//! show it extractable or not sensitive is destroyed and refused.
//!
//! Tokens are found by serial number (`CK_TOKEN_INFO.serialNumber`) on every call, never by
//! slot id: slot ids change when a key is re-inserted or re-initialised. SM2 is not offered:
//! PKCS#11 has no standard SM2 mechanism; China's SM2 keys are driven through [`crate::skf`].
//!
//! Tested against SoftHSM2 2.6 (Debian `softhsm2`); see docs/fulfilment.md for what was and
//! was not tried with real keys.

use crate::{Pin, Token, TokenError, TokenInfo, TokenReader, is_personalised_label};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::sync::Mutex;
use yiqian_pki::der::{Decode, Encode};
use yiqian_pki::pkcs11::{SignMechanism, ck_describe, p256_params, public_key};
use yiqian_pki::spki::SubjectPublicKeyInfoOwned;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{Algorithm, PkiError, Signer, verify};

/// The name of this reader kind.
pub const NAME: &str = "pkcs11";

/// The longest token label (`CK_TOKEN_INFO.label` is 32 bytes, blank-padded).
pub const MAX_LABEL_BYTES: usize = crate::MAX_LABEL_BYTES;

/// `CKA_LABEL` of the key pairs yiqian generates.
const KEY_LABEL: &str = "yiqian";

/// `CKA_LABEL` prefix of the CA certificates written beside the holder's.
const CA_LABEL_PREFIX: &str = "CA ";

/// Signed after the certificate is written and checked against it.
const SELF_TEST_MESSAGE: &[u8] = b"yiqian UKEY personalisation self-test";

/// How to reach the keys of one PKCS#11 module.
#[derive(Debug, Clone)]
pub struct Pkcs11ReaderConfig {
    /// The module: OpenSC's `opensc-pkcs11.so` for Feitian/ePass-class keys, the vendor's
    /// module otherwise, `/usr/lib/softhsm/libsofthsm2.so` for SoftHSM2.
    pub module: PathBuf,
    /// The SO PIN the keys ship with (the vendor's default), used by `C_InitToken` on a
    /// factory-fresh key. `None` when keys ship uninitialised.
    pub factory_so_pin: Option<Pin>,
    /// Offer tokens without `CKF_TOKEN_INITIALIZED` as blank keys (off by default: SoftHSM2
    /// always shows one such slot).
    pub accept_uninitialised: bool,
}

/// The keys of a PKCS#11 module. See the [module docs](self).
pub struct Pkcs11TokenReader {
    config: Pkcs11ReaderConfig,
    context: Pkcs11,
}

impl std::fmt::Debug for Pkcs11TokenReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11TokenReader").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Pkcs11TokenReader {
    /// Loads the module (once per process; `C_Initialize` with OS locking).
    pub fn open(config: Pkcs11ReaderConfig) -> Result<Pkcs11TokenReader, TokenError> {
        let context = yiqian_pki::pkcs11::context(&config.module).map_err(|e| match e {
            PkiError::Key(message) => TokenError::Io(message),
            other => TokenError::Io(other.to_string()),
        })?;
        Ok(Pkcs11TokenReader { config, context })
    }

    /// The token with `serial` as a concrete handle.
    pub fn token(&self, serial: &str) -> Result<Pkcs11Token, TokenError> {
        let token = Pkcs11Token {
            context: self.context.clone(),
            serial: serial.to_owned(),
            factory_so_pin: self.config.factory_so_pin.clone(),
        };
        token.slot()?;
        Ok(token)
    }

    /// Every slot with a token, with its information.
    fn slots(&self) -> Result<Vec<(Slot, TokenInfo)>, TokenError> {
        let slots = self.context.get_slots_with_token().map_err(|e| io("C_GetSlotList", &e))?;
        let mut found = Vec::with_capacity(slots.len());
        for slot in slots {
            match self.context.get_token_info(slot) {
                Ok(info) => {
                    if info.token_initialized() || self.config.accept_uninitialised {
                        found.push((slot, describe(&info)));
                    }
                }
                // Pulled out between the two calls.
                Err(CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved | RvError::SlotIdInvalid, _)) => {
                }
                Err(e) => return Err(io("C_GetTokenInfo", &e)),
            }
        }
        Ok(found)
    }
}

impl TokenReader for Pkcs11TokenReader {
    fn name(&self) -> &'static str {
        NAME
    }

    fn present(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let mut infos: Vec<TokenInfo> = self.slots()?.into_iter().map(|(_, info)| info).collect();
        infos.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(infos)
    }

    fn blank_token(&self) -> Result<Box<dyn Token>, TokenError> {
        let mut blank: Vec<TokenInfo> =
            self.present()?.into_iter().filter(|info| !is_personalised_label(&info.label)).collect();
        blank.sort_by(|a, b| a.serial.cmp(&b.serial));
        let first = blank.first().ok_or_else(|| {
            TokenError::NotPresent(format!("no blank key in the PKCS#11 module {}", self.config.module.display()))
        })?;
        Ok(Box::new(self.token(&first.serial)?))
    }

    fn open(&self, serial: &str) -> Result<Box<dyn Token>, TokenError> {
        Ok(Box::new(self.token(serial)?))
    }
}

/// One key, by its serial number. Holds no session between calls.
pub struct Pkcs11Token {
    context: Pkcs11,
    serial: String,
    factory_so_pin: Option<Pin>,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Token").field("serial", &self.serial).finish_non_exhaustive()
    }
}

impl Pkcs11Token {
    /// The slot the token is in now.
    fn slot(&self) -> Result<Slot, TokenError> {
        let slots = self.context.get_slots_with_token().map_err(|e| io("C_GetSlotList", &e))?;
        for slot in slots {
            if let Ok(info) = self.context.get_token_info(slot)
                && info.serial_number().trim_end() == self.serial
            {
                return Ok(slot);
            }
        }
        Err(TokenError::NotPresent(self.serial.clone()))
    }

    fn info_of(&self, slot: Slot) -> Result<cryptoki::slot::TokenInfo, TokenError> {
        self.context.get_token_info(slot).map_err(|e| self.error("C_GetTokenInfo", &e))
    }

    /// A read-write session on the token.
    fn session(&self) -> Result<Session, TokenError> {
        let slot = self.slot()?;
        self.context.open_rw_session(slot).map_err(|e| self.error("C_OpenSession", &e))
    }

    /// A session logged in as `user` with `pin`.
    fn login(&self, user: UserType, pin: &Pin) -> Result<Session, TokenError> {
        let session = self.session()?;
        match session.login(user, Some(&AuthPin::from(pin.expose()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(self.pin_error(&e, user)),
        }
    }

    /// A PIN refusal, with what the token's flags tell about the counter.
    fn pin_error(&self, e: &CkError, user: UserType) -> TokenError {
        match e {
            CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _) => {
                let info = self.slot().and_then(|slot| self.info_of(slot)).ok();
                let (locked, final_try) = match (&info, user) {
                    (Some(i), UserType::So) => (i.so_pin_locked(), i.so_pin_final_try()),
                    (Some(i), _) => (i.user_pin_locked(), i.user_pin_final_try()),
                    (None, _) => (false, false),
                };
                match (locked, user) {
                    (true, UserType::So) => TokenError::State("SO PIN locked".to_owned()),
                    (true, _) => TokenError::PinLocked,
                    (false, _) => TokenError::PinIncorrect { tries_left: final_try.then_some(1) },
                }
            }
            CkError::Pkcs11(RvError::PinLocked, _) => match user {
                UserType::So => TokenError::State("SO PIN locked".to_owned()),
                _ => TokenError::PinLocked,
            },
            CkError::Pkcs11(RvError::UserPinNotInitialized, _) => {
                TokenError::State("the user PIN is not set".to_owned())
            }
            other => self.error("C_Login", other),
        }
    }

    /// A cryptoki error as a token error: removal is `NotPresent`, refusals name the call.
    fn error(&self, call: &str, e: &CkError) -> TokenError {
        match e {
            CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved | RvError::SlotIdInvalid, _) => {
                TokenError::NotPresent(self.serial.clone())
            }
            CkError::Pkcs11(RvError::SessionExists, _) => TokenError::State(format!(
                "{} on key {}: another program or handle has a session open on the key; close it and try again",
                ck_describe(e),
                self.serial
            )),
            CkError::Pkcs11(RvError::FunctionNotSupported, _) => TokenError::Refused(format!(
                "{call} is not supported by this key's PKCS#11 module ({})",
                ck_describe(e)
            )),
            _ => TokenError::Io(format!("{call} on key {}: {}", self.serial, ck_describe(e))),
        }
    }

    /// Objects matching `template`.
    fn find(&self, session: &Session, template: &[Attribute]) -> Result<Vec<ObjectHandle>, TokenError> {
        session.find_objects(template).map_err(|e| self.error("C_FindObjects", &e))
    }

    /// The private key with `key_id`.
    fn private_key(&self, session: &Session, key_id: &[u8]) -> Result<ObjectHandle, TokenError> {
        let found =
            self.find(session, &[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(key_id.to_vec())])?;
        match found.as_slice() {
            [key] => Ok(*key),
            [] => Err(no_such_key(key_id)),
            _ => Err(TokenError::State(format!(
                "the key has {} private keys with ID {}",
                found.len(),
                hex::encode(key_id)
            ))),
        }
    }

    /// The algorithm and SubjectPublicKeyInfo of the key pair with `key_id`.
    fn key_pair(
        &self,
        session: &Session,
        key_id: &[u8],
    ) -> Result<(ObjectHandle, Algorithm, SubjectPublicKeyInfoOwned), TokenError> {
        let private = self.private_key(session, key_id)?;
        let attributes = session
            .get_attributes(private, &[AttributeType::KeyType])
            .map_err(|e| self.error("C_GetAttributeValue(CKA_KEY_TYPE)", &e))?;
        let algorithm = match attributes.first() {
            Some(Attribute::KeyType(KeyType::EC)) => Algorithm::P256,
            Some(Attribute::KeyType(KeyType::RSA)) => Algorithm::Rsa3072,
            _ => return Err(TokenError::State(format!("key {} is neither EC nor RSA", hex::encode(key_id)))),
        };
        let publics =
            self.find(session, &[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(key_id.to_vec())])?;
        let public = *publics.first().ok_or_else(|| {
            TokenError::State(format!("the key has no public key object with ID {}", hex::encode(key_id)))
        })?;
        let spki = public_key(session, public, Some(private), algorithm).map_err(TokenError::Pki)?;
        Ok((private, algorithm, spki))
    }

    /// Checks that the token offers `mechanism`, naming it when not.
    fn require_mechanism(&self, slot: Slot, mechanism: MechanismType, name: &str) -> Result<(), TokenError> {
        let list = self.context.get_mechanism_list(slot).map_err(|e| self.error("C_GetMechanismList", &e))?;
        if list.contains(&mechanism) {
            Ok(())
        } else {
            Err(TokenError::Refused(format!("key {} does not offer the mechanism {name}", self.serial)))
        }
    }
}

impl Token for Pkcs11Token {
    fn info(&self) -> Result<TokenInfo, TokenError> {
        let slot = self.slot()?;
        Ok(describe(&self.info_of(slot)?))
    }

    fn initialise(&mut self, current_so_pin: Option<&Pin>, so_pin: &Pin, label: &str) -> Result<(), TokenError> {
        crate::check_label(label)?;
        let slot = self.slot()?;
        let initialised = self.info_of(slot)?.token_initialized();
        // C_InitToken checks the current SO PIN of an initialised token and keeps it; an
        // uninitialised one takes the new SO PIN directly.
        let current = match (initialised, current_so_pin) {
            (false, _) => so_pin,
            (true, Some(pin)) => pin,
            (true, None) => self.factory_so_pin.as_ref().ok_or_else(|| {
                TokenError::State(
                    "the key is initialised and no factory SO PIN is configured: set the model's default SO PIN \
                     (pkcs11.factory_so_pin) or re-initialise the key with its current SO PIN"
                        .to_owned(),
                )
            })?,
        };
        match self.context.init_token(slot, &AuthPin::from(current.expose()), label) {
            Ok(()) => {}
            Err(e @ CkError::Pkcs11(RvError::FunctionNotSupported, _)) => {
                return Err(TokenError::Refused(format!(
                    "key {} refuses C_InitToken ({}): initialise it with the vendor's tool or OpenSC's pkcs15-init, \
                     then personalise it",
                    self.serial,
                    ck_describe(&e)
                )));
            }
            Err(e) => return Err(self.pin_error(&e, UserType::So)),
        }
        if current.expose() != so_pin.expose() {
            let session = self.login(UserType::So, current)?;
            session.set_pin(&AuthPin::from(current.expose()), &AuthPin::from(so_pin.expose())).map_err(
                |e| match e {
                    CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => TokenError::Refused(format!(
                        "key {} refuses a {}-digit SO PIN ({}); adjust the SO PIN length for this model",
                        self.serial,
                        so_pin.expose().len(),
                        ck_describe(&e)
                    )),
                    other => self.error("C_SetPIN(SO)", &other),
                },
            )?;
        }
        Ok(())
    }

    fn init_user_pin(&mut self, so_pin: &Pin, user_pin: &Pin) -> Result<(), TokenError> {
        let session = self.login(UserType::So, so_pin)?;
        session.init_pin(&AuthPin::from(user_pin.expose())).map_err(|e| match e {
            CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => TokenError::Refused(format!(
                "key {} refuses a {}-digit user PIN ({})",
                self.serial,
                user_pin.expose().len(),
                ck_describe(&e)
            )),
            other => self.error("C_InitPIN", &other),
        })
    }

    fn change_user_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), TokenError> {
        let session = self.login(UserType::User, old)?;
        session
            .set_pin(&AuthPin::from(old.expose()), &AuthPin::from(new.expose()))
            .map_err(|e| self.error("C_SetPIN", &e))
    }

    fn generate_key_pair(
        &mut self,
        user_pin: &Pin,
        algorithm: Algorithm,
        key_id: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let slot = self.slot()?;
        let (mechanism, name) = match algorithm {
            Algorithm::P256 => (Mechanism::EccKeyPairGen, "CKM_EC_KEY_PAIR_GEN"),
            Algorithm::Rsa3072 => (Mechanism::RsaPkcsKeyPairGen, "CKM_RSA_PKCS_KEY_PAIR_GEN"),
            Algorithm::Sm2 => return Err(TokenError::Unsupported(algorithm)),
        };
        self.require_mechanism(slot, mechanism.mechanism_type(), name)?;
        if algorithm == Algorithm::Rsa3072 {
            let info = self
                .context
                .get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
                .map_err(|e| self.error("C_GetMechanismInfo", &e))?;
            if info.max_key_size() < 3072 {
                return Err(TokenError::Refused(format!(
                    "key {} makes RSA keys of at most {} bits with CKM_RSA_PKCS_KEY_PAIR_GEN; RSA-3072 needs 3072",
                    self.serial,
                    info.max_key_size()
                )));
            }
        }
        let session = self.login(UserType::User, user_pin)?;
        if !self.find(&session, &[Attribute::Id(key_id.to_vec())])?.is_empty() {
            return Err(TokenError::State(format!("the token already has a key with ID {}", hex::encode(key_id))));
        }
        let label = KEY_LABEL.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.clone()),
            Attribute::Id(key_id.to_vec()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(key_id.to_vec()),
        ];
        match algorithm {
            Algorithm::P256 => public.push(Attribute::EcParams(p256_params()?)),
            _ => {
                public.push(Attribute::ModulusBits(3072.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            }
        }
        let (public_handle, private_handle) =
            session.generate_key_pair(&mechanism, &public, &private).map_err(|e| match e {
                CkError::Pkcs11(
                    rv @ (RvError::AttributeTypeInvalid
                    | RvError::AttributeValueInvalid
                    | RvError::TemplateIncomplete
                    | RvError::TemplateInconsistent
                    | RvError::AttributeReadOnly
                    | RvError::MechanismInvalid
                    | RvError::MechanismParamInvalid
                    | RvError::KeySizeRange
                    | RvError::DomainParamsInvalid
                    | RvError::CurveNotSupported),
                    _,
                ) => TokenError::Refused(format!(
                    "key {} refuses C_GenerateKeyPair({name}) with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, \
                     CKA_EXTRACTABLE false, CKA_SIGN, CKA_ID{}: {}",
                    self.serial,
                    if algorithm == Algorithm::P256 { ", CKA_EC_PARAMS P-256" } else { ", CKA_MODULUS_BITS 3072" },
                    ck_describe(&CkError::Pkcs11(rv, cryptoki::context::Function::GenerateKeyPair))
                )),
                other => self.error("C_GenerateKeyPair", &other),
            })?;

        // Read back: a token that ignored CKA_SENSITIVE or CKA_EXTRACTABLE does not keep the
        // key for us.
        let kept = session
            .get_attributes(
                private_handle,
                &[AttributeType::Sensitive, AttributeType::Extractable, AttributeType::Token, AttributeType::Id],
            )
            .map_err(|e| self.error("C_GetAttributeValue", &e))?;
        let mut problems = Vec::new();
        for attribute in &kept {
            match attribute {
                Attribute::Sensitive(false) => problems.push("CKA_SENSITIVE is false"),
                Attribute::Extractable(true) => problems.push("CKA_EXTRACTABLE is true"),
                Attribute::Token(false) => problems.push("CKA_TOKEN is false"),
                Attribute::Id(id) if id != key_id => problems.push("CKA_ID differs"),
                _ => {}
            }
        }
        if kept.len() < 4 {
            problems.push("an attribute could not be read back");
        }
        if !problems.is_empty() {
            let _ = session.destroy_object(private_handle);
            let _ = session.destroy_object(public_handle);
            return Err(TokenError::Refused(format!(
                "key {} did not keep the private key as asked: {}",
                self.serial,
                problems.join(", ")
            )));
        }
        let spki = public_key(&session, public_handle, Some(private_handle), algorithm)?;
        spki.to_der().map_err(|e| TokenError::Io(format!("public key: {e}")))
    }

    fn signer(&self, user_pin: &Pin, key_id: &[u8]) -> Result<Box<dyn Signer>, TokenError> {
        let session = self.login(UserType::User, user_pin)?;
        let (key, algorithm, spki) = self.key_pair(&session, key_id)?;
        let mechanism = match algorithm {
            Algorithm::P256 => SignMechanism::Ecdsa,
            _ => {
                let slot = self.slot()?;
                let list = self.context.get_mechanism_list(slot).map_err(|e| self.error("C_GetMechanismList", &e))?;
                if list.contains(&MechanismType::SHA256_RSA_PKCS) {
                    SignMechanism::Sha256RsaPkcs
                } else if list.contains(&MechanismType::RSA_PKCS) {
                    SignMechanism::RsaPkcs
                } else {
                    return Err(TokenError::Refused(format!(
                        "key {} offers neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS",
                        self.serial
                    )));
                }
            }
        };
        if mechanism == SignMechanism::Ecdsa {
            let slot = self.slot()?;
            self.require_mechanism(slot, MechanismType::ECDSA, "CKM_ECDSA")?;
        }
        Ok(Box::new(UkeySigner {
            serial: self.serial.clone(),
            algorithm,
            spki,
            mechanism,
            session: Mutex::new((session, key)),
        }))
    }

    fn write_certificate(&mut self, user_pin: &Pin, key_id: &[u8], der: &[u8]) -> Result<(), TokenError> {
        let certificate = parse_certificate(der)?;
        let tbs = certificate.tbs_certificate();
        let session = self.login(UserType::User, user_pin)?;
        let (_, algorithm, spki) = self.key_pair(&session, key_id)?;
        if tbs.subject_public_key_info() != &spki {
            return Err(TokenError::State("certificate does not match the key".to_owned()));
        }
        for old in self.find(&session, &[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Id(key_id.to_vec())])? {
            session.destroy_object(old).map_err(|e| self.error("C_DestroyObject", &e))?;
        }
        let encode = |what: &str, r: Result<Vec<u8>, yiqian_pki::der::Error>| {
            r.map_err(|e| TokenError::State(format!("certificate {what}: {e}")))
        };
        let template = vec![
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(KEY_LABEL.as_bytes().to_vec()),
            Attribute::Id(key_id.to_vec()),
            Attribute::Subject(encode("subject", tbs.subject().to_der())?),
            Attribute::Issuer(encode("issuer", tbs.issuer().to_der())?),
            Attribute::SerialNumber(encode("serial", tbs.serial_number().to_der())?),
            Attribute::Value(der.to_vec()),
        ];
        session.create_object(&template).map_err(|e| self.refused_object(e, "the certificate"))?;
        drop(session);

        // Read back and check: the certificate on the token is this one, and the token's key
        // signs under it.
        let on_token = self.certificates()?;
        if !on_token.iter().any(|c| c == der) {
            return Err(TokenError::Io(format!("key {}: the certificate written cannot be read back", self.serial)));
        }
        let signer = self.signer(user_pin, key_id)?;
        let signature = signer.sign(SELF_TEST_MESSAGE)?;
        verify(tbs.subject_public_key_info(), algorithm, SELF_TEST_MESSAGE, &signature, "").map_err(|_| {
            TokenError::State(format!(
                "key {}: a signature by the key does not verify under the certificate",
                self.serial
            ))
        })?;
        Ok(())
    }

    fn write_ca_certificates(&mut self, user_pin: &Pin, chain: &[Vec<u8>]) -> Result<(), TokenError> {
        let parsed: Vec<Certificate> = chain.iter().map(|der| parse_certificate(der)).collect::<Result<_, _>>()?;
        let session = self.login(UserType::User, user_pin)?;
        for (handle, label) in self.certificate_objects(&session)? {
            if label.starts_with(CA_LABEL_PREFIX) {
                session.destroy_object(handle).map_err(|e| self.error("C_DestroyObject", &e))?;
            }
        }
        for (n, (der, certificate)) in chain.iter().zip(&parsed).enumerate() {
            let tbs = certificate.tbs_certificate();
            let subject = tbs.subject().to_der().map_err(|e| TokenError::State(format!("CA certificate: {e}")))?;
            let template = vec![
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(format!("{CA_LABEL_PREFIX}{}", n + 1).into_bytes()),
                Attribute::Subject(subject),
                Attribute::Value(der.clone()),
            ];
            session.create_object(&template).map_err(|e| self.refused_object(e, "a CA certificate"))?;
        }
        Ok(())
    }

    fn certificates(&self) -> Result<Vec<Vec<u8>>, TokenError> {
        let session = self.session()?;
        let mut holders = Vec::new();
        let mut authorities = Vec::new();
        for (handle, label) in self.certificate_objects(&session)? {
            let value = session
                .get_attributes(handle, &[AttributeType::Value])
                .map_err(|e| self.error("C_GetAttributeValue(CKA_VALUE)", &e))?
                .into_iter()
                .find_map(|a| if let Attribute::Value(v) = a { Some(v) } else { None });
            let Some(value) = value else { continue };
            if label.starts_with(CA_LABEL_PREFIX) {
                authorities.push((label, value));
            } else {
                holders.push(value);
            }
        }
        authorities.sort();
        holders.extend(authorities.into_iter().map(|(_, v)| v));
        Ok(holders)
    }

    fn destroy_key(&mut self, user_pin: &Pin, key_id: &[u8]) -> Result<(), TokenError> {
        let session = self.login(UserType::User, user_pin)?;
        self.private_key(&session, key_id)?;
        for object in self.find(&session, &[Attribute::Id(key_id.to_vec())])? {
            session.destroy_object(object).map_err(|e| self.error("C_DestroyObject", &e))?;
        }
        Ok(())
    }
}

impl Pkcs11Token {
    /// The certificate objects and their labels.
    fn certificate_objects(&self, session: &Session) -> Result<Vec<(ObjectHandle, String)>, TokenError> {
        let mut out = Vec::new();
        for handle in self.find(session, &[Attribute::Class(ObjectClass::CERTIFICATE)])? {
            let label = session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(|e| self.error("C_GetAttributeValue(CKA_LABEL)", &e))?
                .into_iter()
                .find_map(|a| {
                    if let Attribute::Label(l) = a { Some(String::from_utf8_lossy(&l).into_owned()) } else { None }
                })
                .unwrap_or_default();
            out.push((handle, label));
        }
        Ok(out)
    }

    fn refused_object(&self, e: CkError, what: &str) -> TokenError {
        match e {
            CkError::Pkcs11(
                RvError::AttributeTypeInvalid
                | RvError::AttributeValueInvalid
                | RvError::TemplateIncomplete
                | RvError::TemplateInconsistent
                | RvError::DeviceMemory,
                _,
            ) => TokenError::Refused(format!(
                "key {} refuses C_CreateObject(CKO_CERTIFICATE, CKC_X_509) for {what}: {}",
                self.serial,
                ck_describe(&e)
            )),
            other => self.error("C_CreateObject", &other),
        }
    }
}

/// A key on the UKEY as a PKI signer, for the length of one logged-in session (the CSR,
/// the self-test). Dropping it closes the session.
struct UkeySigner {
    serial: String,
    algorithm: Algorithm,
    spki: SubjectPublicKeyInfoOwned,
    mechanism: SignMechanism,
    session: Mutex<(Session, ObjectHandle)>,
}

impl Signer for UkeySigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let guard = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (session, key) = (&guard.0, guard.1);
        let (mechanism, data) = self.mechanism.prepare(message);
        let raw = session.sign(&mechanism, key, &data).map_err(|e| {
            PkiError::Signing(format!("{} on key {} ({})", ck_describe(&e), self.serial, self.mechanism.name()))
        })?;
        self.mechanism.finish(raw)
    }
}

/// A token's `CK_TOKEN_INFO` as the seam describes it.
fn describe(info: &cryptoki::slot::TokenInfo) -> TokenInfo {
    let model = format!("{} {}", info.manufacturer_id().trim_end(), info.model().trim_end()).trim().to_owned();
    TokenInfo {
        serial: info.serial_number().trim_end().to_owned(),
        label: info.label().trim_end().to_owned(),
        model,
        initialised: info.token_initialized(),
        user_pin_locked: info.user_pin_locked(),
        user_pin_tries_left: if info.user_pin_locked() {
            Some(0)
        } else if info.user_pin_final_try() {
            Some(1)
        } else {
            None
        },
    }
}

fn parse_certificate(der: &[u8]) -> Result<Certificate, TokenError> {
    Certificate::from_der(der).map_err(|e| TokenError::State(format!("not a DER certificate: {e}")))
}

fn io(call: &str, e: &CkError) -> TokenError {
    TokenError::Io(format!("{call}: {}", ck_describe(e)))
}

fn no_such_key(key_id: &[u8]) -> TokenError {
    TokenError::State(format!("the token has no key with ID {}", hex::encode(key_id)))
}
