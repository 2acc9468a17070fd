//! A software SKF device on disk: the file format, a locked session over one device file,
//! and the factory ([`create_device`]).
//!
//! Each device is the file `<serial>.skfdev` in the library's directory, JSON, written
//! atomically with mode 0600, and locked (`<serial>.lock`) for the length of each call, with
//! the software token's helpers ([`yiqian_token::software::storage`]):
//!
//! ```json
//! {
//!   "format": "yiqian-softskf-device/1",
//!   "serial": "YQSK3F09A1C27B44", "label": "SoftSKF",
//!   "manufacturer": "yiqian softskf", "issuer": "yiqian",
//!   "device_auth_key": "…16 bytes, base64, in the clear…",
//!   "applications": [{
//!     "id": "…8 random bytes, hex…", "name": "YIQIAN", "create_file_rights": 16,
//!     "admin_pin": { …a PinSlot: the application's data key wrapped under the admin PIN
//!                    with Argon2id, "tries_left": 10, "max_tries": 10… },
//!     "user_pin": { …the same under the user PIN… },
//!     "containers": [{ "id": "…", "name": "0a1b…",
//!       "signing_key": { "public_key": "…04 ‖ x ‖ y…",
//!                        "private_key": "…nonce ‖ AES-256-GCM(d) ‖ tag, under the data key…" },
//!       "signing_certificate": "…DER…", "encryption_certificate": null }],
//!     "files": [{ "name": "YIQIAN_CA_CHAIN", "read_rights": 255, "write_rights": 16,
//!                 "data": "…" }]
//!   }]
//! }
//! ```
//!
//! The data key of an application wraps under both PINs exactly as the software token's does
//! (the same [`PinSlot`] code, with the retry counts `SKF_CreateApplication` asked for); the
//! wrap is bound to the device serial, the application's random id and the role, and each
//! private key to the serial, application, container and public key. Applications and
//! containers carry a random id so that a handle on a deleted one never reaches a new one of
//! the same name.
//!
//! The device authentication key is stored in the clear: a device must know it to check
//! `SKF_DevAuth`, and without a secure element there is nowhere safer to keep it.

use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use yiqian_token::TokenError;
use yiqian_token::skf::ffi::{SECURE_USER_ACCOUNT, ULONG, sar};
use yiqian_token::software::storage::{
    self, Bytes, PinSlot, PinStore, create_private_dir, lock_file, read_bounded, write_atomically,
};

/// The `format` of device files.
pub(crate) const FORMAT: &str = "yiqian-softskf-device/1";

/// The largest device file read.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The label of a factory-fresh device.
pub const FACTORY_LABEL: &str = "SoftSKF";

/// What `DEVINFO.Manufacturer` says.
pub const MANUFACTURER: &str = "yiqian softskf";

/// What `DEVINFO.Issuer` says.
pub const ISSUER: &str = "yiqian";

/// Why a device could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A serial this library does not take (1 to 31 of `A–Z a–z 0–9 - _`).
    #[error("{0:?} is not a device serial (1 to 31 letters, digits, '-' or '_')")]
    BadSerial(String),
    /// A label longer than 31 bytes or with other than printable ASCII.
    #[error("a label is at most 31 printable ASCII characters")]
    BadLabel,
    /// A device with this serial exists.
    #[error("device {0} exists")]
    Exists(String),
    /// The directory or file could not be written.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
}

/// Makes a blank device (no application, label [`FACTORY_LABEL`] unless given) with this
/// serial and device authentication key in `dir`, which is created (0700) if need be.
pub fn create_device(dir: &Path, serial: &str, label: &str, device_auth_key: &[u8; 16]) -> Result<(), CreateError> {
    if !is_valid_serial(serial) {
        return Err(CreateError::BadSerial(serial.to_owned()));
    }
    if !is_valid_label(label) {
        return Err(CreateError::BadLabel);
    }
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |error| CreateError::Io { path, error }
    };
    create_private_dir(dir).map_err(io_error(dir))?;
    let lock = lock_path(dir, serial);
    let _lock = lock_file(&lock).map_err(io_error(&lock))?;
    let path = device_path(dir, serial);
    if path.exists() {
        return Err(CreateError::Exists(serial.to_owned()));
    }
    let file = DeviceFile {
        format: FORMAT.to_owned(),
        serial: serial.to_owned(),
        label: label.to_owned(),
        manufacturer: MANUFACTURER.to_owned(),
        issuer: ISSUER.to_owned(),
        device_auth_key: Bytes(device_auth_key.to_vec()),
        applications: Vec::new(),
    };
    let bytes = serde_json::to_vec_pretty(&file)
        .map_err(|e| CreateError::Io { path: path.clone(), error: io::Error::other(e) })?;
    write_atomically(dir, &tmp_path(dir, serial), &path, &bytes).map_err(io_error(&path))
}

