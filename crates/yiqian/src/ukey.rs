//! Which UKEY reader personalises keys: the `[ukey]` section of the configuration and the
//! reader it opens. `software` (token files under `DATA/tokens`) is the embedded default;
//! `pkcs11` drives the keys of a PKCS#11 module (OpenSC's `opensc-pkcs11.so` for Feitian
//! ePass-class keys, a vendor's module, SoftHSM2); `skf` the SM2 keys of a GM/T 0016 library.
//! The factory SO PIN and the SKF device authentication key are secrets: from
//! `YIQIAN_UKEY_FACTORY_SO_PIN` / `YIQIAN_UKEY_DEVICE_AUTH_KEY` or a file, never the TOML.

use crate::config::{Config, ConfigError};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use yiqian_token::pkcs11::{Pkcs11ReaderConfig, Pkcs11TokenReader};
use yiqian_token::skf::{DeviceAuthKey, SkfConfig, SkfTokenReader};
use yiqian_token::software::SoftwareTokenReader;
use yiqian_token::{Pin, TokenReader};

/// The environment variable holding the keys' factory SO PIN (SKF: admin PIN).
pub const FACTORY_SO_PIN_VARIABLE: &str = "YIQIAN_UKEY_FACTORY_SO_PIN";

/// `[ukey]`: the key reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UkeySection {
    /// `software`, `pkcs11` or `skf`.
    pub reader: String,
    /// PKCS#11: the module's path.
    pub module: String,
    /// The file holding the SO PIN keys ship with (or `YIQIAN_UKEY_FACTORY_SO_PIN`); unset
    /// when keys ship uninitialised.
    pub factory_so_pin_file: String,
    /// PKCS#11: also offer tokens that are not initialised at all as blank keys.
    pub accept_uninitialised: bool,
    /// SKF: the vendor's library's path.
    pub library: String,
    /// SKF: the file holding the model's device authentication key in hex (or
    /// `YIQIAN_UKEY_DEVICE_AUTH_KEY`).
    pub device_auth_key_file: String,
    /// SKF: the application yiqian keeps its keys in.
    pub application: String,
}

impl Default for UkeySection {
    fn default() -> Self {
        UkeySection {
            reader: "software".into(),
            module: String::new(),
            factory_so_pin_file: String::new(),
            accept_uninitialised: false,
            library: String::new(),
            device_auth_key_file: String::new(),
            application: yiqian_token::skf::DEFAULT_APPLICATION.to_owned(),
        }
    }
}

/// The readers that exist.
pub const READERS: [&str; 3] = ["software", "pkcs11", "skf"];

/// The environment variable holding an SKF model's device authentication key (hex).
pub const DEVICE_AUTH_KEY_VARIABLE: &str = "YIQIAN_UKEY_DEVICE_AUTH_KEY";

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value { key, message: message.into() }
}

/// The factory SO PIN, if configured.
fn factory_so_pin(config: &Config) -> Result<Option<Pin>, ConfigError> {
    let section = &config.ukey;
    let text = if let Some(v) = config.secret_env.get(FACTORY_SO_PIN_VARIABLE) {
        v.clone()
    } else if !section.factory_so_pin_file.is_empty() {
        std::fs::read_to_string(&section.factory_so_pin_file).map_err(|e| {
            invalid("ukey.factory_so_pin_file", format!("cannot read {}: {e}", section.factory_so_pin_file))
        })?
    } else {
        return Ok(None);
    };
    Pin::parse(text.trim())
        .map(Some)
        .map_err(|_| invalid("ukey.factory_so_pin_file", "the factory SO PIN must be 6 to 32 digits"))
}

/// The SKF device authentication key (hex), from the environment or its file.
fn device_auth_key(config: &Config) -> Result<DeviceAuthKey, ConfigError> {
    let section = &config.ukey;
    let text = if let Some(v) = config.secret_env.get(DEVICE_AUTH_KEY_VARIABLE) {
        v.clone()
    } else if !section.device_auth_key_file.is_empty() {
        std::fs::read_to_string(&section.device_auth_key_file).map_err(|e| {
            invalid("ukey.device_auth_key_file", format!("cannot read {}: {e}", section.device_auth_key_file))
        })?
    } else {
        return Err(invalid(
            "ukey.device_auth_key_file",
            format!(
                "the skf reader needs the model's device authentication key: set {DEVICE_AUTH_KEY_VARIABLE} or the file"
            ),
        ));
    };
    DeviceAuthKey::from_hex(text.trim())
        .map_err(|_| invalid("ukey.device_auth_key_file", "the device authentication key must be 16 bytes in hex"))
}

