//! Interop: `openssl ocsp` (3.0) makes the requests, we parse them; we build the responses,
//! `openssl ocsp` verifies them and reads the statuses.
//!
//! The invocations, reused by the server-side tests:
//! - requests: `openssl ocsp -issuer ca.pem -cert ee.pem [-cert …] [-serial 0xHEX] -reqout req.der`
//!   (a nonce by default; `-no_nonce` for none; `-sha256` *before* `-cert` for SHA-256 CertIDs);
//! - statuses and signature: `openssl ocsp -respin resp.der -issuer ca.pem -cert ee.pem
//!   -no_nonce -CAfile chain.pem` (chain.pem = root + issuing CA) prints `Response verify OK`
//!   and `ee.pem: good` (or `revoked` with `Reason: keyCompromise`). `-no_nonce` is needed:
//!   `-cert` builds a fresh request, which gets a fresh nonce otherwise ("WARNING: no nonce in
//!   response" or "Nonce Verify error"), and `-reqin` is ignored when `-cert` is given;
//! - nonce echo and signature: `openssl ocsp -reqin req.der -respin resp.der -CAfile chain.pem`
//!   prints `Response verify OK` and no nonce warning (no statuses: those need `-cert`);
//! - SM2: `openssl ocsp` cannot be given the distinguishing ID, so `-noverify` for the
//!   statuses, and `openssl dgst -sm3 -sigopt distid:1234567812345678 -verify pub.pem
//!   -signature sig.bin tbs.der` over the tbsResponseData for the signature;
//! - error answers: `openssl ocsp -respin err.der -resp_text` prints
//!   `Responder Error: malformedrequest (1)` (or `unauthorized (6)`) and exits 1.

mod common;

use common::*;
use der::asn1::{BitStringRef, OctetStringRef};
use der::{Decode, Header, Reader, SliceReader};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{
    Algorithm, CertId, CertIdHash, CertStatus, CertificateRequest, IssuanceOptions, OcspErrorStatus, Profile,
    RevocationReason, SerialNumber, Signer, SingleResponse, SoftwareKey, build_ocsp_response, issue,
    ocsp_error_response, parse_ocsp_request, personal_subject,
};

const DISTID_OPT: &str = "distid:1234567812345678";
const YEAR: Duration = Duration::from_secs(365 * 86_400);
const HOUR: Duration = Duration::from_secs(3600);

/// Now, in whole seconds (certificates hold no fractions, and the issuer check compares).
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs())
}

/// Root → issuing CA → three personal certificates (one subscriber key) and a delegated
/// OCSP signer, for one algorithm, written as PEM files in a temporary directory.
struct Pki {
    alg: Algorithm,
    dir: TempDir,
    ca: Certificate,
    ca_key: SoftwareKey,
    responder: Certificate,
    responder_key: SoftwareKey,
    /// good, revoked (keyCompromise), held (certificateHold).
    ee: [Certificate; 3],
}