/// A fresh random serial: `YQSK` and 12 upper-case hex digits.
pub fn random_serial() -> String {
    let mut bytes = [0u8; 6];
    OsRng.fill_bytes(&mut bytes);
    format!("YQSK{}", hex::encode_upper(bytes))
}

/// Whether `serial` names a device file this library would make: 1 to 31 ASCII letters,
/// digits, `-` or `_` (so it fits `DEVINFO.SerialNumber` and stays inside the directory).
pub(crate) fn is_valid_serial(serial: &str) -> bool {
    (1..=31).contains(&serial.len()) && serial.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Labels fit `DEVINFO.Label[32]` with their NUL (§7.1.8: fewer than 32 bytes).
pub(crate) fn is_valid_label(label: &str) -> bool {
    label.len() <= 31 && label.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

pub(crate) fn device_path(dir: &Path, serial: &str) -> PathBuf {
    dir.join(format!("{serial}.skfdev"))
}

fn lock_path(dir: &Path, serial: &str) -> PathBuf {
    dir.join(format!("{serial}.lock"))
}

fn tmp_path(dir: &Path, serial: &str) -> PathBuf {
    dir.join(format!(".{serial}.skfdev.tmp"))
}

/// A random id for an application or container (16 hex digits).
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

// ---- The file format ----

/// A device file. No `Debug`: nothing here needs printing.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceFile {
    pub format: String,
    pub serial: String,
    pub label: String,
    pub manufacturer: String,
    pub issuer: String,
    /// The SM4 device authentication key (16 bytes).
    pub device_auth_key: Bytes,
    pub applications: Vec<Application>,
}

/// An SKF application: two PINs over one data key, containers and files.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Application {
    pub id: String,
    pub name: String,
    /// `SECURE_*` rights needed to create files and delete them.
    #[serde(default = "default_create_file_rights")]
    pub create_file_rights: ULONG,
    pub admin_pin: PinSlot,
    pub user_pin: PinSlot,
    pub containers: Vec<Container>,
    pub files: Vec<FileObject>,
}

fn default_create_file_rights() -> ULONG {
    SECURE_USER_ACCOUNT
}

/// A container: a signing key pair and its certificate, and an encryption certificate.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Container {
    pub id: String,
    pub name: String,
    pub signing_key: Option<KeyPair>,
    pub signing_certificate: Option<Bytes>,
    pub encryption_certificate: Option<Bytes>,
}

/// An SM2 key pair.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyPair {
    /// The uncompressed point, 65 bytes.
    pub public_key: Bytes,
    /// Nonce ‖ AES-256-GCM(the 32-byte private scalar) ‖ tag, under the data key.
    pub private_key: Bytes,
}

/// A file of fixed size, with its rights.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileObject {
    pub name: String,
    pub read_rights: ULONG,
    pub write_rights: ULONG,
    pub data: Bytes,
}

/// Which PIN of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    User,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

/// The context a data key is wrapped in: bound to the device, the application and the role.
pub(crate) fn wrap_context(serial: &str, app_id: &str, role: Role) -> Vec<u8> {
    storage::aad(&[FORMAT.as_bytes(), b"data-key", serial.as_bytes(), app_id.as_bytes(), role.name().as_bytes()])
}

/// The associated data of a sealed private key.
pub(crate) fn key_context(serial: &str, app_id: &str, container_id: &str, public_key: &[u8]) -> Vec<u8> {
    storage::aad(&[
        FORMAT.as_bytes(),
        b"private-key",
        serial.as_bytes(),
        app_id.as_bytes(),
        container_id.as_bytes(),
        public_key,
    ])
}

impl Application {
    pub fn slot(&self, role: Role) -> &PinSlot {
        match role {
            Role::Admin => &self.admin_pin,
            Role::User => &self.user_pin,
        }
    }

    pub fn slot_mut(&mut self, role: Role) -> &mut PinSlot {
        match role {
            Role::Admin => &mut self.admin_pin,
            Role::User => &mut self.user_pin,
        }
    }
}

// ---- A session on one device ----

/// A device file, locked and loaded, for the length of one call.
pub(crate) struct Session {
    dir: PathBuf,
    _lock: File,
    pub state: DeviceFile,
}

