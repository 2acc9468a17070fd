//! What the library holds between calls, and the SKF operations over it, in safe Rust (the
//! C side is [`crate::exports`]).
//!
//! Handles are numbers — indices into one [`Table`] behind a mutex, never reused — that the
//! C side sees as pointers; nothing behind a handle is ever dereferenced, so a bad or stale
//! handle is `SAR_INVALIDHANDLEERR`, not undefined behaviour. A device handle holds the last
//! random challenge and whether device authentication passed; an application handle holds
//! its security state: after a correct `SKF_VerifyPIN` the role and the application's data
//! key, in this process's memory (zeroed when dropped) until `SKF_ClearSecureState`,
//! `SKF_CloseApplication`, a wrong PIN or `SKF_DisConnectDev`. (The standard lets a device keep
//! its security state past `SKF_CloseApplication`; ending it there is the safer choice for a
//! stand-in, and the driver clears it explicitly anyway.)
//!
//! Every operation locks and reads the device file afresh (see [`crate::device`]), so a
//! device whose file is removed answers `SAR_DEVICE_REMOVED`, and two processes take turns.
//!
//! Choices where GM/T 0016-2012 names no code: a failed device authentication, a call that
//! needs it without it, and a missing or duplicate container are `SAR_FAIL`; rights not held
//! are `SAR_USER_NOT_LOGGED_IN`.

use crate::device::{
    self, Application, Container, FileObject, KeyPair, Role, Session, key_context, random_id, wrap_context,
};
use rand::RngCore;
use rand::rngs::OsRng;
use sm2::dsa::SigningKey;
use sm2::dsa::signature::hazmat::PrehashSigner;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use yiqian_token::skf::ffi::{
    self, DEVINFO, FILEATTRIBUTE, SECURE_ADM_ACCOUNT, SECURE_ANYONE_ACCOUNT, SECURE_USER_ACCOUNT, ULONG, VERSION, sar,
};
use yiqian_token::software::storage::{Bytes, DataKey, PinCheck, PinSlot, check_pin, new_data_key, open, seal};
use zeroize::Zeroizing;

/// PINs are 6 to 32 bytes.
const PIN_LENGTHS: std::ops::RangeInclusive<usize> = 6..=32;
/// Retry counts from `SKF_CreateApplication`.
const RETRY_COUNTS: std::ops::RangeInclusive<ULONG> = 1..=15;
/// Room on a device.
const MAX_APPLICATIONS: usize = 4;
const MAX_CONTAINERS: usize = 8;
const MAX_FILES: usize = 16;
/// The largest file and certificate.
pub(crate) const MAX_FILE_SIZE: usize = 1024 * 1024;
pub(crate) const MAX_CERTIFICATE: usize = 64 * 1024;
/// What `DEVINFO` reports as total space and block size.
const TOTAL_SPACE: usize = 4 * 1024 * 1024;
const MAX_BUFFER_SIZE: ULONG = 1024;

/// The distinguishing ID the `sm2` signing key is built with. It is never used: the device
/// signs digests (`sign_prehash`), Z_A having been hashed in by the caller.
const SIGNING_KEY_DISTID: &str = "1234567812345678";

/// An SKF handle as a number.
pub(crate) type Id = usize;

/// A device connection.
struct DeviceHandle {
    dir: PathBuf,
    serial: String,
    /// The last `SKF_GenRandom` output, padded with zeros to 16 bytes (§8.2.3).
    challenge: Option<Zeroizing<[u8; 16]>>,
    authenticated: bool,
}

/// A verified PIN.
struct Login {
    role: Role,
    data_key: DataKey,
}

/// An open application.
struct AppHandle {
    device: Id,
    app_id: String,
    login: Option<Login>,
}

/// An open container.
struct ContainerHandle {
    app: Id,
    container_id: String,
}

enum Object {
    Device(DeviceHandle),
    Application(AppHandle),
    Container(ContainerHandle),
}

impl Object {
    fn parent(&self) -> Option<Id> {
        match self {
            Object::Device(_) => None,
            Object::Application(a) => Some(a.device),
            Object::Container(c) => Some(c.app),
        }
    }
}

/// Every open handle of the library.
pub(crate) struct Table {
    next: Id,
    objects: BTreeMap<Id, Object>,
}

static TABLE: Mutex<Table> = Mutex::new(Table { next: 0x5C00_0001, objects: BTreeMap::new() });

