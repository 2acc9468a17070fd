//! The CA operator's commands against the system `openssl`: `ca init`, `ca sign` of an
//! OpenSSL-made request (on hold), the chain, the CRL listing the held certificate as
//! certificateHold, release, revoke, list — and the same files served under `/pki`.

mod common;

use common::{openssl_csr, run_openssl, run_yiqian};
use std::path::Path;
use std::process::Command;

/// Runs yiqian and insists it succeeds.
fn yiqian(data: &Path, args: &[&str]) -> String {
    let (ok, out) = run_yiqian(data, &[], args);
    assert!(ok, "yiqian {args:?} failed: {out}");
    out
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    run_openssl(dir, args)
}

fn split_chain(dir: &Path) {
    let chain = std::fs::read_to_string(dir.join("chain.pem")).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let i = chain.find(end).unwrap() + end.len();
    std::fs::write(dir.join("ca.pem"), &chain[..i]).unwrap();
    std::fs::write(dir.join("root.pem"), &chain[i..]).unwrap();
}

#[test]
fn p256_ca_issues_holds_releases_and_revokes_as_openssl_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    assert!(yiqian(&data, &["ca", "init", "--algorithm", "p256"]).contains("created a p256 root and issuing CA"));
    assert!(yiqian(&data, &["ca", "init", "--algorithm", "p256"]).contains("exists already"));

    openssl_csr(d, "p256", "张三");
    let signed = yiqian(
        &data,
        &[
            "ca",
            "sign",
            "--csr",
            d.join("csr.pem").to_str().unwrap(),
            "--hold",
            "--id-number",
            "110101199003074477",
            "--name",
            "张三",
            "--out",
            d.join("ee.pem").to_str().unwrap(),
        ],
    );
    let serial = signed.split_whitespace().nth(1).unwrap().to_owned();
    assert!(signed.contains("on hold"), "{signed}");
    yiqian(&data, &["ca", "chain", "--out", d.join("chain.pem").to_str().unwrap()]);
    split_chain(d);

    let (ok, out) = openssl(d, &["verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "ca.pem", "ee.pem"]);
    assert!(ok && out.contains("ee.pem: OK"), "{out}");
    let (_, text) = openssl(d, &["x509", "-in", "ee.pem", "-noout", "-text", "-serial"]);
    assert!(text.contains(&format!("serial={serial}")), "{text}");
    assert!(text.contains("1.2.156.10260.4.1.1.1") && !text.contains("110101199003074477"), "{text}");

    // On hold: the CRL lists it as certificateHold and chain checking refuses it.
    let crl_of = |name: &str| {
        yiqian(&data, &["ca", "crl", "--out", d.join(name).to_str().unwrap()]);
        let (ok, out) = openssl(d, &["crl", "-in", name, "-inform", "DER", "-out", &format!("{name}.pem")]);
        assert!(ok, "{out}");
        let (ok, text) =
            openssl(d, &["crl", "-in", &format!("{name}.pem"), "-noout", "-text", "-CAfile", "ca.pem", "-verify"]);
        assert!(ok && text.contains("verify OK"), "{text}");
        text
    };
    let text = crl_of("held.crl");
    assert!(text.contains(&serial) && text.contains("Certificate Hold"), "{text}");
    let (_, out) = openssl(
        d,
        &["verify", "-crl_check", "-CRLfile", "held.crl.pem", "-CAfile", "root.pem", "-untrusted", "ca.pem", "ee.pem"],
    );
    assert!(out.contains("certificate revoked"), "{out}");

    yiqian(&data, &["ca", "release", &serial]);
    let text = crl_of("released.crl");
    assert!(!text.contains(&serial), "{text}");
    let (ok, out) = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            "released.crl.pem",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "ca.pem",
            "ee.pem",
        ],
    );
    assert!(ok && out.contains("ee.pem: OK"), "{out}");

    yiqian(&data, &["ca", "revoke", &serial, "--reason", "key_compromise"]);
    let text = crl_of("revoked.crl");
    assert!(text.contains(&serial) && text.contains("Key Compromise"), "{text}");
    assert!(yiqian(&data, &["ca", "list"]).contains(&format!("{serial}\trevoked\tpersonal")));
    assert!(yiqian(&data, &["audit", "verify"]).contains("intact"));
}

