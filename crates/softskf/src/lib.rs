//! `yiqian-softskf`: a software SKF library — SM2 UKEYs as files behind the C interface of
//! GM/T 0016-2012 — so that yiqian's SKF driver ([`yiqian_token::skf`]) can be tested and
//! demonstrated exactly as it would drive a key maker's library: built as a `cdylib`
//! (`libyiqian_softskf.so`), loaded by path, called through its `SKF_*` exports.
//!
//! - [`exports`]: the C functions (device management, device authentication, applications,
//!   PINs, files, containers, SM2 key generation and signing, certificates), with the
//!   standard's types and `SAR_*` codes, pointer checks, and no panic across the boundary;
//! - `state`: the handle table and the operations behind the exports;
//! - `device`: the device files, kept with the software token's storage
//!   ([`yiqian_token::software::storage`]: Argon2id-wrapped data keys, retry counters written
//!   before a PIN is checked, atomic writes, a lock per device);
//! - [`create_device`] and the `yiqian-softskf create-device` command: blank devices for
//!   tests and demonstrations.
//!
//! # Devices
//!
//! The library serves the directory named by the environment variable [`DIR_ENV`]
//! (`YIQIAN_SOFTSKF_DIR`), read at each `SKF_EnumDev` and `SKF_ConnectDev`; every
//! `<serial>.skfdev` file there is a present device whose name is its serial. A new device
//! has no application, the label [`FACTORY_LABEL`] and, unless another is given, the device
//! authentication key [`FACTORY_DEVICE_AUTH_KEY`]: the 16 ASCII bytes `1234567812345678`,
//! the well-known default of many SKF key makers (`--auth-key HEX` of `create-device`
//! overrides it; `SKF_ChangeDevAuthKey` changes it).
//!
//! Device authentication is the standard's (§8.2.3): the host takes 8 random bytes from
//! `SKF_GenRandom`, pads them with zeros to 16, encrypts them with SM4-ECB under the device
//! authentication key and passes the result to `SKF_DevAuth`. Creating and deleting
//! applications, setting the label and changing the key need it.
//!
//! SM2 signing follows §7.6.13: `SKF_ECCSignData` signs the 32-byte digest it is given,
//! which the caller computed as SM3(Z_A ‖ M); the signature is the `sm2` crate's, over that
//! prehash, with a deterministic nonce (RFC 6979 with SM3).
//!
//! # Honest limits
//!
//! This is a stand-in for tests and demonstrations, not a secure element: the device
//! authentication key lies in the file in the clear, private keys and PINs are protected only
//! as the software token's are (whoever copies a file can guess PINs offline at Argon2id's
//! cost), and a verified PIN's data key sits in the host process's memory until the security
//! state ends. Only what yiqian's driver needs is implemented: SM2 signing keys (no RSA, no
//! encryption key pairs or envelopes, no symmetric ciphers, hashes or MACs, no device
//! events). No real SKF device was compared with it beyond the standard's text.

#![warn(missing_docs)]

pub mod exports;

mod device;
mod state;

pub use device::{CreateError, FACTORY_LABEL, ISSUER, MANUFACTURER, create_device, random_serial};

/// The library's file name on this platform (`libyiqian_softskf.so` on Linux).
pub fn library_file_name() -> String {
    format!("{}yiqian_softskf{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// The library cargo built beside the running test binary (`target/debug/deps` or
/// `target/debug`), or a message saying how to build it.
pub fn library_beside_this_test() -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("the test binary's path: {e}"))?;
    let name = library_file_name();
    let deps = exe.parent().ok_or("the test binary has no directory")?;
    [Some(deps), deps.parent()].into_iter().flatten().map(|dir| dir.join(&name)).find(|p| p.exists()).ok_or_else(|| {
        format!(
            "the software SKF library {name} is not next to {} nor in its parent directory: build it with \
             `cargo build -p yiqian-softskf` (cargo test builds it for tests that depend on it)",
            exe.display()
        )
    })
}

/// The environment variable naming the directory of devices.
pub const DIR_ENV: &str = "YIQIAN_SOFTSKF_DIR";

/// The device authentication key of new devices: `1234567812345678` as 16 ASCII bytes.
pub const FACTORY_DEVICE_AUTH_KEY: &[u8; 16] = b"1234567812345678";
