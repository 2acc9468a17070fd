//! The keys every node of a deployment shares — the master key for personal data, the
//! PIN-escrow key, the sandbox payment gateway's key — and how a node gets them: from
//! configuration (base64), from a key file, or, on the very first start of a deployment,
//! made fresh and written to the data directory. Each key is confirmed against the check value
//! the database remembers before the node writes anything under it.

use crate::config::Config;
use crate::server::{StartError, storage};
use std::path::{Path, PathBuf};
use yiqian_store::keys::{KeyCheck, KeyOrigin};
use yiqian_store::vault::{read_key_file, write_new_key_file};
use yiqian_store::{MasterKey, Store};

/// One of the shared keys: its name in the database and how an operator gives it.
pub struct SharedKey {
    /// The name its check value is kept under.
    pub name: &'static str,
    /// What it is, for messages.
    pub what: &'static str,
    /// The setting holding it as base64 (and its environment variable).
    pub setting: &'static str,
    /// The setting naming its key file.
    pub file_setting: &'static str,
    /// The key file's name in the data directory when no file is configured.
    pub default_file: &'static str,
    /// What the operator should know when a node creates it.
    pub advice: &'static str,
    /// The configured base64 key and key file.
    pub configured: fn(&Config) -> (&str, &str),
}

/// The master key for personal data.
pub const MASTER: SharedKey = SharedKey {
    name: "master",
    what: "master key for personal data",
    setting: "master_key (YIQIAN_MASTER_KEY)",
    file_setting: "master_key_file (YIQIAN_MASTER_KEY_FILE)",
    default_file: "master.key",
    advice: "back it up; without it the stored personal data cannot be read",
    configured: |c| (&c.master_key, &c.master_key_file),
};

/// The key PINs of personalised UKEYs are sealed with until activation.
pub const PIN_ESCROW: SharedKey = SharedKey {
    name: "pin_escrow",
    what: "PIN-escrow key",
    setting: "pin_escrow_key (YIQIAN_PIN_ESCROW_KEY)",
    file_setting: "pin_escrow_key_file (YIQIAN_PIN_ESCROW_KEY_FILE)",
    default_file: "pin-escrow.key",
    advice: "PINs of keys not yet activated are sealed with it",
    configured: |c| (&c.pin_escrow_key, &c.pin_escrow_key_file),
};

/// The key the sandbox payment gateway signs its notifications with.
pub const SANDBOX_GATEWAY: SharedKey = SharedKey {
    name: "sandbox_gateway",
    what: "sandbox payment gateway key",
    setting: "sandbox_gateway_key (YIQIAN_SANDBOX_GATEWAY_KEY)",
    file_setting: "sandbox_gateway_key_file (YIQIAN_SANDBOX_GATEWAY_KEY_FILE)",
    default_file: "sandbox-gateway.key",
    advice: "the sandbox cashier signs its payment notifications with it",
    configured: |c| (&c.sandbox_gateway_key, &c.sandbox_gateway_key_file),
};

/// A node's copy of a shared key, before the database has confirmed it.
pub struct NodeKey {
    spec: &'static SharedKey,
    key: MasterKey,
    origin: KeyOrigin,
    /// Where a fresh key is written once confirmed.
    file: PathBuf,
    /// Where the key came from, for messages.
    source: String,
}

impl NodeKey {
    /// The key `spec` as `config` gives it: the base64 setting, else the key file (configured
    /// or in the data directory), else a fresh key to be written there once confirmed.
    pub fn resolve(spec: &'static SharedKey, config: &Config) -> Result<NodeKey, StartError> {
        let (inline, file) = (spec.configured)(config);
        let file = if file.is_empty() { config.data_dir.join(spec.default_file) } else { PathBuf::from(file) };
        if !inline.is_empty() {
            let key = MasterKey::from_base64(inline)
                .map_err(storage(format!("reading the {} from {}", spec.what, spec.setting)))?;
            return Ok(NodeKey { spec, key, origin: KeyOrigin::Given, file, source: format!("from {}", spec.setting) });
        }
        match read_key_file(&file).map_err(storage(format!("{} file {}", spec.what, file.display())))? {
            Some(key) => {
                Ok(NodeKey { spec, key, origin: KeyOrigin::Given, source: format!("from {}", file.display()), file })
            }
            None => Ok(NodeKey {
                spec,
                key: MasterKey::generate(),
                origin: KeyOrigin::Fresh,
                source: format!("a new key, as {} did not exist", file.display()),
                file,
            }),
        }
    }

    /// Whether the key was made just now, as none was configured or on disk.
    pub fn is_fresh(&self) -> bool {
        self.origin == KeyOrigin::Fresh
    }

    /// The key itself.
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// Checks the key against a check value a backup recorded, before restoring data sealed
    /// under the deployment's key: a node without the key, or with another, is told so.
    pub fn matches_recorded(&self, expected: &str) -> Result<(), StartError> {
        let spec = self.spec;
        if self.is_fresh() {
            return Err(StartError::Config(format!(
                "the backup's data needs the deployment's {what}, which no backup holds: give it to this node through {setting} or {file_setting} (check value {expected})",
                what = spec.what,
                setting = spec.setting,
                file_setting = spec.file_setting,
            )));
        }
        let given = yiqian_store::keys::check_value(spec.name, self.key.bytes());
        if given != expected {
            return Err(StartError::Config(format!(
                "the {what} of this node ({source}, check value {given}) is not the one the backup's data was sealed with (check value {expected})",
                what = spec.what,
                source = self.source,
            )));
        }
        Ok(())
    }

    /// Confirms the key against the deployment's (see [`Store::confirm_key`]) and writes a
    /// fresh key to its file once the database has recorded it. Returns a note for the
    /// operator when a key was created; refuses to start on a key that is not the deployment's.
    pub async fn confirm(&self, store: &Store) -> Result<Option<String>, StartError> {
        let spec = self.spec;
        let check = store
            .confirm_key(spec.name, self.key.bytes(), self.origin, chrono::Utc::now())
            .await
            .map_err(|source| StartError::Storage { what: format!("checking the {}", spec.what), source })?;
        match check {
            KeyCheck::Matches => Ok(None),
            KeyCheck::Recorded if self.origin == KeyOrigin::Given => Ok(None),
            KeyCheck::Recorded => {
                write_new_key_file(&self.file, &self.key).map_err(|source| StartError::Storage {
                    what: format!("writing the new {} to {}", spec.what, self.file.display()),
                    source,
                })?;
                Ok(Some(created_note(spec, &self.file)))
            }
            KeyCheck::Mismatch { expected, given } => Err(StartError::Config(format!(
                "the {what} of this node ({source}, check value {given}) is not the deployment's (the database has check value {expected}): every node must have the same key; give it through {setting} or {file_setting}",
                what = spec.what,
                source = self.source,
                setting = spec.setting,
                file_setting = spec.file_setting,
            ))),
            KeyCheck::FreshKeyOnData => Err(StartError::Config(format!(
                "this node has no {what} ({file} does not exist and {setting} is empty) but the database already holds data written under the deployment's key; a new key would leave that data unreadable: give this node the deployment's key through {setting} or {file_setting}",
                what = spec.what,
                file = self.file.display(),
                setting = spec.setting,
                file_setting = spec.file_setting,
            ))),
        }
    }
}

fn created_note(spec: &SharedKey, file: &Path) -> String {
    format!(
        "created a new {} at {} (mode 0600): {}; every other node of this deployment needs the same key",
        spec.what,
        file.display(),
        spec.advice
    )
}
