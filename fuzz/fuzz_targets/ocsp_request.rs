//! Fuzzes `parse_ocsp_request` (DER OCSPRequest: CertIDs, nonce, extensions).
#![no_main]

use libfuzzer_sys::fuzz_target;
use yiqian_pki::parse_ocsp_request;

fuzz_target!(|data: &[u8]| {
    let _ = parse_ocsp_request(data);
});