impl Session {
    /// Locks and reads the device: `SAR_DEVICE_REMOVED` if its file is gone, `SAR_FILEERR`
    /// if it is damaged.
    pub fn open(dir: &Path, serial: &str) -> Result<Session, ULONG> {
        let path = device_path(dir, serial);
        if !is_valid_serial(serial) || !path.exists() {
            return Err(sar::SAR_DEVICE_REMOVED);
        }
        let lock = lock_file(&lock_path(dir, serial)).map_err(|_| sar::SAR_FILEERR)?;
        let bytes = match read_bounded(&path, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(sar::SAR_DEVICE_REMOVED),
            Err(_) => return Err(sar::SAR_READFILEERR),
        };
        let state: DeviceFile = serde_json::from_slice(&bytes).map_err(|_| sar::SAR_FILEERR)?;
        let sound = state.format == FORMAT
            && state.serial == serial
            && state.device_auth_key.0.len() == 16
            && state.applications.iter().all(|a| a.admin_pin.check().is_ok() && a.user_pin.check().is_ok());
        if !sound {
            return Err(sar::SAR_FILEERR);
        }
        Ok(Session { dir: dir.to_owned(), _lock: lock, state })
    }

    /// Writes the device file atomically.
    pub fn save(&self) -> Result<(), ULONG> {
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|_| sar::SAR_WRITEFILEERR)?;
        let serial = &self.state.serial;
        write_atomically(&self.dir, &tmp_path(&self.dir, serial), &device_path(&self.dir, serial), &bytes)
            .map_err(|_| sar::SAR_WRITEFILEERR)
    }

    /// The size of the file as it would be written (for `DEVINFO.FreeSpace`).
    pub fn used_bytes(&self) -> usize {
        serde_json::to_vec(&self.state).map(|b| b.len()).unwrap_or(0)
    }

    /// The application with this id: `SAR_APPLICATION_NOT_EXISTS` once deleted.
    pub fn application(&self, id: &str) -> Result<&Application, ULONG> {
        self.state.applications.iter().find(|a| a.id == id).ok_or(sar::SAR_APPLICATION_NOT_EXISTS)
    }

    /// The same, to change.
    pub fn application_mut(&mut self, id: &str) -> Result<&mut Application, ULONG> {
        self.state.applications.iter_mut().find(|a| a.id == id).ok_or(sar::SAR_APPLICATION_NOT_EXISTS)
    }
}

impl PinStore for Session {
    type Slot = (usize, Role);

    fn pin_slot(&mut self, (app, role): (usize, Role)) -> Result<&mut PinSlot, TokenError> {
        let app =
            self.state.applications.get_mut(app).ok_or_else(|| TokenError::State("no such application".to_owned()))?;
        Ok(app.slot_mut(role))
    }

    fn save(&mut self) -> Result<(), TokenError> {
        Session::save(self).map_err(|code| TokenError::Io(format!("device file not written (0x{code:08X})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_and_labels() {
        for _ in 0..20 {
            assert!(is_valid_serial(&random_serial()));
        }
        for bad in ["", "../x", "a/b", "a.b", &"A".repeat(32), "é"] {
            assert!(!is_valid_serial(bad), "{bad}");
        }
        assert!(is_valid_label("YQ20260101K7M2Q9XW") && is_valid_label("") && is_valid_label("Soft SKF"));
        assert!(!is_valid_label(&"L".repeat(32)) && !is_valid_label("标签") && !is_valid_label("a\nb"));
    }

    #[test]
    fn a_new_device_is_blank_and_cannot_be_made_twice() {
        let dir = tempfile::tempdir().unwrap();
        create_device(dir.path(), "DEV-1", FACTORY_LABEL, b"1234567812345678").unwrap();
        assert!(matches!(
            create_device(dir.path(), "DEV-1", FACTORY_LABEL, b"1234567812345678"),
            Err(CreateError::Exists(_))
        ));
        assert!(matches!(create_device(dir.path(), "../DEV", "", b"1234567812345678"), Err(CreateError::BadSerial(_))));
        let session = Session::open(dir.path(), "DEV-1").unwrap();
        assert_eq!(session.state.label, FACTORY_LABEL);
        assert!(session.state.applications.is_empty());
        assert!(matches!(Session::open(dir.path(), "DEV-2"), Err(sar::SAR_DEVICE_REMOVED)));
        std::fs::write(device_path(dir.path(), "DEV-1"), b"{").unwrap();
        drop(session);
        assert!(matches!(Session::open(dir.path(), "DEV-1"), Err(sar::SAR_FILEERR)));
    }
}