/// Opens the configured reader. `data_dir` holds the software tokens.
pub fn token_reader(config: &Config, data_dir: &Path) -> Result<Arc<dyn TokenReader>, ConfigError> {
    let section = &config.ukey;
    match section.reader.as_str() {
        "software" => Ok(Arc::new(SoftwareTokenReader::new(data_dir.join("tokens")))),
        "pkcs11" => {
            if section.module.is_empty() {
                return Err(invalid(
                    "ukey.module",
                    "the pkcs11 reader needs the path of the keys' PKCS#11 module (e.g. \
                     /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so)",
                ));
            }
            let reader = Pkcs11TokenReader::open(Pkcs11ReaderConfig {
                module: section.module.clone().into(),
                factory_so_pin: factory_so_pin(config)?,
                accept_uninitialised: section.accept_uninitialised,
            })
            .map_err(|e| invalid("ukey.module", e.to_string()))?;
            Ok(Arc::new(reader))
        }
        "skf" => {
            if section.library.is_empty() {
                return Err(invalid("ukey.library", "the skf reader needs the path of the keys' SKF library"));
            }
            let mut skf = SkfConfig::new(section.library.clone().into(), device_auth_key(config)?);
            skf.factory_admin_pin = factory_so_pin(config)?;
            skf.application = section.application.clone();
            let reader = SkfTokenReader::new(skf).map_err(|e| invalid("ukey.library", e.to_string()))?;
            Ok(Arc::new(reader))
        }
        other => Err(invalid("ukey.reader", format!("{other:?} is not one of {}", READERS.join(", ")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("yiqian.toml");
        std::fs::write(&file, toml).unwrap();
        Config::load(Some(&file), |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn the_software_reader_is_the_default() {
        let config = Config::load(None, |_| None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(token_reader(&config, dir.path()).unwrap().name(), "software");
    }

    #[test]
    fn readers_and_their_settings_are_checked() {
        match load("[ukey]\nreader = \"usb\"\n", &[]) {
            Err(ConfigError::Value { key: "ukey.reader", message }) => assert!(message.contains("pkcs11"), "{message}"),
            other => panic!("{:?}", other.err()),
        }
        let dir = tempfile::tempdir().unwrap();
        let config = load("[ukey]\nreader = \"pkcs11\"\n", &[]).unwrap();
        match token_reader(&config, dir.path()) {
            Err(ConfigError::Value { key: "ukey.module", .. }) => {}
            other => panic!("{:?}", other.err()),
        }
        let config = load("[ukey]\nreader = \"pkcs11\"\nmodule = \"/nonexistent/module.so\"\n", &[]).unwrap();
        match token_reader(&config, dir.path()) {
            Err(ConfigError::Value { key: "ukey.module", message }) => {
                assert!(message.contains("/nonexistent/module.so"), "{message}")
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn the_factory_so_pin_is_a_secret_from_the_environment_or_a_file() {
        let config = load("", &[(FACTORY_SO_PIN_VARIABLE, "12345678")]).unwrap();
        assert_eq!(factory_so_pin(&config).unwrap().unwrap().expose(), "12345678");
        let config = load("", &[(FACTORY_SO_PIN_VARIABLE, "12ab")]).unwrap();
        match factory_so_pin(&config) {
            Err(ConfigError::Value { message, .. }) => assert!(!message.contains("12ab"), "never echoed: {message}"),
            other => panic!("{:?}", other.map(|p| p.is_some())),
        }
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("so-pin");
        std::fs::write(&pin_file, "87654321\n").unwrap();
        let config =
            load(&format!("[ukey]\nfactory_so_pin_file = {:?}\n", pin_file.display().to_string()), &[]).unwrap();
        assert_eq!(factory_so_pin(&config).unwrap().unwrap().expose(), "87654321");
        assert!(factory_so_pin(&load("", &[]).unwrap()).unwrap().is_none());
    }
}