/// The table, locked (a panic in an earlier call leaves it usable: every entry is whole).
pub(crate) fn table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The directory of devices: `YIQIAN_SOFTSKF_DIR`, read at every `SKF_EnumDev` and
/// `SKF_ConnectDev`.
fn devices_dir() -> Option<PathBuf> {
    std::env::var_os(crate::DIR_ENV).filter(|d| !d.is_empty()).map(PathBuf::from)
}

/// The names of the devices present (their serials), sorted.
pub(crate) fn enum_devices() -> Vec<String> {
    let Some(dir) = devices_dir() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".skfdev")).map(str::to_owned))
        .filter(|n| device::is_valid_serial(n))
        .collect();
    names.sort();
    names
}

/// Whether `rights` (`SECURE_*`) are held with this security state.
fn allowed(rights: ULONG, login: Option<&Login>) -> bool {
    if rights == SECURE_ANYONE_ACCOUNT {
        return true;
    }
    match login.map(|l| l.role) {
        Some(Role::User) => rights & SECURE_USER_ACCOUNT != 0,
        Some(Role::Admin) => rights & SECURE_ADM_ACCOUNT != 0,
        None => false,
    }
}

fn role_of(pin_type: ULONG) -> Result<Role, ULONG> {
    match pin_type {
        ffi::ADMIN_TYPE => Ok(Role::Admin),
        ffi::USER_TYPE => Ok(Role::User),
        _ => Err(sar::SAR_USER_TYPE_INVALID),
    }
}

fn check_pin_length(pin: &[u8]) -> Result<(), ULONG> {
    if PIN_LENGTHS.contains(&pin.len()) { Ok(()) } else { Err(sar::SAR_PIN_LEN_RANGE) }
}

fn check_name(name: &str, max: usize) -> Result<(), ULONG> {
    if (1..=max).contains(&name.len()) { Ok(()) } else { Err(sar::SAR_NAMELENERR) }
}

/// Copies a text into a fixed `CHAR` field, NUL-padded (a full field has no NUL).
fn text_field<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [0u8; N];
    let bytes = text.as_bytes();
    let len = bytes.len().min(N);
    field[..len].copy_from_slice(&bytes[..len]);
    field
}

/// The outcome of a PIN check, for the C side: the code and the tries left.
pub(crate) struct PinFailure {
    pub code: ULONG,
    pub tries_left: ULONG,
}

impl From<ULONG> for PinFailure {
    fn from(code: ULONG) -> PinFailure {
        PinFailure { code, tries_left: 0 }
    }
}

/// Runs the card-like PIN check of the software token's storage on one application's slot.
fn verify(session: &mut Session, app_id: &str, role: Role, pin: &[u8]) -> Result<DataKey, PinFailure> {
    let index =
        session.state.applications.iter().position(|a| a.id == app_id).ok_or(sar::SAR_APPLICATION_NOT_EXISTS)?;
    let context = wrap_context(&session.state.serial, app_id, role);
    let default_max = session.state.applications[index].slot(role).max_tries().unwrap_or(1);
    match check_pin(session, (index, role), &context, pin, default_max).map_err(|_| sar::SAR_FILEERR)? {
        PinCheck::Correct(key) => Ok(key),
        PinCheck::Incorrect { tries_left } => Err(PinFailure { code: sar::SAR_PIN_INCORRECT, tries_left }),
        PinCheck::Locked => Err(PinFailure { code: sar::SAR_PIN_LOCKED, tries_left: 0 }),
    }
}

/// The maximum of a slot (recorded at creation).
fn max_tries(slot: &PinSlot) -> ULONG {
    slot.max_tries().unwrap_or(slot.tries_left())
}

impl Table {
    fn insert(&mut self, object: Object) -> Id {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.objects.insert(id, object);
        id
    }

    /// Removes a handle and every handle opened through it.
    fn remove(&mut self, id: Id) {
        let children: Vec<Id> = self.objects.iter().filter(|(_, o)| o.parent() == Some(id)).map(|(c, _)| *c).collect();
        for child in children {
            self.remove(child);
        }
        self.objects.remove(&id);
    }

    fn device(&self, id: Id) -> Result<&DeviceHandle, ULONG> {
        match self.objects.get(&id) {
            Some(Object::Device(d)) => Ok(d),
            _ => Err(sar::SAR_INVALIDHANDLEERR),
        }
    }