impl Pki {
    fn new(alg: Algorithm) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let options = IssuanceOptions::default();
        let request = |profile, subject: &str, key: &SoftwareKey, issuer, not_after| CertificateRequest {
            profile,
            subject: subject.parse().unwrap(),
            public_key: key.public_key().clone(),
            serial: SerialNumber::random(),
            not_before: now - Duration::from_secs(60),
            not_after: now + not_after,
            issuer,
            options: &options,
        };
        let root_key = SoftwareKey::generate(alg).unwrap();
        let root =
            issue(&request(Profile::Root, "CN=yiqian OCSP Test Root,C=CN", &root_key, None, 20 * YEAR), &root_key)
                .unwrap();
        let ca_key = SoftwareKey::generate(alg).unwrap();
        let ca = issue(
            &request(Profile::IssuingCa, "CN=yiqian OCSP Test CA,C=CN", &ca_key, Some(&root), 10 * YEAR),
            &root_key,
        )
        .unwrap();
        let responder_key = SoftwareKey::generate(alg).unwrap();
        let responder = issue(
            &request(Profile::OcspSigner, "CN=yiqian OCSP Responder,C=CN", &responder_key, Some(&ca), YEAR),
            &ca_key,
        )
        .unwrap();
        let ee_key = SoftwareKey::generate(alg).unwrap();
        let personal = || {
            let profile = Profile::Personal {
                name: "张三".to_owned(),
                id_number: "110101199003074477".to_owned(),
                id_policy: yiqian_pki::IdNumberPolicy::Masked,
            };
            let mut req = request(profile, "CN=x", &ee_key, Some(&ca), 2 * YEAR);
            req.subject = personal_subject("张三").unwrap();
            issue(&req, &ca_key).unwrap()
        };
        let ee = [personal(), personal(), personal()];
        let d = dir.path();
        write(d, "root.pem", cert_pem(&root));
        write(d, "ca.pem", cert_pem(&ca));
        write(d, "chain.pem", format!("{}{}", cert_pem(&root), cert_pem(&ca)));
        write(d, "ocsp.pem", cert_pem(&responder));
        for (name, cert) in ["good.pem", "revoked.pem", "held.pem"].iter().zip(&ee) {
            write(d, name, cert_pem(cert));
        }
        Pki { alg, dir, ca, ca_key, responder, responder_key, ee }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The status of a serial: the three certificates as their names say, anything else unknown.
    fn status(&self, serial: &SerialNumber) -> CertStatus {
        let revoked_at = now() - HOUR;
        match self.ee.iter().position(|c| &self::serial(c) == serial) {
            Some(0) => CertStatus::Good,
            Some(1) => CertStatus::Revoked { at: revoked_at, reason: Some(RevocationReason::KeyCompromise) },
            Some(_) => CertStatus::Revoked { at: revoked_at, reason: Some(RevocationReason::CertificateHold) },
            None => CertStatus::Unknown,
        }
    }

    /// Answers `request` (DER) the way the responder does: parse, check the issuer, look up,
    /// sign with the delegated signer (certificate included) or the CA itself.
    fn answer(&self, request: &[u8], delegated: bool) -> Vec<u8> {
        let request = parse_ocsp_request(request).unwrap();
        let now = now();
        let responses: Vec<SingleResponse> = request
            .cert_ids
            .iter()
            .map(|id| {
                assert!(id.is_issued_by(&self.ca));
                SingleResponse {
                    cert_id: id.clone(),
                    status: self.status(&id.serial),
                    this_update: now,
                    next_update: Some(now + HOUR),
                }
            })
            .collect();
        let (cert, signer): (&Certificate, &dyn Signer) =
            if delegated { (&self.responder, &self.responder_key) } else { (&self.ca, &self.ca_key) };
        build_ocsp_response(cert, signer, now, &responses, request.nonce.as_deref(), delegated).unwrap()
    }

    /// Checks the SM2 signature of a response with `openssl dgst`, against `signer_pem`'s key.
    fn sm2_signature_ok(&self, response: &[u8], signer_pem: &str) -> bool {
        let d = self.path();
        openssl_ok(d, &["x509", "-in", signer_pem, "-pubkey", "-noout", "-out", "signer-pub.pem"]);
        let (tbs, signature) = basic_parts(response);
        write(d, "tbs.der", tbs);
        write(d, "sig.bin", signature);
        let (ok, text) = openssl(
            d,
            &["dgst", "-sm3", "-sigopt", DISTID_OPT, "-verify", "signer-pub.pem", "-signature", "sig.bin", "tbs.der"],
        );
        assert_eq!(ok, text.contains("Verified OK"), "{text}");
        ok
    }
}

/// The TLVs inside a DER SEQUENCE (or other constructed value).
fn elements(der: &[u8]) -> Vec<&[u8]> {
    let mut outer = SliceReader::new(der).unwrap();
    let header = Header::decode(&mut outer).unwrap();
    let mut reader = SliceReader::new(outer.read_slice(header.length()).unwrap()).unwrap();
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(reader.tlv_bytes().unwrap());
    }
    out
}

