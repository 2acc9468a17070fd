//! Helpers shared by the interop tests: running the system `openssl` (and other programs) in
//! a test directory, writing files there, and reading certificates.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use yiqian_pki::der::Encode;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{SerialNumber, to_pem};

/// Runs `program` in `dir`; returns whether it exited 0 and its stdout + stderr.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("could not run {program}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs the system `openssl` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    run(dir, "openssl", args)
}

/// Runs `openssl` and insists on exit 0.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {} failed:\n{text}", args.join(" "));
    text
}

/// Writes `bytes` to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A certificate as PEM.
pub fn cert_pem(cert: &Certificate) -> String {
    to_pem("CERTIFICATE", &cert.to_der().unwrap())
}

/// A certificate's serial.
pub fn serial(cert: &Certificate) -> SerialNumber {
    SerialNumber::from_x509(cert.tbs_certificate().serial_number()).unwrap()
}