    fn device_mut(&mut self, id: Id) -> Result<&mut DeviceHandle, ULONG> {
        match self.objects.get_mut(&id) {
            Some(Object::Device(d)) => Ok(d),
            _ => Err(sar::SAR_INVALIDHANDLEERR),
        }
    }

    fn app(&self, id: Id) -> Result<&AppHandle, ULONG> {
        match self.objects.get(&id) {
            Some(Object::Application(a)) => Ok(a),
            _ => Err(sar::SAR_INVALIDHANDLEERR),
        }
    }

    fn app_mut(&mut self, id: Id) -> Result<&mut AppHandle, ULONG> {
        match self.objects.get_mut(&id) {
            Some(Object::Application(a)) => Ok(a),
            _ => Err(sar::SAR_INVALIDHANDLEERR),
        }
    }

    fn container(&self, id: Id) -> Result<&ContainerHandle, ULONG> {
        match self.objects.get(&id) {
            Some(Object::Container(c)) => Ok(c),
            _ => Err(sar::SAR_INVALIDHANDLEERR),
        }
    }

    /// A session on the device of a device handle.
    fn device_session(&self, id: Id) -> Result<Session, ULONG> {
        let device = self.device(id)?;
        Session::open(&device.dir, &device.serial)
    }

    /// A session on the device of an application handle, and the application's id.
    fn app_session(&self, id: Id) -> Result<(Session, String), ULONG> {
        let app = self.app(id)?;
        let session = self.device_session(app.device)?;
        session.application(&app.app_id)?;
        Ok((session, app.app_id.clone()))
    }

    /// The logged-in user's data key of an application handle.
    fn user_key(&self, id: Id) -> Result<DataKey, ULONG> {
        match &self.app(id)?.login {
            Some(Login { role: Role::User, data_key }) => Ok(data_key.clone()),
            _ => Err(sar::SAR_USER_NOT_LOGGED_IN),
        }
    }

    // ---- Devices (§7.1, §7.2.2–7.2.3) ----

    /// `SKF_ConnectDev`.
    pub fn connect(&mut self, name: &str) -> Result<Id, ULONG> {
        let dir = devices_dir().ok_or(sar::SAR_DEVICE_REMOVED)?;
        Session::open(&dir, name)?;
        Ok(self.insert(Object::Device(DeviceHandle {
            dir,
            serial: name.to_owned(),
            challenge: None,
            authenticated: false,
        })))
    }

    /// `SKF_DisConnectDev`.
    pub fn disconnect(&mut self, id: Id) -> Result<(), ULONG> {
        self.device(id)?;
        self.remove(id);
        Ok(())
    }

    /// `SKF_GetDevInfo`.
    pub fn device_info(&self, id: Id) -> Result<DEVINFO, ULONG> {
        let session = self.device_session(id)?;
        let state = &session.state;
        let mut info = DEVINFO::zeroed();
        info.Version = VERSION { major: 1, minor: 0 };
        info.Manufacturer = text_field(&state.manufacturer);
        info.Issuer = text_field(&state.issuer);
        info.Label = text_field(&state.label);
        info.SerialNumber = text_field(&state.serial);
        info.HWVersion = VERSION { major: 1, minor: 0 };
        info.FirmwareVersion = VERSION { major: 1, minor: 0 };
        info.AlgSymCap = ffi::SGD_SMS4_ECB;
        info.AlgAsymCap = ffi::SGD_SM2_1;
        info.AlgHashCap = ffi::SGD_SM3;
        info.DevAuthAlgId = ffi::SGD_SMS4_ECB;
        info.TotalSpace = TOTAL_SPACE as ULONG;
        info.FreeSpace = TOTAL_SPACE.saturating_sub(session.used_bytes()) as ULONG;
        info.MaxECCBufferSize = 256;
        info.MaxBufferSize = MAX_BUFFER_SIZE;
        Ok(info)
    }