/// The tbsResponseData bytes and the signature of an OCSPResponse's BasicOCSPResponse.
fn basic_parts(response: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let top = elements(response);
    let response_bytes = elements(elements(top[1])[0]);
    let basic = <&OctetStringRef>::from_der(response_bytes[1]).unwrap().as_bytes();
    let parts = elements(basic);
    (parts[0].to_vec(), BitStringRef::from_der(parts[2]).unwrap().raw_bytes().to_vec())
}

fn scenario(alg: Algorithm) {
    let pki = Pki::new(alg);
    let d = pki.path();
    let verifiable = alg != Algorithm::Sm2;
    // `openssl ocsp` checks the signature unless told not to (SM2: it cannot, see above).
    let verify_args: &[&str] = if verifiable { &["-CAfile", "chain.pem"] } else { &["-noverify"] };

    // The responder certificate: OCSP signing, no check, verified up to the root.
    let text = openssl_ok(d, &["x509", "-in", "ocsp.pem", "-noout", "-text"]);
    for needle in ["X509v3 Extended Key Usage: critical\n                OCSP Signing", "OCSP No Check"] {
        assert!(text.contains(needle), "{alg}: the responder certificate lacks {needle:?}:\n{text}");
    }
    if verifiable {
        let text = openssl_ok(
            d,
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                "ocsphelper",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "ca.pem",
                "ocsp.pem",
            ],
        );
        assert!(text.contains("ocsp.pem: OK"), "{text}");
    }

    // Requests by OpenSSL: four CertIDs (three certificates and an unknown serial), no nonce.
    let unknown = SerialNumber::random();
    let unknown_arg = format!("0x{}", unknown.to_hex());
    let all_ids: Vec<&str> = vec![
        "ocsp",
        "-issuer",
        "ca.pem",
        "-cert",
        "good.pem",
        "-cert",
        "revoked.pem",
        "-cert",
        "held.pem",
        "-serial",
        &unknown_arg,
    ];
    openssl_ok(d, &[&all_ids[..], &["-no_nonce", "-reqout", "all.der"]].concat());
    let all = fs::read(d.join("all.der")).unwrap();
    let request = parse_ocsp_request(&all).unwrap();
    assert_eq!(request.nonce, None);
    let expected: Vec<SerialNumber> = pki.ee.iter().map(serial).chain([unknown.clone()]).collect();
    assert_eq!(request.cert_ids.iter().map(|id| id.serial.clone()).collect::<Vec<_>>(), expected);
    for (id, serial) in request.cert_ids.iter().zip(&expected) {
        assert_eq!(id.hash, CertIdHash::Sha1);
        assert!(id.is_issued_by(&pki.ca), "{alg}");
        assert_eq!(id, &CertId::for_serial(CertIdHash::Sha1, &pki.ca, serial));
        assert!(!id.is_issued_by(&pki.responder));
    }

    // …and the response: good, revoked (keyCompromise), revoked (certificateHold), unknown.
    let response = pki.answer(&all, true);
    write(d, "all-resp.der", &response);
    let text = openssl_ok(
        d,
        &[&all_ids[..], &["-respin", "all-resp.der"], &["-no_nonce", "-resp_text"], verify_args].concat(),
    );
    let lines: Vec<&str> = text.lines().collect();
    let after = |label: &str| {
        lines.iter().position(|l| *l == label).unwrap_or_else(|| panic!("{alg}: no {label:?} in\n{text}"))
    };
    if verifiable {
        assert!(text.contains("Response verify OK"), "{alg}:\n{text}");
    } else {
        assert!(pki.sm2_signature_ok(&response, "ocsp.pem"), "{alg}");
    }
    assert!(lines[after("good.pem: good") + 1].contains("This Update:"), "{text}");
    let revoked = after("revoked.pem: revoked");
    assert_eq!(lines[revoked + 3].trim(), "Reason: keyCompromise", "{text}");
    assert!(lines[revoked + 4].trim().starts_with("Revocation Time:"), "{text}");
    let held = after("held.pem: revoked");
    assert_eq!(lines[held + 3].trim(), "Reason: certificateHold", "{text}");
    after(&format!("{unknown_arg}: unknown"));
    // The response text: v1, responderID byKey = the responder's SKI, our signature algorithm.
    let ski = yiqian_pki::profile::subject_key_identifier(&pki.responder).unwrap();
    let ski: String = ski.iter().map(|b| format!("{b:02X}")).collect();
    for needle in [
        "OCSP Response Status: successful (0x0)",
        "Response Type: Basic OCSP Response",
        "Version: 1 (0x0)",
        &format!("Responder Id: {ski}"),
        signature_name(alg),
    ] {
        assert!(text.contains(needle), "{alg}: response lacks {needle:?}:\n{text}");
    }
    assert!(!text.contains("OCSP Nonce"), "{text}");

    // A request with a nonce (OpenSSL's default): echoed, and OpenSSL sees it match.
    openssl_ok(d, &["ocsp", "-issuer", "ca.pem", "-cert", "good.pem", "-reqout", "nonce.der"]);
    let nonce_req = fs::read(d.join("nonce.der")).unwrap();
    let nonce = parse_ocsp_request(&nonce_req).unwrap().nonce.expect("openssl sends a nonce by default");
    assert_eq!((nonce.len(), &nonce[..2]), (18, &[0x04, 0x10][..]), "OCTET STRING {{ 16 octets }}");
    let response = pki.answer(&nonce_req, true);
    write(d, "nonce-resp.der", &response);
    let hex: String = nonce.iter().map(|b| format!("{b:02X}")).collect();
    if verifiable {
        let text = openssl_ok(d, &["ocsp", "-reqin", "nonce.der", "-respin", "nonce-resp.der", "-CAfile", "chain.pem"]);
        assert!(text.contains("Response verify OK") && !text.contains("once"), "{alg}:\n{text}");
        // The check is real: the same request answered without the nonce draws a warning…
        let request = parse_ocsp_request(&nonce_req).unwrap();
        let single = SingleResponse {
            cert_id: request.cert_ids[0].clone(),
            status: CertStatus::Good,
            this_update: now(),
            next_update: None,
        };
        let bare =
            build_ocsp_response(&pki.responder, &pki.responder_key, now(), std::slice::from_ref(&single), None, true)
                .unwrap();
        write(d, "bare-resp.der", bare);
        let (_, text) =
            openssl(d, &["ocsp", "-reqin", "nonce.der", "-respin", "bare-resp.der", "-CAfile", "chain.pem"]);
        assert!(text.contains("WARNING: no nonce in response"), "{text}");
        // …and another nonce an error.
        let mut other = nonce.clone();
        *other.last_mut().unwrap() ^= 1;
        let wrong =
            build_ocsp_response(&pki.responder, &pki.responder_key, now(), &[single], Some(&other), true).unwrap();
        write(d, "wrong-resp.der", wrong);
        let (ok, text) =
            openssl(d, &["ocsp", "-reqin", "nonce.der", "-respin", "wrong-resp.der", "-CAfile", "chain.pem"]);
        assert!(!ok && text.contains("Nonce Verify error"), "{text}");
    } else {
        assert!(pki.sm2_signature_ok(&response, "ocsp.pem"));
    }
    let text = openssl_ok(d, &["ocsp", "-respin", "nonce-resp.der", "-resp_text", "-noverify"]);
    // Byte for byte what the request carried (OpenSSL prints the extnValue contents in hex).
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == "OCSP Nonce:").unwrap_or_else(|| panic!("{alg}: no nonce:\n{text}"));
    assert_eq!(lines[at + 1], hex, "{alg}:\n{text}");

    // SHA-256 CertIDs (`-sha256` goes before `-cert`).
    openssl_ok(
        d,
        &["ocsp", "-sha256", "-issuer", "ca.pem", "-cert", "revoked.pem", "-no_nonce", "-reqout", "sha256.der"],
    );
    let sha256_req = fs::read(d.join("sha256.der")).unwrap();
    let id = &parse_ocsp_request(&sha256_req).unwrap().cert_ids[0];
    assert_eq!(id.hash, CertIdHash::Sha256);
    assert_eq!((id.issuer_name_hash.len(), id.issuer_key_hash.len()), (32, 32));
    assert!(id.is_issued_by(&pki.ca));
    assert_eq!(id.serial, serial(&pki.ee[1]));
    write(d, "sha256-resp.der", pki.answer(&sha256_req, true));
    let text = openssl_ok(
        d,
        &[
            &[
                "ocsp",
                "-sha256",
                "-respin",
                "sha256-resp.der",
                "-issuer",
                "ca.pem",
                "-cert",
                "revoked.pem",
                "-no_nonce",
            ],
            verify_args,
        ]
        .concat(),
    );
    assert!(text.contains("revoked.pem: revoked") && text.contains("Reason: keyCompromise"), "{alg}:\n{text}");
    if verifiable {
        assert!(text.contains("Response verify OK"), "{text}");
    }

    // Signed by the issuing CA itself, without certificates: OpenSSL finds the signer in -issuer.
    let response = pki.answer(&all, false);
    write(d, "ca-resp.der", &response);
    let text = openssl_ok(
        d,
        &[&["ocsp", "-respin", "ca-resp.der", "-issuer", "ca.pem", "-cert", "good.pem", "-no_nonce"], verify_args]
            .concat(),
    );
    assert!(text.contains("good.pem: good"), "{alg}:\n{text}");
    if verifiable {
        assert!(text.contains("Response verify OK"), "{text}");
    } else {
        assert!(pki.sm2_signature_ok(&response, "ca.pem"));
    }

    // A tampered response fails verification.
    let mut tampered = pki.answer(&all, true);
    let (tbs, _) = basic_parts(&tampered);
    let at = tampered.windows(tbs.len()).position(|w| w == tbs).unwrap() + tbs.len() - 30;
    tampered[at] ^= 1;
    write(d, "tampered-resp.der", &tampered);
    if verifiable {
        let (ok, text) = openssl(
            d,
            &[
                "ocsp",
                "-respin",
                "tampered-resp.der",
                "-issuer",
                "ca.pem",
                "-cert",
                "good.pem",
                "-no_nonce",
                "-CAfile",
                "chain.pem",
            ],
        );
        assert!(!ok && text.contains("Response Verify Failure"), "{alg}:\n{text}");
    } else {
        assert!(!pki.sm2_signature_ok(&tampered, "ocsp.pem"));
    }

    if std::env::var_os("YIQIAN_PKI_KEEP").is_some() {
        eprintln!("{} OCSP files kept in {}", pki.alg, pki.dir.keep().display());
    }
}

