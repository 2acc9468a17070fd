//! The OCSP responder at `/pki/ocsp` as `openssl ocsp` sees it, for P-256, RSA-3072 and SM2: a
//! certificate issued on hold reads revoked (certificateHold), good once released, revoked
//! with its reason after `yiqian ca revoke` (run as a separate process while the service
//! runs); the response verifies against the CA chain (delegated OCSP signer), with and
//! without a nonce, over POST and GET; garbage is answered malformedRequest. OpenSSL 3.0
//! cannot verify SM2 OCSP signatures with the standard distinguishing ID (see docs/pki.md),
//! so for SM2 the statuses are read with `-noverify`.

mod common;

use common::*;
use std::path::Path;
use yiqian_app::authority::IssueRequest;

fn openssl(dir: &Path, args: &[String]) -> (bool, String) {
    run_openssl(dir, args)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Asks the responder about ee.pem; returns openssl's report.
async fn ask(dir: &Path, url: &str, extra: &[&str]) -> String {
    // Options such as -sha256 must come before -cert.
    let mut a = args(&["ocsp"]);
    a.extend(args(extra));
    a.extend(args(&["-issuer", "ca.pem", "-cert", "ee.pem", "-url", url, "-CAfile", "chain.pem"]));
    let dir = dir.to_owned();
    let (ok, out) = tokio::task::spawn_blocking(move || openssl(&dir, &a)).await.unwrap();
    assert!(ok, "{out}");
    out
}

/// Runs `openssl ocsp` with exactly these options; returns its report whatever the exit code
/// (an error answer such as unauthorized exits 1).
async fn ask_raw(dir: &Path, extra: &[&str]) -> String {
    let mut a = args(&["ocsp"]);
    a.extend(args(extra));
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || openssl(&dir, &a)).await.unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openssl_ocsp_sees_hold_release_and_revocation() {
    for algorithm in ["p256", "rsa3072", "sm2"] {
        scenario(algorithm).await;
    }
}

async fn scenario(algorithm: &str) {
    let h = start_configured(yiqian_store::Backend::Sqlite, false, |c| c.ca_algorithm = algorithm.into()).await;
    let verified = algorithm != "sm2";
    let check = |out: &str| {
        if verified {
            assert!(out.contains("Response verify OK"), "{algorithm}: {out}");
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = h.server.app.issuing_ca().await.unwrap();
    std::fs::write(d.join("ca.pem"), yiqian_pki::to_pem("CERTIFICATE", &ca.certificate_der)).unwrap();
    let chain = format!(
        "{}{}",
        yiqian_pki::to_pem("CERTIFICATE", &ca.certificate_der),
        yiqian_pki::to_pem("CERTIFICATE", &ca.root_der)
    );
    std::fs::write(d.join("chain.pem"), chain).unwrap();
    openssl_csr(d, algorithm, "张三");
    let issued = h
        .server
        .app
        .issue_certificate(&IssueRequest {
            csr: std::fs::read(d.join("csr.pem")).unwrap(),
            csr_common_name: None,
            name: Some("张三".into()),
            id_number: "110101199003074477".into(),
            hold: true,
            order: None,
            actor: "test".into(),
        })
        .await
        .unwrap();
    std::fs::write(d.join("ee.pem"), yiqian_pki::to_pem("CERTIFICATE", &issued.der)).unwrap();
    let url = h.url("/pki/ocsp");
    let noverify: &[&str] = if verified { &[] } else { &["-noverify"] };
    let with = |extra: &[&'static str]| -> Vec<&'static str> { noverify.iter().chain(extra).copied().collect() };
    let url_arg: &str = &url;

    let out = ask(d, &url, &with(&[])).await;
    check(&out);
    assert!(out.contains("ee.pem: revoked") && out.contains("certificateHold"), "{algorithm}: {out}");

    h.server.app.release_certificate(&issued.serial, "test").await.unwrap();
    for extra in [&[][..], &["-no_nonce"], &["-sha256"], &["-no_nonce", "-sha256"]] {
        let out = ask(d, &url, &with(extra)).await;
        check(&out);
        assert!(out.contains("ee.pem: good"), "{algorithm} {extra:?}: {out}");
        assert!(!out.contains("Nonce Verify error") && !out.contains("WARNING"), "{algorithm} {extra:?}: {out}");
    }
    // Served from memory: the same pre-signed bytes twice.
    let (_, a) =
        openssl(d, &args(&["ocsp", "-issuer", "ca.pem", "-cert", "ee.pem", "-no_nonce", "-reqout", "req.der"]));
    assert!(std::fs::metadata(d.join("req.der")).is_ok(), "{a}");
    let req = std::fs::read(d.join("req.der")).unwrap();
    let first =
        h.http.post(&url).header("content-type", "application/ocsp-request").body(req.clone()).send().await.unwrap();
    assert_eq!(first.headers()["content-type"], "application/ocsp-response");
    let first = first.bytes().await.unwrap();
    let second = h.http.post(&url).body(req.clone()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(first, second);
    // GET, base64 in the path (RFC 6960 appendix A).
    let encoded = ocsp_get_path(&req);
    let got = h.http.get(format!("{url}/{encoded}")).send().await.unwrap();
    // Cacheable by CDNs and proxies (RFC 5019 §6.2): for at most 5 minutes, valid until
    // nextUpdate, four hours after thisUpdate; a POST answer is not.
    let header = |name: &str| got.headers()[name].to_str().unwrap().to_owned();
    let cache_control = header("cache-control");
    let max_age: i64 = cache_control
        .strip_prefix("public, max-age=")
        .and_then(|rest| rest.strip_suffix(", no-transform, must-revalidate"))
        .unwrap_or_else(|| panic!("{cache_control}"))
        .parse()
        .unwrap();
    assert!((1..=300).contains(&max_age), "{cache_control}");
    let date = |v: String| chrono::DateTime::parse_from_rfc2822(&v.replace("GMT", "+0000")).unwrap();
    let (modified, expires) = (date(header("last-modified")), date(header("expires")));
    assert_eq!(expires - modified, chrono::Duration::hours(4), "Expires is nextUpdate");
    let etag = header("etag");
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34, "{etag}");
    assert_eq!(got.bytes().await.unwrap(), first);
    let again = h.http.get(format!("{url}/{encoded}")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::NOT_MODIFIED, "the cache's copy is still the answer");
    assert_eq!(again.headers()["etag"], etag.as_str());
    let posted = h.http.post(&url).body(req.clone()).send().await.unwrap();
    assert_eq!(posted.headers()["cache-control"], "no-cache");

    // The operator revokes from the command line, in another process, while the service runs,
    // although a good response was pre-signed in memory.
    let data = h.dir.path().join("data");
    let (ok, out) = run_yiqian(
        &data,
        &[("YIQIAN_CA_ALGORITHM", algorithm.to_owned())],
        &["ca", "revoke", &issued.serial, "--reason", "key_compromise"],
    );
    assert!(ok, "{out}");
    // Another process changed the status: the responder confirms statuses at most
    // STATUS_RECHECK apart, so the change shows once that window has passed.
    tokio::time::sleep(yiqian_app::ocsp::STATUS_RECHECK).await;
    let out = ask(d, &url, &with(&["-no_nonce"])).await;
    check(&out);
    assert!(out.contains("ee.pem: revoked") && out.contains("keyCompromise"), "{algorithm}: {out}");

    // A serial we never issued: unknown. Another CA's certificate: unauthorized.
    let mut unknown: Vec<&str> = with(&["-no_nonce", "-issuer", "ca.pem", "-serial", "0x1234", "-CAfile", "chain.pem"]);
    unknown.extend(["-url", url_arg]);
    let out = ask_raw(d, &unknown).await;
    assert!(out.contains("0x1234: unknown"), "{algorithm}: {out}");
    let (ok, out) = openssl(
        d,
        &args(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other.key",
            "-subj",
            "/CN=Another CA",
            "-out",
            "other.pem",
        ]),
    );
    assert!(ok, "{out}");
    let out =
        ask_raw(d, &["-no_nonce", "-issuer", "other.pem", "-serial", "0x1234", "-url", url_arg, "-noverify"]).await;
    assert!(out.contains("unauthorized"), "{algorithm}: {out}");

    // Garbage: a malformedRequest answer, not an HTTP error.
    let r = h.http.post(&url).body(b"not an OCSP request".to_vec()).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    std::fs::write(d.join("err.der"), r.bytes().await.unwrap()).unwrap();
    let (_, out) = openssl(d, &args(&["ocsp", "-respin", "err.der", "-resp_text", "-noverify"]));
    assert!(out.contains("malformedrequest"), "{out}");
    h.server.stop().await;
}