    /// `SKF_SetLabel`; needs device authentication here (the standard is silent; many keys do).
    pub fn set_label(&mut self, id: Id, label: &str) -> Result<(), ULONG> {
        if !self.device(id)?.authenticated {
            return Err(sar::SAR_FAIL);
        }
        if !device::is_valid_label(label) {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let mut session = self.device_session(id)?;
        session.state.label = label.to_owned();
        session.save()
    }

    /// `SKF_GenRandom`; up to 16 bytes also become the device authentication challenge.
    pub fn gen_random(&mut self, id: Id, len: usize) -> Result<Vec<u8>, ULONG> {
        if !(1..=1024).contains(&len) {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        self.device_session(id)?;
        let mut random = vec![0u8; len];
        OsRng.fill_bytes(&mut random);
        let device = self.device_mut(id)?;
        device.challenge = (len <= 16).then(|| {
            let mut block = Zeroizing::new([0u8; 16]);
            block[..len].copy_from_slice(&random);
            block
        });
        Ok(random)
    }

    /// `SKF_DevAuth`: `data` must be the last challenge, SM4-ECB-encrypted with the device
    /// authentication key. The challenge is spent either way.
    pub fn dev_auth(&mut self, id: Id, data: &[u8]) -> Result<(), ULONG> {
        use sm4::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
        let session = self.device_session(id)?;
        let device = self.device_mut(id)?;
        device.authenticated = false;
        let challenge = device.challenge.take().ok_or(sar::SAR_FAIL)?;
        if data.len() != 16 {
            return Err(sar::SAR_INDATALENERR);
        }
        let cipher = sm4::Sm4::new_from_slice(&session.state.device_auth_key.0).map_err(|_| sar::SAR_FILEERR)?;
        let mut expected = challenge;
        cipher.encrypt_block(GenericArray::from_mut_slice(&mut expected[..]));
        let differ = expected.iter().zip(data).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ != 0 {
            return Err(sar::SAR_FAIL);
        }
        device.authenticated = true;
        Ok(())
    }

    /// `SKF_ChangeDevAuthKey`: after device authentication, a new 16-byte key.
    pub fn change_dev_auth_key(&mut self, id: Id, key: &[u8]) -> Result<(), ULONG> {
        if !self.device(id)?.authenticated {
            return Err(sar::SAR_FAIL);
        }
        if key.len() != 16 {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let mut session = self.device_session(id)?;
        session.state.device_auth_key = Bytes(key.to_vec());
        session.save()
    }

    // ---- Applications (§7.3) ----

    /// `SKF_CreateApplication`: after device authentication; returns an open handle.
    #[allow(clippy::too_many_arguments)]
    pub fn create_application(
        &mut self,
        id: Id,
        name: &str,
        admin_pin: &[u8],
        admin_retries: ULONG,
        user_pin: &[u8],
        user_retries: ULONG,
        create_file_rights: ULONG,
    ) -> Result<Id, ULONG> {
        if !self.device(id)?.authenticated {
            return Err(sar::SAR_FAIL);
        }
        check_name(name, 32)?;
        check_pin_length(admin_pin)?;
        check_pin_length(user_pin)?;
        if !RETRY_COUNTS.contains(&admin_retries) || !RETRY_COUNTS.contains(&user_retries) {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let mut session = self.device_session(id)?;
        if session.state.applications.iter().any(|a| a.name == name) {
            return Err(sar::SAR_APPLICATION_EXISTS);
        }
        if session.state.applications.len() >= MAX_APPLICATIONS {
            return Err(sar::SAR_NO_ROOM);
        }
        let app_id = random_id();
        let serial = session.state.serial.clone();
        let data_key = new_data_key();
        let wrap = |role, pin, tries| {
            PinSlot::new(&data_key, &wrap_context(&serial, &app_id, role), pin, tries).map_err(|_| sar::SAR_FAIL)
        };
        let application = Application {
            id: app_id.clone(),
            name: name.to_owned(),
            create_file_rights,
            admin_pin: wrap(Role::Admin, admin_pin, admin_retries)?,
            user_pin: wrap(Role::User, user_pin, user_retries)?,
            containers: Vec::new(),
            files: Vec::new(),
        };
        session.state.applications.push(application);
        session.save()?;
        Ok(self.insert(Object::Application(AppHandle { device: id, app_id, login: None })))
    }

    /// `SKF_EnumApplication`.
    pub fn applications(&self, id: Id) -> Result<Vec<String>, ULONG> {
        let session = self.device_session(id)?;
        Ok(session.state.applications.iter().map(|a| a.name.clone()).collect())
    }

    /// `SKF_DeleteApplication`: after device authentication.
    pub fn delete_application(&mut self, id: Id, name: &str) -> Result<(), ULONG> {
        if !self.device(id)?.authenticated {
            return Err(sar::SAR_FAIL);
        }
        let mut session = self.device_session(id)?;
        let before = session.state.applications.len();
        session.state.applications.retain(|a| a.name != name);
        if session.state.applications.len() == before {
            return Err(sar::SAR_APPLICATION_NOT_EXISTS);
        }
        session.save()
    }

    /// `SKF_OpenApplication`.
    pub fn open_application(&mut self, id: Id, name: &str) -> Result<Id, ULONG> {
        let session = self.device_session(id)?;
        let app = session.state.applications.iter().find(|a| a.name == name).ok_or(sar::SAR_APPLICATION_NOT_EXISTS)?;
        let app_id = app.id.clone();
        Ok(self.insert(Object::Application(AppHandle { device: id, app_id, login: None })))
    }

    /// `SKF_CloseApplication`: the handle, its containers and its security state go.
    pub fn close_application(&mut self, id: Id) -> Result<(), ULONG> {
        self.app(id)?;
        self.remove(id);
        Ok(())
    }

    // ---- PINs (§7.2.4–7.2.8) ----

    /// `SKF_VerifyPIN`: a right PIN grants its role; a wrong one ends the security state.
    pub fn verify_pin(&mut self, id: Id, pin_type: ULONG, pin: &[u8]) -> Result<(), PinFailure> {
        let role = role_of(pin_type)?;
        let (mut session, app_id) = self.app_session(id)?;
        let result = verify(&mut session, &app_id, role, pin);
        let app = self.app_mut(id)?;
        match result {
            Ok(data_key) => {
                app.login = Some(Login { role, data_key });
                Ok(())
            }
            Err(failure) => {
                app.login = None;
                Err(failure)
            }
        }
    }

    /// `SKF_ChangePIN`.
    pub fn change_pin(&mut self, id: Id, pin_type: ULONG, old: &[u8], new: &[u8]) -> Result<(), PinFailure> {
        let role = role_of(pin_type)?;
        check_pin_length(new)?;
        let (mut session, app_id) = self.app_session(id)?;
        let data_key = verify(&mut session, &app_id, role, old)?;
        let serial = session.state.serial.clone();
        let app = session.application_mut(&app_id)?;
        let tries = max_tries(app.slot(role));
        *app.slot_mut(role) =
            PinSlot::new(&data_key, &wrap_context(&serial, &app_id, role), new, tries).map_err(|_| sar::SAR_FAIL)?;
        session.save()?;
        Ok(())
    }

    /// `SKF_GetPINInfo`: (maximum, remaining, default PIN). Whether a PIN is the factory
    /// default is unknown here: always `FALSE`.
    pub fn pin_info(&self, id: Id, pin_type: ULONG) -> Result<(ULONG, ULONG, bool), ULONG> {
        let role = role_of(pin_type)?;
        let (session, app_id) = self.app_session(id)?;
        let slot = session.application(&app_id)?.slot(role);
        Ok((max_tries(slot), slot.tries_left(), false))
    }

    /// `SKF_UnblockPIN`: the admin PIN sets a new user PIN with a full counter; the data key
    /// stays, so the keys stay usable.
    pub fn unblock_pin(&mut self, id: Id, admin: &[u8], new_user: &[u8]) -> Result<(), PinFailure> {
        check_pin_length(new_user)?;
        let (mut session, app_id) = self.app_session(id)?;
        let data_key = verify(&mut session, &app_id, Role::Admin, admin)?;
        let serial = session.state.serial.clone();
        let app = session.application_mut(&app_id)?;
        let tries = max_tries(&app.user_pin);
        app.user_pin = PinSlot::new(&data_key, &wrap_context(&serial, &app_id, Role::User), new_user, tries)
            .map_err(|_| sar::SAR_FAIL)?;
        session.save()?;
        Ok(())
    }

    /// `SKF_ClearSecureState`.
    pub fn clear_secure_state(&mut self, id: Id) -> Result<(), ULONG> {
        self.app_mut(id)?.login = None;
        Ok(())
    }

    // ---- Files (§7.4) ----

    fn file_rights_check(&self, id: Id, rights: impl Fn(&Application) -> ULONG) -> Result<(Session, String), ULONG> {
        let (session, app_id) = self.app_session(id)?;
        if !allowed(rights(session.application(&app_id)?), self.app(id)?.login.as_ref()) {
            return Err(sar::SAR_USER_NOT_LOGGED_IN);
        }
        Ok((session, app_id))
    }

    /// `SKF_CreateFile`: with the application's create-file rights; the file is zeros.
    pub fn create_file(&mut self, id: Id, name: &str, size: usize, read: ULONG, write: ULONG) -> Result<(), ULONG> {
        check_name(name, 32)?;
        let (mut session, app_id) = self.file_rights_check(id, |a| a.create_file_rights)?;
        let app = session.application_mut(&app_id)?;
        if app.files.iter().any(|f| f.name == name) {
            return Err(sar::SAR_FILE_ALREADY_EXIST);
        }
        if size > MAX_FILE_SIZE || app.files.len() >= MAX_FILES {
            return Err(sar::SAR_NO_ROOM);
        }
        app.files.push(FileObject {
            name: name.to_owned(),
            read_rights: read,
            write_rights: write,
            data: Bytes(vec![0; size]),
        });
        session.save()
    }

    /// `SKF_DeleteFile`: with the create-file rights.
    pub fn delete_file(&mut self, id: Id, name: &str) -> Result<(), ULONG> {
        let (mut session, app_id) = self.file_rights_check(id, |a| a.create_file_rights)?;
        let app = session.application_mut(&app_id)?;
        let before = app.files.len();
        app.files.retain(|f| f.name != name);
        if app.files.len() == before {
            return Err(sar::SAR_FILE_NOT_EXIST);
        }
        session.save()
    }

    /// `SKF_EnumFiles`.
    pub fn files(&self, id: Id) -> Result<Vec<String>, ULONG> {
        let (session, app_id) = self.app_session(id)?;
        Ok(session.application(&app_id)?.files.iter().map(|f| f.name.clone()).collect())
    }

    fn file<'s>(session: &'s Session, app_id: &str, name: &str) -> Result<&'s FileObject, ULONG> {
        session.application(app_id)?.files.iter().find(|f| f.name == name).ok_or(sar::SAR_FILE_NOT_EXIST)
    }

    /// `SKF_GetFileInfo`.
    pub fn file_info(&self, id: Id, name: &str) -> Result<FILEATTRIBUTE, ULONG> {
        let (session, app_id) = self.app_session(id)?;
        let file = Table::file(&session, &app_id, name)?;
        let mut info = FILEATTRIBUTE::zeroed();
        info.FileName = text_field(&file.name);
        info.FileSize = file.data.0.len() as ULONG;
        info.ReadRights = file.read_rights;
        info.WriteRights = file.write_rights;
        Ok(info)
    }

    /// `SKF_ReadFile`: up to `size` bytes from `offset`, with the file's read rights.
    pub fn read_file(&self, id: Id, name: &str, offset: usize, size: usize) -> Result<Vec<u8>, ULONG> {
        let (session, app_id) = self.app_session(id)?;
        let file = Table::file(&session, &app_id, name)?;
        if !allowed(file.read_rights, self.app(id)?.login.as_ref()) {
            return Err(sar::SAR_USER_NOT_LOGGED_IN);
        }
        let data = &file.data.0;
        if offset > data.len() {
            return Err(sar::SAR_INDATAERR);
        }
        Ok(data[offset..data.len().min(offset.saturating_add(size))].to_vec())
    }

    /// `SKF_WriteFile`: within the size fixed at creation, with the file's write rights.
    pub fn write_file(&mut self, id: Id, name: &str, offset: usize, bytes: &[u8]) -> Result<(), ULONG> {
        let (mut session, app_id) = self.app_session(id)?;
        let login = self.app(id)?.login.as_ref();
        let file = session
            .application_mut(&app_id)?
            .files
            .iter_mut()
            .find(|f| f.name == name)
            .ok_or(sar::SAR_FILE_NOT_EXIST)?;
        if !allowed(file.write_rights, login) {
            return Err(sar::SAR_USER_NOT_LOGGED_IN);
        }
        let end =
            offset.checked_add(bytes.len()).filter(|end| *end <= file.data.0.len()).ok_or(sar::SAR_INDATALENERR)?;
        file.data.0[offset..end].copy_from_slice(bytes);
        session.save()
    }

    // ---- Containers (§7.5) ----

    /// `SKF_CreateContainer`: with the user PIN verified.
    pub fn create_container(&mut self, id: Id, name: &str) -> Result<Id, ULONG> {
        check_name(name, 64)?;
        self.user_key(id)?;
        let (mut session, app_id) = self.app_session(id)?;
        let app = session.application_mut(&app_id)?;
        if app.containers.iter().any(|c| c.name == name) {
            return Err(sar::SAR_FAIL);
        }
        if app.containers.len() >= MAX_CONTAINERS {
            return Err(sar::SAR_REACH_MAX_CONTAINER_COUNT);
        }
        let container_id = random_id();
        app.containers.push(Container {
            id: container_id.clone(),
            name: name.to_owned(),
            signing_key: None,
            signing_certificate: None,
            encryption_certificate: None,
        });
        session.save()?;
        Ok(self.insert(Object::Container(ContainerHandle { app: id, container_id })))
    }

    /// `SKF_OpenContainer`.
    pub fn open_container(&mut self, id: Id, name: &str) -> Result<Id, ULONG> {
        let (session, app_id) = self.app_session(id)?;
        let container =
            session.application(&app_id)?.containers.iter().find(|c| c.name == name).ok_or(sar::SAR_FAIL)?;
        let container_id = container.id.clone();
        Ok(self.insert(Object::Container(ContainerHandle { app: id, container_id })))
    }

    /// `SKF_DeleteContainer`: with the user PIN verified.
    pub fn delete_container(&mut self, id: Id, name: &str) -> Result<(), ULONG> {
        self.user_key(id)?;
        let (mut session, app_id) = self.app_session(id)?;
        let app = session.application_mut(&app_id)?;
        let before = app.containers.len();
        app.containers.retain(|c| c.name != name);
        if app.containers.len() == before {
            return Err(sar::SAR_FAIL);
        }
        session.save()
    }

    /// `SKF_EnumContainer`.
    pub fn containers(&self, id: Id) -> Result<Vec<String>, ULONG> {
        let (session, app_id) = self.app_session(id)?;
        Ok(session.application(&app_id)?.containers.iter().map(|c| c.name.clone()).collect())
    }

    /// `SKF_CloseContainer`.
    pub fn close_container(&mut self, id: Id) -> Result<(), ULONG> {
        self.container(id)?;
        self.remove(id);
        Ok(())
    }

    /// The session, application id, container id and application handle of a container handle.
    fn container_session(&self, id: Id) -> Result<(Session, String, String, Id), ULONG> {
        let container = self.container(id)?;
        let (session, app_id) = self.app_session(container.app)?;
        let container_id = container.container_id.clone();
        Table::container_in(&session, &app_id, &container_id)?;
        Ok((session, app_id, container_id, container.app))
    }

    fn container_in<'s>(session: &'s Session, app_id: &str, container_id: &str) -> Result<&'s Container, ULONG> {
        session.application(app_id)?.containers.iter().find(|c| c.id == container_id).ok_or(sar::SAR_INVALIDHANDLEERR)
    }