fn signature_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Sm2 => "SM2-with-SM3",
        Algorithm::P256 => "ecdsa-with-SHA256",
        Algorithm::Rsa3072 => "sha256WithRSAEncryption",
    }
}

#[test]
fn p256_ocsp_requests_and_responses() {
    scenario(Algorithm::P256);
}

#[test]
fn rsa3072_ocsp_requests_and_responses() {
    scenario(Algorithm::Rsa3072);
}

#[test]
fn sm2_ocsp_requests_and_responses() {
    scenario(Algorithm::Sm2);
}

#[test]
fn error_responses_read_in_openssl() {
    let dir = tempfile::tempdir().unwrap();
    for (status, name) in [
        (OcspErrorStatus::MalformedRequest, "malformedrequest (1)"),
        (OcspErrorStatus::InternalError, "internalerror (2)"),
        (OcspErrorStatus::TryLater, "trylater (3)"),
        (OcspErrorStatus::Unauthorized, "unauthorized (6)"),
    ] {
        write(dir.path(), "err.der", ocsp_error_response(status));
        // OpenSSL prints the status (its names are lower case) and exits 1.
        let (ok, text) = openssl(dir.path(), &["ocsp", "-respin", "err.der", "-resp_text"]);
        assert!(!ok && text.contains(&format!("Responder Error: {name}")), "{text}");
    }
}
