//! A hub of SoftHSM2 keys, for tests, benchmarks and demonstrations of the PKCS#11 driver on a
//! machine without UKEYs: `N` tokens initialised the way UKEYs ship (a factory label and a
//! factory SO PIN), in a private token directory.
//!
//! SoftHSM2 reads its configuration from the file named by `SOFTHSM2_CONF`, once per process,
//! at `C_Initialize`: point that variable at [`SoftHsmHub::conf`] before the module is first
//! loaded (the `softhsm2-util` calls made here get it explicitly). SoftHSM2 always shows one
//! extra, uninitialised slot; the PKCS#11 reader leaves it out unless told otherwise.

use crate::TokenError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's path of the SoftHSM2 module (package `softhsm2`).
pub const MODULE: &str = yiqian_pki::pkcs11::SOFTHSM2_MODULE;

/// A SoftHSM2 token directory and its configuration file.
#[derive(Debug, Clone)]
pub struct SoftHsmHub {
    dir: PathBuf,
}

impl SoftHsmHub {
    /// Whether SoftHSM2 is installed here (the module and `softhsm2-util`); `Err` says what is
    /// missing.
    pub fn available() -> Result<(), String> {
        if !Path::new(MODULE).exists() {
            return Err(format!("{MODULE} does not exist (apt-get install softhsm2)"));
        }
        match Command::new("softhsm2-util").arg("--version").output() {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("softhsm2-util cannot be run: {e} (apt-get install softhsm2)")),
        }
    }

    /// A hub in `dir` (created), with its configuration file written and no keys yet.
    pub fn create(dir: &Path) -> Result<SoftHsmHub, TokenError> {
        let tokens = dir.join("tokens");
        let io = |e: std::io::Error| TokenError::Io(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&tokens).map_err(io)?;
        let conf = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nslots.mechanisms = ALL\nlog.level = ERROR\n",
            tokens.display()
        );
        std::fs::write(dir.join("softhsm2.conf"), conf).map_err(io)?;
        Ok(SoftHsmHub { dir: dir.to_owned() })
    }

    /// The configuration file, for `SOFTHSM2_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    /// Plugs in a factory-fresh key: a token labelled `label` with `so_pin` as its SO PIN and
    /// `user_pin` as its user PIN (as vendors ship them), made with `softhsm2-util`.
    pub fn add_key(&self, label: &str, so_pin: &str, user_pin: &str) -> Result<(), TokenError> {
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", user_pin])
            .output()
            .map_err(|e| TokenError::Io(format!("softhsm2-util: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(TokenError::Io(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
}