    fn container_in_mut<'s>(
        session: &'s mut Session,
        app_id: &str,
        container_id: &str,
    ) -> Result<&'s mut Container, ULONG> {
        session
            .application_mut(app_id)?
            .containers
            .iter_mut()
            .find(|c| c.id == container_id)
            .ok_or(sar::SAR_INVALIDHANDLEERR)
    }

    /// `SKF_GetContainerType`: 0 empty, 2 ECC.
    pub fn container_type(&self, id: Id) -> Result<ULONG, ULONG> {
        let (session, app_id, container_id, _) = self.container_session(id)?;
        let container = Table::container_in(&session, &app_id, &container_id)?;
        Ok(if container.signing_key.is_some() { 2 } else { 0 })
    }

    /// `SKF_GenECCKeyPair(SGD_SM2_1)`: with the user PIN verified; replaces a key pair there
    /// (and its certificate). Returns the public point (x, y).
    pub fn generate_sm2(&mut self, id: Id, algorithm: ULONG) -> Result<([u8; 32], [u8; 32]), ULONG> {
        if algorithm != ffi::SGD_SM2_1 {
            return Err(sar::SAR_NOTSUPPORTYETERR);
        }
        let (mut session, app_id, container_id, app) = self.container_session(id)?;
        let data_key = self.user_key(app)?;
        let mut scalar = Zeroizing::new([0u8; 32]);
        let key = loop {
            OsRng.fill_bytes(&mut scalar[..]);
            // A random 256-bit string is a valid scalar unless 0 or ≥ n (about 2^-32).
            if let Ok(key) = SigningKey::from_slice(SIGNING_KEY_DISTID, &scalar[..]) {
                break key;
            }
        };
        let point = key.verifying_key().to_sec1_bytes();
        let (x, y) = split_point(&point).ok_or(sar::SAR_FAIL)?;
        let serial = session.state.serial.clone();
        let sealed = seal(&data_key, &key_context(&serial, &app_id, &container_id, &point), &scalar[..])
            .map_err(|_| sar::SAR_FAIL)?;
        let container = Table::container_in_mut(&mut session, &app_id, &container_id)?;
        container.signing_key = Some(KeyPair { public_key: Bytes(point.to_vec()), private_key: Bytes(sealed) });
        container.signing_certificate = None;
        session.save()?;
        Ok((x, y))
    }

    /// `SKF_ExportPublicKey`: the signing key's point (there are no encryption keys here).
    pub fn public_key(&self, id: Id, signing: bool) -> Result<([u8; 32], [u8; 32]), ULONG> {
        let (session, app_id, container_id, _) = self.container_session(id)?;
        let container = Table::container_in(&session, &app_id, &container_id)?;
        match (&container.signing_key, signing) {
            (Some(pair), true) => split_point(&pair.public_key.0).ok_or(sar::SAR_FILEERR),
            _ => Err(sar::SAR_KEYNOTFOUNTERR),
        }
    }

    /// `SKF_ECCSignData`: signs the 32-byte digest e as given (GM/T 0016 §7.6.13: the caller
    /// has computed e = SM3(Z_A ‖ M)), with the user PIN verified. Returns (r, s).
    pub fn sign(&self, id: Id, digest: &[u8]) -> Result<([u8; 32], [u8; 32]), ULONG> {
        if digest.len() != 32 {
            return Err(sar::SAR_INDATALENERR);
        }
        let (session, app_id, container_id, app) = self.container_session(id)?;
        let data_key = self.user_key(app)?;
        let container = Table::container_in(&session, &app_id, &container_id)?;
        let pair = container.signing_key.as_ref().ok_or(sar::SAR_KEYNOTFOUNTERR)?;
        let context = key_context(&session.state.serial, &app_id, &container_id, &pair.public_key.0);
        let scalar = open(&data_key, &context, &pair.private_key.0).ok_or(sar::SAR_FILEERR)?;
        let key = SigningKey::from_slice(SIGNING_KEY_DISTID, &scalar).map_err(|_| sar::SAR_FILEERR)?;
        let signature: sm2::dsa::Signature = key.sign_prehash(digest).map_err(|_| sar::SAR_FAIL)?;
        let (mut r, mut s) = ([0u8; 32], [0u8; 32]);
        r.copy_from_slice(&signature.r_bytes());
        s.copy_from_slice(&signature.s_bytes());
        Ok((r, s))
    }

    /// `SKF_ImportCertificate`: with the user PIN verified.
    pub fn import_certificate(&mut self, id: Id, signing: bool, der: &[u8]) -> Result<(), ULONG> {
        if der.is_empty() || der.len() > MAX_CERTIFICATE {
            return Err(sar::SAR_INDATALENERR);
        }
        let (mut session, app_id, container_id, app) = self.container_session(id)?;
        self.user_key(app)?;
        let container = Table::container_in_mut(&mut session, &app_id, &container_id)?;
        let slot = if signing { &mut container.signing_certificate } else { &mut container.encryption_certificate };
        *slot = Some(Bytes(der.to_vec()));
        session.save()
    }

    /// `SKF_ExportCertificate`.
    pub fn export_certificate(&self, id: Id, signing: bool) -> Result<Vec<u8>, ULONG> {
        let (session, app_id, container_id, _) = self.container_session(id)?;
        let container = Table::container_in(&session, &app_id, &container_id)?;
        let slot = if signing { &container.signing_certificate } else { &container.encryption_certificate };
        slot.as_ref().map(|c| c.0.clone()).ok_or(sar::SAR_CERTNOTFOUNTERR)
    }
}

/// (x, y) of an uncompressed point.
fn split_point(point: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    if point.len() != 65 || point[0] != 0x04 {
        return None;
    }
    let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
    x.copy_from_slice(&point[1..33]);
    y.copy_from_slice(&point[33..]);
    Some((x, y))
}
