//! Fuzzes `verify_csr` (PKCS#10 parsing, key policy, signature check) on DER and PEM input.
//!
//! Input starting with the marker byte `b'P'` has the remaining bytes wrapped in
//! `-----BEGIN CERTIFICATE REQUEST-----` armour, so mutations of real DER requests also
//! reach the PEM path (and the DER parser behind it). Anything else is passed as it is,
//! which covers raw DER as well as PEM text the fuzzer builds itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yiqian_pki::encoding::PEM_CERTIFICATE_REQUEST;
use yiqian_pki::{DEFAULT_SM2_DISTID, to_pem, verify_csr};

/// First byte that selects the PEM-wrapped path.
const PEM_MARKER: u8 = b'P';

fuzz_target!(|data: &[u8]| {
    let _ = verify_csr(data, DEFAULT_SM2_DISTID);
    if let Some((&PEM_MARKER, der)) = data.split_first() {
        let pem = to_pem(PEM_CERTIFICATE_REQUEST, der);
        let _ = verify_csr(pem.as_bytes(), DEFAULT_SM2_DISTID);
    }
});