#[test]
fn sm2_ca_signs_a_request_made_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    yiqian(&data, &["ca", "init", "--algorithm", "sm2"]);
    openssl_csr(d, "sm2", "李四");
    yiqian(
        &data,
        &[
            "ca",
            "sign",
            "--csr",
            d.join("csr.pem").to_str().unwrap(),
            "--id-number",
            "11010119900307803X",
            "--name",
            "李四",
            "--out",
            d.join("ee.pem").to_str().unwrap(),
        ],
    );
    // Mismatched applicant: refused with a clear message.
    let (csr, x) = (d.join("csr.pem").display().to_string(), d.join("x.pem").display().to_string());
    let sign = ["ca", "sign", "--csr", &csr, "--id-number", "11010119900307803X", "--name", "王五", "--out", &x];
    let (ok, out) = run_yiqian(&data, &[], &sign);
    assert!(!ok && out.contains("not the approved applicant"), "{out}");

    yiqian(&data, &["ca", "chain", "--out", d.join("chain.pem").to_str().unwrap()]);
    split_chain(d);
    // OpenSSL 3.0 sets the SM2 distinguishing ID on the leaf only: verify one level at a time.
    let (ok, out) = openssl(d, &["verify", "-vfyopt", "distid:1234567812345678", "-CAfile", "root.pem", "ca.pem"]);
    assert!(ok && out.contains("ca.pem: OK"), "{out}");
    let (ok, out) =
        openssl(d, &["verify", "-vfyopt", "distid:1234567812345678", "-partial_chain", "-CAfile", "ca.pem", "ee.pem"]);
    assert!(ok && out.contains("ee.pem: OK"), "{out}");
}

#[test]
fn ca_keys_in_a_softhsm2_token_never_reach_the_database() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    if !Path::new(module).exists() || Command::new("softhsm2-util").arg("--version").output().is_err() {
        assert!(
            std::env::var("YIQIAN_REQUIRE_SOFTHSM").as_deref() != Ok("1"),
            "SoftHSM2 is required but not installed"
        );
        eprintln!("SoftHSM2 not installed: skipping the HSM-backed CA test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("tokens")).unwrap();
    let conf = d.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nslots.mechanisms = ALL\nlog.level = ERROR\n",
            d.join("tokens").display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "yiqian-ca", "--so-pin", "12345678", "--pin", "654321"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let hsm = [
        ("SOFTHSM2_CONF", conf.display().to_string()),
        ("YIQIAN_HSM_MODULE", module.to_owned()),
        ("YIQIAN_HSM_TOKEN", "yiqian-ca".to_owned()),
        ("YIQIAN_HSM_PIN", "654321".to_owned()),
    ];
    let data = d.join("data");
    let (ok, out) = run_yiqian(&data, &hsm, &["ca", "init", "--algorithm", "p256"]);
    assert!(ok && out.contains("created a p256"), "{out}");
    assert!(!out.contains("654321"));
    // SM2 cannot live in a standard PKCS#11 token: a clear refusal.
    let (ok, out) = run_yiqian(&d.join("data-sm2"), &hsm, &["ca", "init", "--algorithm", "sm2"]);
    assert!(!ok && out.contains("vendor"), "{out}");

    openssl_csr(d, "p256", "张三");
    let (csr, ee) = (d.join("csr.pem").display().to_string(), d.join("ee.pem").display().to_string());
    let sign = ["ca", "sign", "--csr", &csr, "--id-number", "110101199003074477", "--name", "张三", "--out", &ee];
    let (ok, out) = run_yiqian(&data, &hsm, &sign);
    assert!(ok, "{out}");
    let (ok, out) = run_yiqian(&data, &hsm, &["ca", "chain", "--out", d.join("chain.pem").to_str().unwrap()]);
    assert!(ok, "{out}");
    split_chain(d);
    let (ok, out) = openssl(d, &["verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "ca.pem", "ee.pem"]);
    assert!(ok && out.contains("ee.pem: OK"), "{out}");
    let (ok, out) = run_yiqian(&data, &hsm, &["ca", "crl", "--out", d.join("crl.der").to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(d, &["crl", "-in", "crl.der", "-inform", "DER", "-noout", "-CAfile", "ca.pem", "-verify"]);
    assert!(ok && out.contains("verify OK"), "{out}");

    // The database holds references, not keys; without the HSM nothing can be signed.
    // SQLite in WAL mode: recent pages may still be in the write-ahead log.
    let mut db = std::fs::read(data.join("yiqian.db")).unwrap();
    db.extend(std::fs::read(data.join("yiqian.db-wal")).unwrap_or_default());
    assert!(db.windows(7).any(|w| w == b"pkcs11:"));
    let (ok, out) = run_yiqian(&data, &[], &sign);
    assert!(!ok && out.contains("no HSM is configured"), "{out}");
}
